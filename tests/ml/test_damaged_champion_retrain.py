"""A retrain while the champion's files cannot be loaded: the challenger is judged against the earlier champion
that serves advice in its place, or as a first model when none does, and the decision says which. Before, the
retrain failed on the champion's files, so a damaged only champion could be replaced by nothing."""

from __future__ import annotations

import dataclasses

import pytest

from ml import services
from ml.models import ModelPromotion, ModelVersion
from ml.registry import champions, model_version_load, model_version_promote, model_version_register
from ml.services import RetrainPolicy, model_retrain
from tests.builders import fitted_once, store_labelled_base

LENIENT = RetrainPolicy(min_labels=100, auc_tolerance=1.0, max_ece=1.0)


@pytest.fixture(scope="module")
def fits_made() -> dict:
    return {}


@pytest.fixture(autouse=True)
def each_fit_made_once(fits_made, monkeypatch):
    trainer = services.TRAINERS["churn"]
    monkeypatch.setitem(
        services.TRAINERS, "churn", dataclasses.replace(trainer, fit=fitted_once(trainer.fit, fits_made))
    )


@pytest.fixture
def two_champions(churn_champion):
    """v1 served first, then v2, which serves now; and new labels since."""
    ModelPromotion.objects.create(model_version=churn_champion, promoted=True, reason="first model of its kind")
    again = model_version_register(
        kind="churn",
        model=model_version_load(churn_champion),
        metrics=churn_champion.metrics,
        training_window=churn_champion.training_window,
        training_rows=churn_champion.training_rows,
    )
    second = model_version_promote(version=again, by="test", reason="better")
    store_labelled_base(seed=1)
    return churn_champion, second


def damage(settings, version: ModelVersion) -> None:
    (settings.MODEL_DIR / version.artifact_dir / "booster-0.ubj").write_bytes(b"broken")


def test_the_challenger_is_judged_against_the_earlier_champion_serving_in_the_damaged_ones_place(
    two_champions, settings
):
    first, second = two_champions
    damage(settings, second)

    challenger = model_retrain(kind="churn", by="test", policy=LENIENT)
    basis = challenger.metrics["comparison"]["basis"]

    assert challenger.status == ModelVersion.Status.CHAMPION
    assert challenger.metrics["comparison"]["champion_auc"] is not None
    assert f"the champion {second.label} cannot be loaded, so {first.label}, which serves in its place" in basis
    champions.clear()
    assert champions.get("churn").version.pk == challenger.pk


def test_with_no_champion_that_loads_the_challenger_is_judged_as_a_first_model_and_says_why(churn_champion, settings):
    store_labelled_base(seed=1)
    damage(settings, churn_champion)

    challenger = model_retrain(kind="churn", by="test", policy=LENIENT)

    assert challenger.status == ModelVersion.Status.CHAMPION
    assert challenger.metrics["comparison"]["basis"] == (
        f"the champion {churn_champion.label} cannot be loaded, nor any champion before it: nothing serves to "
        "compare with"
    )
    churn_champion.refresh_from_db()
    assert churn_champion.status == ModelVersion.Status.RETIRED
