"""Reads for the retention period of former customers: who has been gone long enough that their data goes."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef

from retention.models import Customer, Decision, ServiceEvent
from retention.selectors.budget import day_start


def former_customers_due(*, days: int, today: dt.date) -> list[Customer]:
    """Customers who left at least `days` ago (see `CustomerQuerySet.former`) and of whom nothing has been heard
    since those days began: no advice and no service event in them.

    The clock runs from the day they left, not from when the CRM last sent or changed their record: a CRM that
    imports its backlog of customers gone for years, or corrects one, does not keep them for another period.
    Each test is a subquery of its own, so a customer's many events and decisions are never joined together.
    """
    cutoff_day = today - dt.timedelta(days=days)
    # Local midnight, as every day here begins: from UTC midnight, a complaint made in that day's first hour or two
    # in Amsterdam was counted before the period and its customer erased a day early.
    cutoff = day_start(cutoff_day)
    mine = {"customer": OuterRef("pk")}
    return list(
        Customer.objects.not_erased()
        .former()
        .filter(left_on__lte=cutoff_day)
        .exclude(Exists(Decision.objects.filter(**mine, created_at__gte=cutoff)))
        .exclude(Exists(ServiceEvent.objects.filter(**mine, occurred_at__gte=cutoff)))
        .order_by("pk")
    )
