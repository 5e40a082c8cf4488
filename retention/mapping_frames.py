"""The frames of `ml.features.build_features` made straight from the columns of a mapped file.

Scoring a large file needs no CustomerRecord per row: `mapped_frames` builds from a chunk's columns the
frames that `records_to_frames` builds from that chunk's records, value for value and dtype for dtype,
so a file scores the same whichever way it was read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from ml.features import ATTRIBUTE_PREFIX, CONTRACT_COLUMNS, EVENT_COLUMNS
from retention.mapping import MappedColumns
from retention.records import ContractRecord, records_to_frames

# The terms a file cannot give: each contract made from a file has these, as a ContractRecord has by default.
FILE_CONTRACT = ContractRecord(monthly_fee_cents=0)


def mapped_frames(columns: MappedColumns, *, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows, contracts and events frames that `records_to_frames` makes of `columns.records()`."""
    if not len(columns):
        return records_to_frames([], as_of=as_of)
    # A file has no events: one row per customer as of the export.
    return _rows(columns, as_of), _contracts(columns), pd.DataFrame([], columns=EVENT_COLUMNS)


def _rows(columns: MappedColumns, as_of: datetime) -> pd.DataFrame:
    data = {
        "key": columns.external_id,
        "as_of": _as_in_records([as_of], np.zeros(len(columns), dtype=np.intp)),
        "segment": columns.segment,
        "value_tier": columns.value_tier,
        "region": columns.region,
        "signup_date": columns.signup_date,
        "products": columns.products,
    }
    for name, column in columns.attributes.items():
        data[ATTRIBUTE_PREFIX + name] = _as_in_records(column.values, column.codes)
    return pd.DataFrame(data)


def _contracts(columns: MappedColumns) -> pd.DataFrame:
    """One contract per row with a monthly fee, in row order."""
    with_fee = pd.notna(columns.monthly_fee_cents)
    count = int(with_fee.sum())
    if not count:
        return pd.DataFrame([], columns=CONTRACT_COLUMNS)
    data = {
        "key": columns.external_id[with_fee],
        "bundle": np.full(count, FILE_CONTRACT.bundle, dtype=object),
        "contract_type": columns.contract_type[with_fee],
        "monthly_fee": np.array([cents / 100 for cents in columns.monthly_fee_cents[with_fee]], dtype=float),
        "start_date": np.full(count, FILE_CONTRACT.start_date, dtype=object),
        "end_date": columns.contract_end[with_fee],
        "discount": np.full(count, FILE_CONTRACT.discount_cents / 100),
        "discount_end": np.full(count, FILE_CONTRACT.discount_end, dtype=object),
    }
    return pd.DataFrame(data)


def _as_in_records(values: Sequence[object], codes: np.ndarray) -> ExtensionArray:
    """Per row, `values[code]` in the column that pandas makes of records holding them.

    pandas picks the dtype of such a column from the values the rows hold (whole numbers with an empty
    cell become floats, a text among numbers keeps them all as objects), so it is picked here from the
    same values, once each, with the same constructor.
    """
    held = np.bincount(codes, minlength=len(values)) > 0
    column = pd.DataFrame([(value,) for value, is_held in zip(values, held, strict=True) if is_held])[0]
    return column.array.take(np.cumsum(held)[codes] - 1)
