"""Renewal results reported by a CRM system: the labels the churn model learns from.

A result is a fact about a customer on a day; reporting the same one again changes nothing,
so a CRM can resend a batch after a timeout without creating duplicates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ml.jobs import retrain_check_enqueue
from retention.labels import label_already_recorded
from retention.models import Customer, RenewalResult
from retention.records import RenewalRecord
from retention.selectors.api import customers_by_external_id
from retention.selectors.history import stored_renewal_results


@dataclass(frozen=True)
class RenewalReport:
    customer_id: str  # the customer's external id
    result: str
    date: dt.date


@dataclass(frozen=True)
class RenewalSummary:
    received: int
    created: int
    already_recorded: int


def renewal_results_record(
    *, reports: Sequence[RenewalReport], source: str = RenewalResult.Source.CRM
) -> RenewalSummary:
    """Store every report, or none: unknown customers or impossible results raise ValidationError.

    The customers' rows are locked while what is stored is read and written: two reports of one customer's day
    arriving together, one renewed and one churned, would otherwise each find the other absent and both be stored.
    """
    with transaction.atomic():
        customers = customers_by_external_id(external_ids=[report.customer_id for report in reports])
        _lock(customers.values())
        _validate(reports, customers)
        new = _not_yet_recorded(reports, customers, source)
        # Kept as a second guard: the same result reported at once is skipped by the unique constraint.
        RenewalResult.objects.bulk_create(new, ignore_conflicts=True)
        if new:
            # New labels may make a retrain due; the worker counts them once they are committed.
            transaction.on_commit(retrain_check_enqueue)
    return RenewalSummary(received=len(reports), created=len(new), already_recorded=len(reports) - len(new))


def _lock(customers: Iterable[Customer]) -> None:
    # In one order, so two reports naming the same customers the other way round cannot wait on each other.
    pks = sorted(customer.pk for customer in customers)
    list(Customer.objects.select_for_update().filter(pk__in=pks).order_by("pk").values_list("pk", flat=True))


def _validate(reports: Sequence[RenewalReport], customers: dict[str, Customer]) -> None:
    errors: dict[str, list[str]] = {}
    unknown = sorted({r.customer_id for r in reports if r.customer_id not in customers})
    if unknown:
        errors["customer_id"] = [f"no customer with external id {', '.join(repr(u) for u in unknown)}"]
    if bad := sorted({r.result for r in reports if r.result not in RenewalResult.Result.values}):
        errors["result"] = [f"must be renewed or churned, not {', '.join(bad)}"]
    today = timezone.localdate()
    if future := sorted({_named(r) for r in reports if r.date > today}):
        errors["date"] = [f"a renewal result cannot be dated in the future ({', '.join(future)})"]
    known = [r for r in reports if r.customer_id in customers]
    if early := sorted({_named(r) for r in known if _before_signup(r, customers[r.customer_id])}):
        errors.setdefault("date", []).append(f"a renewal result cannot be dated before the signup ({', '.join(early)})")
    if clashes := _contradictions(known, customers):
        errors["result"] = [
            f"{', '.join(clashes)}: a customer either renewed or churned on a day; a result once recorded stays"
        ]
    if errors:
        raise ValidationError(errors)


def _named(report: RenewalReport) -> str:
    return f"{report.customer_id} on {report.date}"


def _before_signup(report: RenewalReport, customer: Customer) -> bool:
    return customer.signup_date is not None and report.date < customer.signup_date


def _contradictions(reports: Sequence[RenewalReport], customers: dict[str, Customer]) -> list[str]:
    """Customers and days reported with both results, in this batch or against what is stored."""
    results: dict[tuple[str, dt.date], set[str]] = {}
    for report in reports:
        results.setdefault((report.customer_id, report.date), set()).add(report.result)
    by_pk = {customers[customer_id].pk: customer_id for customer_id, _ in results}
    stored = RenewalResult.objects.filter(customer_id__in=by_pk, date__in={date for _, date in results}).values_list(
        "customer_id", "date", "result"
    )
    for customer_pk, date, result in stored:
        if (by_pk[customer_pk], date) in results:
            results[(by_pk[customer_pk], date)].add(result)
    return sorted(f"{customer_id} on {date}" for (customer_id, date), kinds in results.items() if len(kinds) > 1)


def _not_yet_recorded(
    reports: Sequence[RenewalReport], customers: dict[str, Customer], source: str
) -> list[RenewalResult]:
    """The results to store: a report of a result recorded on that day, or within LABEL_REPEAT_DAYS with no other
    between (the same renewal reported again, as a CRM file's label is judged), or repeated in the list, is not."""
    recorded = stored_renewal_results(list(customers))
    new = []
    for report in sorted(reports, key=lambda report: report.date):
        history = recorded.setdefault(report.customer_id, [])
        if label_already_recorded(RenewalRecord(result=report.result, date=report.date), history):
            continue
        history.append((report.date, report.result))
        customer = customers[report.customer_id]
        new.append(RenewalResult(customer=customer, result=report.result, date=report.date, source=source))
    return new
