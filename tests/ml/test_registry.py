import pytest

from ml import services
from ml.artifacts import ArtifactError
from ml.models import ModelPromotion, ModelVersion
from ml.registry import NoChampion, champions, model_version_promote
from ml.services import churn_model_retrain
from retention.records import RenewalRecord
from retention.services.customers import customers_upsert
from tests.builders import fitted_once, labelled_records, store_labelled_base


@pytest.fixture(scope="module")
def fits_made() -> dict:
    return {}


@pytest.fixture(autouse=True)
def each_fit_made_once(fits_made, monkeypatch):
    """The churn fit, made once per module for the same rows and seed: every retrain here is on the same
    labelled base, so the fit is the same each time; registering and promoting still run in full."""
    monkeypatch.setattr(services, "churn_model_fit", fitted_once(services.churn_model_fit, fits_made))


def test_the_first_trained_model_becomes_champion_with_its_metrics(db):
    store_labelled_base()
    champions.clear()
    first = churn_model_retrain(by="test")
    assert first.status == ModelVersion.Status.CHAMPION
    assert first.version == 1
    assert {"roc_auc", "pr_auc", "brier", "ece", "lift_top10"} <= set(first.metrics)
    assert first.metrics["holdout"] == "time"
    assert ModelPromotion.objects.filter(model_version=first, promoted=True).exists()


def test_a_second_model_is_a_candidate_until_promoted(churn_champion):
    second = churn_model_retrain(by="test")
    assert second.status == ModelVersion.Status.CANDIDATE
    model_version_promote(version=second, by="lead", reason="better on the holdout")
    churn_champion.refresh_from_db()
    assert churn_champion.status == ModelVersion.Status.RETIRED
    assert champions.get("churn").version.pk == second.pk


def test_no_champion_is_a_clear_error(db):
    champions.clear()
    with pytest.raises(NoChampion, match="train_models"):
        champions.get("churn")


def test_a_corrupt_new_champion_leaves_the_previous_one_serving_and_says_so_on_every_request(
    churn_champion, settings, caplog
):
    serving = champions.get("churn")
    second = churn_model_retrain(by="test")
    ModelVersion.objects.filter(pk=churn_champion.pk).update(status=ModelVersion.Status.RETIRED)
    ModelVersion.objects.filter(pk=second.pk).update(status=ModelVersion.Status.CHAMPION)
    (settings.MODEL_DIR / second.artifact_dir / "booster-0.ubj").write_bytes(b"broken")
    assert champions.get("churn").version.pk == serving.version.pk
    assert champions.get("churn").version.pk == serving.version.pk
    errors = [record for record in caplog.records if record.levelname == "ERROR" and record.name == "ml.registry"]
    assert len(errors) == 2
    assert serving.version.label in errors[0].getMessage() and second.label in errors[0].getMessage()


def test_promoting_a_corrupt_artifact_is_refused(churn_champion, settings):
    second = churn_model_retrain(by="test")
    (settings.MODEL_DIR / second.artifact_dir / "booster-1.ubj").write_bytes(b"broken")
    with pytest.raises(ArtifactError):
        model_version_promote(version=second, by="lead", reason="try")
    churn_champion.refresh_from_db()
    assert churn_champion.status == ModelVersion.Status.CHAMPION


def test_training_without_labels_refuses(db):
    with pytest.raises(ValueError, match="too few labelled outcomes"):
        churn_model_retrain(by="test")


def test_training_with_only_one_outcome_refuses(db):
    records = labelled_records(n=80, seed=3)
    for record in records:
        record.renewals = [RenewalRecord(result="renewed", date=record.renewals[0].date)]
    customers_upsert(records=records, source="simulation")
    with pytest.raises(ValueError, match="of each outcome"):
        churn_model_retrain(by="test")
