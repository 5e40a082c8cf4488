"""Reads behind the CRM API. List reads return lazy querysets whose query count does not depend on the page size."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from ml.models import ModelVersion, TrainingJob
from retention.models import ApiClient, Contract, Customer, Decision, DecisionAction, Offer, ScoringJob
from retention.selectors.budget import accepted_offers, charged_team_name, period_bounds, standing_acceptance

CHUNK = 900  # keeps IN (...) lists under SQLite's variable limit
# Used for an offer's typical cost while no active contract exists to take the median from.
FALLBACK_TYPICAL_MONTHLY_FEE_CENTS = 5_000
NO_OUTCOME = "none"


def chunked(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- customers ------------------------------------------------------------------------------------------------


def customers_by_external_id(*, external_ids: Sequence[str]) -> dict[str, Customer]:
    """The stored customers among these external ids, by external id; unknown ids, and erased customers' (whose
    numbers the decision log shows), are simply absent."""
    unique = list(dict.fromkeys(external_ids))
    found: dict[str, Customer] = {}
    for chunk in chunked(unique):
        found.update(Customer.objects.not_erased().in_bulk(chunk, field_name="external_id"))
    return found


def customer_with_latest_risk(*, external_id: str, api_client: ApiClient | None = None) -> Customer | None:
    """The customer with `latest_*` attributes from their newest decision (None when there is none); one query.

    For a client, the newest decision it answers for (`decisions_spoken_for_by`), as its decision list shows.
    """
    latest = Decision.objects.filter(customer=OuterRef("pk")).order_by("-created_at", "-pk")
    if api_client is not None:
        latest = latest.filter(decisions_spoken_for_by(api_client))
    return (
        Customer.objects.not_erased()
        .filter(external_id=external_id)
        .annotate(
            latest_decision_id=Subquery(latest.values("pk")[:1]),
            latest_churn_probability=Subquery(latest.values("churn_probability")[:1]),
            latest_risk_band=Subquery(latest.values("risk_band")[:1]),
            latest_decided_at=Subquery(latest.values("created_at")[:1]),
        )
        .first()
    )


CONTRACT_FIELDS = (
    "bundle", "contract_type", "monthly_fee_cents", "discount_cents", "discount_end",
    "start_date", "end_date", "status",
)  # fmt: skip


def customer_contracts(*, customer: Customer) -> list[dict]:
    """The customer's contracts as stored, newest first (by start date; undated ones last); one query."""
    contracts = Contract.objects.filter(customer=customer).order_by(F("start_date").desc(nulls_last=True), "-pk")
    return list(contracts.values(*CONTRACT_FIELDS))


# --- the decision log -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionFilters:
    agent: str | None = None  # username of the deciding agent
    customer_id: str | None = None
    date_from: dt.date | None = None  # calendar days in settings.TIME_ZONE, both ends included
    date_to: dt.date | None = None
    outcome: str | None = None  # kind of the latest action, or NO_OUTCOME for decisions nobody acted on
    offer: str | None = None  # an action of the decision names this offer
    recommended_offer: str | None = None
    override: bool | None = None  # some action gave a reason for not following the recommendation


def decisions_for_review(*, filters: DecisionFilters, api_client: ApiClient | None = None) -> QuerySet[Decision]:
    """Decisions with their latest action, for paging; the big JSON columns (features, offers) are left out, the
    small best-tariff advice is not.

    A client sees the decisions it answers for (`decisions_spoken_for_by`).
    """
    actions = DecisionAction.objects.filter(decision=OuterRef("pk"))
    latest = actions.order_by("-created_at", "-pk")
    overrides = actions.exclude(override_reason="")
    standing = standing_acceptance()
    decisions = (
        Decision.objects.select_related("customer", "agent", "api_client", "team")
        .only(
            "id", "channel", "reason", "churn_probability", "risk_band", "recommended_offer_code", "model_versions",
            "policy_version", "explored", "control_group", "greedy_offer_code", "propensity", "renewal_fee_cents",
            "best_tariff", "created_at", "customer__external_id", "customer__objects_to_profiling", "agent__username",
            "api_client__name", "team__name",
        )
        .annotate(
            outcome=Subquery(latest.values("kind")[:1]),
            outcome_offer=Subquery(latest.values("offer_code")[:1]),
            outcome_at=Subquery(latest.values("created_at")[:1]),
            accepted_offer=Subquery(standing.values("offer_code")[:1]),
            accepted_cost_cents=Coalesce(Subquery(standing.values("cost_cents")[:1]), 0),
            charged_team=charged_team_name(),
            override_reason=Subquery(overrides.order_by("-created_at", "-pk").values("override_reason")[:1]),
        )
    )  # fmt: skip
    if api_client is not None:
        # Also what another client's advice charged to this client's teams, so a team's spend can be traced.
        charged_here = Exists(
            accepted_offers().filter(decision=OuterRef("pk"), charged_team_id__in=_bound_team_ids(api_client))
        )
        decisions = decisions.filter(decisions_spoken_for_by(api_client) | Q(charged_here))
    return _filtered(decisions, filters)


def decisions_spoken_for_by(api_client: ApiClient) -> Q:
    """The decisions a client answers for: every one for a client bound to no team; else its teams' and those
    it asked for without an agent. One condition, for a page's own query or a check of one decision."""
    bound = _bound_team_ids(api_client)
    return ~Exists(bound) | Q(team__in=bound) | Q(team__isnull=True, api_client=api_client)


def _bound_team_ids(api_client: ApiClient) -> QuerySet:
    """The teams a client is bound to, as a subquery of their ids (none: a client for every team)."""
    return ApiClient.teams.through.objects.filter(apiclient_id=api_client.pk).values("team_id")


def _filtered(decisions: QuerySet[Decision], filters: DecisionFilters) -> QuerySet[Decision]:
    if filters.agent is not None:
        decisions = decisions.filter(agent__username=filters.agent)
    if filters.customer_id is not None:
        decisions = decisions.filter(customer__external_id=filters.customer_id)
    start, end = period_bounds(filters.date_from, filters.date_to)
    if start is not None:
        decisions = decisions.filter(created_at__gte=start)
    if end is not None:
        decisions = decisions.filter(created_at__lt=end)
    if filters.outcome == NO_OUTCOME:
        decisions = decisions.filter(outcome__isnull=True)
    elif filters.outcome is not None:
        decisions = decisions.filter(outcome=filters.outcome)
    if filters.offer is not None:
        named = DecisionAction.objects.filter(decision=OuterRef("pk"), offer_code=filters.offer)
        decisions = decisions.filter(Exists(named))
    if filters.recommended_offer is not None:
        decisions = decisions.filter(recommended_offer_code=filters.recommended_offer)
    if filters.override is not None:
        decisions = decisions.filter(override_reason__isnull=not filters.override)
    return decisions


# --- catalog and models ---------------------------------------------------------------------------------------


def offers_listed(*, active: bool | None = None, on: dt.date | None = None) -> QuerySet[Offer]:
    """Every offer of the catalog with `currently_active` (switched on and within its dates today)."""
    on = on or timezone.localdate()
    in_force = (
        Q(is_active=True)
        & (Q(active_from__isnull=True) | Q(active_from__lte=on))
        & (Q(active_until__isnull=True) | Q(active_until__gte=on))
    )
    offers = Offer.objects.annotate(currently_active=ExpressionWrapper(in_force, output_field=BooleanField()))
    if active is not None:
        offers = offers.filter(in_force) if active else offers.exclude(in_force)
    return offers


def typical_monthly_fee_cents() -> int:
    """The median monthly fee of active contracts (two queries), or a fixed typical fee while there are none."""
    fees = Contract.objects.filter(status=Contract.Status.ACTIVE).order_by("monthly_fee_cents")
    count = fees.count()
    if count == 0:
        return FALLBACK_TYPICAL_MONTHLY_FEE_CENTS
    middle = list(fees.values_list("monthly_fee_cents", flat=True)[(count - 1) // 2 : count // 2 + 1])
    return round(sum(middle) / len(middle))


def model_versions_listed(*, kind: str | None = None, status: str | None = None) -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.all()
    if kind is not None:
        versions = versions.filter(kind=kind)
    if status is not None:
        versions = versions.filter(status=status)
    return versions


def training_jobs_listed(*, status: str | None = None) -> QuerySet[TrainingJob]:
    jobs = TrainingJob.objects.all()
    return jobs if status is None else jobs.filter(status=status)


# --- scoring jobs ---------------------------------------------------------------------------------------------


def scoring_job_get(*, job_id: uuid.UUID, api_client: ApiClient) -> ScoringJob | None:
    """A job of this client (another client's job is as good as absent), without its list of ids."""
    return ScoringJob.objects.filter(pk=job_id, api_client=api_client).defer("customer_ids").first()


def customer_pages(*, size: int) -> Iterator[list[Customer]]:
    """Every customer a model may score who has not left, in pages of `size` by primary key: bounded memory for
    any number."""
    last = 0
    scorable = Customer.objects.may_be_profiled().still_customers()
    while page := list(scorable.filter(pk__gt=last).order_by("pk")[:size]):
        yield page
        last = page[-1].pk


def not_to_score(*, customers: Mapping[str, Customer]) -> tuple[set[str], set[str]]:
    """Of these stored customers (by external id), those who objected to profiling, and the former customers (see
    `CustomerQuerySet.former`) among the rest: no score is made for either."""
    objecting = {external_id for external_id, customer in customers.items() if customer.objects_to_profiling}
    asked = [external_id for external_id in customers if external_id not in objecting]
    former = Customer.objects.former().filter(external_id__in=asked).values_list("external_id", flat=True)
    return objecting, set(former)


def customer_count() -> int:
    """How many customers a model may score (see `customer_pages`)."""
    return Customer.objects.may_be_profiled().still_customers().count()
