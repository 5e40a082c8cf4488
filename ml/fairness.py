"""Fairness of the offers made: do groups of customers at the same risk get the same offers and outcomes?

Pure code on a DataFrame with one row per decision; the Django side (retention.selectors.fairness)
builds that frame. Protected attributes are only ever read here and never become model features.

Within each risk band, and for each attribute (a protected attribute such as gender or age band, or a
segment such as value tier), four metrics are compared between the attribute's groups:

- offer_rate: share of decisions where an offer was made to the customer;
- offered_cost_cents: mean cost of the offers made (decisions without an offer left out);
- accepted_cost_cents: mean cost of the offers accepted (decisions without an acceptance left out);
- save_rate: share of customers who renewed, among decisions with a known renewal result.

Comparing within a risk band keeps a fair difference (higher risk, more offers) from looking like bias.
For each metric the ratio of the smallest to the largest group value and their difference are given;
the metric is flagged when the ratio falls below the threshold (0.8 is the "four-fifths rule" of the
US EEOC Uniform Guidelines, 29 CFR 1607.4 D). Each comparison also carries the p-value of the gap between those
two groups (Fisher's exact test for a rate, Welch's test for a mean cost), and that p-value adjusted for the
number of comparisons the report makes (Benjamini-Hochberg): a report of many comparisons shows some gaps that
chance alone gives, so a flag whose adjusted p-value is not below SIGNIFICANCE_LEVEL may be chance, and says so.
On a few offers per group equal treatment gives ratios far from 1 most of the time. Groups with fewer rows than
`min_group_size` behind a metric are shown, marked, but left out of the ratio, so a handful of customers cannot
raise a flag; below PRIVATE_GROUP_SIZE rows (or the minimum group size, if smaller) they are listed without
their value or size, so a group of one cannot tell a reader of the offer log that customer's age or gender. Rows
whose attribute is not recorded are left out of that attribute's comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from scipy.stats import fisher_exact

RISK_BAND = "risk_band"
RISK_BAND_ORDER = ("low", "medium", "high")
# Metric name -> the column whose mean it is; a NaN in the column means "does not count for this metric".
METRIC_COLUMNS = {
    "offer_rate": "offer_made",
    "offered_cost_cents": "offered_cost_cents",
    "accepted_cost_cents": "accepted_cost_cents",
    "save_rate": "stayed",
}
REQUIRED_COLUMNS = (RISK_BAND, *METRIC_COLUMNS.values())
# Means of 0 and 1: compared as rates.
RATE_METRICS = {"offer_rate", "save_rate"}
DEFAULT_THRESHOLD = 0.8
DEFAULT_MIN_GROUP_SIZE = 30
# Below this adjusted p-value the gap between the smallest and the largest group is unlikely to be chance;
# a flag above it says it may be.
SIGNIFICANCE_LEVEL = 0.05
# Fewer rows than this behind a group's value and neither the value nor the size is shown (k-anonymity).
PRIVATE_GROUP_SIZE = 10
SIZE_SUFFIX = "__size"
SPREAD_SUFFIX = "__spread"


@dataclass(frozen=True)
class GroupCell:
    """One group's value of a metric. `judged` is False when too few rows stand behind it to flag anything;
    below the report's `withheld_below` its value and size are withheld too (None), as they could single out
    the customers in it. A group large enough to show whose rows the metric applies to none of (no renewal result
    yet, no offer accepted) has size 0 and no value."""

    group: str
    value: float | None
    size: int | None
    judged: bool
    spread: float | None = None  # the standard deviation of the metric's values in the group


@dataclass(frozen=True)
class Comparison:
    """One metric across the groups of one attribute, within one risk band."""

    risk_band: str
    attribute: str
    metric: str
    cells: tuple[GroupCell, ...]
    ratio: float | None
    difference: float | None
    flagged: bool
    # Two-sided p-value of the gap between the smallest and the largest group (Fisher's exact test for a rate,
    # Welch's for a mean cost), corrected for the pairs it was picked from.
    p_value: float | None = None
    # The p-value adjusted for every comparison of the report that has one (Benjamini-Hochberg): of the gaps
    # whose adjusted p-value is below a level, chance accounts for at most that share in expectation.
    adjusted_p_value: float | None = None

    @property
    def may_be_chance(self) -> bool:
        """A flag whose gap equal treatment could well give, among so many comparisons: read it as a question,
        not a finding."""
        return self.flagged and self.adjusted_p_value is not None and self.adjusted_p_value >= SIGNIFICANCE_LEVEL


@dataclass(frozen=True)
class FairnessReport:
    comparisons: tuple[Comparison, ...]
    threshold: float
    min_group_size: int
    rows: int

    @property
    def flagged(self) -> tuple[Comparison, ...]:
        return tuple(comparison for comparison in self.comparisons if comparison.flagged)

    @property
    def withheld_below(self) -> int:
        return withheld_below(self.min_group_size)

    @property
    def significance_level(self) -> float:
        return SIGNIFICANCE_LEVEL

    def as_json(self) -> dict:
        return {
            "threshold": self.threshold,
            "min_group_size": self.min_group_size,
            "withheld_below": self.withheld_below,
            "rows": self.rows,
            "flagged": len(self.flagged),
            "comparisons": [
                {**asdict(comparison), "may_be_chance": comparison.may_be_chance} for comparison in self.comparisons
            ],
        }


def fairness_report(
    log: pd.DataFrame,
    *,
    attributes: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> FairnessReport:
    """Compare the metrics between the groups of every attribute within every risk band.

    `log` has one row per decision with the columns REQUIRED_COLUMNS and the `attributes`: offer_made
    is 0/1; offered_cost_cents, accepted_cost_cents and stayed (0/1) are NaN where they do not apply;
    an attribute is None or NaN where it is not recorded. Comparisons come by risk band (low, medium,
    high, then any other), then attribute in the given order, then metric. Raises ValueError on a
    missing column, a threshold outside (0, 1] or a minimum group size below 1.
    """
    _check(log, attributes, threshold, min_group_size)
    by_attribute = {attribute: _by_group(log, attribute) for attribute in attributes}
    comparisons = []
    for band in _bands(log):
        for attribute, by_group in by_attribute.items():
            if by_group is None or band not in by_group.index.get_level_values(RISK_BAND):
                continue
            band_rows = by_group.xs(band, level=RISK_BAND)
            for metric in METRIC_COLUMNS:
                cells = _cells(band_rows, metric, min_group_size)
                comparisons.append(_comparison(band, attribute, metric, cells, threshold))
    return FairnessReport(
        comparisons=_with_adjusted_p_values(comparisons),
        threshold=threshold,
        min_group_size=min_group_size,
        rows=len(log),
    )


def _with_adjusted_p_values(comparisons: Sequence[Comparison]) -> tuple[Comparison, ...]:
    tested = [position for position, comparison in enumerate(comparisons) if comparison.p_value is not None]
    adjusted = benjamini_hochberg([comparisons[position].p_value for position in tested])
    by_position = dict(zip(tested, adjusted, strict=True))
    return tuple(
        replace(comparison, adjusted_p_value=by_position.get(position))
        for position, comparison in enumerate(comparisons)
    )


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values, in the order given: the k-th smallest of m becomes
    min over j >= k of p_(j) * m / j, capped at 1. Rejecting those below q keeps the expected share of
    chance findings among the rejected at most q (for independent or positively dependent tests)."""
    m = len(p_values)
    if m == 0:
        return []
    if not all(0.0 <= p <= 1.0 for p in p_values):  # NaN fails too: it would turn every adjusted value to NaN
        raise ValueError(f"p-values must lie between 0 and 1: {[p for p in p_values if not 0.0 <= p <= 1.0]}")
    order = np.argsort(p_values, kind="stable")
    scaled = np.asarray(p_values, dtype=float)[order] * m / np.arange(1, m + 1)
    # The running minimum from the largest down keeps the adjusted values in the order of the raw ones.
    monotone = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = monotone
    return adjusted.tolist()


def _check(log: pd.DataFrame, attributes: Sequence[str], threshold: float, min_group_size: int) -> None:
    missing = [column for column in (*REQUIRED_COLUMNS, *attributes) if column not in log.columns]
    if missing:
        raise ValueError(f"the decision log lacks the columns {', '.join(missing)}")
    if not 0 < threshold <= 1:
        raise ValueError(f"the ratio threshold must be above 0 and at most 1, not {threshold}")
    if min_group_size < 1:
        raise ValueError(f"the minimum group size must be at least 1, not {min_group_size}")


def _bands(log: pd.DataFrame) -> list[str]:
    bands = set(log[RISK_BAND].astype(str))
    return [band for band in RISK_BAND_ORDER if band in bands] + sorted(bands - set(RISK_BAND_ORDER))


def _by_group(log: pd.DataFrame, attribute: str) -> pd.DataFrame | None:
    """Every metric's value and size per (risk band, group) of one attribute; None when it is never recorded."""
    recorded = log[log[attribute].notna()]
    if recorded.empty:
        return None
    cells = _cell_statistics(recorded, attribute)
    statistics = cells.to_numpy(dtype=float)
    metrics = {}
    for position, metric in enumerate(METRIC_COLUMNS):
        metrics[metric] = _mean_of(statistics, position)
        metrics[metric + SIZE_SUFFIX] = _size_of(statistics, position)
        metrics[metric + SPREAD_SUFFIX] = _spread_of(statistics, position)
    # y_true and y_pred carry the row numbers of the cells; each metric reads its statistics at them.
    rows = np.arange(len(cells))
    frame = MetricFrame(
        metrics=metrics,
        y_true=rows,
        y_pred=rows,
        sensitive_features=pd.Series(cells.index.get_level_values(attribute), name=attribute),
        control_features=pd.Series(cells.index.get_level_values(RISK_BAND), name=RISK_BAND),
    )
    return frame.by_group


def _cell_statistics(rows: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """Per (risk band, group): for each metric the sum of its column, the number of rows it applies to and the
    sum of their squares.

    MetricFrame's cost grows with the rows it is given, so it gets one row per cell with these sums
    and counts instead of one per decision; the means and spreads it computes from them are exact.
    """
    values = rows[list(METRIC_COLUMNS.values())].astype(float)
    keys = [rows[RISK_BAND].astype(str).rename(RISK_BAND), rows[attribute].astype(str).rename(attribute)]
    sums = values.groupby(keys).sum()
    sizes = values.notna().groupby(keys).sum()
    squares = (values**2).groupby(keys).sum()
    columns = [frame[column] for column in METRIC_COLUMNS.values() for frame in (sums, sizes, squares)]
    return pd.concat(columns, axis=1)


# Each metric has three statistics per cell, in this order (see _cell_statistics).
SUM, COUNT, SQUARES = range(3)


def _statistic(statistics: np.ndarray, rows: np.ndarray, position: int, which: int) -> float:
    return float(statistics[np.atleast_1d(rows).astype(int), 3 * position + which].sum())


def _mean_of(statistics: np.ndarray, position: int) -> Callable:
    def mean(rows: np.ndarray, _same_rows: np.ndarray) -> float:
        size = _statistic(statistics, rows, position, COUNT)
        return _statistic(statistics, rows, position, SUM) / size if size else np.nan

    return mean


def _size_of(statistics: np.ndarray, position: int) -> Callable:
    def size(rows: np.ndarray, _same_rows: np.ndarray) -> int:
        return int(_statistic(statistics, rows, position, COUNT))

    return size


def _spread_of(statistics: np.ndarray, position: int) -> Callable:
    """The sample standard deviation, from the sums (nan below two rows)."""

    def spread(rows: np.ndarray, _same_rows: np.ndarray) -> float:
        size = _statistic(statistics, rows, position, COUNT)
        if size < 2:
            return np.nan
        total = _statistic(statistics, rows, position, SUM)
        variance = (_statistic(statistics, rows, position, SQUARES) - total * total / size) / (size - 1)
        return math.sqrt(max(variance, 0.0))

    return spread


def withheld_below(min_group_size: int) -> int:
    """Groups smaller than this show neither value nor size; a group big enough to be judged is always shown."""
    return min(PRIVATE_GROUP_SIZE, min_group_size)


def _cells(band_rows: pd.DataFrame, metric: str, min_group_size: int) -> tuple[GroupCell, ...]:
    cells = []
    for group, row in band_rows.sort_index().iterrows():
        size = row[metric + SIZE_SUFFIX]
        if pd.isna(size):  # the group has no rows in this risk band
            continue
        if int(size) == 0 and _group_size(row) >= withheld_below(min_group_size):
            # Nothing the metric applies to yet (no renewal result, no offer accepted) in a group large enough to
            # show: saying so singles no one out, where "too small to show" would hide why the value is missing.
            cells.append(GroupCell(group=str(group), value=None, size=0, judged=False))
            continue
        if int(size) < withheld_below(min_group_size):
            cells.append(GroupCell(group=str(group), value=None, size=None, judged=False))
            continue
        value = None if pd.isna(row[metric]) else float(row[metric])
        spread = None if pd.isna(row[metric + SPREAD_SUFFIX]) else float(row[metric + SPREAD_SUFFIX])
        judged = int(size) >= min_group_size
        cells.append(GroupCell(group=str(group), value=value, size=int(size), judged=judged, spread=spread))
    return tuple(cells)


def _group_size(row: pd.Series) -> int:
    """The decisions of the group in its risk band: the most rows any metric counts, as offer rate counts each."""
    return int(max(row[metric + SIZE_SUFFIX] for metric in METRIC_COLUMNS))


def _comparison(band: str, attribute: str, metric: str, cells: tuple[GroupCell, ...], threshold: float) -> Comparison:
    judged = sorted((cell for cell in cells if cell.judged and cell.value is not None), key=lambda cell: cell.value)
    ratio = difference = p_value = None
    if len(judged) >= 2:
        smallest, largest = judged[0], judged[-1]
        # Every group at zero is equal treatment, not a division by zero.
        ratio = smallest.value / largest.value if largest.value > 0 else 1.0
        difference = largest.value - smallest.value
        p_value = extremes_p_value(smallest, largest, groups=len(judged), metric=metric)
    return Comparison(
        risk_band=band,
        attribute=attribute,
        metric=metric,
        cells=cells,
        ratio=ratio,
        difference=difference,
        flagged=ratio is not None and ratio < threshold,
        p_value=p_value,
    )


def extremes_p_value(smallest: GroupCell, largest: GroupCell, *, groups: int, metric: str) -> float:
    """The p-value of the gap between the lowest and the highest of `groups` groups: the pair's own test
    (`pair_p_value`), Bonferroni-corrected for the groups * (groups - 1) / 2 pairs it was picked from. Taken alone,
    the extremes of five groups treated alike differ "at p < 0.05" 29% of the time (measured over 20,000 draws of
    100 rows a group), since picking the extremes is itself a choice; with the correction, at most 5%."""
    pairs = groups * (groups - 1) // 2
    return min(1.0, pair_p_value(smallest, largest, metric=metric) * pairs)


def pair_p_value(first: GroupCell, second: GroupCell, *, metric: str) -> float:
    """Two-sided p-value for the difference of two groups' values: Fisher's exact test for a rate, Welch's test
    for a mean cost.

    A rate of a few percent in groups of unequal size is where the normal approximation fails: a group with no
    offer at all has no spread, and 0 of 69 against 19 of 570 read p = 0.00001 where the exact test gives 0.25.
    Under equal treatment at such rates it called one gap in nine "p < 0.05" (measured over draws of 69 and 570
    rows at 3.3%); the exact test never does so more often than the level says."""
    if metric in RATE_METRICS:
        return fisher_p_value(first, second)
    return welch_p_value(first, second)


def fisher_p_value(first: GroupCell, second: GroupCell) -> float:
    """Fisher's exact test of two rates, each group's count of ones being its rate times its size."""
    ones = [round(first.value * first.size), round(second.value * second.size)]
    table = [[ones[0], first.size - ones[0]], [ones[1], second.size - ones[1]]]
    return float(fisher_exact(table, alternative="two-sided").pvalue)


def welch_p_value(first: GroupCell, second: GroupCell) -> float:
    """Two-sided p-value for the difference of two groups' means, Welch's test in its normal approximation
    (every judged group has at least the minimum group size behind it)."""
    variance = (first.spread or 0.0) ** 2 / first.size + (second.spread or 0.0) ** 2 / second.size
    gap = abs(first.value - second.value)
    if variance == 0:
        return 1.0 if gap == 0 else 0.0
    return 2 * (1 - NormalDist().cdf(gap / math.sqrt(variance)))


# --- the report as a text table (the fairness_report command) ------------------------------------

METRIC_NAMES = {
    "offer_rate": "offer rate",
    "offered_cost_cents": "mean offer cost",
    "accepted_cost_cents": "mean accepted cost",
    "save_rate": "save rate",
}
TABLE_HEADER = ("risk band", "attribute", "metric", "groups (rows)", "ratio", "difference", "p", "adjusted p", "flag")


def format_value(metric: str, value: float | None) -> str:
    """Rates as percentages, costs as euros; "-" when there is nothing to show."""
    if value is None:
        return "-"
    if metric in RATE_METRICS:
        return f"{value * 100:.1f}%"
    return f"€{value / 100:,.2f}"


def format_difference(metric: str, difference: float | None) -> str:
    if difference is None:
        return "-"
    if metric in RATE_METRICS:
        return f"{difference * 100:.1f} pt"
    return format_value(metric, difference)


def table_rows(report: FairnessReport) -> list[tuple[str, ...]]:
    """One line per comparison; a group under the minimum size is marked with "*" (shown, not judged), and one
    under `withheld_below` shows "(<N)" instead of its value and size."""
    return [
        (
            comparison.risk_band,
            comparison.attribute,
            METRIC_NAMES[comparison.metric],
            ", ".join(_cell_text(comparison.metric, cell, report.withheld_below) for cell in comparison.cells),
            "-" if comparison.ratio is None else f"{comparison.ratio:.2f}",
            format_difference(comparison.metric, comparison.difference),
            "-" if comparison.p_value is None else f"{comparison.p_value:.3f}",
            "-" if comparison.adjusted_p_value is None else f"{comparison.adjusted_p_value:.3f}",
            _flag_text(comparison),
        )
        for comparison in report.comparisons
    ]


def _flag_text(comparison: Comparison) -> str:
    if not comparison.flagged:
        return ""
    return "FLAGGED (may be chance)" if comparison.may_be_chance else "FLAGGED"


def _cell_text(metric: str, cell: GroupCell, withheld_below: int) -> str:
    if cell.size is None:
        return f"{cell.group} (<{withheld_below})"
    return f"{cell.group} {format_value(metric, cell.value)} ({cell.size}{'' if cell.judged else '*'})"


def text_table(report: FairnessReport) -> str:
    rows = [TABLE_HEADER, *table_rows(report)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)
