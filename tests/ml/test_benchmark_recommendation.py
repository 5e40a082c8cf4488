"""benchmark_recommendation on a tiny database: the labelled test base, its churn model and a small catalog."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ml.management.commands.benchmark_recommendation import summarise
from ml.registry import champions
from retention.models import Decision, DecisionAction
from retention.services.decisions import RECOMMENDATION_STAGES
from tests.factories import OfferFactory, TariffFactory

# The offer-response champion the decision tests register, trained on their synthetic outcome log.
from tests.retention.test_decision_exploration import acceptance_champion  # noqa: F401

STORED_CUSTOMERS = 240  # tests.builders.store_labelled_base, behind churn_champion


def benchmark(*args, **options) -> str:
    out = io.StringIO()
    call_command("benchmark_recommendation", *args, stdout=out, **options)
    return out.getvalue()


def report(**options) -> dict:
    return json.loads(benchmark(json=True, **options))


@pytest.fixture
def catalog(db):
    TariffFactory(code="internet_tv", monthly_fee_cents=4_500, products=["internet", "tv"])
    OfferFactory(code="gift-router", kind="gift", discount_percent=0, duration_months=0, fixed_cost_cents=3_000)
    OfferFactory(code="korting-10", discount_percent=10, duration_months=6)
    OfferFactory(code="korting-40", discount_percent=40, duration_months=6, authority_level=3)


def test_the_report_gives_median_p90_and_mean_overall_and_per_stage(churn_champion, catalog):
    timings = report(customers=5, repeat=2)

    assert (timings["customers"], timings["repeat"], timings["recommendations"]) == (5, 2, 10)
    assert (timings["churn_model"], timings["offer_response"]) == ("churn-v1", "catalog priors")
    assert list(timings["stages"]) == list(RECOMMENDATION_STAGES)
    for summary in [timings["total"], *timings["stages"].values()]:
        assert 0 < summary["median_ms"] <= summary["p90_ms"]
        assert summary["mean_ms"] > 0
    stage_means = sum(summary["mean_ms"] for summary in timings["stages"].values())
    assert timings["total"]["mean_ms"] == pytest.approx(stage_means, abs=0.01), "the stages cover the whole step"
    assert timings["first_ms"] > 0
    assert len(timings["load_average"]) == 3


def test_the_timed_part_reads_nothing_from_the_database_and_nothing_is_stored(churn_champion, catalog):
    counts = []
    for repeat in (1, 4):
        with CaptureQueriesContext(connection) as queries:
            report(customers=3, repeat=repeat)
        counts.append(len(queries.captured_queries))

    assert counts[0] == counts[1], "more repeats, no more queries"
    assert not Decision.objects.exists()
    assert not DecisionAction.objects.exists()


def test_the_same_seed_samples_the_same_distinct_customers(churn_champion, catalog, monkeypatch):
    from ml.management.commands import benchmark_recommendation

    sampled = []
    real_inputs = benchmark_recommendation._inputs

    def recording(customer, sources, now):
        sampled.append(customer.pk)
        return real_inputs(customer, sources, now)

    monkeypatch.setattr(benchmark_recommendation, "_inputs", recording)
    report(customers=20, repeat=1, seed=3)
    first, sampled[:] = list(sampled), []
    report(customers=20, repeat=1, seed=3)

    assert sampled == first
    assert len(set(first)) == 20


@pytest.mark.usefixtures("acceptance_champion")
def test_with_an_offer_response_champion_its_estimates_are_timed(catalog):
    timings = report(customers=3, repeat=1)

    assert timings["offer_response"] == "acceptance-v1"
    assert timings["stages"]["response"]["median_ms"] > 0


def test_the_table_names_every_stage_and_the_models(churn_champion, catalog):
    text = benchmark(customers=2, repeat=1)

    assert "2 recommendations (2 customers × 1), churn model churn-v1, offer response catalog priors" in text
    for stage in [*RECOMMENDATION_STAGES, "total"]:
        assert stage in text
    assert "warm-up, not counted" in text


def test_more_customers_than_stored_is_refused(churn_champion, catalog):
    with pytest.raises(CommandError, match=f"holds {STORED_CUSTOMERS} customers, fewer than --customers 1000"):
        benchmark(customers=1_000)


def test_without_a_churn_model_the_benchmark_says_what_to_run(catalog):
    champions.clear()

    with pytest.raises(CommandError, match=r"run `manage\.py train_models`"):
        benchmark(customers=1)


@pytest.mark.parametrize(("customers", "repeat"), [(0, 1), (1, 0)])
def test_counts_below_one_are_refused(customers, repeat):
    with pytest.raises(CommandError, match="must be at least 1"):
        benchmark(customers=customers, repeat=repeat)


def test_summary_of_a_single_time():
    assert summarise([2.5]) == {"median_ms": 2.5, "p90_ms": 2.5, "mean_ms": 2.5}
    assert summarise([1.0, 2.0, 3.0, 10.0])["median_ms"] == 2.5
