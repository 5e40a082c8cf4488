"""Reads of customer history in the shape the feature function takes (see ml.features)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ml.features import ATTRIBUTE_PREFIX, CONTRACT_COLUMNS, EVENT_COLUMNS, ROW_COLUMNS
from retention.models import Contract, Customer, RenewalResult, ServiceEvent

CHUNK = 900  # keeps IN (...) lists under SQLite's variable limit


def customer_rows(customers: Sequence[Customer], as_of: Sequence[dt.datetime]) -> pd.DataFrame:
    records = []
    for customer, moment in zip(customers, as_of, strict=True):
        row = {
            "key": customer.pk,
            "as_of": moment,
            "segment": customer.segment,
            "value_tier": customer.value_tier,
            "region": customer.region,
            "signup_date": customer.signup_date,
            "products": customer.products,
        }
        row.update({ATTRIBUTE_PREFIX + name: value for name, value in (customer.attributes or {}).items()})
        records.append(row)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=ROW_COLUMNS)
    # The attributes in the order of their names: PostgreSQL's JSON keeps keys in an order of its own, SQLite in
    # the order sent, and the model's features (whose order its training draws follow) must not depend on either.
    attributes = sorted(column for column in frame.columns if column.startswith(ATTRIBUTE_PREFIX))
    return frame[[column for column in frame.columns if not column.startswith(ATTRIBUTE_PREFIX)] + attributes]


def contracts_frame(customer_ids: Sequence[int]) -> pd.DataFrame:
    fields = [
        "customer_id",
        "bundle",
        "contract_type",
        "monthly_fee_cents",
        "start_date",
        "end_date",
        "discount_cents",
        "discount_end",
    ]
    values = []
    for chunk in _chunks(customer_ids):
        values.extend(Contract.objects.filter(customer_id__in=chunk).values_list(*fields))
    frame = pd.DataFrame(values, columns=fields)
    frame["monthly_fee_cents"] = frame["monthly_fee_cents"].astype(float) / 100
    frame["discount_cents"] = frame["discount_cents"].astype(float) / 100
    frame.columns = CONTRACT_COLUMNS
    return frame


def events_frame(customer_ids: Sequence[int], *, before: dt.datetime | None = None) -> pd.DataFrame:
    """Events of these customers; `before` trims what no row can use anyway."""
    values = []
    for chunk in _chunks(customer_ids):
        query = ServiceEvent.objects.filter(customer_id__in=chunk)
        if before is not None:
            query = query.filter(occurred_at__lt=before)
        values.extend(query.values_list("customer_id", "kind", "occurred_at", "value"))
    return pd.DataFrame(values, columns=EVENT_COLUMNS)


def customer_history_frames(
    *, customers: Sequence[Customer], as_of: dt.datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three frames for serving: every customer as of the same moment."""
    ids = [customer.pk for customer in customers]
    rows = customer_rows(customers, [as_of] * len(customers))
    return rows, contracts_frame(ids), events_frame(ids, before=as_of)


def profiling_objector_ids() -> set[int]:
    """The primary keys of the customers who objected to profiling: their logged outcomes train no model."""
    return set(Customer.objects.filter(objects_to_profiling=True).values_list("pk", flat=True))


def profiling_objector_external_ids() -> frozenset[str]:
    """The external ids of the customers who objected to profiling: a file naming them is not scored for them."""
    return frozenset(Customer.objects.filter(objects_to_profiling=True).values_list("external_id", flat=True))


def labelled_history_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """One row per renewal result, as of its date, with its label (1 = churned)."""
    # An erased customer has no history left to describe them as of any renewal; one who objected to profiling
    # takes no part in training the model that would profile others.
    labelled = RenewalResult.objects.filter(customer__in=Customer.objects.may_be_profiled())
    results = list(labelled.order_by("date", "pk").values_list("customer_id", "date", "result"))
    ids = sorted({customer_id for customer_id, _, _ in results})
    customers = {}
    for chunk in _chunks(ids):
        customers.update(Customer.objects.in_bulk(chunk))
    moments = [dt.datetime.combine(date, dt.time.min, tzinfo=dt.UTC) for _, date, _ in results]
    rows = customer_rows([customers[customer_id] for customer_id, _, _ in results], moments)
    labels = np.array([result == RenewalResult.Result.CHURNED for _, _, result in results], dtype=int)
    return rows, contracts_frame(ids), events_frame(ids), labels


def _chunks(values: Sequence[int]):
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def stored_renewal_results(external_ids: Sequence[str]) -> dict[str, list[tuple[dt.date, str]]]:
    """The renewal results already recorded for these customers (by external id), oldest first."""
    results: dict[str, list[tuple[dt.date, str]]] = {}
    for chunk in _chunks(list(external_ids)):
        rows = RenewalResult.objects.filter(customer__external_id__in=chunk).values_list(
            "customer__external_id", "date", "result"
        )
        for external_id, date, result in rows.order_by("date"):
            results.setdefault(external_id, []).append((date, result))
    return results
