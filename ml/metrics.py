"""Quality figures stored with every model version."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

ECE_BINS = 10


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean gap between predicted and observed rates over equal-width probability bins, weighted by size."""
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            gap += chosen.mean() * abs(probabilities[chosen].mean() - labels[chosen].mean())
    return float(gap)


# Label draws behind the ECE a calibrated model reaches by chance, and the share of them it may reach.
CHANCE_ECE_DRAWS = 400
CHANCE_ECE_QUANTILE = 0.95


def chance_calibration_error(probabilities: np.ndarray, *, seed: int = 0) -> float:
    """The ECE that a model calibrated exactly, with these probabilities, stays under in 95% of draws of
    its rows' outcomes: on a few hundred rows it is several points, so an ECE up to it says nothing
    against the model's calibration."""
    probabilities = np.asarray(probabilities, dtype=float)
    rng = np.random.default_rng(seed)
    # One draw at a time: a large holdout's draws all at once would hold hundreds of copies of it.
    errors = [
        expected_calibration_error(rng.random(len(probabilities)) < probabilities, probabilities)
        for _ in range(CHANCE_ECE_DRAWS)
    ]
    return float(np.quantile(errors, CHANCE_ECE_QUANTILE))


def lift_at(labels: np.ndarray, probabilities: np.ndarray, share: float = 0.1) -> float:
    """How many times the base rate the churn rate is among the top `share` by predicted risk."""
    labels = np.asarray(labels, dtype=float)
    count = max(1, round(len(labels) * share))
    top = np.argsort(-np.asarray(probabilities), kind="stable")[:count]
    base = labels.mean()
    return float(labels[top].mean() / base) if base > 0 else 0.0


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    labels = np.asarray(labels, dtype=int)
    if len(np.unique(labels)) < 2:
        raise ValueError("metrics need both churned and renewed customers in the evaluation data")
    return {
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "pr_auc": float(average_precision_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
        "ece": expected_calibration_error(labels, probabilities),
        "lift_top10": lift_at(labels, probabilities, 0.1),
        "base_rate": float(labels.mean()),
        "rows": len(labels),
    }
