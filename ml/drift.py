"""Population stability: has the population a model scores moved away from the one it was trained on?

At training time each feature's spread is summarised: a numeric feature by the shares of
rows between its training deciles, a categorical one by the share of each level; missing
values are a bin of their own. Recent rows are binned the same way and compared with

    PSI = sum over bins of (recent share - training share) * ln(recent share / training share)

An empty bin would make the logarithm infinite, so shares are floored at PSI_FLOOR. Common
reading: below 0.1 stable, 0.1 to 0.2 a moderate shift, above 0.2 a shift worth acting on.
Pure pandas and numpy: the summary is plain JSON stored with the model version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

BINS = 10
PSI_FLOOR = 1e-4
WARNING_PSI = 0.2
MAX_LEVELS = 50
MISSING = "(missing)"
OTHER = "(other)"


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    rows: int

    @property
    def warning(self) -> bool:
        return self.psi > WARNING_PSI


def population_stability(expected: Sequence[float], actual: Sequence[float], *, floor: float = PSI_FLOOR) -> float:
    """PSI between two distributions over the same bins (each a sequence of shares summing to 1)."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} training bins but {len(actual)} recent bins")
    expected = np.maximum(np.asarray(expected, dtype=float), floor)
    actual = np.maximum(np.asarray(actual, dtype=float), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def distribution_summary(
    features: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str], bins: int = BINS
) -> dict:
    """How the training rows spread over each feature, as JSON: numeric edges and shares, categorical shares."""
    summary: dict = {"rows": len(features), "numeric": {}, "categorical": {}}
    for name in numeric:
        values = _numbers(features[name])
        edges = _quantile_edges(values, bins)
        summary["numeric"][name] = {"edges": edges, "shares": _numeric_shares(values, edges)}
    for name in categorical:
        summary["categorical"][name] = _level_shares(_texts(features[name]))
    return summary


def feature_drift(summary: Mapping, recent: pd.DataFrame) -> list[FeatureDrift]:
    """PSI of every summarised feature that the recent rows carry, largest first."""
    drifts = []
    for name, spec in summary.get("numeric", {}).items():
        if name in recent.columns:
            shares = _numeric_shares(_numbers(recent[name]), spec["edges"])
            drifts.append(FeatureDrift(name, population_stability(spec["shares"], shares), len(recent)))
    for name, levels in summary.get("categorical", {}).items():
        if name in recent.columns:
            expected, actual = _categorical_shares(levels, _texts(recent[name]))
            drifts.append(FeatureDrift(name, population_stability(expected, actual), len(recent)))
    return sorted(drifts, key=lambda drift: (-drift.psi, drift.feature))


def _numbers(column: pd.Series) -> pd.Series:
    return pd.to_numeric(column, errors="coerce").astype(float)


def _texts(column: pd.Series) -> pd.Series:
    def text(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        return str(value)

    return column.map(text)


def _quantile_edges(values: pd.Series, bins: int) -> list[float]:
    """Inner bin edges at the training quantiles; ties (a feature that is mostly 0) merge bins."""
    present = values.dropna()
    if present.empty:
        return []
    quantiles = np.quantile(present.to_numpy(), np.linspace(0, 1, bins + 1)[1:-1])
    return [float(edge) for edge in np.unique(quantiles)]


def _numeric_shares(values: pd.Series, edges: Sequence[float]) -> list[float]:
    """Shares of rows per bin (value <= first edge, ..., above the last edge), then the share missing."""
    total = len(values)
    if total == 0:
        return [0.0] * (len(edges) + 2)
    present = values.dropna().to_numpy()
    which = np.searchsorted(np.asarray(edges, dtype=float), present, side="left")
    counts = np.bincount(which, minlength=len(edges) + 1)
    return [float(count / total) for count in counts] + [float((total - len(present)) / total)]


def _level_shares(text: pd.Series) -> dict[str, float]:
    """Share of each level; beyond the MAX_LEVELS most frequent, the rest share one "(other)" bin."""
    shares = text.value_counts(normalize=True)
    kept = {str(level): float(share) for level, share in shares.iloc[:MAX_LEVELS].items()}
    if len(shares) > MAX_LEVELS:
        kept[OTHER] = kept.get(OTHER, 0.0) + float(shares.iloc[MAX_LEVELS:].sum())
    return kept


def _categorical_shares(levels: Mapping[str, float], recent: pd.Series) -> tuple[list[float], list[float]]:
    """Training and recent shares over the training levels. Recent levels training never saw count
    towards "(other)" when training had one, else towards a bin of their own (empty in training)."""
    counts = recent.value_counts()
    total = max(len(recent), 1)
    names = list(levels)
    unseen = int(counts[~counts.index.isin(names)].sum())
    expected = [float(levels[name]) for name in names]
    actual = [float(counts.get(name, 0) / total) for name in names]
    if OTHER in names:
        actual[names.index(OTHER)] += unseen / total
        return expected, actual
    return [*expected, 0.0], [*actual, unseen / total]
