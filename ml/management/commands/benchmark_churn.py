from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from sklearn.model_selection import StratifiedKFold

from ml.baselines import default_xgboost_scores, logistic_regression_scores
from ml.churn import MIN_PER_CLASS, MIN_ROWS, churn_model_train
from ml.features import build_features
from ml.metrics import classification_metrics
from retention.management import arguments
from retention.mapping import MappingError, RowError, mapping_load, read_numbered_rows
from retention.records import records_to_frames

METRICS = ("roc_auc", "pr_auc", "brier", "ece")
# What the search chose in each fold, so a figure can be traced to the configuration behind it.
CHOICES = ("max_depth", "eta", "min_child_weight", "linear_weight", "linear_knots")
# Lines of left-out rows named on stderr; the count says how many more there are.
LINES_SHOWN = 20


def fold_count(text: str) -> int:
    """A cross-validation needs at least two folds: one to train on while the other is held out."""
    if not text.isdecimal() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of folds: a whole number of at least 2")
    return int(text)


@dataclass
class LabelledRows:
    """The labelled rows read from a file, and the lines of those left out."""

    records: list = field(default_factory=list)
    unreadable_lines: list[int] = field(default_factory=list)
    unreadable: list[RowError] = field(default_factory=list)  # the first LINES_SHOWN, with their reasons
    unlabelled_lines: list[int] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.unreadable_lines) + len(self.unlabelled_lines)


class Command(BaseCommand):
    help = (
        "Cross-validate the churn model on a labelled CRM file, beside logistic regression and default XGBoost "
        "on the same folds and features; prints JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", type=Path, required=True)
        parser.add_argument("--mapping", type=Path, required=True)
        parser.add_argument("--folds", type=fold_count, default=5, help="Cross-validation folds, at least 2 (5).")
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
        try:
            rows = _labelled_rows(csv, parsed)
        except MappingError as error:
            raise CommandError(str(error)) from error
        self._report_left_out(rows, csv)
        features, labels = _features_and_labels(rows)
        _check_enough_to_cross_validate(labels, folds)
        report = {
            "file": str(csv),
            "rows": len(labels),
            "skipped_rows": rows.skipped,
            "churn_rate": float(labels.mean()),
        }
        # Timings mean little on a shared machine without the load they were taken under.
        report["load_average_before"] = list(os.getloadavg())
        try:
            report.update(_cross_validate(features, labels, folds=folds, seed=seed))
            report["scoring_rows_per_second"] = _scoring_speed(features, labels, seed)
        except ValueError as error:  # the data cannot train or evaluate a model: the message says why
            raise CommandError(f"cannot cross-validate on {csv}: {error}") from error
        report["load_average_after"] = list(os.getloadavg())
        self.stdout.write(json.dumps(report, indent=2))

    def _report_left_out(self, rows: LabelledRows, csv: Path) -> None:
        if rows.unreadable_lines:
            self.stderr.write(_left_out(rows.unreadable_lines, "could not be read"))
            for error in rows.unreadable:
                self.stderr.write(f"{csv.name}: {error}")
        if rows.unlabelled_lines:
            self.stderr.write(_left_out(rows.unlabelled_lines, "had no label"))


def _left_out(lines: list[int], why: str) -> str:
    return arguments.rows_left_out(lines, why=why, then=("was left out", "were left out"), shown=LINES_SHOWN)


def _labelled_rows(csv: Path, mapping) -> LabelledRows:
    rows = LabelledRows()
    for line, item in read_numbered_rows(csv, mapping, as_of=timezone.localdate()):
        if isinstance(item, RowError):
            rows.unreadable_lines.append(line)
            if len(rows.unreadable) < LINES_SHOWN:
                rows.unreadable.append(item)
        elif not item.renewals:
            rows.unlabelled_lines.append(line)
        else:
            rows.records.append(item)
    return rows


def _features_and_labels(rows: LabelledRows) -> tuple[pd.DataFrame, np.ndarray]:
    if not rows.records:
        raise CommandError("no labelled row could be read from the file")
    features = build_features(*records_to_frames(rows.records, as_of=timezone.now()), {})
    labels = np.array([record.renewals[-1].result == "churned" for record in rows.records], dtype=int)
    return features, labels


def _check_enough_to_cross_validate(labels: np.ndarray, folds: int) -> None:
    """Refuse, before any training, folds that would hold out no customer of an outcome or train on too few.

    Each fold holds out about 1/folds of each outcome (stratified) and trains the churn model on the rest,
    which needs MIN_ROWS rows and MIN_PER_CLASS of each outcome.
    """
    churned = int(labels.sum())
    counts = {"churned": churned, "renewed": len(labels) - churned}
    rarer = min(counts, key=counts.get)
    if not counts[rarer]:
        raise CommandError(f"no labelled row of the file is {rarer}: a benchmark needs both outcomes")
    if folds > counts[rarer]:
        raise CommandError(
            f"--folds {folds} is more than the {counts[rarer]} {rarer} rows of the file: every fold holds out "
            f"at least one of each outcome, so use at most --folds {counts[rarer]}"
        )
    held_out = {outcome: math.ceil(count / folds) for outcome, count in counts.items()}
    trained = {outcome: count - held_out[outcome] for outcome, count in counts.items()}
    if sum(trained.values()) < MIN_ROWS or min(trained.values()) < MIN_PER_CLASS:
        raise CommandError(
            f"too few labelled rows to cross-validate in {folds} folds: {len(labels)} rows "
            f"({counts['churned']} churned, {counts['renewed']} renewed); each fold trains on about "
            f"{sum(trained.values())} of them and needs {MIN_ROWS} rows with {MIN_PER_CLASS} of each outcome"
        )


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
