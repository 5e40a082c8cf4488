"""Time the agent panel as an agent meets it: a new advice for a customer whose contract ends soon, rendered whole."""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from retention.management import arguments
from retention.models import Customer, Decision
from retention.selectors.panel import customers_with_contract_ending
from retention.services.decisions import takes_calls

ENDING_SOON_DAYS = 90
WILDCARD_HOSTS = {"*", ""}
# The user the demo data logs in as when --agent names none.
DEMO_AGENT = "agent"


@dataclass(frozen=True)
class Timings:
    median_ms: float
    p90_ms: float
    max_ms: float
    queries_per_request: int | list[int]


class Command(BaseCommand):
    help = (
        "Render the agent panel (a new advice each time) for random customers whose contract ends within "
        f"{ENDING_SOON_DAYS} days, through Django's test client logged in as an agent, and print the server-side "
        "time and queries per request as JSON; then the same advice again, which leaves out scoring and ranking. "
        "It writes nothing: the advice it stores, the agent's session and last login are rolled back at the end."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers",
            type=arguments.positive_int,
            help="Refuse to run unless the database holds at least this many customers (default: any number).",
        )
        parser.add_argument(
            "--requests", type=arguments.positive_int, default=50, help="Panels to render and time (default 50)."
        )
        parser.add_argument("--agent", help=f"User name of the agent to log in as (default: {DEMO_AGENT!r}).")
        parser.add_argument("--seed", type=int, default=0, help="Random seed for the choice of customers.")

    def handle(self, *args, customers: int | None, requests: int, agent: str | None, seed: int, **options):
        stored = _enough_customers(customers)
        # Every request runs as it would in production (the panel stores its advice, the login its session), inside
        # one transaction rolled back at the end: the benchmark leaves no decision behind for the KPIs, the policy
        # evaluation or the fairness report to count. The panel opens no transaction of its own, so the queries
        # counted are the ones it makes outside this one.
        with transaction.atomic():
            report = _measure(stored, requests=requests, agent=agent, seed=seed)
            transaction.set_rollback(True)
        self.stdout.write(json.dumps(report, indent=2))


def _measure(stored: int, *, requests: int, agent: str | None, seed: int) -> dict:
    warm_up, *external_ids = _customers_to_open(requests, seed)
    client = _client_logged_in_as(agent)
    first_ms, _ = _timed_get(client, _panel_url(warm_up))
    new_advice = [_timed_get(client, _panel_url(external_id)) for external_id in external_ids]
    shown = [(external_id, _latest_decision(external_id)) for external_id in external_ids]
    same_again = [_timed_get(client, _panel_url(external_id, decision)) for external_id, decision in shown]
    return {
        "customers": stored,
        "requests": len(new_advice),
        "first_request_ms": round(first_ms, 1),
        **asdict(summarise(new_advice)),
        "same_advice_again": asdict(summarise(same_again)),
    }


def summarise(measured: list[tuple[float, int]]) -> Timings:
    """Median, 90th percentile and maximum of the times; the query count, or every count seen if it varies."""
    times = sorted(ms for ms, _ in measured)
    queries = sorted({count for _, count in measured})
    p90 = statistics.quantiles(times, n=10, method="inclusive")[-1] if len(times) > 1 else times[0]
    return Timings(
        median_ms=round(statistics.median(times), 1),
        p90_ms=round(p90, 1),
        max_ms=round(times[-1], 1),
        queries_per_request=queries[0] if len(queries) == 1 else queries,
    )


def _enough_customers(wanted: int | None) -> int:
    stored = Customer.objects.count()
    if wanted is not None and stored < wanted:
        raise CommandError(
            f"the database holds {stored} customers, fewer than --customers {wanted}: "
            f"run `manage.py generate_customers --n {wanted}` first (or pass a smaller --customers)"
        )
    return stored


def _customers_to_open(requests: int, seed: int) -> list[str]:
    """`requests` + 1 customers (the first one warms up), repeating some when too few contracts end soon."""
    candidates = customers_with_contract_ending(within_days=ENDING_SOON_DAYS)
    if not candidates:
        raise CommandError(f"no customer has an active contract ending in the next {ENDING_SOON_DAYS} days")
    chooser = random.Random(seed)
    if len(candidates) > requests:
        return chooser.sample(candidates, requests + 1)
    return chooser.choices(candidates, k=requests + 1)


def _client_logged_in_as(username: str | None) -> Client:
    user = get_user_model().objects.filter(username=username or DEMO_AGENT).first()
    if user is None and username is None:
        raise CommandError(
            f"no user {DEMO_AGENT!r} (the demo's agent): run `manage.py seed_demo` first, or name an agent with --agent"
        )
    if user is None:
        raise CommandError(f"--agent {username!r}: there is no user of that name")
    if not takes_calls(user):
        # As play_calls says it: the panel would refuse every request with its 403 page.
        raise CommandError(f"--agent {user.get_username()!r}: administrators do not take calls; name an agent")
    client = Client(HTTP_HOST=_allowed_host())
    client.force_login(user)
    return client


def _allowed_host() -> str:
    named = [host.lstrip(".") for host in settings.ALLOWED_HOSTS if host not in WILDCARD_HOSTS]
    return named[0] if named else "localhost"


def _panel_url(external_id: str, decision: Decision | None = None) -> str:
    """The given advice again, else new advice (`new`: a customer drawn twice is not shown their first advice)."""
    parameters = {"customer": external_id, **({"decision": str(decision.pk)} if decision else {"new": 1})}
    return reverse("panel") + "?" + urlencode(parameters)


def _latest_decision(external_id: str) -> Decision:
    return Decision.objects.filter(customer__external_id=external_id).only("id").latest("created_at")


def _timed_get(client: Client, url: str) -> tuple[float, int]:
    """Milliseconds and queries for one whole panel; anything but a 200 stops the benchmark."""
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise CommandError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    return elapsed_ms, len(queries.captured_queries)
