"""The one feature function: a customer's row as of a date.

Training builds rows as of each renewal date, serving builds them as of now, and
file scoring builds them from a CRM file; all three call `build_features` with the
same three frames, so the model always sees features made the same way. Nothing
dated on or after a row's `as_of` reaches that row.

Input frames (plain pandas, no Django):

rows       one row per (customer, as_of): key, as_of (UTC timestamp), segment,
           value_tier, region, signup_date, products (list or "+"-joined text),
           and any number of "attr:<name>" columns from the CRM.
contracts  key, bundle, contract_type, monthly_fee (euros), start_date, end_date,
           discount (euros a month), discount_end. A missing start date means
           "in force for as long as we know".
events     key, kind, occurred_at (UTC timestamp), value.

Protected attributes are never passed in: they live elsewhere and stay there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

ATTRIBUTE_PREFIX = "attr:"
DAYS_PER_MONTH = 30.4375
# Up to this many rows (a recommendation has one), `build_features` works row by row on arrays:
# the joins and group-bys of the vectorised path cost some milliseconds per call whatever the size.
# Both give the same frame, value for value (tests/ml/test_fast_paths.py compares them).
FEW_ROWS = 16

ROW_COLUMNS = ["key", "as_of", "segment", "value_tier", "region", "signup_date", "products"]
CONTRACT_COLUMNS = [
    "key",
    "bundle",
    "contract_type",
    "monthly_fee",
    "start_date",
    "end_date",
    "discount",
    "discount_end",
]
EVENT_COLUMNS = ["key", "kind", "occurred_at", "value"]

CATEGORICAL_CORE = ["segment", "value_tier", "region", "products", "bundle", "contract_type"]
# (feature name, event kind, window in days)
EVENT_COUNTS = [
    ("complaints_30d", "complaint", 30),
    ("complaints_90d", "complaint", 90),
    ("complaints_365d", "complaint", 365),
    ("outages_30d", "outage", 30),
    ("outages_90d", "outage", 90),
    ("outages_365d", "outage", 365),
    ("contacts_90d", "contact", 90),
    ("contacts_365d", "contact", 365),
    ("payment_problems_365d", "payment_problem", 365),
    ("competitor_offers_90d", "competitor_offer", 90),
]


def empty_contracts() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in CONTRACT_COLUMNS})


def empty_events() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype="object") for column in EVENT_COLUMNS})


def build_features(
    rows: pd.DataFrame,
    contracts: pd.DataFrame,
    events: pd.DataFrame,
    new_customer_fees: Mapping[str, float],
) -> pd.DataFrame:
    """Feature rows aligned with `rows` (same index order): numeric floats and raw categorical text.

    `new_customer_fees` maps a bundle code to what a new customer pays for it a month, in euros.
    """
    rows = rows.reset_index(drop=True)
    if len(rows) <= FEW_ROWS:
        return _few_rows_features(rows, contracts, events, new_customer_fees)
    as_of = _utc(rows["as_of"])
    features = pd.DataFrame(index=rows.index)
    features["tenure_months"] = _months_between(_utc(rows["signup_date"]), as_of)
    for column in ("segment", "value_tier", "region"):
        features[column] = _text(rows[column])
    features["products"] = rows["products"].map(_products_text)
    features["n_products"] = rows["products"].map(_products_count).astype(float)
    contract = _contract_as_of(rows, as_of, contracts)
    features = features.join(_contract_features(contract, as_of, new_customer_fees))
    features = features.join(_event_features(rows, as_of, events))
    for column in [c for c in rows.columns if c.startswith(ATTRIBUTE_PREFIX)]:
        features[column] = rows[column].to_numpy()
    return features


def _utc(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype) and values.dtype == UTC_NANOSECONDS:
        return values  # already what the parse gives; parsing again costs more than a row's features
    return pd.to_datetime(values, utc=True, errors="coerce")


UTC_NANOSECONDS = pd.DatetimeTZDtype("ns", "UTC")


def _months_between(start: pd.Series, end: pd.Series) -> pd.Series:
    return ((end - start).dt.total_seconds() / 86400.0 / DAYS_PER_MONTH).astype(float)


def _days_between(start: pd.Series, end: pd.Series) -> pd.Series:
    return ((end - start).dt.total_seconds() / 86400.0).astype(float)


def _text(values: pd.Series) -> pd.Series:
    return values.map(lambda value: None if value is None or value == "" or value != value else str(value))


def _product_list(value) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    parts = value.replace(",", "+").replace(";", "+").split("+") if isinstance(value, str) else list(value)
    return sorted({str(part).strip().lower() for part in parts if str(part).strip()})


def _products_text(value) -> str | None:
    products = _product_list(value)
    return "+".join(products) if products else None


def _products_count(value) -> int:
    return len(_product_list(value))


def _contract_as_of(rows: pd.DataFrame, as_of: pd.Series, contracts: pd.DataFrame) -> pd.DataFrame:
    """Per row, the latest contract that had started by its as-of date (index aligned with rows)."""
    frame = pd.DataFrame({"key": rows["key"].to_numpy(), "as_of": as_of.to_numpy(), "row": rows.index})
    if contracts.empty:
        return pd.DataFrame(index=rows.index, columns=CONTRACT_COLUMNS[1:])
    candidates = frame.merge(contracts, on="key", how="inner")
    start = _utc(candidates["start_date"])
    candidates = candidates.assign(_start=start.fillna(pd.Timestamp.min.tz_localize("UTC")))
    candidates = candidates[candidates["_start"] < candidates["as_of"]]
    latest = candidates.sort_values(["row", "_start"]).drop_duplicates("row", keep="last")
    return latest.set_index("row").reindex(rows.index)[CONTRACT_COLUMNS[1:]]


def _contract_features(
    contract: pd.DataFrame, as_of: pd.Series, new_customer_fees: Mapping[str, float]
) -> pd.DataFrame:
    fee = pd.to_numeric(contract["monthly_fee"], errors="coerce").astype(float)
    discount_end = _utc(contract["discount_end"])
    discount = pd.to_numeric(contract["discount"], errors="coerce").fillna(0.0).astype(float)
    discount_running = discount_end.isna() | (discount_end > as_of)
    discount = discount.where(discount_running, 0.0)
    bundle = _text(contract["bundle"])
    new_fee = bundle.map(lambda code: new_customer_fees.get(code, np.nan) if code else np.nan).astype(float)
    paid = fee - discount
    out = pd.DataFrame(index=contract.index)
    out["bundle"] = bundle
    out["contract_type"] = _text(contract["contract_type"])
    out["monthly_fee"] = paid
    out["new_customer_fee"] = new_fee
    out["price_gap_vs_new"] = paid - new_fee
    out["discount_monthly"] = discount
    days_to_discount_end = _days_between(as_of, discount_end)
    out["discount_ends_in_days"] = days_to_discount_end.where(discount > 0)
    out["days_to_contract_end"] = _days_between(as_of, _utc(contract["end_date"]))
    out["contract_age_months"] = _months_between(_utc(contract["start_date"]), as_of)
    return out


def _event_features(rows: pd.DataFrame, as_of: pd.Series, events: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=rows.index)
    names = [name for name, _, _ in EVENT_COUNTS] + ["nps_last", "nps_trend", "days_since_complaint"]
    if events.empty:
        for name, _, _ in EVENT_COUNTS:
            out[name] = 0.0
        out[["nps_last", "nps_trend", "days_since_complaint"]] = np.nan
        return out[names]
    frame = pd.DataFrame({"key": rows["key"].to_numpy(), "as_of": as_of.to_numpy(), "row": rows.index})
    seen = frame.merge(events[EVENT_COLUMNS], on="key", how="inner")
    seen["occurred_at"] = _utc(seen["occurred_at"])
    seen = seen[seen["occurred_at"] < seen["as_of"]]
    seen["age_days"] = _days_between(seen["occurred_at"], seen["as_of"])
    # All windowed counts in one group-by: one flag column per (kind, window), summed per row.
    kinds, ages = seen["kind"].to_numpy(), seen["age_days"].to_numpy()
    flags = pd.DataFrame(
        {name: ((kinds == kind) & (ages <= window)).astype(float) for name, kind, window in EVENT_COUNTS},
        index=seen.index,
    )
    flags["row"] = seen["row"].to_numpy()
    counts = flags.groupby("row").sum().reindex(rows.index, fill_value=0.0)
    for name, _, _ in EVENT_COUNTS:
        out[name] = counts[name].astype(float)
    out = out.join(_nps_features(seen, rows.index))
    complaints = seen[seen["kind"] == "complaint"]
    out["days_since_complaint"] = complaints.groupby("row")["age_days"].min().reindex(rows.index)
    return out[names]


def _nps_features(seen: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The latest NPS answer and its change against the one before."""
    answers = seen[seen["kind"] == "nps"].sort_values(["row", "occurred_at"])
    answers = answers.assign(value=pd.to_numeric(answers["value"], errors="coerce"))
    last = answers.groupby("row")["value"].last()
    previous = answers.groupby("row")["value"].nth(-2)
    previous = pd.Series(previous.to_numpy(), index=answers.loc[previous.index, "row"]) if len(previous) else previous
    out = pd.DataFrame(index=index)
    out["nps_last"] = last.reindex(index).astype(float)
    out["nps_trend"] = (last - previous.reindex(last.index)).reindex(index).astype(float)
    return out


def _few_rows_features(
    rows: pd.DataFrame, contracts: pd.DataFrame, events: pd.DataFrame, new_customer_fees: Mapping[str, float]
) -> pd.DataFrame:
    """`build_features` for a handful of rows: each row's contract and events picked out with numpy,
    instants as int64 nanoseconds (pandas' datetime arithmetic costs more than the features on so few rows)."""
    as_of = _instants(rows["as_of"])
    keys = rows["key"].to_numpy()
    products = rows["products"].to_numpy()
    columns: dict[str, object] = {
        "tenure_months": _days_from(_instants(rows["signup_date"]), as_of) / DAYS_PER_MONTH,
        **{name: _text_array(rows[name]) for name in ("segment", "value_tier", "region")},
        "products": _object_array([_products_text(value) for value in products]),
        "n_products": np.array([_products_count(value) for value in products], dtype=float),
    }
    columns.update(_few_contract_features(keys, as_of, contracts, new_customer_fees))
    columns.update(_few_event_features(keys, as_of, events))
    for name in [c for c in rows.columns if c.startswith(ATTRIBUTE_PREFIX)]:
        columns[name] = rows[name].to_numpy()
    return pd.DataFrame(columns, index=rows.index)


def _few_contract_features(
    keys: np.ndarray, as_of: np.ndarray, contracts: pd.DataFrame, new_customer_fees: Mapping[str, float]
) -> dict[str, np.ndarray]:
    contracts = contracts if not contracts.empty else empty_contracts()
    starts, ends, discount_ends = (
        _instants(contracts[column]) for column in ("start_date", "end_date", "discount_end")
    )
    chosen = _latest_contracts(keys, as_of, contracts["key"].to_numpy(), starts)
    fee = _numbers(contracts["monthly_fee"], chosen)
    discount = np.nan_to_num(_numbers(contracts["discount"], chosen), nan=0.0)
    discount_end = _instants_taken(discount_ends, chosen)
    # A discount without an end runs on; one that ends runs while its end is after the as-of instant.
    discount_running = (discount_end == NAT) | ((discount_end > as_of) & (as_of != NAT))
    discount = np.where(discount_running, discount, 0.0)
    bundle = _text_array(_taken(contracts["bundle"], chosen))
    new_fee = np.array([new_customer_fees.get(code, np.nan) if code else np.nan for code in bundle], dtype=float)
    paid = fee - discount
    return {
        "bundle": bundle,
        "contract_type": _text_array(_taken(contracts["contract_type"], chosen)),
        "monthly_fee": paid,
        "new_customer_fee": new_fee,
        "price_gap_vs_new": paid - new_fee,
        "discount_monthly": discount,
        "discount_ends_in_days": np.where(discount > 0, _days_from(as_of, discount_end), np.nan),
        "days_to_contract_end": _days_from(as_of, _instants_taken(ends, chosen)),
        "contract_age_months": _days_from(_instants_taken(starts, chosen), as_of) / DAYS_PER_MONTH,
    }


def _latest_contracts(keys: np.ndarray, as_of: np.ndarray, contract_keys: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per row, the position of the latest contract started before its as-of instant, or -1.

    A contract without a start date counts as started before anything; of contracts that
    started together the last one listed wins, as in the vectorised path's stable sort.
    """
    chosen = np.full(len(keys), -1)
    for row, key in enumerate(keys):
        mine = np.flatnonzero(contract_keys == key)
        if as_of[row] == NAT or not len(mine):
            continue
        started = mine[starts[mine] < as_of[row]]
        if len(started):
            latest = starts[started]
            chosen[row] = started[np.flatnonzero(latest == latest.max())[-1]]
    return chosen


def _few_event_features(keys: np.ndarray, as_of: np.ndarray, events: pd.DataFrame) -> dict[str, np.ndarray]:
    rows = len(keys)
    columns = {name: np.zeros(rows) for name, _, _ in EVENT_COUNTS}
    nps_last, nps_trend, since_complaint = np.full(rows, np.nan), np.full(rows, np.nan), np.full(rows, np.nan)
    if not events.empty and len(keys):
        event_keys, kinds = events["key"].to_numpy(), events["kind"].to_numpy()
        occurred = _instants(events["occurred_at"])
        values = pd.to_numeric(events["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        for row, key in enumerate(keys):
            mine = np.flatnonzero(event_keys == key)
            # An event without an instant, or a row without one, compares as pandas' NaT does: never before.
            mine = mine[(occurred[mine] != NAT) & (occurred[mine] < as_of[row]) & (as_of[row] != NAT)]
            ages = _days_from(occurred[mine], np.full(len(mine), as_of[row]))
            for name, kind, window in EVENT_COUNTS:
                columns[name][row] = float(((kinds[mine] == kind) & (ages <= window)).sum())
            complaint_ages = ages[kinds[mine] == "complaint"]
            since_complaint[row] = complaint_ages.min() if len(complaint_ages) else np.nan
            nps_last[row], nps_trend[row] = _nps_of(mine[kinds[mine] == "nps"], occurred, values)
    return {**columns, "nps_last": nps_last, "nps_trend": nps_trend, "days_since_complaint": since_complaint}


def _nps_of(answers: np.ndarray, occurred: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """The latest known NPS answer, and its change against the answer just before the latest (known or not)."""
    if not len(answers):
        return np.nan, np.nan
    in_time = answers[np.argsort(occurred[answers], kind="stable")]
    answered = values[in_time]
    known = answered[~np.isnan(answered)]
    last = known[-1] if len(known) else np.nan
    previous = answered[-2] if len(answered) > 1 else np.nan
    return float(last), float(last - previous)


NAT = np.iinfo(np.int64).min


def _instants(values: pd.Series) -> np.ndarray:
    """`_utc` as int64 nanoseconds (NaT as NAT). Calendar dates, as the database gives them, are
    counted from their ordinal: midnight UTC, as the parse makes them, at a fraction of its cost."""
    if values.dtype == object and all(type(value) is dt.date or value is None for value in values):
        return np.array([NAT if value is None else _date_nanoseconds(value) for value in values], dtype=np.int64)
    return _nanoseconds(_utc(values).array)


UNIX_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
NANOSECONDS_PER_DAY = 86_400 * 10**9


def _date_nanoseconds(date: dt.date) -> int:
    return (date.toordinal() - UNIX_EPOCH_ORDINAL) * NANOSECONDS_PER_DAY


def _nanoseconds(moments) -> np.ndarray:
    """Instants as int64 nanoseconds, NaT as the smallest int64 (before every real instant)."""
    return np.asarray(moments.as_unit("ns").asi8)


def _instants_taken(instants: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """The chosen instants (-1: none, NaT)."""
    if not len(instants):
        return np.full(len(chosen), NAT)
    return np.where(chosen >= 0, instants[chosen], NAT)


def _days_from(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """`_days_between` on int64 nanoseconds, with pandas' arithmetic: seconds, then days; NaT gives NaN."""
    known = (start != NAT) & (end != NAT)
    seconds = np.where(known, end - np.where(known, start, 0), 0) / 1e9
    return np.where(known, seconds / 86400.0, np.nan)


def _taken(column: pd.Series, chosen: np.ndarray):
    """The chosen rows of a column (-1: none), keeping its dtype where it can hold a gap."""
    return column.array.take(chosen, allow_fill=True)


def _numbers(column: pd.Series, chosen: np.ndarray) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(chosen >= 0, numbers[chosen] if len(numbers) else np.nan, np.nan)


def _text_array(values) -> np.ndarray:
    return _object_array([None if value is None or value == "" or value != value else str(value) for value in values])


def _object_array(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
