"""Django-side training: labelled history from the database in, a registered and judged model version out.

Retraining is the same for every model kind; what differs is in TRAINERS: how a kind's
point-in-time training set is read, and how its model is fitted. A challenger is trained,
judged against the champion on the same holdout rows, registered, and promoted or kept
out in one transaction (ml.registry.challenger_decide), so the champion changes only
when that whole step completes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction

from ml.artifacts import ArtifactError
from ml.churn import MIN_PER_CLASS, MIN_ROWS, TooLittleData, check_training_data
from ml.drift import distribution_summary
from ml.features import build_features
from ml.models import ModelVersion, TrainingJob
from ml.registry import (
    LoadedModel,
    challenger_decide,
    champion_of,
    earlier_loadable_champion,
    model_version_load,
    model_version_promote,
    model_version_register,
)
from ml.response import response_model_fit, response_training_set
from ml.schema import SchemaMismatch
from ml.training import (
    Comparison,
    Progress,
    TrainingResult,
    challenger_comparison,
    churn_model_fit,
    no_progress,
    progress_slice,
    promotion_verdict,
)
from ml.verdicts import Phrase, kind_phrase, phrase, render
from retention.selectors.catalog import new_customer_fees
from retention.selectors.history import labelled_history_frames, profiling_objector_ids
from retention.selectors.outcome_log import logged_outcomes

logger = logging.getLogger(__name__)

# Features, labels (1 = left) and as-of times, these indexed by the customer each row describes where one may have
# several rows (see ml.training.holdout_split).
TrainingSet = tuple[pd.DataFrame, np.ndarray, pd.Series]


class TooFewLabels(ValueError):
    """Not enough labelled outcomes to train and judge a model on; `reason` is the phrase (ml.verdicts) that says so."""

    def __init__(self, reason: Phrase) -> None:
        self.reason = reason
        super().__init__(render(reason))


@dataclass(frozen=True)
class Trainer:
    """How one model kind is retrained: its point-in-time training set, and the fit (TrainingResult out)."""

    training_set: Callable[[], TrainingSet]
    fit: Callable[..., TrainingResult]  # (features, labels, times, *, seed, progress)


def churn_training_set() -> TrainingSet:
    """One row per renewal result, built as of the renewal date."""
    rows, contracts, events, labels = labelled_history_frames()
    features = build_features(rows, contracts, events, new_customer_fees())
    # Indexed by customer: a customer renewing more than once must not sit on both sides of a random holdout.
    return features, labels, pd.Series(rows["as_of"].to_numpy(), index=rows["key"].to_numpy())


def acceptance_training_set() -> TrainingSet:
    """One row per logged decision a renewal result labels, with the treatment the customer got."""
    outcomes = logged_outcomes()
    # An erased customer's decisions keep their outcomes for the save rates, but not the features that described
    # the customer, so they teach the response model nothing; nor do those of a customer who objected to profiling.
    described = outcomes["features"].map(bool).astype(bool)
    objecting = outcomes["customer_id"].isin(profiling_objector_ids())
    return response_training_set(outcomes[described & ~objecting])


TRAINERS: dict[str, Trainer] = {
    ModelVersion.Kind.CHURN: Trainer(training_set=churn_training_set, fit=churn_model_fit),
    ModelVersion.Kind.ACCEPTANCE: Trainer(training_set=acceptance_training_set, fit=response_model_fit),
}


@dataclass(frozen=True)
class RetrainPolicy:
    """What a challenger must show; from settings unless a caller says otherwise."""

    min_labels: int
    auc_tolerance: float
    max_ece: float

    @classmethod
    def from_settings(cls) -> RetrainPolicy:
        return cls(
            min_labels=settings.RETRAIN_MIN_LABELS,
            auc_tolerance=settings.RETRAIN_AUC_TOLERANCE,
            max_ece=settings.RETRAIN_MAX_ECE,
        )


def model_retrain(
    *,
    kind: str,
    by: str,
    seed: int = 0,
    policy: RetrainPolicy | None = None,
    training_job: TrainingJob | None = None,
    progress: Progress = no_progress,
) -> ModelVersion:
    """Train a challenger of `kind` on every labelled outcome, judge it against the champion, and record
    the decision. Raises TooFewLabels (before any training) when the labels cannot support a model."""
    policy = policy or RetrainPolicy.from_settings()
    trainer = TRAINERS[kind]
    progress("training_set", 0)
    features, labels, times = trainer.training_set()
    _check_labels(kind, features, labels, policy.min_labels)
    champion = champion_of(kind)
    judged_against = _comparable_champion(champion)
    scores = _champion_scores(judged_against, features)
    progress("training", 10)
    result = trainer.fit(features, labels, times, seed=seed, progress=progress_slice(progress, 10, 80))
    progress("comparing", 80)
    comparison = challenger_comparison(
        labels=labels,
        times=times,
        result=result,
        champion_scores=scores,
        champion_trained_until=judged_against.version.training_window.get("to") if judged_against else None,
        champion_holdout_metrics=judged_against.version.metrics if judged_against else None,
        seed=seed,
    )
    if champion is not None and (judged_against is None or judged_against.version.pk != champion.pk):
        comparison = _judged_without_the_champion(comparison, champion, judged_against)
    promote, reason = promotion_verdict(comparison, auc_tolerance=policy.auc_tolerance, max_ece=policy.max_ece)
    progress("deciding", 95)
    with transaction.atomic():
        challenger = _register(kind, result, features, training_job, comparison=comparison.as_json())
        return challenger_decide(
            challenger=challenger,
            compared_with=champion,
            promote=promote,
            reason=reason,
            by=by,
            training_job=training_job,
        )


def _check_labels(kind: str, features: pd.DataFrame, labels: np.ndarray, min_labels: int) -> None:
    if len(labels) < min_labels:
        raise TooFewLabels(phrase("too_few_labels", kind=kind_phrase(kind), labels=len(labels), minimum=min_labels))
    try:
        check_training_data(features, labels)
    except TooLittleData as error:
        too_few = phrase(
            "too_few_of_an_outcome",
            kind=kind_phrase(kind),
            rows=error.rows,
            churned=error.churned,
            min_rows=MIN_ROWS,
            min_per_outcome=MIN_PER_CLASS,
        )
        raise TooFewLabels(too_few) from error


def _comparable_champion(champion: ModelVersion | None) -> LoadedModel | None:
    """The model a challenger is judged against, loaded before training starts: the champion, or when its files
    cannot be loaded the earlier champion that serves advice in its place (see ChampionCache); None when there is
    no champion or no champion's files load, and the challenger is judged as a first model would be. A model that
    cannot serve is no bar to keep a servable one out; the decision's basis names the champion and why."""
    if champion is None:
        return None
    try:
        return LoadedModel(version=champion, model=model_version_load(champion))
    except (ArtifactError, SchemaMismatch) as error:
        logger.error("retrain: champion %s cannot be loaded: %s", champion.label, error)
        return earlier_loadable_champion(champion)


def _judged_without_the_champion(
    comparison: Comparison, champion: ModelVersion, stand_in: LoadedModel | None
) -> Comparison:
    if stand_in is None:
        basis = phrase("basis_champion_unloadable", champion=champion.label)
    else:
        basis = phrase(
            "basis_stand_in", basis=comparison.basis_phrase, champion=champion.label, stand_in=stand_in.version.label
        )
    return replace(comparison, basis=render(basis), basis_phrase=basis)


def _champion_scores(champion: LoadedModel | None, features: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray] | None:
    """The champion's probabilities for given rows of the training set (None without a champion)."""
    if champion is None:
        return None

    def scores(rows: np.ndarray) -> np.ndarray:
        return champion.model.predict_proba(features.iloc[rows].reset_index(drop=True))

    return scores


def _register(
    kind: str, result: TrainingResult, features: pd.DataFrame, training_job: TrainingJob | None, **extra_metrics
) -> ModelVersion:
    schema = result.model.schema
    return model_version_register(
        kind=kind,
        model=result.model,
        metrics={**result.metrics, **extra_metrics},
        training_window=result.window,
        training_rows=result.rows,
        training_distribution=distribution_summary(
            features, numeric=schema.numeric, categorical=list(schema.categorical)
        ),
        training_job=training_job,
    )


def churn_model_retrain(*, by: str, seed: int = 0) -> ModelVersion:
    """Train on every labelled outcome and register the result as a candidate, promoting it only when
    there is no champion yet. No comparison: the learning loop (ml.jobs) retrains with model_retrain."""
    features, labels, times = churn_training_set()
    result = churn_model_fit(features, labels, times, seed=seed)
    version = _register(ModelVersion.Kind.CHURN, result, features, None)
    if champion_of(ModelVersion.Kind.CHURN) is None:
        version = model_version_promote(version=version, by=by, reason=phrase("first_model_untested"))
    return version
