"""Writes of customers and their history: the only place that stores Customer, Contract and ServiceEvent rows
from outside data (CRM files, the API, the simulator), and renewal results that arrive with them
(results reported on their own go through retention.services.renewals)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from retention.models import Contract, Customer, ErasedCustomerId, ProtectedAttributes, RenewalResult, ServiceEvent
from retention.records import CustomerRecord
from retention.selectors.erased_ids import erased_ids_among, key_fingerprint
from retention.services.erasure import ERASED_ID_PREFIX, erased_refusals_lift

UPSERT_BATCH_SIZE = 1000
# Numbers the API's address of a customer (/api/v1/customers/{external_id}/) cannot name: the path is an operation's.
ADDRESS_WORDS = frozenset({"bulk"})
# Who lifted a refusal found in force for a number a stored customer holds (see _without_erased).
LAPSED = "the service: the number is a stored customer's again"
CUSTOMER_FIELDS = ["display_name", "phone", "segment", "value_tier", "signup_date", "region", "products", "attributes"]
CONTRACT_FIELDS = [
    "bundle",
    "contract_type",
    "monthly_fee_cents",
    "end_date",
    "discount_cents",
    "discount_end",
    "status",
]
SEGMENTS = set(Customer.Segment.values)
VALUE_TIERS = set(Customer.ValueTier.values) | {""}
EVENT_KINDS = set(ServiceEvent.Kind.values)
RENEWAL_RESULTS = set(RenewalResult.Result.values)
CONTRACT_STATUSES = set(Contract.Status.values)


@dataclass
class UpsertSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    contracts: int = 0
    events: int = 0
    renewals: int = 0
    # External ids of customers erased at their request, whose records were not stored (see ErasedCustomerId).
    erased: list[str] = field(default_factory=list)

    def add(self, other: UpsertSummary) -> None:
        for name in ("created", "updated", "unchanged", "contracts", "events", "renewals"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.erased += other.erased


def record_errors(record: CustomerRecord) -> dict[str, list[str]]:
    """Field errors of one record, empty when it can be stored."""
    errors: dict[str, list[str]] = {}

    def fail(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not record.external_id or len(record.external_id) > 100:
        fail("external_id", "must be 1 to 100 characters")
    elif record.external_id.startswith(ERASED_ID_PREFIX):
        fail("external_id", f"may not start with {ERASED_ID_PREFIX!r}: the service names erased customers so")
    elif record.external_id in ADDRESS_WORDS:
        fail(
            "external_id", f"may not be {record.external_id!r}: /api/v1/customers/{record.external_id}/ is an operation"
        )
    if record.segment not in SEGMENTS:
        fail("segment", f"must be one of {', '.join(sorted(SEGMENTS))}, not {record.segment!r}")
    if record.value_tier not in VALUE_TIERS:
        fail("value_tier", f"must be one of low, medium, high, not {record.value_tier!r}")
    for name in ("display_name", "phone", "region"):
        if problem := _too_long(Customer, name, getattr(record, name)):
            fail(name, problem)
    for contract in record.contracts:
        for name in ("bundle", "contract_type"):
            if problem := _too_long(Contract, name, getattr(contract, name)):
                fail("contracts", f"{name} {problem}")
        if contract.monthly_fee_cents < 0 or contract.discount_cents < 0:
            fail("contracts", "fees and discounts cannot be negative")
        if contract.start_date and contract.end_date and contract.end_date < contract.start_date:
            fail("contracts", "a contract ends before it starts")
        if contract.status not in CONTRACT_STATUSES:
            fail("contracts", f"status must be one of {', '.join(sorted(CONTRACT_STATUSES))}")
    for event in record.events:
        if problem := _too_long(ServiceEvent, "note", event.note):
            fail("events", f"note {problem}")
        if event.kind not in EVENT_KINDS:
            fail("events", f"kind must be one of {', '.join(sorted(EVENT_KINDS))}, not {event.kind!r}")
        if event.occurred_at.tzinfo is None:
            fail("events", "occurred_at needs a time zone")
    for renewal in record.renewals:
        if renewal.result not in RENEWAL_RESULTS:
            fail("renewals", f"result must be renewed or churned, not {renewal.result!r}")
    return errors


def _too_long(model, name: str, value: str | None) -> str:
    """The database column's own limit (SQLite would store more, PostgreSQL refuse the whole batch)."""
    limit = model._meta.get_field(name).max_length
    return f"longer than {limit} characters" if value and len(value) > limit else ""


def customers_upsert(
    *, records: Iterable[CustomerRecord], source: str, batch_size: int = UPSERT_BATCH_SIZE
) -> UpsertSummary:
    """Store records by external id, creating or updating; each batch is one transaction.

    Precondition: every record passes `record_errors`; one that does not raises ValidationError
    and its batch is rolled back. Contracts are matched by start date, events by kind and time,
    renewal results by date and result, so loading the same data twice changes nothing.
    """
    summary = UpsertSummary()
    for batch in _batches(records, batch_size):
        summary.add(_upsert_batch(batch, source))
    return summary


def _batches(records: Iterable[CustomerRecord], size: int) -> Iterator[list[CustomerRecord]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


@transaction.atomic
def _upsert_batch(records: Sequence[CustomerRecord], source: str) -> UpsertSummary:
    for record in records:
        if errors := record_errors(record):
            raise ValidationError({record.external_id: [f"{k}: {'; '.join(v)}" for k, v in errors.items()]})
    records = list({record.external_id: record for record in records}.values())  # last one wins
    records, erased = _without_erased(records)
    ids, summary, unchanged = _upsert_customers(records)
    summary.erased = erased
    # Protected values, contracts and service events are the customer's too: a customer whose only change is
    # there was updated, not left unchanged.
    changed = _upsert_protected(records, ids)
    summary.contracts, with_contracts = _upsert_contracts(records, ids)
    summary.events, with_events = _insert_events(records, ids)
    by_pk = {pk: external_id for external_id, pk in ids.items()}
    changed = (changed | {by_pk[pk] for pk in with_contracts | with_events}) & unchanged
    # Heard of now, as a change of their own fields says: the retention period counts from here.
    Customer.objects.filter(pk__in=[ids[external_id] for external_id in changed]).update(updated_at=timezone.now())
    summary.updated += len(changed)
    summary.unchanged -= len(changed)
    summary.renewals = _insert_renewals(records, ids, source)
    return summary


def _without_erased(records: list[CustomerRecord]) -> tuple[list[CustomerRecord], list[str]]:
    """The records less those of customers erased at their request, which are not stored again, and their ids.

    A refusal found under an old secret key (one of SECRET_KEY_FALLBACKS) is moved to the current key, so it
    still holds once the old key is dropped.
    """
    matches = erased_ids_among(record.external_id for record in records)
    for external_id in _stored_again(matches):
        # Stored again while the key its refusal was made under was not configured, or let back while a refusal
        # sat under such a key: that customer's records keep coming in, so the refusal has lapsed.
        erased_refusals_lift(matches.pop(external_id).refusals, allowed_by=LAPSED)
    for match in matches.values():
        if match.under_current_key is None:
            # One refusal in force per digest: any other the id still has stays under its old key, redundant.
            ErasedCustomerId.objects.filter(pk=match.refusal.pk).update(
                digest=match.current_digest, key_id=key_fingerprint()
            )
    return [record for record in records if record.external_id not in matches], sorted(matches)


def _stored_again(matches: dict) -> list[str]:
    """The refused ids that are a stored customer's (not erased) all the same."""
    if not matches:
        return []
    return list(
        Customer.objects.not_erased().filter(external_id__in=list(matches)).values_list("external_id", flat=True)
    )


def _upsert_customers(records: Sequence[CustomerRecord]) -> tuple[dict[str, int], UpsertSummary, set[str]]:
    """Store the customers; returns their primary keys by external id, the counts, and the unchanged ids."""
    existing = Customer.objects.in_bulk([r.external_id for r in records], field_name="external_id")
    incoming = [
        Customer(
            external_id=r.external_id,
            objects_to_profiling=_objection(r, existing.get(r.external_id)),
            **{name: getattr(r, name) for name in CUSTOMER_FIELDS},
        )
        for r in records
    ]
    fields = [*CUSTOMER_FIELDS, "objects_to_profiling"]
    new = [c for c in incoming if c.external_id not in existing]
    changed = [c for c in incoming if c.external_id in existing and _differs(existing[c.external_id], c, fields)]
    if new or changed:
        # One INSERT ... ON CONFLICT statement: far cheaper than per-row or CASE-based updates.
        Customer.objects.bulk_create(
            new + changed,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=[*fields, "updated_at"],
        )
    touched = {c.external_id for c in new} | {c.external_id for c in changed}
    unchanged = {r.external_id for r in records} - touched
    if new:
        ids = dict(
            Customer.objects.filter(external_id__in=[r.external_id for r in records]).values_list("external_id", "pk")
        )
    else:
        ids = {external_id: customer.pk for external_id, customer in existing.items()}
    return ids, UpsertSummary(created=len(new), updated=len(changed), unchanged=len(unchanged)), unchanged


def _objection(record: CustomerRecord, stored: Customer | None) -> bool:
    """The record's word on an objection to profiling, else what is stored: only an explicit no lifts one."""
    if record.objects_to_profiling is not None:
        return record.objects_to_profiling
    return stored.objects_to_profiling if stored is not None else False


def _differs(stored, incoming, fields: list[str]) -> bool:
    return any(getattr(stored, name) != getattr(incoming, name) for name in fields)


def _upsert_protected(records: Sequence[CustomerRecord], ids: dict[str, int]) -> set[str]:
    """Store the protected values as sent, a record without any clearing them (a record is the customer's whole
    state); returns the external ids whose stored values changed."""
    stored = dict(
        ProtectedAttributes.objects.filter(customer_id__in=[ids[r.external_id] for r in records]).values_list(
            "customer_id", "values"
        )
    )
    changed = {r.external_id for r in records if (stored.get(ids[r.external_id]) or {}) != r.protected}
    rows = [ProtectedAttributes(customer_id=ids[r.external_id], values=r.protected) for r in records if r.protected]
    ProtectedAttributes.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["customer"], update_fields=["values"]
    )
    cleared = [ids[r.external_id] for r in records if not r.protected and ids[r.external_id] in stored]
    ProtectedAttributes.objects.filter(customer_id__in=cleared).delete()
    return changed


def _upsert_contracts(records: Sequence[CustomerRecord], ids: dict[str, int]) -> tuple[int, set[int]]:
    """Store new and changed contracts; returns how many, and the customers (primary keys) they belong to."""
    existing = {(c.customer_id, c.start_date): c for c in Contract.objects.filter(customer_id__in=ids.values())}
    new, changed = [], []
    for record in records:
        customer_id = ids[record.external_id]
        for incoming in record.contracts:
            contract = existing.get((customer_id, incoming.start_date))
            if contract is None:
                new.append(
                    Contract(customer_id=customer_id, start_date=incoming.start_date, **_contract_values(incoming))
                )
            elif _differs(contract, incoming, CONTRACT_FIELDS):
                for name, value in _contract_values(incoming).items():
                    setattr(contract, name, value)
                changed.append(contract)
    Contract.objects.bulk_create(new)
    if changed:
        # An upsert on the primary key: one statement instead of bulk_update's per-field CASE expressions.
        Contract.objects.bulk_create(
            changed, update_conflicts=True, unique_fields=["id"], update_fields=CONTRACT_FIELDS
        )
    return len(new) + len(changed), {contract.customer_id for contract in [*new, *changed]}


def _contract_values(incoming) -> dict:
    return {name: getattr(incoming, name) for name in CONTRACT_FIELDS}


def _insert_events(records: Sequence[CustomerRecord], ids: dict[str, int]) -> tuple[int, set[int]]:
    """Store the events not stored yet; returns how many, and the customers (primary keys) they belong to."""
    with_events = [ids[r.external_id] for r in records if r.events]
    if not with_events:
        return 0, set()
    seen = set(
        ServiceEvent.objects.filter(customer_id__in=with_events).values_list("customer_id", "kind", "occurred_at")
    )
    new = []
    for record in records:
        customer_id = ids[record.external_id]
        for event in record.events:
            if (customer_id, event.kind, event.occurred_at) not in seen:
                seen.add((customer_id, event.kind, event.occurred_at))
                new.append(
                    ServiceEvent(
                        customer_id=customer_id,
                        kind=event.kind,
                        occurred_at=event.occurred_at,
                        value=event.value,
                        note=event.note,
                    )
                )
    ServiceEvent.objects.bulk_create(new)
    return len(new), {event.customer_id for event in new}


def _insert_renewals(records: Sequence[CustomerRecord], ids: dict[str, int], source: str) -> int:
    rows = [
        RenewalResult(customer_id=ids[r.external_id], result=renewal.result, date=renewal.date, source=source)
        for r in records
        for renewal in r.renewals
    ]
    RenewalResult.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
