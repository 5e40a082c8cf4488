"""What a model folder holds and how it is read back: a JSON manifest naming each file with its sha256,
XGBoost's own boosters, and the exact arithmetic of a linear booster. Nothing is pickled."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb

MANIFEST = "model.json"
# Rows on which a linear booster's stored weights are checked against its own predictions, once per load.
PROBE_ROWS = 64


class ArtifactError(RuntimeError):
    """A stored model is corrupt, incomplete or of another format."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_read(folder: Path, *, expected_sha256: str | None, formats: tuple) -> dict:
    """An artifact's JSON manifest, refused unless it matches the registry's checksum and is of a known format."""
    manifest = _checked_manifest(folder, expected_sha256=expected_sha256)
    if manifest.get("format") not in formats:
        raise ArtifactError(f"{folder / MANIFEST} has format {manifest.get('format')!r}, expected one of {formats}")
    return manifest


def _checked_manifest(folder: Path, *, expected_sha256: str | None) -> dict:
    """The manifest, read once it is there and matches the registry's checksum."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"no model manifest at {manifest_path}")
    if expected_sha256 is not None and file_sha256(manifest_path) != expected_sha256:
        raise ArtifactError(f"{manifest_path} does not match the checksum in the registry")
    try:
        return json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {error}") from error


def _check_file(path: Path, digest: str) -> None:
    if not path.is_file() or file_sha256(path) != digest:
        raise ArtifactError(f"{path} is missing or corrupt (checksum mismatch)")


def load_booster(folder: Path, name: str, digest: str) -> xgb.Booster:
    path = folder / name
    _check_file(path, digest)
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
    except xgb.core.XGBoostError as error:
        raise ArtifactError(f"{path} cannot be read by XGBoost: {error}") from error
    return booster


@dataclass(frozen=True)
class LinearWeights:
    """A gblinear booster's bias and weights, read from its JSON, with XGBoost's own arithmetic.

    XGBoost's linear predictor works in float32: the margin starts at bias + base margin (the
    booster's own base score when none is given) and adds value x weight one column at a time,
    in column order; a contribution is value x weight. `margin` and `contributions` repeat
    exactly those steps, so their results are the booster's to the last bit; `of` checks that on
    probe rows and refuses a booster it cannot repeat (another objective, several output groups,
    a changed layout). Evaluating the weights spares a DMatrix and a call into XGBoost per
    booster, which cost more than the arithmetic on the few rows of a recommendation.
    """

    booster: xgb.Booster
    bias: np.float32
    weights: np.ndarray  # float32, one per column
    start: np.float32  # bias + the booster's base score, as XGBoost adds them

    def margin(self, values: np.ndarray, base_margin: np.ndarray | None = None) -> np.ndarray:
        """The booster's output margin for rows without gaps, given their base margins or not."""
        if base_margin is None:
            start = np.full(len(values), self.start, dtype=np.float32)
        else:
            start = np.float32(self.bias) + base_margin.astype(np.float32)
        # A running sum along each row, in float32, column after column: XGBoost's own order of additions.
        terms = np.column_stack([start, self._float32(values) * self.weights])
        return np.add.accumulate(terms, axis=1, dtype=np.float32)[:, -1].astype(float)

    def contributions(self, values: np.ndarray) -> np.ndarray:
        """Each column's share of the margin (XGBoost's pred_contribs without the bias column)."""
        return (self._float32(values) * self.weights).astype(float)

    @staticmethod
    def _float32(values: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused just below
            values = np.asarray(values).astype(np.float32)
        if not np.isfinite(values).all():
            raise ValueError("the features hold a value too large for the model")
        return values

    @classmethod
    def of(cls, booster: xgb.Booster) -> LinearWeights:
        learner = json.loads(booster.save_raw("json"))["learner"]
        model = learner["gradient_booster"]
        columns = int(learner["learner_model_param"]["num_feature"])
        if model.get("name") != "gblinear" or len(model["model"]["weights"]) != columns + 1:
            raise ArtifactError("a linear booster is not a single-output linear model")
        weights = np.array(model["model"]["weights"], dtype=np.float32)
        # A row with every value missing adds no column: its margin is where every row starts.
        nothing = xgb.DMatrix(np.full((1, columns), np.nan), nthread=1)
        start = np.float32(booster.predict(nothing, output_margin=True)[0])
        linear = cls(booster=booster, bias=weights[-1], weights=weights[:-1], start=start)
        linear._check_against_booster(columns)
        return linear

    def _check_against_booster(self, columns: int) -> None:
        probe = np.random.default_rng(0).normal(size=(PROBE_ROWS, columns)) * 3
        base_margin = np.linspace(-4, 4, PROBE_ROWS)
        with_base = xgb.DMatrix(probe, base_margin=base_margin, nthread=1)
        without = xgb.DMatrix(probe, nthread=1)
        same = (
            np.array_equal(self.margin(probe, base_margin), self.booster.predict(with_base, output_margin=True))
            and np.array_equal(self.margin(probe), self.booster.predict(without, output_margin=True))
            and np.array_equal(
                self.contributions(probe), self.booster.predict(without, pred_contribs=True)[:, :-1].astype(float)
            )
        )
        if not same:
            raise ArtifactError("a linear booster does not predict as its stored weights say")


def artifact_problem(folder: Path, *, expected_sha256: str | None) -> str:
    """ "" when the manifest matches the registry's checksum and every file it names is there with its checksum,
    else what is wrong. The files are read, the models are not: cheap enough for a health probe, and it finds the
    corrupt or missing file a worker would fail to load after its next restart. The checks are the loaders' own."""
    try:
        for name, digest in _named_files(_checked_manifest(folder, expected_sha256=expected_sha256)):
            _check_file(folder / name, digest)
    except ArtifactError as error:
        return str(error)
    except OSError as error:  # a file this process may not read: no process like it can load the model either
        return f"{folder}: its files cannot be read: {error}"
    return ""


def _named_files(section) -> list[tuple[str, str]]:
    """Every (file name, sha256) a manifest lists under "files", at any depth: a name maps to its digest, or to an
    entry holding it under "sha256"."""
    if isinstance(section, list):
        return [pair for item in section for pair in _named_files(item)]
    if not isinstance(section, dict):
        return []
    pairs = []
    for key, value in section.items():
        if key == "files" and isinstance(value, dict):
            pairs += [(name, entry["sha256"] if isinstance(entry, dict) else entry) for name, entry in value.items()]
        else:
            pairs += _named_files(value)
    return pairs
