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

FORMAT_VERSION = 2
# Format 1 held the trees alone; it reads as a blend whose linear weight is 0, so earlier
# versions in the registry stay loadable (and can be rolled back to).
READABLE_FORMATS = (1, 2)
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

    def matrix(self, encoded: pd.DataFrame) -> np.ndarray:
        """Centred, scaled columns of `encoded` (the schema's encoding); a gap in a number is 0."""
        standardised = (self._columns(encoded) - np.array(self.centre)) / np.array(self.scale)
        return np.nan_to_num(standardised, nan=0.0).astype(np.float32)

    def _columns(self, encoded: pd.DataFrame) -> np.ndarray:
        blocks = []
        for name, knots in self.knots.items():
            values = encoded[name].to_numpy(dtype=float)
            blocks.append(_tents(values, np.array(knots)))
            if name in self.flagged:
                blocks.append(np.isnan(values)[:, None].astype(float))
        for name, levels in self.levels.items():
            codes = encoded[name].cat.codes.to_numpy()
            blocks.append((codes[:, None] == np.arange(len(levels))[None, :]).astype(float))
            if name in self.flagged:
                blocks.append((codes < 0)[:, None].astype(float))
        return np.hstack(blocks) if blocks else np.empty((len(encoded), 0))

    @classmethod
    def fit(cls, schema: FeatureSchema, encoded: pd.DataFrame, *, knots_per_number: int) -> LinearDesign:
        knots = {
            name: _quantile_knots(encoded[name].to_numpy(dtype=float), knots_per_number) for name in schema.numeric
        }
        flagged = tuple(name for name in schema.names if encoded[name].isna().any())
        unscaled = cls(knots, dict(schema.categorical), flagged, (), ())._columns(encoded)
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


def _tents(values: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Degree-1 B-spline basis, one column per knot; rows sum to 1, gaps stay NaN."""
    basis = np.column_stack([np.interp(values, knots, unit) for unit in np.eye(len(knots))])
    basis[np.isnan(values)] = np.nan
    return basis


@dataclass
class LinearBlend:
    """The linear bag and its share of the blended log-odds."""

    design: LinearDesign
    boosters: list[xgb.Booster]
    weight: float


@dataclass
class _Inputs:
    trees: xgb.DMatrix
    linear: xgb.DMatrix | None


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

    def raw_scores(self, features: pd.DataFrame) -> np.ndarray:
        """The blended probability before calibration."""
        return _sigmoid(self._log_odds(self._inputs(features)))

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated chance to leave, one per row."""
        return self.calibration.apply(self.raw_scores(features))

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to the log-odds (XGBoost's own), averaged over the bags; bias dropped."""
        return self._contributions(self._inputs(features), features.index)

    def explain(self, features: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Calibrated probabilities and per-feature contributions from one encoding of the features."""
        inputs = self._inputs(features)
        probabilities = self.calibration.apply(_sigmoid(self._log_odds(inputs)))
        return probabilities, self._contributions(inputs, features.index)

    def _inputs(self, features: pd.DataFrame) -> _Inputs:
        """The encoded features for each bag, with every booster set to the thread count that suits this many rows."""
        threads = threads_for(len(features))
        encoded = self.schema.encode(features)
        for booster in self._all_boosters():
            booster.set_param({"nthread": threads})
        trees = tree_matrix(self.schema, encoded, threads)
        if self.linear is None:
            return _Inputs(trees, None)
        return _Inputs(trees, xgb.DMatrix(self.linear.design.matrix(encoded), nthread=threads))

    def _all_boosters(self) -> list[xgb.Booster]:
        return self.boosters + (self.linear.boosters if self.linear else [])

    def _log_odds(self, inputs: _Inputs) -> np.ndarray:
        trees = _bag_log_odds(self.boosters, inputs.trees)
        if self.linear is None:
            return trees
        weight = self.linear.weight
        return (1 - weight) * trees + weight * _bag_log_odds(self.linear.boosters, inputs.linear)

    def _contributions(self, inputs: _Inputs, index: pd.Index) -> pd.DataFrame:
        values = _bag_contributions(self.boosters, inputs.trees)
        if self.linear is not None:
            by_column = _bag_contributions(self.linear.boosters, inputs.linear)
            weight = self.linear.weight
            values = (1 - weight) * values + weight * by_column @ _membership(self.linear.design, self.schema)
        return pd.DataFrame(values, columns=self.schema.names, index=index)

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


def _bag_log_odds(boosters: list[xgb.Booster], data: xgb.DMatrix) -> np.ndarray:
    return _logit(np.mean([booster.predict(data) for booster in boosters], axis=0))


def _bag_contributions(boosters: list[xgb.Booster], data: xgb.DMatrix) -> np.ndarray:
    return np.mean([booster.predict(data, pred_contribs=True)[:, :-1] for booster in boosters], axis=0)


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
    return LinearBlend(design=design, boosters=_load_boosters(folder, section["files"]), weight=section["weight"])


def threads_for(rows: int) -> int:
    return MAX_THREADS if rows >= PARALLEL_FROM_ROWS else 1


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_matrix(schema: FeatureSchema, encoded: pd.DataFrame, threads: int) -> xgb.DMatrix:
    """The trees' input from plain float32 columns: category codes for categoricals, a gap as NaN.

    The same values XGBoost reads from the pandas frame, without its per-call frame handling,
    which costs milliseconds even for one row.
    """
    columns = []
    for name in schema.names:
        column = encoded[name]
        if name in schema.categorical:
            codes = column.cat.codes.to_numpy()
            columns.append(np.where(codes < 0, np.nan, codes).astype(np.float32))
        else:
            columns.append(column.to_numpy(dtype=np.float32, na_value=np.nan))
    array = np.column_stack(columns) if columns else np.empty((len(encoded), 0), dtype=np.float32)
    types = ["c" if name in schema.categorical else "q" for name in schema.names]
    return xgb.DMatrix(array, feature_names=schema.names, feature_types=types, enable_categorical=True, nthread=threads)


def manifest_read(folder: Path, *, expected_sha256: str | None, formats: tuple) -> dict:
    """An artifact's JSON manifest, refused unless it matches the registry's checksum and is of a known format."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"no model manifest at {manifest_path}")
    if expected_sha256 is not None and file_sha256(manifest_path) != expected_sha256:
        raise ArtifactError(f"{manifest_path} does not match the checksum in the registry")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {error}") from error
    if manifest.get("format") not in formats:
        raise ArtifactError(f"{manifest_path} has format {manifest.get('format')!r}, expected one of {formats}")
    return manifest


def load_booster(folder: Path, name: str, digest: str) -> xgb.Booster:
    path = folder / name
    if not path.is_file() or file_sha256(path) != digest:
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
    encoded = schema.encode(features)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(encoded, labels))
    data = _Folds(encoded, labels, splits, threads_for(len(labels)), seed)
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

    encoded: pd.DataFrame
    labels: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]
    threads: int
    seed: int


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
        booster = _fit_booster(data.encoded, data.labels, train_index, valid_index, params)
        valid = xgb.DMatrix(data.encoded.iloc[valid_index], enable_categorical=True, nthread=params["nthread"])
        out_of_fold[valid_index] = booster.predict(valid)
        boosters.append(booster)
    return _CrossFit(boosters, out_of_fold, params, _log_loss(data.labels, out_of_fold))


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
    design = LinearDesign.fit(schema, data.encoded, knots_per_number=knots)
    columns = design.matrix(data.encoded)
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
