"""Writes of the access log: who opened or read which customer's data, and its expiry (see `CustomerAccess`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from retention.models import ApiClient, Customer, CustomerAccess

# A scores request names up to a thousand customers; their rows go in with a few inserts.
BATCH_SIZE = 500


def accesses_record(*, customers: Iterable[Customer], purpose: str, reader) -> int:
    """One row per customer: `reader` is the agent's user or the CRM's API client. Returns how many."""
    if purpose not in CustomerAccess.Purpose.values:
        raise ValueError(f"unknown access purpose {purpose!r}")
    who = {"api_client": reader} if isinstance(reader, ApiClient) else {"user": reader}
    now = timezone.now()
    rows = [CustomerAccess(customer=customer, at=now, purpose=purpose, **who) for customer in customers]
    CustomerAccess.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    return len(rows)


def accesses_expire(*, now: dt.datetime | None = None) -> int:
    """Remove the rows older than ACCESS_LOG_DAYS; how many went."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.ACCESS_LOG_DAYS)
    return CustomerAccess.objects.filter(at__lt=cutoff).delete()[0]
