"""Training protocol, in plain Python: hold out, fit, measure, refit on everything.

The holdout respects time where the rows have dates that differ (the latest
fifth is held out, as a model is always used on customers after its training
data); rows from one moment, such as a single CRM export, are split at random
with both outcomes in each part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ml.churn import ChurnModel, check_training_data, churn_model_train
from ml.metrics import classification_metrics

HOLDOUT_SHARE = 0.2
MIN_TIME_SPAN_DAYS = 30


@dataclass
class TrainingResult:
    model: ChurnModel
    metrics: dict
    window: dict
    rows: int


def holdout_split(times: pd.Series, labels: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Indices of the training and holdout rows, and how they were split ("time" or "random")."""
    times = pd.to_datetime(times, utc=True).reset_index(drop=True)
    index = np.arange(len(labels))
    span = (times.max() - times.min()).days if len(times) else 0
    if span >= MIN_TIME_SPAN_DAYS:
        cut = times.quantile(1 - HOLDOUT_SHARE)
        late = (times > cut).to_numpy()
        if 0 < labels[late].sum() < late.sum() and 0 < labels[~late].sum() < (~late).sum():
            return index[~late], index[late], "time"
    train, holdout = train_test_split(index, test_size=HOLDOUT_SHARE, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(holdout), "random"


def churn_model_fit(features: pd.DataFrame, labels: np.ndarray, times: pd.Series, *, seed: int = 0) -> TrainingResult:
    """Measure on a holdout, then refit on every row for the model that will serve."""
    labels = np.asarray(labels, dtype=int)
    check_training_data(features, labels)
    train, holdout, how = holdout_split(times, labels, seed=seed)
    trial = churn_model_train(features.iloc[train].reset_index(drop=True), labels[train], seed=seed)
    metrics = classification_metrics(
        labels[holdout], trial.predict_proba(features.iloc[holdout].reset_index(drop=True))
    )
    metrics["holdout"] = how
    metrics["params"] = {key: trial.params[key] for key in ("max_depth", "eta", "min_child_weight")}
    # The configuration the search chose on the training part serves for the refit too.
    final = churn_model_train(features, labels, seed=seed, params=trial.params)
    times = pd.to_datetime(times, utc=True)
    window = {"from": times.min().isoformat(), "to": times.max().isoformat(), "holdout": how}
    return TrainingResult(model=final, metrics=metrics, window=window, rows=len(labels))
