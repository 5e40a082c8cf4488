import io
import json

import pytest
from django.core.management import CommandError, call_command

from agents_ui.management.commands.benchmark_panel import summarise
from ml.registry import NoChampion, champions
from retention.models import Decision
from tests.factories import ContractFactory

pytestmark = pytest.mark.django_db


def benchmark(**options) -> dict:
    out = io.StringIO()
    call_command("benchmark_panel", stdout=out, **options)
    return json.loads(out.getvalue())


def test_benchmark_renders_new_advice_and_the_same_advice_again_and_reports_times_and_queries(
    agent, customer, catalog, churn_model
):
    ContractFactory()

    report = benchmark(customers=2, requests=3)

    assert (report["customers"], report["requests"]) == (2, 3)
    assert 0 < report["median_ms"] <= report["p90_ms"] <= report["max_ms"]
    assert isinstance(report["queries_per_request"], int), "the same number of queries for every customer"
    again = report["same_advice_again"]
    assert again["queries_per_request"] < report["queries_per_request"], "no scoring or ranking the second time"
    assert Decision.objects.count() == 4, "a warm-up and three timed panels each made a new advice"


def test_benchmark_asks_for_generated_customers_when_there_are_too_few(agent, customer):
    with pytest.raises(CommandError, match=r"holds 1 customers.*generate_customers --n 100000"):
        benchmark()


def test_benchmark_needs_the_agent_to_log_in_as(customer):
    with pytest.raises(CommandError, match="no user 'agent'"):
        benchmark(customers=1)


def test_benchmark_needs_a_customer_whose_contract_ends_soon(agent):
    ContractFactory(end_date=None)

    with pytest.raises(CommandError, match="no customer has an active contract ending"):
        benchmark(customers=1)


def test_benchmark_stops_on_a_panel_that_fails(agent, customer, catalog, monkeypatch):
    def no_model(kind):
        raise NoChampion("no churn model")

    monkeypatch.setattr(champions, "get", no_model)

    with pytest.raises(CommandError, match="answered 503"):
        benchmark(customers=1, requests=1)


def test_summary_lists_every_query_count_when_they_differ():
    summary = summarise([(10.0, 11), (30.0, 12), (20.0, 11)])

    assert (summary.median_ms, summary.max_ms, summary.queries_per_request) == (20.0, 30.0, [11, 12])
