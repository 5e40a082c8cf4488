"""`manage.py prune_model_files`: the files of versions that can no longer serve nor be rolled back to are removed,
their registry rows kept and marked; the champion, the last champions of its line, young versions and folders no
version names (without --remove-unknown) stay; a pruned version is refused by promotion and rollback, saying why."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ml.artifacts import ArtifactError
from ml.models import ModelPromotion, ModelVersion, TrainingJob
from ml.registry import model_version_load, model_version_promote, model_version_reject, model_version_rollback
from retention.models import AgentProfile
from tests.ml.test_rollback import register_again

OLD = dt.timedelta(days=60)


@pytest.fixture
def model_dir(settings, tmp_path, churn_champion) -> Path:
    """A models folder of the test's own, holding only the champion's files: the session's shared folder holds
    other tests' folders, which no version of this test names."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copytree(Path(settings.MODEL_DIR) / churn_champion.artifact_dir, folder / churn_champion.artifact_dir)
    settings.MODEL_DIR = folder
    return folder


@pytest.fixture
def history(model_dir, churn_champion) -> dict[int, ModelVersion]:
    """v1 to v4 served in turn (v4 serves); v5 is an old candidate, v6 an old rejected one, v7 a fresh candidate.
    Every version but v7 was registered two months ago."""
    ModelPromotion.objects.create(model_version=churn_champion, promoted=True, reason="first model of its kind")
    for _ in range(3):
        model_version_promote(version=register_again(churn_champion), by="test", reason="better")
    register_again(churn_champion)
    model_version_reject(version=register_again(churn_champion), reason="worse")
    ModelVersion.objects.update(created_at=timezone.now() - OLD)
    register_again(churn_champion)
    return {version.version: version for version in ModelVersion.objects.filter(kind="churn")}


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_model_files", *args, stdout=out)
    return out.getvalue()


def folders_left(model_dir: Path) -> set[str]:
    return {folder.name for folder in model_dir.iterdir()}


def versions_with_files() -> set[int]:
    return set(ModelVersion.objects.filter(files_removed_at__isnull=True).values_list("version", flat=True))


def test_pruning_keeps_the_champion_the_last_champions_and_young_versions_and_removes_the_rest(model_dir, history):
    output = prune("--keep-champions", "2")

    assert versions_with_files() == {3, 4, 7}
    assert folders_left(model_dir) == {history[number].artifact_dir for number in (3, 4, 7)}
    for number in (1, 2, 5, 6):
        assert f"removed churn-v{number}: " in output
    assert "removed 4 folder(s), " in output
    assert " MB in all" in output


def test_a_version_rolled_back_from_is_kept_among_the_last_that_served_as_rollback_model_can_restore_it(
    model_dir, history
):
    model_version_rollback(kind="churn", by="lead", reason="worse in the field")  # v4 -> v3; v4 leaves the line
    model_version_rollback(kind="churn", by="lead", reason="worse still")  # v3 -> v2

    prune("--keep-champions", "3")

    # The line is v1, v2 (serving); the three that served last are v2, v3 and v4, which `--to-version` restores.
    assert versions_with_files() == {1, 2, 3, 4, 7}


def test_the_registry_keeps_a_pruned_versions_row_metrics_and_decisions(model_dir, history):
    prune("--keep-champions", "2")

    pruned = ModelVersion.objects.get(kind="churn", version=1)
    assert pruned.files_removed_at is not None
    assert pruned.metrics == history[1].metrics
    assert pruned.promotions.filter(promoted=True).exists()


def test_by_default_the_last_five_champions_and_a_months_versions_stay(model_dir, history):
    output = prune()

    assert versions_with_files() == {1, 2, 3, 4, 7}
    assert "removed 2 folder(s)" in output


def test_the_champion_stays_even_when_only_one_champion_is_kept(model_dir, history):
    prune("--keep-champions", "1", "--older-than-days", "1")

    assert versions_with_files() == {4, 7}


def test_a_dry_run_removes_nothing_and_says_what_it_would(model_dir, history):
    before = folders_left(model_dir)

    output = prune("--keep-champions", "2", "--dry-run")

    assert folders_left(model_dir) == before
    assert versions_with_files() == set(range(1, 8))
    assert "would remove churn-v1: " in output
    assert "would remove 4 folder(s), " in output


def test_a_second_run_finds_nothing_more_to_remove(model_dir, history):
    prune("--keep-champions", "2")

    assert "removed 0 folder(s), 0.0 MB in all" in prune("--keep-champions", "2")


def test_an_old_folder_no_version_names_is_listed_and_left_without_the_flag(model_dir, history):
    unknown = stray_folder(model_dir, "churn-v9-20240101000000", age=OLD)

    output = prune("--keep-champions", "2")

    assert unknown.is_dir()
    assert "left unknown folder churn-v9-20240101000000: " in output
    assert "--remove-unknown" in output


def test_an_old_folder_no_version_names_is_removed_with_the_flag(model_dir, history):
    unknown = stray_folder(model_dir, "churn-v9-20240101000000", age=OLD)

    output = prune("--keep-champions", "2", "--remove-unknown")

    assert not unknown.exists()
    assert "removed unknown folder churn-v9-20240101000000: " in output


def test_a_fresh_folder_no_version_names_stays_even_with_the_flag(model_dir, history):
    # A registration in progress writes its files before its row is saved.
    in_progress = stray_folder(model_dir, "churn-v8-20990101000000", age=dt.timedelta(0))

    prune("--keep-champions", "2", "--remove-unknown")

    assert in_progress.is_dir()


def test_files_beside_the_folders_are_never_touched(model_dir, history):
    note = model_dir / "README"
    note.write_text("kept")
    os.utime(note, times=(0, 0))

    prune("--keep-champions", "2", "--remove-unknown")

    assert note.read_text() == "kept"


def test_a_version_naming_no_folder_of_its_own_never_removes_the_models_folder(model_dir, history):
    ModelVersion.objects.filter(version=5).update(artifact_dir="")
    ModelVersion.objects.filter(version=6).update(artifact_dir="../elsewhere")

    prune("--keep-champions", "2")

    assert model_dir.is_dir()
    assert {5, 6} <= versions_with_files()


def test_a_folder_a_kept_version_also_names_stays(model_dir, history):
    ModelVersion.objects.filter(version=5).update(artifact_dir=history[7].artifact_dir)

    prune("--keep-champions", "2")

    assert (model_dir / history[7].artifact_dir).is_dir()
    assert 5 in versions_with_files()


def test_a_pruned_version_cannot_be_promoted_and_the_refusal_says_why(model_dir, history):
    prune("--keep-champions", "2")
    pruned = ModelVersion.objects.get(kind="churn", version=5)

    with pytest.raises(ArtifactError, match=r"churn-v5: its files were removed by prune_model_files on \d{4}-"):
        model_version_promote(version=pruned, by="test", reason="try")

    assert ModelVersion.objects.get(status="champion").version == 4


def test_a_pruned_champion_cannot_be_rolled_back_to_and_the_refusal_says_why(model_dir, history):
    prune("--keep-champions", "2")

    with pytest.raises(CommandError, match="churn-v2: its files were removed by prune_model_files on "):
        call_command("rollback_model", kind="churn", to_version=2, stdout=io.StringIO())

    assert ModelVersion.objects.get(status="champion").version == 4


def test_the_roll_back_button_refuses_a_pruned_previous_champion_saying_why(model_dir, history, lead):
    prune("--keep-champions", "1", "--older-than-days", "1")

    response = english(lead).post(reverse("review-models-rollback", args=["churn"]), {"confirm": "1"})

    assert response.status_code == 409
    assert "churn-v3: its files were removed by prune_model_files on " in response.content.decode()
    assert ModelVersion.objects.get(status="champion").version == 4


def test_the_models_page_marks_a_pruned_version_and_offers_no_promote_button(model_dir, history, lead):
    prune("--keep-champions", "2")

    page = english(lead).get("/review/models/").content.decode()

    assert "Files removed on " in page
    assert reverse("review-models-promote", args=["churn", 5]) not in page
    assert reverse("review-models-promote", args=["churn", 7]) in page


def test_a_pruned_versions_files_are_not_loaded_even_when_put_back(model_dir, history):
    prune("--keep-champions", "2")
    pruned = ModelVersion.objects.get(kind="churn", version=1)
    shutil.copytree(model_dir / history[4].artifact_dir, model_dir / pruned.artifact_dir)

    with pytest.raises(ArtifactError, match="removed by prune_model_files"):
        model_version_load(pruned)


def test_pruning_is_refused_while_a_retrain_runs(model_dir, history):
    TrainingJob.objects.create(kinds=["churn"], trigger="nightly", status=TrainingJob.Status.RUNNING)

    with pytest.raises(CommandError, match=r"^training job \d+ is running: prune once it has finished"):
        prune("--keep-champions", "2")

    assert versions_with_files() == set(range(1, 8))


def test_a_dry_run_is_allowed_while_a_retrain_runs(model_dir, history):
    TrainingJob.objects.create(kinds=["churn"], trigger="nightly", status=TrainingJob.Status.RUNNING)

    assert "would remove 4 folder(s)" in prune("--keep-champions", "2", "--dry-run")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--keep-champions", "0", "'0' is not a whole number of at least 1"),
        ("--keep-champions", "two", "'two' is not a whole number of at least 1"),
        ("--older-than-days", "0", "'0' is not a whole number of at least 1"),
        ("--older-than-days", "-3", "'-3' is not a whole number of at least 1"),
        ("--older-than-days", "100000", "'100000' is more than 36,500 days"),
    ],
)
def test_a_bad_option_is_refused_in_one_line_naming_it(db, option, value, message):
    with pytest.raises(CommandError) as refusal:
        prune(f"{option}={value}")

    assert str(refusal.value) == f"Error: argument {option}: {message}"


def stray_folder(model_dir: Path, name: str, *, age: dt.timedelta) -> Path:
    folder = model_dir / name
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    written = (timezone.now() - age).timestamp()
    for path in (folder / "model.json", folder):
        os.utime(path, times=(written, written))
    return folder


def english(user) -> Client:
    AgentProfile.objects.filter(user=user).update(language="en")
    client = Client()
    client.force_login(user)
    return client
