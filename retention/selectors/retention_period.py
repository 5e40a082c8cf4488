"""Reads for the retention period of former customers: who has been gone long enough that their data goes."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Subquery

from retention.models import Contract, Customer, Decision, RenewalResult, ServiceEvent


def former_customers_due(*, days: int, today: dt.date) -> list[Customer]:
    """Customers who left at least `days` ago and of whom nothing has been heard since.

    Left: their latest renewal result says they churned, and no contract of theirs is active. Nothing heard:
    no renewal result, advice, service event or change to their record in those days, so a customer who came
    back, called or was sent again by the CRM is kept. Each test is a subquery of its own, so a customer's many
    events and decisions are never joined with each other.
    """
    cutoff_day = today - dt.timedelta(days=days)
    cutoff = dt.datetime.combine(cutoff_day, dt.time.min, tzinfo=dt.UTC)
    mine = {"customer": OuterRef("pk")}
    latest_result = RenewalResult.objects.filter(**mine).order_by("-date", "-pk").values("result")[:1]
    return list(
        Customer.objects.not_erased()
        .alias(last_result=Subquery(latest_result))
        .filter(last_result=RenewalResult.Result.CHURNED, updated_at__lt=cutoff)
        .exclude(Exists(Contract.objects.filter(**mine, status=Contract.Status.ACTIVE)))
        .exclude(Exists(RenewalResult.objects.filter(**mine, date__gt=cutoff_day)))
        .exclude(Exists(Decision.objects.filter(**mine, created_at__gte=cutoff)))
        .exclude(Exists(ServiceEvent.objects.filter(**mine, occurred_at__gte=cutoff)))
        .order_by("pk")
    )
