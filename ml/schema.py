"""Which features a model uses and how each is encoded, inferred from training data and stored as JSON.

Any mapped CRM attribute becomes numeric when nearly all its values are numbers,
otherwise categorical with its frequent levels (rare ones fold into one level),
so a new export needs a mapping and no code. Columns that carry no information
in training (constant, or an identifier with a new value on every row) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ml.features import ATTRIBUTE_PREFIX

OTHER_LEVEL = "(other)"
NUMERIC_SHARE = 0.95
MAX_LEVELS = 50
MIN_LEVEL_COUNT = 5


class SchemaMismatch(ValueError):
    """Data or an artifact does not fit the feature schema a model was trained with."""


@dataclass(frozen=True)
class FeatureSchema:
    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_json(self) -> dict:
        # Categoricals as a list of pairs: their order is the model's column order, and JSON objects have none.
        return {"numeric": list(self.numeric), "categorical": [[k, list(v)] for k, v in self.categorical.items()]}

    @classmethod
    def from_json(cls, data: dict) -> FeatureSchema:
        try:
            return cls(
                numeric=tuple(data["numeric"]),
                categorical={name: tuple(levels) for name, levels in data["categorical"]},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SchemaMismatch(f"not a feature schema: {error}") from error

    @classmethod
    def infer(cls, features: pd.DataFrame) -> FeatureSchema:
        numeric, categorical = [], {}
        for name in features.columns:
            column = features[name]
            if _is_numeric(column):
                values = pd.to_numeric(column, errors="coerce")
                if values.nunique(dropna=False) > 1:
                    numeric.append(name)
                continue
            levels = _frequent_levels(column)
            if len(levels) > 1 or (len(levels) == 1 and column.isna().any()):
                categorical[name] = levels
        return cls(numeric=tuple(numeric), categorical=categorical)

    def unreadable(self, row: Mapping[str, Any]) -> list[str]:
        """The features of one row that hold a value the model reads as unknown: text where it reads a number,
        an absurd number, or a level it never saw and cannot fold into "(other)". A reason must not name such a
        value as what moved the risk: the model saw a gap."""
        names = [name for name in self.numeric if _unreadable_number(row.get(name))]
        for name, known in self._levels_read.items():
            value = row.get(name)
            if value is not None and (isinstance(value, str) or not _is_gap(value)) and str(value) not in known:
                names.append(name)
        return names

    @cached_property
    def _levels_read(self) -> dict[str, frozenset[str]]:
        """Per categorical feature, the levels it reads; none of those that fold an unseen level into "(other)"
        (see `_codes_of_values`), as every text is read there."""
        return {name: frozenset(levels) for name, levels in self.categorical.items() if OTHER_LEVEL not in levels}

    def encode(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's input as a frame: floats and fixed-level categoricals, columns in schema order.

        A CRM attribute the data lacks is unknown for every row (XGBoost's missing value);
        a missing core feature is an error, as it means the data was built another way.
        Unseen levels become "(other)" when the model knows that level, else missing.
        """
        return self.frame(self.values(features), features.index)

    def values(self, features: pd.DataFrame) -> np.ndarray:
        """The encoding as one float array in schema order: numbers as they are, a categorical as
        its level's position in the schema, a gap (or an unknown level) as NaN.

        This is what the models read when scoring; it skips building pandas categoricals, which
        cost more than the prediction itself on the few rows of a recommendation.
        """
        self._check_core_columns(features)
        # Column by column on arrays: on the one row of a recommendation, a reindexed frame and a
        # to_numeric per column cost more than the model's own prediction.
        table = ColumnTable.of(features)
        columns = [numbers_of(features, name, table) for name in self.numeric]
        for name, levels in self.categorical.items():
            codes = codes_of(features, name, levels, table)
            columns.append(np.where(codes < 0, np.nan, codes))
        if not columns:
            return np.empty((len(features), 0))
        return np.column_stack(columns).astype(float, copy=False)

    def frame(self, values: np.ndarray, index: pd.Index) -> pd.DataFrame:
        """`values` as the frame `encode` gives: categoricals rebuilt from their level positions."""
        columns = {name: values[:, number] for number, name in enumerate(self.numeric)}
        for number, (name, levels) in enumerate(self.categorical.items(), start=len(self.numeric)):
            codes = np.nan_to_num(values[:, number], nan=-1).astype(np.int64)
            columns[name] = pd.Categorical.from_codes(codes, categories=list(levels))
        return pd.DataFrame(columns, index=index, columns=self.names)

    def _check_core_columns(self, features: pd.DataFrame) -> None:
        missing = [
            name for name in self.names if name not in features.columns and not name.startswith(ATTRIBUTE_PREFIX)
        ]
        if missing:
            raise SchemaMismatch(f"features missing from the data: {', '.join(missing)}")


# Up to this many rows, a frame's columns are read from one conversion of the whole frame to objects:
# pandas builds a Series for every column read, which on the one row of a recommendation costs more
# than the models' predictions.
FEW_ROWS = 16
# The numpy dtype kinds read as numbers as they are: bools, integers and floats.
NUMBER_KINDS = frozenset("biuf")
# No quantity a CRM keeps (an amount in cents, a count, a duration) comes near a thousand million million: a number
# beyond it is no measurement. The trees read float32, which holds no number past about 3.4e38; one such value
# made every score, advice and retrain that read its row fail. A model reads it as unknown instead; the API refuses
# such an attribute, and a CRM file keeps it as text (retention.mapping.attribute_value).
MAX_FEATURE_MAGNITUDE = 1e15
# The dtypes whose values the conversion to objects gives exactly as reading the column would:
# numbers and Python objects.
TABLE_KINDS = NUMBER_KINDS | {"O"}


@dataclass(frozen=True)
class ColumnTable:
    """The columns of a frame of a few rows, converted to objects at once."""

    positions: dict[str, int]
    kinds: tuple[str, ...]  # numpy dtype kind per column
    values: np.ndarray  # rows × columns, dtype object

    @classmethod
    def of(cls, features: pd.DataFrame) -> ColumnTable | None:
        """The table of `features`, or None where column-by-column reading is needed: more than
        FEW_ROWS rows, repeated column names, or a column of a pandas extension dtype."""
        if len(features) > FEW_ROWS or not features.columns.is_unique:
            return None
        dtypes = features.dtypes.tolist()
        if not all(isinstance(dtype, np.dtype) for dtype in dtypes):
            return None
        return cls(
            positions={name: number for number, name in enumerate(features.columns)},
            kinds=tuple(dtype.kind for dtype in dtypes),
            values=features.to_numpy(dtype=object),
        )

    def numbers(self, name: str) -> np.ndarray | None:
        """A column of a numeric dtype as floats, exactly as `to_numpy(dtype=float)` gives it; None for
        any other column (its text needs parsing) or one the frame lacks."""
        number = self.positions.get(name)
        if number is None or self.kinds[number] not in NUMBER_KINDS:
            return None
        return self.values[:, number].astype(float)

    def objects(self, name: str) -> np.ndarray | None:
        """A column as `to_numpy(dtype=object)` gives it, where the conversion keeps its values; else None."""
        number = self.positions.get(name)
        if number is None or self.kinds[number] not in TABLE_KINDS:
            return None
        return self.values[:, number]


def numbers_of(features: pd.DataFrame, name: str, table: ColumnTable | None) -> np.ndarray:
    """The named column as floats (text that is no number, and a column `features` lacks, as NaN);
    read from `table` where it can be."""
    numbers = table.numbers(name) if table is not None else None
    return _measurements(numbers if numbers is not None else _numbers(_column(features, name)))


def _measurements(numbers: np.ndarray) -> np.ndarray:
    """The numbers with those no measurement can be (infinite, or beyond MAX_FEATURE_MAGNITUDE) as gaps."""
    absurd = ~(np.abs(numbers) <= MAX_FEATURE_MAGNITUDE) & ~np.isnan(numbers)
    if absurd.any():
        numbers = np.where(absurd, np.nan, numbers)
    return numbers


def codes_of(features: pd.DataFrame, name: str, levels: tuple[str, ...], table: ColumnTable | None) -> np.ndarray:
    """The named column's level positions (see `_category_codes`); read from `table` where it can be."""
    objects = table.objects(name) if table is not None else None
    if objects is not None:
        return _codes_of_values(objects, levels)
    return _category_codes(_column(features, name), levels)


def _column(features: pd.DataFrame, name: str) -> pd.Series:
    """The named column, or one of gaps (a CRM attribute this data does not have)."""
    if name in features.columns:
        return features[name]
    return pd.Series(np.nan, index=features.index, dtype=object)


def _numbers(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in NUMBER_KINDS:
        return column.to_numpy(dtype=float)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _is_numeric(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return True
    present = column.dropna()
    if present.empty:
        return True
    parsed = pd.to_numeric(present.map(_number_or_none), errors="coerce")
    return parsed.notna().mean() >= NUMERIC_SHARE


def _number_or_none(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.number):
        return value
    try:
        return float(str(value).strip().replace(",", "."))
    except ValueError:
        return None


def _frequent_levels(column: pd.Series) -> tuple[str, ...]:
    counts = column.dropna().astype(str).value_counts()
    frequent = counts[counts >= MIN_LEVEL_COUNT].index[:MAX_LEVELS]
    levels = sorted(str(level) for level in frequent)
    if len(frequent) < len(counts):
        levels.append(OTHER_LEVEL)
    return tuple(levels)


def _category_codes(column: pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    """Each value's position among `levels` (-1 for a gap): text levels, with unknown ones folded into
    "(other)" when the model knows it, else a gap.

    Worked out once per distinct value: a column of a million rows holds a handful of them.
    """
    if len(column) > FEW_VALUES:
        codes, distinct = pd.factorize(column, use_na_sentinel=True)
        if not _conflated(column, distinct):
            # The distinct values' positions, then -1 for factorize's gap code (-1 indexes the last).
            lookup = np.append(_codes_of_values(np.asarray(distinct, dtype=object), levels), -1)
            return lookup[codes]
    # Value by value: on the row of a recommendation this costs less than factorizing.
    return _codes_of_values(column.to_numpy(dtype=object), levels)


def _codes_of_values(values: np.ndarray, levels: tuple[str, ...]) -> np.ndarray:
    """`_category_codes` worked out value by value, for a column of few values (or its distinct values) as
    objects."""
    known = set(levels)
    fold = OTHER_LEVEL if OTHER_LEVEL in known else None
    level_codes = {level: number for number, level in enumerate(levels)}
    mapped = [None if _is_gap(value) else _level(value, known, fold) for value in values]
    return np.array([level_codes[m] if m is not None else -1 for m in mapped], dtype=np.int64)


FEW_VALUES = 16


def _conflated(column: pd.Series, distinct) -> bool:
    """Whether factorize may have merged values whose text differs: it takes 1, 1.0 and True for one
    value (they are equal in Python), so a column of mixed Python numbers is read value by value."""
    return column.dtype == object and any(isinstance(value, bool | int | float | np.number) for value in distinct)


def _unreadable_number(value) -> bool:
    """Plain Python checks first: this runs for every numeric feature of every piece of advice."""
    if isinstance(value, float | int | np.number):  # a gap (NaN) is no value; an absurd one is read as a gap
        number = float(value)
        return number == number and not abs(number) <= MAX_FEATURE_MAGNITUDE
    if value is None or (isinstance(value, str) and not value.strip()) or _is_gap(value):
        return False
    return bool(np.isnan(_measurements(_numbers(pd.Series([value], dtype=object)))[0]))


def _is_gap(value) -> bool:
    """What factorize counts as missing: None, NaN, NA and NaT (a list or other container is a value)."""
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _level(value, known: set[str], fold: str | None) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return text if text in known else fold
