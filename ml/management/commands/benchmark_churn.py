from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from sklearn.model_selection import StratifiedKFold

from ml.baselines import default_xgboost_scores, logistic_regression_scores
from ml.churn import churn_model_train
from ml.features import build_features
from ml.metrics import classification_metrics
from retention.management import arguments
from retention.mapping import MappingError, RowError, mapping_load, read_mapped_rows
from retention.records import records_to_frames

METRICS = ("roc_auc", "pr_auc", "brier", "ece")
# What the search chose in each fold, so a figure can be traced to the configuration behind it.
CHOICES = ("max_depth", "eta", "min_child_weight", "linear_weight", "linear_knots")


class Command(BaseCommand):
    help = (
        "Cross-validate the churn model on a labelled CRM file, beside logistic regression and default XGBoost "
        "on the same folds and features; prints JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", type=Path, required=True)
        parser.add_argument("--mapping", type=Path, required=True)
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=arguments.seed, default=0)

    def handle(self, *args, csv: Path, mapping: Path, folds: int, seed: int, **options):
        csv, mapping = Path(csv), Path(mapping)
        if not csv.is_file():
            raise CommandError(f"no such file: {csv}")
        try:
            parsed = mapping_load(mapping)
        except MappingError as error:
            raise CommandError(str(error)) from error
        if parsed.label is None:
            raise CommandError("the mapping has no label: a benchmark needs known outcomes")
        features, labels, skipped = _labelled_features(csv, parsed)
        report = {"file": str(csv), "rows": len(labels), "skipped_rows": skipped, "churn_rate": float(labels.mean())}
        # Timings mean little on a shared machine without the load they were taken under.
        report["load_average_before"] = list(os.getloadavg())
        report.update(_cross_validate(features, labels, folds=folds, seed=seed))
        report["scoring_rows_per_second"] = _scoring_speed(features, labels, seed)
        report["load_average_after"] = list(os.getloadavg())
        self.stdout.write(json.dumps(report, indent=2))


def _labelled_features(csv: Path, mapping) -> tuple[pd.DataFrame, np.ndarray, int]:
    records, skipped = [], 0
    for item in read_mapped_rows(csv, mapping, as_of=timezone.localdate()):
        if isinstance(item, RowError) or not item.renewals:
            skipped += 1
            continue
        records.append(item)
    if not records:
        raise CommandError("no labelled row could be read from the file")
    features = build_features(*records_to_frames(records, as_of=timezone.now()), {})
    labels = np.array([record.renewals[-1].result == "churned" for record in records], dtype=int)
    return features, labels, skipped


def _cross_validate(features: pd.DataFrame, labels: np.ndarray, *, folds: int, seed: int) -> dict:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results = {"churn_model": [], "logistic_regression": [], "xgboost_default": []}
    training_seconds, choices = [], []
    for train_index, test_index in splitter.split(features, labels):
        train = features.iloc[train_index].reset_index(drop=True)
        test = features.iloc[test_index].reset_index(drop=True)
        started = time.perf_counter()
        model = churn_model_train(train, labels[train_index], seed=seed)
        training_seconds.append(time.perf_counter() - started)
        choices.append({key: model.params.get(key) for key in CHOICES})
        scores = {
            "churn_model": model.predict_proba(test),
            "logistic_regression": logistic_regression_scores(train, labels[train_index], test),
            "xgboost_default": default_xgboost_scores(train, labels[train_index], test, seed=seed),
        }
        for name, probabilities in scores.items():
            results[name].append(classification_metrics(labels[test_index], probabilities))
    summary = {name: _mean_metrics(folds_metrics) for name, folds_metrics in results.items()}
    summary["churn_model"]["training_seconds_median"] = float(np.median(training_seconds))
    summary["churn_model"]["chosen_per_fold"] = choices
    return {"folds": folds, "seed": seed, "models": summary}


def _mean_metrics(per_fold: list[dict]) -> dict:
    return {
        name: {"mean": float(np.mean([m[name] for m in per_fold])), "std": float(np.std([m[name] for m in per_fold]))}
        for name in METRICS
    }


def _scoring_speed(features: pd.DataFrame, labels: np.ndarray, seed: int) -> float:
    model = churn_model_train(features, labels, seed=seed)
    started = time.perf_counter()
    model.predict_proba(features)
    return len(features) / (time.perf_counter() - started)
