"""Time the bulk customer upsert through the whole API stack (middleware, token, validation, one transaction).

Each run posts new customers (then the same customers changed, an update run) to
POST /api/v1/customers/bulk/ on the configured database; the command removes its
customers and its temporary API client when done.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import statistics
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client

from retention.models import ApiClient, Customer
from retention.services.api_clients import api_client_create

URL = "/api/v1/customers/bulk/"
BAR_SECONDS = 2.0
BAR_RECORDS = 1_000


class Command(BaseCommand):
    help = "Time POST /api/v1/customers/bulk/ with synthetic customers and print the median of several runs."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=1_000, help="Records per request (default 1,000).")
        parser.add_argument("--runs", type=int, default=5, help="Timed runs of each kind (default 5).")

    def handle(self, *args, customers: int, runs: int, **options):
        if not 1 <= customers <= 10_000 or runs < 1:
            raise CommandError("--customers must be 1 to 10,000 and --runs at least 1")
        prefix = f"BENCH-{secrets.token_hex(4)}-"
        client, token = api_client_create(name=f"benchmark {prefix.strip('-')}", scopes=["write_customers"])
        http = Client(SERVER_NAME=_host(), HTTP_AUTHORIZATION=f"Token {token}")
        try:
            self._report(http, prefix, customers, runs)
        finally:
            Customer.objects.filter(external_id__startswith=prefix).delete()
            ApiClient.objects.filter(pk=client.pk).delete()

    def _report(self, http: Client, prefix: str, customers: int, runs: int) -> None:
        self.stdout.write(
            f"{customers:,} customers per request, {runs} run{'s' if runs != 1 else ''} each, on {connection.vendor}"
        )
        _post(http, _payload(f"{prefix}warm-", customers, fee="40.00"))  # first request: imports, caches, query plans
        created, updated = [], []
        for run in range(runs):
            body = _payload(f"{prefix}{run}-", customers, fee="40.00")
            created.append(_post(http, body))
            updated.append(_post(http, _payload(f"{prefix}{run}-", customers, fee="42.50")))
        for label, seconds in (("create", created), ("update", updated)):
            median = statistics.median(seconds)
            self.stdout.write(
                f"{label}: median {median:.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f}), "
                f"{customers / median:,.0f} customers/s" + _against_the_bar(customers, median)
            )


def _against_the_bar(customers: int, median: float) -> str:
    """The bar is for requests of 1,000 records; another size is not judged against it."""
    if customers != BAR_RECORDS:
        return f" (the {BAR_SECONDS:.0f} s bar is for {BAR_RECORDS:,} records a request)"
    return f"; {'within' if median <= BAR_SECONDS else 'OVER'} the {BAR_SECONDS:.0f} s bar for {BAR_RECORDS:,}"


def _post(http: Client, body: bytes) -> float:
    started = time.perf_counter()
    response = http.post(URL, body, content_type="application/json")
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise CommandError(f"the API answered {response.status_code}: {response.content[:500]!r}")
    return elapsed


def _host() -> str:
    hosts = [host for host in settings.ALLOWED_HOSTS if "*" not in host and not host.startswith(".")]
    return hosts[0] if hosts else "testserver"


def _payload(prefix: str, count: int, *, fee: str) -> bytes:
    today = dt.date.today()
    return json.dumps({"customers": [_record(f"{prefix}{n:05d}", n, fee, today) for n in range(count)]}).encode()


def _record(external_id: str, number: int, fee: str, today: dt.date) -> dict:
    """A customer like a CRM export: core fields, a current contract, a few attributes and two events."""
    return {
        "external_id": external_id,
        "display_name": f"Klant {number}",
        "segment": "business" if number % 7 == 0 else "consumer",
        "value_tier": ("low", "medium", "high")[number % 3],
        "signup_date": (today - dt.timedelta(days=200 + number % 3_000)).isoformat(),
        "monthly_fee": fee,
        "contract_type": "1 jaar",
        "contract_end": (today + dt.timedelta(days=number % 365)).isoformat(),
        "products": ["internet", "tv"] if number % 2 else ["internet"],
        "region": ("Utrecht", "Noord-Holland", "Zuid-Holland")[number % 3],
        "phone": f"06{number:08d}",
        "attributes": {"plan_speed": (100, 500, 1000)[number % 3], "paperless": bool(number % 2)},
        "events": [
            {"kind": "contact", "occurred_at": f"{today - dt.timedelta(days=number % 90 + 1)}T10:00:00+00:00"},
            {
                "kind": "nps",
                "occurred_at": f"{today - dt.timedelta(days=number % 60 + 1)}T12:00:00Z",
                "value": number % 11,
            },
        ],
    }
