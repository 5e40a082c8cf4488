"""`manage.py rollback_model` and the registry's rollback: an earlier version serves again, with who and why."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ml.models import ModelPromotion, ModelVersion
from ml.registry import (
    NothingToRestore,
    champions,
    model_version_load,
    model_version_promote,
    model_version_register,
    model_version_rollback,
)


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
    second = model_version_promote(version=register_again(churn_champion), by="test", reason="better")
    register_again(churn_champion)
    return second


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


def test_rollback_to_a_named_version(second_champion):
    rollback(kind="churn", to_version=3)
    assert statuses() == {1: "retired", 2: "retired", 3: "champion"}


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


def test_a_corrupt_artifact_is_not_restored(second_champion, settings):
    first = ModelVersion.objects.get(version=1)
    (settings.MODEL_DIR / first.artifact_dir / "booster-0.ubj").write_bytes(b"broken")
    with pytest.raises(CommandError, match="missing or corrupt"):
        rollback(kind="churn")
    assert statuses()[2] == "champion"


def test_rolling_back_twice_returns_to_the_version_rolled_back_from(second_champion):
    model_version_rollback(kind="churn", by="test", reason="first")
    model_version_rollback(kind="churn", by="test", reason="second thoughts")
    assert statuses()[2] == "champion"


def test_a_kind_without_versions_has_nothing_to_restore(db):
    with pytest.raises(NothingToRestore):
        model_version_rollback(kind="acceptance", by="test", reason="none")
