"""Time one customer's recommendation inside the process, stage by stage, with the database left out."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import time
from dataclasses import dataclass

import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ml.policy import OfferHistory, PolicyError
from ml.registry import NoChampion
from retention.management import arguments
from retention.models import Customer
from retention.selectors.decisions import offer_history
from retention.selectors.history import customer_history_frames
from retention.services.decisions import (
    DEFAULT_AUTHORITY_LEVEL,
    RECOMMENDATION_STAGES,
    RecommendationSources,
    recommendation_compute,
    recommendation_sources,
)

TOTAL = "total"


@dataclass(frozen=True)
class CustomerInputs:
    """What decision_create reads from the database for one customer, read before any timing starts."""

    customer: Customer
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
    history: OfferHistory


class StageClock:
    """Milliseconds per stage of one recommendation, from the laps recommendation_compute reports."""

    def __init__(self) -> None:
        self.milliseconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.milliseconds[stage] = (now - self._last) * 1000
        self._last = now

    def with_total(self) -> dict[str, float]:
        return {**self.milliseconds, TOTAL: sum(self.milliseconds.values())}


class Command(BaseCommand):
    help = (
        "Time the recommendation step of decision_create for customers sampled from the database: the feature "
        "row from the customer's history already in memory, the churn score and its reasons, the offer-response "
        "estimates (the acceptance champion's, or the catalog priors before one is trained) and the ranking. "
        "Database reads and writes are left out (benchmark_panel times the whole panel); no team budget is "
        "applied, as reading it is a query. Prints median, p90 and mean in ms, overall and per stage. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers",
            type=arguments.positive_int,
            default=200,
            help="Distinct customers sampled from the database (default 200).",
        )
        parser.add_argument(
            "--repeat", type=arguments.positive_int, default=5, help="Timed recommendations per customer (default 5)."
        )
        parser.add_argument(
            "--agent-level", type=int, default=DEFAULT_AUTHORITY_LEVEL, choices=(1, 2, 3), help="Authority level."
        )
        parser.add_argument("--seed", type=int, default=0, help="Random seed for the choice of customers.")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, customers: int, repeat: int, agent_level: int, seed: int, **options):
        if customers < 1 or repeat < 1:  # called from code, the options are not parsed
            raise CommandError(f"--customers and --repeat must be at least 1, not {customers} and {repeat}")
        sources = _sources()
        now = timezone.now()
        inputs = [_inputs(customer, sources, now) for customer in _sample(customers, seed)]
        first_ms = _timed(inputs[0], sources, agent_level, key="warm-up")[TOTAL]
        timings = [
            _timed(one, sources, agent_level, key=f"benchmark-{rounds}-{one.customer.pk}")
            for rounds in range(repeat)
            for one in inputs
        ]
        report = _report(timings, sources, customers=len(inputs), repeat=repeat, first_ms=first_ms)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._table(report)

    def _table(self, report: dict) -> None:
        load = " ".join(f"{value:.2f}" for value in report["load_average"])
        self.stdout.write(
            f"{report['recommendations']:,} recommendations ({report['customers']:,} customers × {report['repeat']}), "
            f"churn model {report['churn_model']}, offer response {report['offer_response']}; load average {load}"
        )
        self.stdout.write(f"{'stage':<12} {'median ms':>10} {'p90 ms':>10} {'mean ms':>10}")
        for stage, summary in [*report["stages"].items(), (TOTAL, report[TOTAL])]:
            self.stdout.write(
                f"{stage:<12} {summary['median_ms']:>10.2f} {summary['p90_ms']:>10.2f} {summary['mean_ms']:>10.2f}"
            )
        self.stdout.write(f"first recommendation (warm-up, not counted): {report['first_ms']:.1f} ms")


def _sources() -> RecommendationSources:
    try:
        return recommendation_sources()
    except NoChampion as error:
        raise CommandError(f"{error}") from error
    except PolicyError as error:
        raise CommandError(f"the stored policy cannot be used: {error}") from error


def _sample(wanted: int, seed: int) -> list[Customer]:
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    if len(ids) < wanted:
        raise CommandError(
            f"the database holds {len(ids)} customers, fewer than --customers {wanted}: "
            f"run `manage.py generate_customers` first (or pass a smaller --customers)"
        )
    chosen = random.Random(seed).sample(ids, wanted)
    by_id = Customer.objects.in_bulk(chosen)
    return [by_id[pk] for pk in chosen]


def _inputs(customer: Customer, sources: RecommendationSources, now: dt.datetime) -> CustomerInputs:
    """The same reads as decision_create makes for this customer."""
    return CustomerInputs(
        customer=customer,
        frames=customer_history_frames(customers=[customer], as_of=now),
        history=offer_history(customer=customer, now=now, policy=sources.policy),
    )


def _timed(inputs: CustomerInputs, sources: RecommendationSources, agent_level: int, *, key: str) -> dict[str, float]:
    clock = StageClock()
    recommendation_compute(
        customer=inputs.customer,
        frames=inputs.frames,
        sources=sources,
        history=inputs.history,
        agent_level=agent_level,
        team_budget_left_cents=None,
        decision_key=key,
        control_key=inputs.customer.external_id,
        lap=clock,
    )
    return clock.with_total()


def _report(
    timings: list[dict[str, float]], sources: RecommendationSources, *, customers: int, repeat: int, first_ms: float
) -> dict:
    return {
        "customers": customers,
        "repeat": repeat,
        "recommendations": len(timings),
        "churn_model": sources.churn.version.label,
        "offer_response": sources.response.version.label if sources.response else "catalog priors",
        "first_ms": round(first_ms, 2),
        TOTAL: summarise([timing[TOTAL] for timing in timings]),
        "stages": {stage: summarise([timing[stage] for timing in timings]) for stage in RECOMMENDATION_STAGES},
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def summarise(milliseconds: list[float]) -> dict[str, float]:
    """Median, 90th percentile and mean."""
    ordered = sorted(milliseconds)
    p90 = statistics.quantiles(ordered, n=10, method="inclusive")[-1] if len(ordered) > 1 else ordered[0]
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(p90, 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }
