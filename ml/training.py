"""Training protocol, in plain Python: hold out, fit, measure, refit on everything.

The holdout respects time where the rows have dates that differ (the latest
fifth is held out, as a model is always used on customers after its training
data); rows from one moment, such as a single CRM export, are split at random
with both outcomes in each part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from ml.churn import ChurnModel, check_training_data, churn_model_train
from ml.metrics import chance_calibration_error, classification_metrics
from ml.verdicts import Phrase, phrase, render

HOLDOUT_SHARE = 0.2
MIN_TIME_SPAN_DAYS = 30

# A training run reports (stage, percent done); stages are these codes, in this order.
Progress = Callable[[str, int], None]
STAGES = {
    "queued": "waiting for a worker",
    "training_set": "building the training set",
    "training": "training the challenger",
    "refitting": "refitting on every row",
    "comparing": "comparing with the champion",
    "deciding": "recording the decision",
    "done": "done",
}


def no_progress(stage: str, percent: int) -> None:
    """A progress callback for callers that do not watch."""


def progress_slice(progress: Progress, start: int, end: int) -> Progress:
    """A callback that maps 0-100 onto start-end of `progress`, so a step can report its own percent."""

    def report(stage: str, percent: int) -> None:
        progress(stage, start + round((end - start) * min(max(percent, 0), 100) / 100))

    return report


@dataclass
class TrainingResult:
    model: ChurnModel
    metrics: dict
    window: dict
    rows: int
    # The holdout rows (positions in the training set) and the trial model's probabilities on them,
    # so a champion can be judged on exactly the rows the challenger's metrics come from.
    holdout_index: np.ndarray | None = field(default=None, repr=False)
    holdout_probabilities: np.ndarray | None = field(default=None, repr=False)


def holdout_split(times: pd.Series, labels: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Indices of the training and holdout rows, and how they were split ("time" or "random").

    `times` may be indexed by whom each row describes (the customer): a random split then keeps each one's rows
    on one side, as the same customer on both sides lets the holdout reward remembering them.
    """
    owners = times.index
    times = pd.to_datetime(times, utc=True).reset_index(drop=True)
    index = np.arange(len(labels))
    span = (times.max() - times.min()).days if len(times) else 0
    if span >= MIN_TIME_SPAN_DAYS:
        cut = times.quantile(1 - HOLDOUT_SHARE)
        late = (times > cut).to_numpy()
        if 0 < labels[late].sum() < late.sum() and 0 < labels[~late].sum() < (~late).sum():
            return index[~late], index[late], "time"
    if owners.has_duplicates:
        return (*_split_by_owner(index, labels, owners.to_numpy(), seed), "random")
    train, holdout = train_test_split(index, test_size=HOLDOUT_SHARE, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(holdout), "random"


def _split_by_owner(
    index: np.ndarray, labels: np.ndarray, owners: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """About HOLDOUT_SHARE of the rows held out, every row of one owner on the same side, both outcomes in each."""
    folds = StratifiedGroupKFold(n_splits=round(1 / HOLDOUT_SHARE), shuffle=True, random_state=seed)
    train, holdout = next(folds.split(index, labels, groups=pd.factorize(owners)[0]))
    return np.sort(train), np.sort(holdout)


def churn_model_fit(
    features: pd.DataFrame,
    labels: np.ndarray,
    times: pd.Series,
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> TrainingResult:
    """Measure on a holdout, then refit on every row for the model that will serve."""
    result = measured_fit(
        features,
        labels,
        times,
        train=lambda rows, outcomes: churn_model_train(rows, outcomes, seed=seed),
        # The configuration the search chose on the training part serves for the refit too.
        refit=lambda trial: churn_model_train(features, np.asarray(labels, dtype=int), seed=seed, params=trial.params),
        seed=seed,
        progress=progress,
    )
    result.metrics["params"] = {key: result.model.params[key] for key in ("max_depth", "eta", "min_child_weight")}
    return result


def measured_fit(
    features: pd.DataFrame,
    labels: np.ndarray,
    times: pd.Series,
    *,
    train: Callable[[pd.DataFrame, np.ndarray], Any],
    refit: Callable[[Any], Any],
    seed: int = 0,
    progress: Progress = no_progress,
) -> TrainingResult:
    """The protocol every model kind follows: hold out, `train` on the rest and measure, then `refit`
    (given the trial model) on every row for the model that will serve."""
    labels = np.asarray(labels, dtype=int)
    check_training_data(features, labels)
    training, holdout, how = holdout_split(times, labels, seed=seed)
    progress("training", 0)
    trial = train(features.iloc[training].reset_index(drop=True), labels[training])
    holdout_probabilities = trial.predict_proba(features.iloc[holdout].reset_index(drop=True))
    metrics = classification_metrics(labels[holdout], holdout_probabilities)
    metrics["holdout"] = how
    progress("refitting", 60)
    final = refit(trial)
    progress("refitting", 100)
    times = pd.to_datetime(times, utc=True)
    window = {"from": times.min().isoformat(), "to": times.max().isoformat(), "holdout": how}
    return TrainingResult(
        model=final,
        metrics=metrics,
        window=window,
        rows=len(labels),
        holdout_index=holdout,
        holdout_probabilities=holdout_probabilities,
    )


# --- challenger against champion -------------------------------------------------------------------------------

# A part of the holdout is enough for the comparison only with this many rows and both outcomes in it.
MIN_COMPARISON_ROWS = 50
MIN_COMPARISON_PER_OUTCOME = 5


@dataclass(frozen=True)
class Comparison:
    """Challenger and champion measured on the same holdout rows; `basis` says which rows and why (in English,
    and as `basis_phrase` for pages in other languages)."""

    rows: int
    challenger_auc: float
    challenger_ece: float
    basis: str
    champion_auc: float | None = None
    champion_ece: float | None = None
    # The ECE an exactly calibrated model with the challenger's probabilities reaches by chance on these rows.
    challenger_chance_ece: float | None = None
    basis_phrase: Phrase = field(default_factory=lambda: phrase("basis_no_champion"))

    def as_json(self) -> dict:
        return asdict(self)


def challenger_comparison(
    *,
    labels: np.ndarray,
    times: pd.Series,
    result: TrainingResult,
    champion_scores: Callable[[np.ndarray], np.ndarray] | None,
    champion_trained_until: str | None,
    champion_holdout_metrics: Mapping | None = None,
    seed: int = 0,
) -> Comparison:
    """Score the challenger and the champion on the same holdout rows.

    `champion_scores(rows)` gives the champion's probabilities for those positions of the
    training set (None when there is no champion). The champion may have been trained on
    part of the holdout: where the times allow, only the rows after its training window
    are used. Otherwise its scores on rows it learned from would flatter it (retrained on
    the same data, an identical model lost by two points of AUC), so where
    `champion_holdout_metrics` gives its own holdout figures from training, it is judged by
    those; the basis says which.
    """
    labels = np.asarray(labels, dtype=int)
    holdout = result.holdout_index if result.holdout_index is not None else holdout_split(times, labels, seed=seed)[1]
    if champion_scores is None:
        basis = phrase("basis_no_champion")
        return Comparison(
            rows=len(holdout),
            challenger_auc=float(result.metrics["roc_auc"]),
            challenger_ece=float(result.metrics["ece"]),
            basis=render(basis),
            basis_phrase=basis,
        )
    may_narrow = result.holdout_probabilities is not None
    rows, basis, champion_saw_rows = comparison_rows(
        times, labels, holdout, champion_trained_until, may_narrow=may_narrow
    )
    challenger, probabilities = _challenger_metrics(result, labels, holdout, rows)
    if champion_saw_rows and _has_holdout_figures(champion_holdout_metrics):
        champion = champion_holdout_metrics
        basis = phrase("basis_judged_by_own_figures", basis=basis, rows=int(champion.get("rows") or 0))
    else:
        champion = classification_metrics(labels[rows], champion_scores(rows))
    return Comparison(
        rows=len(rows),
        challenger_auc=challenger["roc_auc"],
        challenger_ece=challenger["ece"],
        champion_auc=float(champion["roc_auc"]),
        champion_ece=float(champion["ece"]),
        basis=render(basis),
        basis_phrase=basis,
        challenger_chance_ece=None if probabilities is None else chance_calibration_error(probabilities, seed=seed),
    )


def comparison_rows(
    times: pd.Series, labels: np.ndarray, holdout: np.ndarray, champion_trained_until: str | None, *, may_narrow: bool
) -> tuple[np.ndarray, Phrase, bool]:
    """The holdout rows to compare on, the basis phrase that says which, and whether the champion may have seen
    some of them."""
    if champion_trained_until is None:
        return holdout, phrase("basis_window_unknown"), True
    until = pd.Timestamp(champion_trained_until)
    until = until.tz_localize("UTC") if until.tzinfo is None else until
    moments = pd.to_datetime(times, utc=True).reset_index(drop=True).iloc[holdout]
    seen = (moments <= until).to_numpy()
    day = f"{until:%Y-%m-%d}"
    if not seen.any():
        return holdout, phrase("basis_all_after_window", until=day), False
    later = holdout[~seen]
    churned = int(labels[later].sum())
    enough = len(later) >= MIN_COMPARISON_ROWS and min(churned, len(later) - churned) >= MIN_COMPARISON_PER_OUTCOME
    if may_narrow and enough:
        return later, phrase("basis_rows_after_window", until=day), False
    return holdout, phrase("basis_may_have_seen", until=day, seen=int(seen.sum())), True


def _has_holdout_figures(metrics: Mapping | None) -> bool:
    return metrics is not None and all(isinstance(metrics.get(name), int | float) for name in ("roc_auc", "ece"))


def _challenger_metrics(
    result: TrainingResult, labels: np.ndarray, holdout: np.ndarray, rows: np.ndarray
) -> tuple[dict, np.ndarray | None]:
    """The challenger's metrics on the compared rows, and its probabilities there where they were kept."""
    if result.holdout_probabilities is None:
        return result.metrics, None  # only the whole holdout is compared then
    probabilities = pd.Series(result.holdout_probabilities, index=holdout).loc[rows].to_numpy()
    return classification_metrics(labels[rows], probabilities), probabilities


def promotion_verdict(comparison: Comparison, *, auc_tolerance: float, max_ece: float) -> tuple[bool, Phrase]:
    """Promote when the challenger's ROC AUC is at least the champion's minus the tolerance and its ECE is
    within the bar, or both within what an exactly calibrated model reaches by chance on the compared rows and
    no more than the champion's ECE on them. On a few hundred rows chance alone is more than the bar: the bar
    alone refused a model as good as the champion more often than not, and chance alone let one eight points off
    through half the time (see the README). The first model of a kind is promoted as it is. The reason (a phrase
    of ml.verdicts) states the figures either way."""
    c = comparison
    if c.champion_auc is None:
        return True, phrase("first_model", auc=c.challenger_auc, ece=c.challenger_ece, rows=c.rows)
    not_worse = c.challenger_auc >= c.champion_auc - auc_tolerance
    within_chance = c.challenger_chance_ece is not None and c.challenger_ece <= c.challenger_chance_ece
    no_worse_than_champion = c.champion_ece is None or c.challenger_ece <= c.champion_ece
    calibrated = c.challenger_ece <= max_ece or (within_chance and no_worse_than_champion)
    figures = phrase(
        "figures" if not_worse else "figures_below",
        challenger_auc=c.challenger_auc,
        champion_auc=c.champion_auc,
        rows=c.rows,
        **({} if not_worse else {"tolerance": float(auc_tolerance)}),
    )
    verdict = phrase(
        "judged",
        figures=figures,
        calibration=_calibration_phrase(
            c, max_ece=max_ece, within_chance=within_chance, at_most=no_worse_than_champion
        ),
        outcome=phrase(_OUTCOMES[(not_worse, calibrated)]),
        basis=c.basis_phrase,
    )
    return not_worse and calibrated, verdict


_OUTCOMES = {
    (True, True): "promoted",
    (False, True): "kept_worse",
    (True, False): "kept_not_calibrated",
    (False, False): "kept_worse_and_not_calibrated",
}


def _calibration_phrase(c: Comparison, *, max_ece: float, within_chance: bool, at_most: bool) -> Phrase:
    bar = {"ece": c.challenger_ece, "max_ece": float(max_ece)}
    if c.challenger_ece <= max_ece:
        return phrase("ece_within_bar", **bar)
    if c.challenger_chance_ece is None:
        return phrase("ece_over_bar", **bar)
    code = f"ece_over_bar_{'within' if within_chance else 'beyond'}_chance_{'at_most' if at_most else 'above'}_champion"
    return phrase(code, **bar, chance_ece=c.challenger_chance_ece, rows=c.rows, champion_ece=c.champion_ece)
