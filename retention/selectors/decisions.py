"""Reads of the decision log."""

from __future__ import annotations

import datetime as dt

from retention.models import Customer, DecisionAction


def offers_declined_since(*, customer: Customer, since: dt.datetime) -> frozenset[str]:
    """Offer codes this customer declined on or after `since`, on any channel."""
    codes = DecisionAction.objects.filter(
        decision__customer=customer, kind=DecisionAction.Kind.DECLINED, created_at__gte=since
    ).values_list("offer_code", flat=True)
    return frozenset(codes)
