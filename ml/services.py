"""Django-side training: labelled history from the database in, a registered model version out."""

from __future__ import annotations

from ml.features import build_features
from ml.models import ModelVersion
from ml.registry import model_version_promote, model_version_register
from ml.training import churn_model_fit
from retention.selectors.catalog import new_customer_fees
from retention.selectors.history import labelled_history_frames


def churn_model_retrain(*, by: str, seed: int = 0) -> ModelVersion:
    """Train on every labelled outcome, register the result, and promote it if there is no champion yet."""
    rows, contracts, events, labels = labelled_history_frames()
    features = build_features(rows, contracts, events, new_customer_fees())
    result = churn_model_fit(features, labels, rows["as_of"], seed=seed)
    version = model_version_register(
        kind=ModelVersion.Kind.CHURN,
        model=result.model,
        metrics=result.metrics,
        training_window=result.window,
        training_rows=result.rows,
    )
    if not ModelVersion.objects.filter(kind=ModelVersion.Kind.CHURN, status=ModelVersion.Status.CHAMPION).exists():
        version = model_version_promote(version=version, by=by, reason="first model of its kind")
    return version
