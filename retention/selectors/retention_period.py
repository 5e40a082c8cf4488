"""Reads for the retention period of former customers: who has been gone long enough that their data goes."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q, Subquery

from retention.models import Contract, Customer, Decision, RenewalResult, ServiceEvent


def former_customers_due(*, days: int, today: dt.date) -> list[Customer]:
    """Customers who left at least `days` ago and of whom nothing has been heard since.

    Left: their latest renewal result says they churned. Nothing heard since it: no later renewal result, no
    contract that starts after it or runs past it, and no advice, service event or change to their record's own
    fields in those days. A contract a CRM file or the API's short form made (no start, no end, still marked
    active) says nothing of a return. The CRM sending the same record again changes nothing, so does not count.
    Each test is a subquery of its own, so a customer's many events and decisions are never joined together.
    """
    cutoff_day = today - dt.timedelta(days=days)
    cutoff = dt.datetime.combine(cutoff_day, dt.time.min, tzinfo=dt.UTC)
    mine = {"customer": OuterRef("pk")}
    latest = RenewalResult.objects.filter(**mine).order_by("-date", "-pk")
    left_on = OuterRef("left_on")
    since_they_left = Contract.objects.filter(customer=OuterRef("pk")).filter(
        Q(start_date__gt=left_on) | Q(status=Contract.Status.ACTIVE, end_date__gt=left_on)
    )
    return list(
        Customer.objects.not_erased()
        .annotate(last_result=Subquery(latest.values("result")[:1]), left_on=Subquery(latest.values("date")[:1]))
        .filter(last_result=RenewalResult.Result.CHURNED, left_on__lte=cutoff_day, updated_at__lt=cutoff)
        .exclude(Exists(since_they_left))
        .exclude(Exists(Decision.objects.filter(**mine, created_at__gte=cutoff)))
        .exclude(Exists(ServiceEvent.objects.filter(**mine, occurred_at__gte=cutoff)))
        .order_by("pk")
    )
