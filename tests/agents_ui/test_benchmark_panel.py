import io
import json

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command

from agents_ui.management.commands import benchmark_panel
from agents_ui.management.commands.benchmark_panel import summarise
from ml.registry import NoChampion, champions
from retention.models import Decision
from tests.factories import ContractFactory, UserFactory

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


def test_benchmark_leaves_the_database_as_it_found_it(agent, customer, catalog, churn_model, monkeypatch):
    ContractFactory()
    stored_while_running = []
    latest_decision = benchmark_panel._latest_decision

    def counting(external_id):
        stored_while_running.append(Decision.objects.count())
        return latest_decision(external_id)

    monkeypatch.setattr(benchmark_panel, "_latest_decision", counting)

    benchmark(requests=3)

    assert stored_while_running[-1] == 4, "a warm-up and three timed panels each stored a new advice"
    assert Decision.objects.count() == 0, "no advice is left for the KPIs, evaluate_policy or fairness_report"
    assert not Session.objects.exists()
    agent.refresh_from_db()
    assert agent.last_login is None


def test_by_default_the_benchmark_runs_on_the_customers_the_database_holds(agent, customer, catalog, churn_model):
    ContractFactory()

    assert benchmark(requests=1)["customers"] == 2


def test_benchmark_asks_for_generated_customers_when_there_are_fewer_than_asked_for(agent, customer):
    with pytest.raises(CommandError, match=r"holds 1 customers.*generate_customers --n 100000"):
        benchmark(customers=100_000)


@pytest.mark.parametrize("option", ["--customers", "--requests"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_counts_below_one_are_refused_as_the_options_are_read(option, value):
    with pytest.raises(CommandError, match=f"'{value}' is not a whole number of at least 1"):
        call_command("benchmark_panel", option, value)


def test_benchmark_without_the_demo_agent_asks_for_the_demo_data_or_an_agent(customer):
    with pytest.raises(CommandError, match=r"no user 'agent' \(the demo's agent\): run `manage.py seed_demo` first"):
        benchmark(customers=1)


def test_an_agent_named_that_does_not_exist_is_named_as_such(agent, customer):
    with pytest.raises(CommandError, match=r"^--agent 'nosuch': there is no user of that name$"):
        benchmark(agent="nosuch")


def test_an_administrator_is_refused_as_the_agent_in_plain_words(customer):
    UserFactory(username="boss", is_superuser=True, is_staff=True)

    with pytest.raises(CommandError, match="--agent 'boss': administrators do not take calls; name an agent"):
        call_command("benchmark_panel", "--agent", "boss", "--requests", "2", stdout=io.StringIO())


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
