"""`manage.py rollback_model` and the registry's rollback: an earlier version serves again, with who and why; and
a process that serves no model yet falls back the same way when the champion's files are damaged."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ml import registry
from ml.artifacts import ArtifactError, artifact_problem
from ml.models import ModelPromotion, ModelVersion
from ml.registry import (
    ChampionUnavailable,
    NoChampion,
    NothingToRestore,
    champions,
    model_version_load,
    model_version_promote,
    model_version_register,
    model_version_reject,
    model_version_rollback,
    previous_champion,
)
from retention.models import AgentProfile
from tests.factories import AgentProfileFactory, UserFactory


def register_again(version: ModelVersion) -> ModelVersion:
    """A new version holding the same trained model (quicker than training one)."""
    return model_version_register(
        kind=version.kind,
        model=model_version_load(version),
        metrics=version.metrics,
        training_window=version.training_window,
        training_rows=version.training_rows,
    )


@pytest.fixture
def second_champion(churn_champion):
    """v1 served first; v2 replaced it; v3 is a candidate that never served."""
    # The session's champion is stored directly; training records the first promotion as every other.
    ModelPromotion.objects.create(model_version=churn_champion, promoted=True, reason="first model of its kind")
    second = model_version_promote(version=register_again(churn_champion), by="test", reason="better")
    register_again(churn_champion)
    return second


@pytest.fixture
def third_champion(second_champion):
    """v1, v2 and v4 served in turn; v3 was rejected."""
    model_version_reject(version=ModelVersion.objects.get(version=3), reason="worse")
    return model_version_promote(version=register_again(second_champion), by="test", reason="better still")


def rollback(**options) -> str:
    out = io.StringIO()
    call_command("rollback_model", stdout=out, **options)
    return out.getvalue()


def statuses() -> dict[int, str]:
    return dict(ModelVersion.objects.filter(kind="churn").values_list("version", "status"))


def test_rollback_restores_the_previous_champion_with_reason_and_user(second_champion, lead):
    output = rollback(kind="churn", reason="v2 scores everyone high", user="lead")
    assert statuses() == {1: "champion", 2: "retired", 3: "candidate"}
    assert output.startswith("churn-v1 is the churn champion again: rolled back from churn-v2 to churn-v1")
    decision = ModelPromotion.objects.filter(model_version__version=1).first()
    assert decision.promoted
    assert decision.reason == "rolled back from churn-v2 to churn-v1: v2 scores everyone high"
    assert decision.decided_by == lead
    assert ModelVersion.objects.get(version=1).promoted_by == "lead"


def test_the_next_recommendation_is_scored_by_the_restored_version(second_champion):
    champions.clear()
    assert champions.get("churn").version.version == 2
    rollback(kind="churn")
    assert champions.get("churn").version.version == 1


def test_rollback_to_a_named_version_that_served_before(third_champion):
    output = rollback(kind="churn", to_version=1)
    assert statuses() == {1: "champion", 2: "retired", 3: "rejected", 4: "retired"}
    assert output.startswith("churn-v1 is the churn champion again: rolled back from churn-v4 to churn-v1")


@pytest.mark.parametrize("never_served", [3, 4])
def test_a_version_that_never_served_is_not_restored_by_a_rollback(third_champion, never_served):
    if never_served == 4:  # a candidate, not yet judged
        ModelVersion.objects.filter(version=4).update(status="candidate", promoted_at=None)
        ModelVersion.objects.filter(version=2).update(status="champion")
    before = statuses()

    with pytest.raises(CommandError, match=f"churn-v{never_served} never served as champion .*models page"):
        rollback(kind="churn", to_version=never_served)

    assert statuses() == before


def test_restoring_a_later_version_that_served_before_is_not_called_a_rollback_from_it(third_champion):
    rollback(kind="churn", to_version=1)

    output = rollback(kind="churn", to_version=2)

    assert output.startswith(
        "churn-v2 is the churn champion again: restored churn-v2, which served before, in place of the older churn-v1"
    )
    assert statuses()[2] == "champion"


def test_without_a_user_the_command_notes_the_operating_system_user(second_champion):
    rollback(kind="churn")
    restored = ModelVersion.objects.get(version=1)
    assert restored.promoted_by.startswith("rollback_model (")
    assert restored.status_reason.endswith(": restored with manage.py rollback_model")


def test_nothing_earlier_to_restore_is_a_clear_error(churn_champion):
    with pytest.raises(CommandError, match="no earlier churn champion to roll back to"):
        rollback(kind="churn")
    assert statuses() == {1: "champion"}


def test_an_unknown_or_serving_version_is_refused(second_champion):
    with pytest.raises(CommandError, match="there is no churn model version 9"):
        rollback(kind="churn", to_version=9)
    with pytest.raises(CommandError, match="churn-v2 is the champion already"):
        rollback(kind="churn", to_version=2)
    assert statuses() == {1: "retired", 2: "champion", 3: "candidate"}


def test_an_unknown_user_is_refused_before_anything_changes(second_champion):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        rollback(kind="churn", user="ghost")
    assert statuses()[2] == "champion"


def test_an_agent_or_a_user_without_a_role_may_not_decide_a_rollback(second_champion, agent, outsider):
    with pytest.raises(CommandError, match="user 'agent' is an agent: only a team lead, an administrator or a super"):
        rollback(kind="churn", user="agent")
    with pytest.raises(CommandError, match="user 'outsider' is not an agent, team lead or administrator: only"):
        rollback(kind="churn", user="outsider")
    assert statuses()[2] == "champion"


def test_a_deactivated_lead_may_not_decide_a_rollback(second_champion, lead):
    lead.is_active = False
    lead.save(update_fields=["is_active"])

    with pytest.raises(CommandError, match="user 'lead' is deactivated"):
        rollback(kind="churn", user="lead")
    assert statuses()[2] == "champion"


@pytest.mark.parametrize("who", ["admin", "superuser"])
def test_an_administrator_or_a_superuser_may_decide_a_rollback(second_champion, who):
    if who == "admin":
        AgentProfileFactory(user=UserFactory(username=who), team=None, role=AgentProfile.Role.ADMIN)
    else:
        UserFactory(username=who, is_superuser=True)

    rollback(kind="churn", user=who)

    assert ModelPromotion.objects.filter(model_version__version=1).first().decided_by.username == who


def test_a_corrupt_artifact_is_not_restored(second_champion, settings):
    first = ModelVersion.objects.get(version=1)
    (settings.MODEL_DIR / first.artifact_dir / "booster-0.ubj").write_bytes(b"broken")
    with pytest.raises(CommandError, match="missing or corrupt"):
        rollback(kind="churn")
    assert statuses()[2] == "champion"


def test_rolling_back_again_goes_back_one_champion_further(third_champion):
    model_version_rollback(kind="churn", by="test", reason="first")
    assert statuses()[2] == "champion"

    model_version_rollback(kind="churn", by="test", reason="second thoughts")

    assert statuses() == {1: "champion", 2: "retired", 3: "rejected", 4: "retired"}
    with pytest.raises(NothingToRestore, match="no earlier churn champion to roll back to"):
        model_version_rollback(kind="churn", by="test", reason="third")


def test_a_rollback_does_not_toggle_back_to_the_version_rolled_back_from(second_champion):
    rollback(kind="churn")

    with pytest.raises(CommandError, match="no earlier churn champion to roll back to"):
        rollback(kind="churn")
    assert statuses()[1] == "champion"


def test_after_a_rollback_and_a_new_champion_the_default_is_the_one_rolled_back_to(third_champion):
    model_version_rollback(kind="churn", by="test", reason="v4 is off")
    model_version_promote(version=register_again(third_champion), by="test", reason="v5 fixes it")

    assert previous_champion("churn").version == 2


def test_a_kind_without_versions_has_nothing_to_restore(db):
    with pytest.raises(NothingToRestore):
        model_version_rollback(kind="acceptance", by="test", reason="none")


# --- a damaged champion in a process that serves none yet (just started, or a new worker) -----------------------


def damage(settings, version: ModelVersion) -> None:
    (settings.MODEL_DIR / version.artifact_dir / "booster-0.ubj").write_bytes(b"broken")


def test_a_new_process_serves_the_last_earlier_champion_whose_files_load(third_champion, settings, caplog):
    second = ModelVersion.objects.get(version=2)
    damage(settings, third_champion)
    damage(settings, second)
    champions.clear()

    serving = champions.get("churn")

    assert serving.version.version == 1  # v2 is damaged too, and v3 never served
    [logged] = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert logged.startswith(f"serving {serving.version.label}: champion {third_champion.label} cannot be loaded")


def test_with_no_champion_that_loads_advice_is_refused_as_no_model_naming_what_to_do(second_champion, settings):
    damage(settings, second_champion)
    damage(settings, ModelVersion.objects.get(version=1))
    champions.clear()

    with pytest.raises(ChampionUnavailable, match=f"{second_champion.label} cannot be loaded .* roll back") as refused:
        champions.get("churn")

    assert isinstance(refused.value, NoChampion)  # every caller that says "no model" says it for this too


def test_files_the_process_may_not_read_are_a_damaged_artifact_not_a_crash(second_champion, settings, monkeypatch):
    folder = settings.MODEL_DIR / second_champion.artifact_dir
    read_bytes = Path.read_bytes

    def refused_in_folder(path: Path) -> bytes:
        if path.parent == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refused_in_folder)
    champions.clear()

    with pytest.raises(ArtifactError, match=r"cannot be read: .*Permission denied"):
        model_version_load(second_champion)
    assert champions.get("churn").version.version == 1
    assert "Permission denied" in artifact_problem(folder, expected_sha256=second_champion.artifact_sha256)


def test_a_champion_that_failed_to_load_is_tried_again_after_a_while_not_on_every_request(
    second_champion, settings, monkeypatch
):
    damage(settings, second_champion)
    champions.clear()
    loads = []
    load = registry.model_version_load
    monkeypatch.setattr(registry, "model_version_load", lambda version: loads.append(version.version) or load(version))

    for _ in range(3):
        assert champions.get("churn").version.version == 1
    monkeypatch.setattr(registry, "RELOAD_FAILED_AFTER_SECONDS", 0)
    champions.get("churn")

    assert loads == [2, 1, 2]  # the champion, the stand-in once, then the champion again once the while is over
