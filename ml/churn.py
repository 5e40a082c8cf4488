"""The churn model: a cross-fitted bag of XGBoost tree boosters, blended with a linear bag, calibrated.

Each booster trains on four fifths of the rows and stops early on the fifth it
did not see; the out-of-fold predictions then choose the configuration and fit
the calibration, so every labelled row serves training, choice and calibration
without leaking.

Two kinds of booster share the folds. Trees (a small search over their shape)
find interactions; a linear booster (XGBoost's gblinear, on a piecewise-linear
basis of each number and one column per category level) fits smooth additive
effects with less variance. Which serves a given export better is not known in
advance, so the two are blended in log-odds with the weight that gives the
lowest out-of-fold log loss: 0 keeps the trees alone, 1 the linear model alone
(searched up to LINEAR_MAX_ROWS rows; on more, the trees' variance is low and they serve alone).
Per-feature contributions are the same blend of each booster's own, so reason
codes keep working whatever the weight.

Artifacts are XGBoost's own UBJSON plus plain JSON: nothing is pickled.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from ml.artifacts import MANIFEST, ArtifactError, LinearWeights, file_sha256, load_booster, manifest_read
from ml.schema import FeatureSchema, SchemaMismatch

FORMAT_VERSION = 2
# Format 1 held the trees alone; it reads as a blend whose linear weight is 0, so earlier
# versions in the registry stay loadable (and can be rolled back to).
READABLE_FORMATS = (1, 2)
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

# gblinear's lambda is per training row (XGBoost multiplies it by the summed row weights), so one
# value regularises alike at any size; 1e-2 is a light ridge on standardised columns.
LINEAR_PARAMS = {
    "booster": "gblinear",
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "updater": "coord_descent",
    "feature_selector": "cyclic",
    "eta": 0.5,
    "lambda": 1e-2,
    "alpha": 0.0,
}
# Coordinate descent on centred columns converges in a few dozen rounds; the loss then creeps
# down by amounts that change no prediction, so rounds that gain less than this count as none.
LINEAR_MAX_ROUNDS = 200
LINEAR_PATIENCE = 10
LINEAR_MIN_GAIN = 1e-5
# The linear bag buys variance reduction, which matters on small and mid-sized exports. On the 67,000
# labelled rows of a 100,000-customer synthetic base its weight came out at 0 to 0.2 and the out-of-fold
# log loss did not move in the fourth decimal, while one cross-fit took 27 s on a busy machine; at 30,000
# rows its three candidates took 14 s beside 50 s and more for the trees. Above this many rows the search
# leaves it out, which also keeps the training time of a large base where it was.
LINEAR_MAX_ROWS = 30_000
# Coordinate descent hands off between threads at every coordinate: a second thread made it 25
# times slower (OpenMP waits, worse when the other core is busy), so the linear bag trains on one.
LINEAR_THREADS = 1
# Knots per number, at its quantiles: 2 is a straight line, 13 follows a curve such as risk falling
# fast over the first months and then flattening. More knots need more rows per feature (on 600 rows of
# 8 numbers, out-of-fold log loss 0.68 with 13 knots against 0.56 with 2), so the out-of-fold loss chooses.
LINEAR_KNOT_CANDIDATES = (2, 5, 13)
BLEND_WEIGHTS = tuple(step / 10 for step in range(11))
LINEAR_WEIGHT_KEY = "linear_weight"
LINEAR_KNOTS_KEY = "linear_knots"


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


@dataclass(frozen=True)
class LinearDesign:
    """The linear booster's columns, learned from the training rows and stored as JSON.

    Each number becomes a tent basis on its quantile knots (column j rises from 0 at
    knot j-1 to 1 at knot j and falls back to 0 at knot j+1), so a weighted sum is a
    piecewise-linear curve that stays flat beyond the training range instead of
    extrapolating. Each category level gets a column; a feature with gaps in training
    gets a missing flag. All columns are centred and scaled on the training rows, so
    the ridge treats them alike and a gap in a number sits at zero: no contribution.
    """

    knots: dict[str, tuple[float, ...]]
    levels: dict[str, tuple[str, ...]]
    flagged: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]

    @property
    def owners(self) -> list[str]:
        """The feature each column belongs to, in column order."""
        owners = []
        for name, values in [*self.knots.items(), *self.levels.items()]:
            owners += [name] * (len(values) + (name in self.flagged))
        return owners

    def fits(self, schema: FeatureSchema) -> bool:
        """Whether every column belongs to a feature of `schema` and has its centre and scale."""
        owners = self.owners
        return set(owners) <= set(schema.names) and len(self.centre) == len(self.scale) == len(owners)

    def matrix(self, values: np.ndarray, names: list[str]) -> np.ndarray:
        """Centred, scaled columns of `values` (`FeatureSchema.values`, columns `names`); a gap in a number is 0."""
        standardised = (self._columns(values, names) - np.array(self.centre)) / np.array(self.scale)
        return np.nan_to_num(standardised, nan=0.0).astype(np.float32)

    def _columns(self, values: np.ndarray, names: list[str]) -> np.ndarray:
        position = {name: number for number, name in enumerate(names)}
        blocks = []
        for name, knots in self.knots.items():
            numbers = values[:, position[name]]
            blocks.append(_tents(numbers, knots))
            if name in self.flagged:
                blocks.append(np.isnan(numbers)[:, None].astype(float))
        for name, levels in self.levels.items():
            codes = values[:, position[name]]  # a gap is NaN, equal to no level
            blocks.append((codes[:, None] == np.arange(len(levels))[None, :]).astype(float))
            if name in self.flagged:
                blocks.append(np.isnan(codes)[:, None].astype(float))
        return np.hstack(blocks) if blocks else np.empty((len(values), 0))

    @classmethod
    def fit(cls, schema: FeatureSchema, values: np.ndarray, *, knots_per_number: int) -> LinearDesign:
        names = schema.names
        knots = {name: _quantile_knots(values[:, names.index(name)], knots_per_number) for name in schema.numeric}
        flagged = tuple(name for number, name in enumerate(names) if np.isnan(values[:, number]).any())
        unscaled = cls(knots, dict(schema.categorical), flagged, (), ())._columns(values, names)
        centre = np.nan_to_num(np.nanmean(unscaled, axis=0), nan=0.0)
        spread = np.nan_to_num(np.nanstd(unscaled, axis=0), nan=0.0)
        scale = np.where(spread > 0, spread, 1.0)
        return cls(knots, dict(schema.categorical), flagged, tuple(centre.tolist()), tuple(scale.tolist()))

    def to_json(self) -> dict:
        return {
            "knots": [[name, list(values)] for name, values in self.knots.items()],
            "levels": [[name, list(values)] for name, values in self.levels.items()],
            "flagged": list(self.flagged),
            "centre": list(self.centre),
            "scale": list(self.scale),
        }

    @classmethod
    def from_json(cls, data: dict) -> LinearDesign:
        return cls(
            knots={name: tuple(values) for name, values in data["knots"]},
            levels={name: tuple(values) for name, values in data["levels"]},
            flagged=tuple(data["flagged"]),
            centre=tuple(data["centre"]),
            scale=tuple(data["scale"]),
        )


def _quantile_knots(values: np.ndarray, count: int) -> tuple[float, ...]:
    """Distinct quantiles of the known values (a count that is mostly 0 gets few knots)."""
    known = values[~np.isnan(values)]
    return tuple(float(knot) for knot in np.unique(np.quantile(known, np.linspace(0, 1, count))))


def _tents(values: np.ndarray, knots) -> np.ndarray:
    """Degree-1 B-spline basis, one column per knot; rows sum to 1, gaps stay NaN.

    A value between two knots splits its weight between them by distance; beyond the outer
    knots it all goes to the nearest one, so the curve stays flat outside the training range.
    A few rows (a recommendation's one) are worked out in plain floats, the same arithmetic
    without numpy's per-call overhead, which was most of the cost.
    """
    if len(values) <= FEW_TENT_ROWS:
        knots = tuple(float(knot) for knot in knots)
        return np.array([_tent_row(float(value), knots) for value in values], dtype=float).reshape(-1, len(knots))
    knots = np.asarray(knots, dtype=float)
    rows, count = len(values), len(knots)
    basis = np.zeros((rows, count))
    gaps = np.isnan(values)
    if count == 1:
        basis[:, 0] = 1.0
    else:
        clipped = np.minimum(np.maximum(np.where(gaps, knots[0], values), knots[0]), knots[-1])
        right = np.minimum(np.maximum(np.searchsorted(knots, clipped, side="right"), 1), count - 1)
        left = right - 1
        share = (clipped - knots[left]) / (knots[right] - knots[left])
        every_row = np.arange(rows)
        basis[every_row, left] = 1.0 - share
        basis[every_row, right] += share
    basis[gaps] = np.nan
    return basis


FEW_TENT_ROWS = 4


def _tent_row(value: float, knots: tuple[float, ...]) -> list[float]:
    if value != value:  # a gap
        return [math.nan] * len(knots)
    row = [0.0] * len(knots)
    if len(knots) == 1:
        row[0] = 1.0
        return row
    clipped = min(max(value, knots[0]), knots[-1])
    right = min(max(bisect.bisect_right(knots, clipped), 1), len(knots) - 1)
    share = (clipped - knots[right - 1]) / (knots[right] - knots[right - 1])
    row[right - 1] = 1.0 - share
    row[right] += share
    return row


@dataclass
class LinearBlend:
    """The linear bag and its share of the blended log-odds."""

    design: LinearDesign
    boosters: list[xgb.Booster]
    weight: float
    _weights: list[LinearWeights] | None = field(default=None, init=False, repr=False, compare=False)

    def weights(self) -> list[LinearWeights]:
        """Each booster's own weights, read once (they give its predictions to the last bit)."""
        if self._weights is None:
            self._weights = [LinearWeights.of(booster) for booster in self.boosters]
        return self._weights


@dataclass
class _Inputs:
    trees: xgb.DMatrix
    linear: np.ndarray | None


@dataclass
class ChurnModel:
    """Calibrated P(leave) from (1 - w) x tree log-odds + w x linear log-odds, w = `params["linear_weight"]`.

    Each bag averages its boosters' probabilities (which keeps a format-1 artifact
    scoring exactly as it was calibrated); the contributions are the same blend of
    each booster's own, so they add up to the blended log-odds up to the small gap
    between averaging probabilities and averaging log-odds.
    """

    schema: FeatureSchema
    boosters: list[xgb.Booster]
    calibration: Calibration
    params: dict
    linear: LinearBlend | None = None
    # The thread count the trees were last set to, and the linear columns' map onto the features.
    _threads: int | None = field(default=None, init=False, repr=False, compare=False)
    _linear_membership: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def raw_scores(self, features: pd.DataFrame) -> np.ndarray:
        """The blended probability before calibration."""
        return _sigmoid(self._log_odds(self._inputs(features)))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated chance to leave, one per row."""
        return self.calibration.apply(self.raw_scores(features))

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the log-odds (XGBoost's own), averaged over the bags; bias dropped."""
        return self.explain(features)[1]

    def explain(self, features: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Calibrated probabilities and per-feature contributions from one encoding of the features.

        A booster's contributions, its bias included, add up to its margin, so one call per tree
        booster gives both; the probabilities agree with `predict_proba` to float32 rounding.
        """
        inputs = self._inputs(features)
        per_booster = _booster_contributions(self.boosters, inputs.trees)
        trees = _logit(np.mean([_sigmoid(each.sum(axis=1, dtype=float)) for each in per_booster], axis=0))
        probabilities = self.calibration.apply(_sigmoid(self._with_linear(trees, inputs)))
        by_feature = np.mean([each[:, :-1] for each in per_booster], axis=0)
        if self.linear is not None:
            by_column = np.mean([weights.contributions(inputs.linear) for weights in self.linear.weights()], axis=0)
            weight = self.linear.weight
            by_feature = (1 - weight) * by_feature + weight * by_column @ self._membership()
        return probabilities, pd.DataFrame(by_feature, columns=self.schema.names, index=features.index)

    def _inputs(self, features: pd.DataFrame) -> _Inputs:
        """The encoded features for each bag, with the trees set to the thread count that suits this many rows."""
        threads = threads_for(len(features))
        values = self.schema.values(features)
        self._use_threads(threads)
        trees = tree_matrix(self.schema, values, threads)
        if self.linear is None:
            return _Inputs(trees, None)
        return _Inputs(trees, self.linear.design.matrix(values, self.schema.names))

    def _use_threads(self, threads: int) -> None:
        if self._threads != threads:
            for booster in self.boosters:
                booster.set_param({"nthread": threads})
            self._threads = threads

    def _log_odds(self, inputs: _Inputs) -> np.ndarray:
        return self._with_linear(_bag_log_odds(self.boosters, inputs.trees), inputs)

    def _with_linear(self, trees: np.ndarray, inputs: _Inputs) -> np.ndarray:
        """The trees' log-odds blended with the linear bag's, if the model has one."""
        if self.linear is None:
            return trees
        weight = self.linear.weight
        return (1 - weight) * trees + weight * _linear_bag_log_odds(self.linear.weights(), inputs.linear)

    def _membership(self) -> np.ndarray:
        if self._linear_membership is None:
            self._linear_membership = _membership(self.linear.design, self.schema)
        return self._linear_membership

    def save(self, folder: Path) -> str:
        """Write the artifact; returns the manifest's sha256, which names this exact model."""
        folder.mkdir(parents=True, exist_ok=False)
        manifest = {
            "format": FORMAT_VERSION,
            "schema": self.schema.to_json(),
            "calibration": {"x": list(self.calibration.x), "y": list(self.calibration.y)},
            "params": self.params,
            "files": _save_boosters(folder, "booster", self.boosters),
        }
        if self.linear is not None:
            manifest["linear"] = {
                "weight": self.linear.weight,
                "design": self.linear.design.to_json(),
                "files": _save_boosters(folder, "linear", self.linear.boosters),
            }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return file_sha256(folder / MANIFEST)

    @classmethod
    def load(cls, folder: Path, *, expected_sha256: str | None = None) -> ChurnModel:
        """Read an artifact, refusing one whose files do not match their checksums."""
        manifest = manifest_read(folder, expected_sha256=expected_sha256, formats=READABLE_FORMATS)
        schema = FeatureSchema.from_json(manifest["schema"])
        return cls(
            schema=schema,
            boosters=_load_boosters(folder, manifest["files"]),
            calibration=Calibration(x=tuple(manifest["calibration"]["x"]), y=tuple(manifest["calibration"]["y"])),
            params=manifest["params"],
            linear=_load_linear(folder, manifest.get("linear"), schema=schema),
        )


# The boosters were trained on the schema's columns and `tree_matrix` names them so; checking the names
# again on every call reads them back from XGBoost as strings, a third of a small prediction's time.
def _bag_log_odds(boosters: list[xgb.Booster], data: xgb.DMatrix) -> np.ndarray:
    return _logit(np.mean([booster.predict(data, validate_features=False) for booster in boosters], axis=0))


def _linear_bag_log_odds(bag: list[LinearWeights], columns: np.ndarray) -> np.ndarray:
    """As `_bag_log_odds` gives it from the boosters: the log-odds of their mean probability."""
    return _logit(np.mean([_sigmoid(weights.margin(columns)) for weights in bag], axis=0))


def _booster_contributions(boosters: list[xgb.Booster], data: xgb.DMatrix) -> list[np.ndarray]:
    """Each booster's contributions per feature, its bias last."""
    return [booster.predict(data, pred_contribs=True, validate_features=False) for booster in boosters]


def _membership(design: LinearDesign, schema: FeatureSchema) -> np.ndarray:
    """A 0/1 matrix that sums the linear booster's columns into the schema's features."""
    position = {name: number for number, name in enumerate(schema.names)}
    owners = design.owners
    membership = np.zeros((len(owners), len(position)))
    membership[np.arange(len(owners)), [position[owner] for owner in owners]] = 1.0
    return membership


def _sigmoid(log_odds: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-log_odds))


def _logit(probabilities: np.ndarray) -> np.ndarray:
    # float32 probabilities can round to exactly 0 or 1; the clip keeps the log-odds finite.
    clipped = np.clip(np.asarray(probabilities, dtype=float), 1e-7, 1 - 1e-7)
    return np.log(clipped / (1 - clipped))


def _save_boosters(folder: Path, stem: str, boosters: list[xgb.Booster]) -> dict[str, str]:
    files = {}
    for number, booster in enumerate(boosters):
        name = f"{stem}-{number}.ubj"
        booster.save_model(str(folder / name))
        files[name] = file_sha256(folder / name)
    return files


def _load_boosters(folder: Path, files: dict[str, str]) -> list[xgb.Booster]:
    return [load_booster(folder, name, digest) for name, digest in sorted(files.items())]


def _load_linear(folder: Path, section: dict | None, *, schema: FeatureSchema) -> LinearBlend | None:
    if section is None:
        return None
    try:
        design = LinearDesign.from_json(section["design"])
    except (KeyError, TypeError, ValueError) as error:
        raise ArtifactError(f"{folder / MANIFEST} has an unreadable linear design: {error}") from error
    if not design.fits(schema):
        raise ArtifactError(f"{folder / MANIFEST}: the linear design does not match the model's feature schema")
    blend = LinearBlend(design=design, boosters=_load_boosters(folder, section["files"]), weight=section["weight"])
    blend.weights()  # read and checked now: a booster its weights cannot repeat is refused at load, not mid-call
    return blend


def threads_for(rows: int) -> int:
    return MAX_THREADS if rows >= PARALLEL_FROM_ROWS else 1


def tree_matrix(
    schema: FeatureSchema, values: np.ndarray, threads: int, *, labels: np.ndarray | None = None, named: bool = True
) -> xgb.DMatrix:
    """The trees' input from `FeatureSchema.values` as float32: category codes for categoricals, a gap as NaN.

    The same values XGBoost reads from the pandas frame of `FeatureSchema.encode`, without its
    per-call frame handling, which costs milliseconds even for one row. Training matrices go
    unnamed: XGBoost reads a matrix's names back at every boosting round, which on a few hundred
    rows took a sixth of the training time; the trees come out the same, byte for byte.
    """
    types = ["c" if name in schema.categorical else "q" for name in schema.names]
    return xgb.DMatrix(
        values.astype(np.float32),
        label=labels,
        feature_names=schema.names if named else None,
        feature_types=types,
        enable_categorical=True,
        nthread=threads,
    )


def check_training_data(features: pd.DataFrame, labels: np.ndarray) -> None:
    """Refuse data too small or one-sided to learn from, with a reason an operator can act on."""
    labels = np.asarray(labels)
    churned = int(labels.sum())
    if len(labels) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(labels) < MIN_ROWS or churned < MIN_PER_CLASS or len(labels) - churned < MIN_PER_CLASS:
        raise TooLittleData(rows=len(labels), churned=churned)


class TooLittleData(ValueError):
    """Labelled outcomes too few, or too one-sided, to learn from; the counts are kept for the message."""

    def __init__(self, *, rows: int, churned: int) -> None:
        self.rows = rows
        self.churned = churned
        super().__init__(
            f"too few labelled outcomes to train: {rows} rows, {churned} churned; "
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
    """Fit the bags, their blend and its calibration. Precondition: `check_training_data` passes.

    With `params` (a model's `params`, or tree parameters alone), that one configuration
    is fitted, its `linear_weight` (0 when absent) and `linear_knots` included. Without,
    each of CANDIDATE_PARAMS is tried in turn while the time box lasts (the first always;
    small data gets the first only) and the trees with the lowest out-of-fold log loss are
    kept; then, up to LINEAR_MAX_ROWS rows, the linear bag with each knot count, on the same
    folds, and the blend weight, all chosen by out-of-fold log loss.
    """
    check_training_data(features, labels)
    labels = np.asarray(labels, dtype=int)
    schema = FeatureSchema.infer(features)
    if not schema.names:
        raise SchemaMismatch("no usable feature: every column is constant or empty in the training data")
    values = schema.values(features)
    encoded = schema.frame(values, features.index)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(encoded, labels))
    data = _Folds(schema, encoded, values, labels, splits, threads_for(len(labels)), seed)
    tree_params, linear_params = _split_params(params)
    trees = _best_trees(data, _tree_candidates(tree_params, len(labels)), search_seconds)
    linear = _linear_blend(schema, data, trees.out_of_fold, linear_params)
    chosen = {LINEAR_WEIGHT_KEY: linear.weight, LINEAR_KNOTS_KEY: linear.knots} if linear else {LINEAR_WEIGHT_KEY: 0.0}
    return ChurnModel(
        schema=schema,
        boosters=trees.boosters,
        calibration=Calibration.fit(_sigmoid(_out_of_fold_log_odds(trees, linear)), labels),
        params={**trees.params, **chosen},
        linear=linear.blend if linear else None,
    )


@dataclass
class _Folds:
    """The training rows and the folds every bag is cross-fitted on."""

    schema: FeatureSchema
    encoded: pd.DataFrame
    values: np.ndarray  # the same rows as FeatureSchema.values gives them; `encoded` is their frame
    labels: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    threads: int
    seed: int

    def matrix(self, rows: np.ndarray, threads: int) -> xgb.DMatrix:
        return tree_matrix(self.schema, self.values[rows], threads, labels=self.labels[rows], named=False)

    def named(self, booster: xgb.Booster) -> xgb.Booster:
        """The booster trained on unnamed matrices, named as the frames of `FeatureSchema.encode` name it."""
        booster.feature_names = self.schema.names
        booster.feature_types = ["c" if name in self.schema.categorical else "float" for name in self.schema.names]
        return booster


def _split_params(params: dict | None) -> tuple[dict | None, dict | None]:
    """The tree parameters and the linear ones (weight 0 when absent); None for either means "search"."""
    if params is None:
        return None, None
    trees = {key: value for key, value in params.items() if key not in (LINEAR_WEIGHT_KEY, LINEAR_KNOTS_KEY)}
    linear = {
        LINEAR_WEIGHT_KEY: float(params.get(LINEAR_WEIGHT_KEY, 0.0)),
        LINEAR_KNOTS_KEY: int(params.get(LINEAR_KNOTS_KEY, LINEAR_KNOT_CANDIDATES[-1])),
    }
    return trees, linear


def _tree_candidates(params: dict | None, rows: int) -> list[dict]:
    if params is not None:
        return [params]
    if rows < MIN_ROWS_TO_SEARCH:
        return [CANDIDATE_PARAMS[0]]
    return list(CANDIDATE_PARAMS)


@dataclass
class _CrossFit:
    boosters: list[xgb.Booster]
    out_of_fold: np.ndarray
    params: dict
    log_loss: float


def _best_trees(data: _Folds, candidates: list[dict], search_seconds: float) -> _CrossFit:
    """The candidate with the lowest out-of-fold log loss among those the time box let run (the first always)."""
    started = time.perf_counter()
    best = None
    for candidate in candidates:
        if best is not None and time.perf_counter() - started > search_seconds:
            break
        fitted = _cross_fit(data, {**DEFAULT_PARAMS, "nthread": data.threads, **candidate, "seed": data.seed})
        if best is None or fitted.log_loss < best.log_loss:
            best = fitted
    return best


def _cross_fit(data: _Folds, params: dict) -> _CrossFit:
    out_of_fold = np.zeros(len(data.labels))
    boosters = []
    for train_index, valid_index in data.splits:
        valid = data.matrix(valid_index, params["nthread"])
        booster = _fit_booster(data.matrix(train_index, params["nthread"]), valid, params)
        out_of_fold[valid_index] = booster.predict(valid)
        boosters.append(data.named(booster))
    return _CrossFit(boosters, out_of_fold, params, _log_loss(data.labels, out_of_fold))


def _fit_booster(train: xgb.DMatrix, valid: xgb.DMatrix, params: dict) -> xgb.Booster:
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


@dataclass
class _LinearCrossFit:
    blend: LinearBlend
    out_of_fold: np.ndarray
    knots: int

    @property
    def weight(self) -> float:
        return self.blend.weight


def _linear_blend(schema: FeatureSchema, data: _Folds, trees: np.ndarray, given: dict | None) -> _LinearCrossFit | None:
    """The linear bag with its weight, or None when that weight is 0.

    Given parameters are honoured at any size, so a refit on every row keeps the blend that
    was measured on the holdout. A search tries each of LINEAR_KNOT_CANDIDATES up to
    LINEAR_MAX_ROWS rows, keeps the one with the lowest out-of-fold log loss, then the
    weight with the lowest out-of-fold log loss of the blend.
    """
    if given is not None:
        if given[LINEAR_WEIGHT_KEY] == 0:
            return None
        fitted = _cross_fit_linear(schema, data, given[LINEAR_KNOTS_KEY])
        fitted.blend.weight = given[LINEAR_WEIGHT_KEY]
        return fitted
    if len(data.labels) > LINEAR_MAX_ROWS:
        return None
    candidates = [_cross_fit_linear(schema, data, knots) for knots in LINEAR_KNOT_CANDIDATES]
    fitted = min(candidates, key=lambda candidate: _log_loss(data.labels, candidate.out_of_fold))
    fitted.blend.weight = _blend_weight(data.labels, trees, fitted.out_of_fold)
    return fitted if fitted.weight > 0 else None


def _cross_fit_linear(schema: FeatureSchema, data: _Folds, knots: int) -> _LinearCrossFit:
    """The linear bag on the trees' folds, so both out-of-fold predictions come from the same held-out rows.

    The design is learned on all rows: knots and scales use no label, so they leak nothing.
    """
    design = LinearDesign.fit(schema, data.values, knots_per_number=knots)
    columns = design.matrix(data.values, schema.names)
    params = {**LINEAR_PARAMS, "nthread": LINEAR_THREADS, "seed": data.seed}
    out_of_fold = np.zeros(len(data.labels))
    boosters = []
    for train_index, valid_index in data.splits:
        train = xgb.DMatrix(columns[train_index], label=data.labels[train_index], nthread=data.threads)
        valid = xgb.DMatrix(columns[valid_index], label=data.labels[valid_index], nthread=data.threads)
        stop = xgb.callback.EarlyStopping(rounds=LINEAR_PATIENCE, min_delta=LINEAR_MIN_GAIN)
        booster = xgb.train(
            params, train, LINEAR_MAX_ROUNDS, evals=[(valid, "valid")], callbacks=[stop], verbose_eval=False
        )
        out_of_fold[valid_index] = booster.predict(valid)
        boosters.append(booster)
    return _LinearCrossFit(LinearBlend(design=design, boosters=boosters, weight=0.0), out_of_fold, knots)


def _blend_weight(labels: np.ndarray, trees: np.ndarray, linear: np.ndarray) -> float:
    """The linear share with the lowest out-of-fold log loss (the smaller share on a tie)."""
    losses = [_log_loss(labels, _sigmoid(_blended(trees, linear, weight))) for weight in BLEND_WEIGHTS]
    return BLEND_WEIGHTS[int(np.argmin(losses))]


def _out_of_fold_log_odds(trees: _CrossFit, linear: _LinearCrossFit | None) -> np.ndarray:
    if linear is None:
        return _logit(trees.out_of_fold)
    return _blended(trees.out_of_fold, linear.out_of_fold, linear.weight)


def _blended(trees: np.ndarray, linear: np.ndarray, weight: float) -> np.ndarray:
    """Blend two probabilities in log-odds."""
    return (1 - weight) * _logit(trees) + weight * _logit(linear)


def _log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(log_loss(labels, np.clip(probabilities, 1e-6, 1 - 1e-6)))
