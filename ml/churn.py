"""The churn model: a small bag of XGBoost boosters, cross-fitted, with isotonic calibration.

Each booster trains on four fifths of the rows and stops early on the fifth it
did not see; the out-of-fold predictions of all five then fit the calibration,
so every labelled row serves both training and calibration without leaking.
Artifacts are XGBoost's own UBJSON plus plain JSON: nothing is pickled.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from ml.schema import FeatureSchema, SchemaMismatch

FORMAT_VERSION = 1
MANIFEST = "model.json"
DEFAULT_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 3,
    "eta": 0.03,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 2.0,
    "lambda": 1.0,
    "max_cat_to_onehot": 8,
}
# Two threads pay off only on large inputs: on small ones OpenMP's hand-offs cost more than the
# work, many times over when the other core is busy (a web server, a worker).
PARALLEL_FROM_ROWS = 20_000
MAX_THREADS = 2
# The small search: from purely additive (one feature per tree) to a few interactions.
# Which shape fits depends on the export, so each is tried and the out-of-fold log loss decides.
CANDIDATE_PARAMS = (
    {"max_depth": 1, "eta": 0.1},
    {"max_depth": 3, "eta": 0.03},
    {"max_depth": 5, "eta": 0.03, "min_child_weight": 5.0},
)
SEARCH_SECONDS = 30.0
# Below this many rows the out-of-fold losses of the candidates are too noisy to choose
# between them, and the additive shape is the safest.
MIN_ROWS_TO_SEARCH = 2000
MAX_ROUNDS = 3000
EARLY_STOPPING_ROUNDS = 100
MIN_ROWS = 50
MIN_PER_CLASS = 10


class ArtifactError(RuntimeError):
    """A stored model is corrupt, incomplete or of another format."""


@dataclass(frozen=True)
class Calibration:
    """A strictly increasing map from raw bag scores to calibrated probabilities.

    Isotonic regression fits the steps; the map then runs linearly through the
    centre of each step, so calibration keeps the ranking intact (flat steps
    would tie customers the model tells apart and cost ROC AUC).
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(raw, self.x, self.y), 1e-4, 1 - 1e-4)

    @classmethod
    def fit(cls, raw: np.ndarray, labels: np.ndarray) -> Calibration:
        raw = np.asarray(raw, dtype=float)
        fitted = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit_transform(raw, labels)
        order = np.argsort(raw, kind="stable")
        raw, fitted = raw[order], fitted[order]
        # One knot per isotonic step: its mean score and its rate.
        steps = np.flatnonzero(np.diff(fitted)) + 1
        bounds = np.concatenate([[0], steps, [len(raw)]])
        x = [float(raw[a:b].mean()) for a, b in itertools.pairwise(bounds)]
        y = [float(fitted[a]) for a in bounds[:-1]]
        x = [float(raw[0]), *x, float(raw[-1])]
        y = [y[0], *y, y[-1]]
        x, y = _strictly_increasing(x, y)
        return cls(x=tuple(x), y=tuple(y))


def _strictly_increasing(x: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    """Drop knots that do not move x forward (np.interp needs increasing x)."""
    keep_x, keep_y = [x[0]], [y[0]]
    for a, b in zip(x[1:], y[1:], strict=True):
        if a > keep_x[-1]:
            keep_x.append(a)
            keep_y.append(b)
    if len(keep_x) == 1:
        keep_x.append(keep_x[0] + 1e-9)
        keep_y.append(keep_y[0])
    return keep_x, keep_y


@dataclass
class ChurnModel:
    schema: FeatureSchema
    boosters: list[xgb.Booster]
    calibration: Calibration
    params: dict

    def matrix(self, features: pd.DataFrame) -> xgb.DMatrix:
        """The encoded features, with the boosters set to the thread count that suits this many rows."""
        threads = threads_for(len(features))
        for booster in self.boosters:
            booster.set_param({"nthread": threads})
        return xgb.DMatrix(self.schema.encode(features), enable_categorical=True, nthread=threads)

    def raw_scores(self, features: pd.DataFrame) -> np.ndarray:
        return self._bag_scores(self.matrix(features))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated chance to leave, one per row."""
        return self.calibration.apply(self.raw_scores(features))

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the log-odds (XGBoost's own), averaged over the bag; bias dropped."""
        return self._bag_contributions(self.matrix(features), features.index)

    def explain(self, features: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Calibrated probabilities and per-feature contributions from one feature matrix."""
        data = self.matrix(features)
        return self.calibration.apply(self._bag_scores(data)), self._bag_contributions(data, features.index)

    def _bag_scores(self, data: xgb.DMatrix) -> np.ndarray:
        return np.mean([booster.predict(data) for booster in self.boosters], axis=0)

    def _bag_contributions(self, data: xgb.DMatrix, index: pd.Index) -> pd.DataFrame:
        values = np.mean([booster.predict(data, pred_contribs=True) for booster in self.boosters], axis=0)
        return pd.DataFrame(values[:, :-1], columns=self.schema.names, index=index)

    def save(self, folder: Path) -> str:
        """Write the artifact; returns the manifest's sha256, which names this exact model."""
        folder.mkdir(parents=True, exist_ok=False)
        files = {}
        for number, booster in enumerate(self.boosters):
            name = f"booster-{number}.ubj"
            booster.save_model(str(folder / name))
            files[name] = _sha256(folder / name)
        manifest = {
            "format": FORMAT_VERSION,
            "schema": self.schema.to_json(),
            "calibration": {"x": list(self.calibration.x), "y": list(self.calibration.y)},
            "params": self.params,
            "files": files,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return _sha256(folder / MANIFEST)

    @classmethod
    def load(cls, folder: Path, *, expected_sha256: str | None = None) -> ChurnModel:
        """Read an artifact, refusing one whose files do not match their checksums."""
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise ArtifactError(f"no model manifest at {manifest_path}")
        if expected_sha256 is not None and _sha256(manifest_path) != expected_sha256:
            raise ArtifactError(f"{manifest_path} does not match the checksum in the registry")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise ArtifactError(f"{manifest_path} is not valid JSON: {error}") from error
        if manifest.get("format") != FORMAT_VERSION:
            raise ArtifactError(f"{manifest_path} has format {manifest.get('format')!r}, expected {FORMAT_VERSION}")
        return cls(
            schema=FeatureSchema.from_json(manifest["schema"]),
            boosters=[_load_booster(folder, name, digest) for name, digest in sorted(manifest["files"].items())],
            calibration=Calibration(x=tuple(manifest["calibration"]["x"]), y=tuple(manifest["calibration"]["y"])),
            params=manifest["params"],
        )


def threads_for(rows: int) -> int:
    return MAX_THREADS if rows >= PARALLEL_FROM_ROWS else 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_booster(folder: Path, name: str, digest: str) -> xgb.Booster:
    path = folder / name
    if not path.is_file() or _sha256(path) != digest:
        raise ArtifactError(f"{path} is missing or corrupt (checksum mismatch)")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as error:
        raise ArtifactError(f"{path} cannot be read by XGBoost: {error}") from error
    return booster


def check_training_data(features: pd.DataFrame, labels: np.ndarray) -> None:
    """Refuse data too small or one-sided to learn from, with a reason an operator can act on."""
    labels = np.asarray(labels)
    churned = int(labels.sum())
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(labels) < MIN_ROWS or churned < MIN_PER_CLASS or len(labels) - churned < MIN_PER_CLASS:
        raise ValueError(
            f"too few labelled outcomes to train: {len(labels)} rows, {churned} churned; "
            f"need at least {MIN_ROWS} rows and {MIN_PER_CLASS} of each outcome"
        )


def churn_model_train(
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    seed: int = 0,
    folds: int = 5,
    params: dict | None = None,
    search_seconds: float = SEARCH_SECONDS,
) -> ChurnModel:
    """Fit the bag and its calibration. Precondition: `check_training_data` passes.

    With `params`, that one configuration is fitted; without, each of CANDIDATE_PARAMS
    is tried in turn while the time box lasts (the first always), and the one with the
    lowest out-of-fold log loss is kept. Small data gets the first candidate only.
    """
    check_training_data(features, labels)
    labels = np.asarray(labels, dtype=int)
    schema = FeatureSchema.infer(features)
    if not schema.names:
        raise SchemaMismatch("no usable feature: every column is constant or empty in the training data")
    encoded = schema.encode(features)
    if params is not None:
        candidates = [params]
    elif len(labels) < MIN_ROWS_TO_SEARCH:
        candidates = [CANDIDATE_PARAMS[0]]
    else:
        candidates = list(CANDIDATE_PARAMS)
    started = time.perf_counter()
    best = None
    for candidate in candidates:
        if best is not None and time.perf_counter() - started > search_seconds:
            break
        fitted = _cross_fit(
            encoded,
            labels,
            {**DEFAULT_PARAMS, "nthread": threads_for(len(labels)), **candidate, "seed": seed},
            folds,
            seed,
        )
        if best is None or fitted.log_loss < best.log_loss:
            best = fitted
    return ChurnModel(
        schema=schema,
        boosters=best.boosters,
        calibration=Calibration.fit(best.out_of_fold, labels),
        params=best.params,
    )


@dataclass
class _CrossFit:
    boosters: list[xgb.Booster]
    out_of_fold: np.ndarray
    params: dict
    log_loss: float


def _cross_fit(encoded: pd.DataFrame, labels: np.ndarray, params: dict, folds: int, seed: int) -> _CrossFit:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    out_of_fold = np.zeros(len(labels))
    boosters = []
    for train_index, valid_index in splitter.split(encoded, labels):
        booster = _fit_booster(encoded, labels, train_index, valid_index, params)
        valid = xgb.DMatrix(encoded.iloc[valid_index], enable_categorical=True, nthread=params["nthread"])
        out_of_fold[valid_index] = booster.predict(valid)
        boosters.append(booster)
    return _CrossFit(boosters, out_of_fold, params, float(log_loss(labels, np.clip(out_of_fold, 1e-6, 1 - 1e-6))))


def _fit_booster(encoded, labels, train_index, valid_index, params) -> xgb.Booster:
    threads = params["nthread"]
    train = xgb.DMatrix(encoded.iloc[train_index], label=labels[train_index], enable_categorical=True, nthread=threads)
    valid = xgb.DMatrix(encoded.iloc[valid_index], label=labels[valid_index], enable_categorical=True, nthread=threads)
    booster = xgb.train(
        params,
        train,
        num_boost_round=MAX_ROUNDS,
        evals=[(valid, "valid")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    # Keep only the trees up to the best round, so prediction and contributions agree.
    return booster[: booster.best_iteration + 1]
