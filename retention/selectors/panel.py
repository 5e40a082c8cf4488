"""Reads for the agent panel: finding a customer, their card, recent offers on any channel, the team budget.

Every function here issues a fixed number of queries, however long a customer's
history is, so the panel stays fast mid-call.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, replace

from django.db.models import Case, CharField, Count, F, IntegerField, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Replace
from django.utils import timezone

from ml.reasons import calendar_months
from retention.models import (
    ANSWER_KINDS,
    OFFER_ACTION_KINDS,
    AgentProfile,
    Contract,
    Customer,
    Decision,
    DecisionAction,
    RenewalResult,
    ServiceEvent,
    Tariff,
)

# The team budget is counted in one place; the panel and the decision service import it from here too.
from retention.selectors.budget import BudgetStatus, month_start, team_budget_status  # noqa: F401
from retention.selectors.catalog import tariffs_sold

SEARCH_LIMIT = 20
SERVICE_WINDOW_DAYS = 90
PHONE_QUERY = re.compile(r"^\+?[\d\s().\-/]+$")
# A subscriber number without its country code or leading zero: nine digits in the Netherlands.
PHONE_MIN_DIGITS = 9
PHONE_SEPARATORS = (" ", "-", "(", ")", ".", "/", "+")
NETHERLANDS_PREFIX = "31"


# --- finding a customer -------------------------------------------------------------------------


def customer_get(*, external_id: str) -> Customer | None:
    return Customer.objects.not_erased().filter(external_id=external_id).first()


def customers_with_contract_ending(*, within_days: int, today: dt.date | None = None) -> list[str]:
    """External ids of customers whose active contract ends in the next `within_days` days; one query."""
    today = today or timezone.localdate()
    contracts = Contract.objects.filter(
        status=Contract.Status.ACTIVE, end_date__gte=today, end_date__lte=today + dt.timedelta(days=within_days)
    )
    return list(contracts.order_by("customer__external_id").values_list("customer__external_id", flat=True).distinct())


# A name is found by the whole of it, or by a part of two words or more ("de Vries", "Lisa de V"): one word, or a
# few letters, matches many customers, and listing them page by page would let anyone copy the base.
NAME_PART_MIN_WORDS = 2
NAME_PART_MIN_LENGTH = 6
CUSTOMER_NUMBER_DIGITS = re.compile(r"[0-9]+")


def customer_search(*, query: str, limit: int = SEARCH_LIMIT) -> list[Customer]:
    """The customers the query names: by their whole customer number (or its digits without the letters before
    them, "8656687" for NL8656687, as a customer reads it from a letter), their whole name or a part of it of two
    words or more, or their whole phone number.

    An exact external id comes first. Phone numbers match whatever way they are written:
    "06-1234 5678", "+31 6 12345678" and "0612345678" find the same customer. A part of a number finds nobody.
    """
    query = " ".join(query.split())
    if not query:
        return []
    condition = Q(external_id__iexact=query) | Q(display_name__iexact=query)
    if CUSTOMER_NUMBER_DIGITS.fullmatch(query):
        condition |= Q(external_id__iregex=rf"^[^0-9]*{query}$")
    if len(query.split()) >= NAME_PART_MIN_WORDS and len(query) >= NAME_PART_MIN_LENGTH:
        condition |= Q(display_name__icontains=query)
    if phone := _phone_core(query):
        condition |= Q(phone_digits__endswith=phone)
    exact_id_first = Case(When(external_id__iexact=query, then=Value(0)), default=Value(1), output_field=IntegerField())
    customers = (
        Customer.objects.not_erased()
        .annotate(phone_digits=_digits_only("phone"), exact_id=exact_id_first)
        .filter(condition)
        .order_by("exact_id", "display_name", "external_id")
    )
    return list(customers[:limit])


def _phone_core(query: str) -> str:
    """The subscriber number without country code or leading zero, or "" when the query is no phone number."""
    if not PHONE_QUERY.match(query):
        return ""
    digits = re.sub(r"\D", "", query)
    if digits.startswith("00"):
        digits = digits[2:]
    if query.lstrip().startswith(("+", "00")) and digits.startswith(NETHERLANDS_PREFIX):
        digits = digits[len(NETHERLANDS_PREFIX) :]
    core = digits.lstrip("0")
    return core if len(core) >= PHONE_MIN_DIGITS else ""


def _digits_only(field: str):
    expression = F(field)
    for separator in PHONE_SEPARATORS:
        expression = Replace(expression, Value(separator), Value(""))
    return expression


# --- the customer card --------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerCard:
    customer: Customer
    contract: Contract | None
    tenure_months: int | None
    bundle_name: str
    pays_monthly_cents: int | None
    new_customer_monthly_cents: int | None
    complaints_90d: int
    outages_90d: int
    last_renewal: RenewalResult | None = None

    @property
    def left_on(self) -> dt.date | None:
        """The day a renewal result recorded the customer as gone, unless a contract started after it: the
        agent should know before offering anything to keep someone the records say has already left."""
        renewal = self.last_renewal
        if renewal is None or renewal.result != RenewalResult.Result.CHURNED:
            return None
        started = self.contract.start_date if self.contract is not None else None
        return renewal.date if started is None or started <= renewal.date else None

    @property
    def contract_ended(self) -> bool:
        """The card shows a contract that is no longer active: the last one the customer had."""
        return self.contract is not None and self.contract.status != Contract.Status.ACTIVE

    @property
    def pays_more_than_new_customer_cents(self) -> int | None:
        """Positive when the customer pays more than a new customer would for the same bundle."""
        if self.pays_monthly_cents is None or self.new_customer_monthly_cents is None:
            return None
        return self.pays_monthly_cents - self.new_customer_monthly_cents


def customer_card(*, customer: Customer, now: dt.datetime | None = None) -> CustomerCard:
    """What the agent needs to know at a glance; three queries, four for a customer with no active contract."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    contract = _card_contract(customer, today)
    events = _service_counts(customer, now)
    card = CustomerCard(
        customer=customer,
        contract=contract,
        tenure_months=None,
        bundle_name=(contract.tariff_name or contract.bundle) if contract else "",
        pays_monthly_cents=_pays_monthly_cents(contract, today) if contract else None,
        new_customer_monthly_cents=contract.new_customer_fee_cents if contract else None,
        complaints_90d=events["complaints"],
        outages_90d=events["outages"],
        last_renewal=RenewalResult.objects.filter(customer=customer, date__lte=today).order_by("-date", "-pk").first(),
    )
    # A customer the records have as gone was a customer until then, not until today.
    return replace(card, tenure_months=_tenure_months(customer, contract, card.left_on or today))


def _card_contract(customer: Customer, today: dt.date) -> Contract | None:
    """The active contract; with none, the latest one that had started, as the features price offers on it: a card
    without it would hide the fee every figure beside it counts from."""
    return _latest_contract(customer.contracts.filter(status=Contract.Status.ACTIVE), today) or _latest_contract(
        customer.contracts.filter(Q(start_date__isnull=True) | Q(start_date__lte=today)), today
    )


def _latest_contract(contracts, today: dt.date) -> Contract | None:
    """The latest contract, with its bundle's name and what a new customer pays for the bundle today (none when the
    tariff is no longer sold: the advice does not count it either)."""
    tariff = Tariff.objects.filter(code=OuterRef("bundle"))
    sold = tariffs_sold(today).filter(code=OuterRef("bundle"))
    return (
        contracts.annotate(
            tariff_name=Subquery(tariff.values("name")[:1], output_field=CharField()),
            new_customer_fee_cents=Subquery(sold.values("monthly_fee_cents")[:1], output_field=IntegerField()),
        )
        .order_by(F("start_date").desc(nulls_last=True), "-id")
        .first()
    )


def _service_counts(customer: Customer, now: dt.datetime) -> dict[str, int]:
    since = now - dt.timedelta(days=SERVICE_WINDOW_DAYS)
    return ServiceEvent.objects.filter(customer=customer, occurred_at__gte=since, occurred_at__lte=now).aggregate(
        complaints=Count("id", filter=Q(kind=ServiceEvent.Kind.COMPLAINT)),
        outages=Count("id", filter=Q(kind=ServiceEvent.Kind.OUTAGE)),
    )


def _tenure_months(customer: Customer, contract: Contract | None, today: dt.date) -> int | None:
    since = customer.signup_date or (contract.start_date if contract else None)
    if since is None or since > today:
        return None
    return calendar_months(since, today)


def _pays_monthly_cents(contract: Contract, today: dt.date) -> int:
    discount_running = contract.discount_end is None or contract.discount_end >= today
    discount = contract.discount_cents if discount_running else 0
    return max(0, contract.monthly_fee_cents - discount)


# --- the decision shown and its log -------------------------------------------------------------


def decision_get(*, decision_id: uuid.UUID, customer: Customer) -> Decision | None:
    """An earlier decision for this customer, without the feature values the panel never shows."""
    return Decision.objects.filter(pk=decision_id, customer=customer).defer("features").first()


def advice_to_reopen(*, customer: Customer, agent, channel: str, since: dt.datetime) -> Decision | None:
    """This agent's latest advice for this customer on this channel made since `since`, if any."""
    recent = Decision.objects.filter(customer=customer, agent=agent, channel=channel, created_at__gte=since)
    return recent.defer("features").order_by("-created_at", "-pk").first()


@dataclass(frozen=True)
class DecisionWatch:
    """What a panel watching a decision needs to know: how many actions its log holds (the log only grows, so a
    panel that shows as many is current), and the customer's number when they objected to profiling since."""

    actions: int
    objecting_customer: str | None


def decision_watch(*, decision_id: uuid.UUID) -> DecisionWatch:
    """One query; a decision that does not exist has no actions and no objection."""
    row = (
        Decision.objects.filter(pk=decision_id)
        .annotate(logged=Count("actions"))
        .values_list("logged", "customer__objects_to_profiling", "customer__external_id")
        .first()
    )
    if row is None:
        return DecisionWatch(actions=0, objecting_customer=None)
    logged, objecting, external_id = row
    return DecisionWatch(actions=logged, objecting_customer=external_id if objecting else None)


def decision_actions(*, decision: Decision) -> list[DecisionAction]:
    return list(
        DecisionAction.objects.filter(decision_id=decision.pk)
        # The profile says whether who made an offer was a team lead or an administrator.
        .select_related("agent", "agent__agent_profile", "api_client")
        .order_by("created_at", "id")
    )


# --- offers made recently, on any channel -------------------------------------------------------


@dataclass
class RecentOffer:
    """One offer put to the customer, and their latest answer to it ("" while none is logged)."""

    decision_id: uuid.UUID
    offer_code: str
    title: dict
    made_by: str
    channel: str
    made_at: dt.datetime
    answer: str = ""
    answered_at: dt.datetime | None = None
    advised_agent_id: int | None = None  # whom the advice it was made on was for: they log the answer there

    @property
    def awaits_answer(self) -> bool:
        """Nothing final is logged yet: none, or the customer is thinking it over."""
        return self.answer in ("", DecisionAction.Kind.THINKING)


# What a recent offer's answer is read from: an undo takes an acceptance logged by mistake back.
OFFER_KINDS_AND_UNDO = OFFER_ACTION_KINDS | {DecisionAction.Kind.UNDONE}


def recent_offers(
    *,
    customer: Customer,
    now: dt.datetime | None = None,
    days: int,
    exclude_decision_id: uuid.UUID | None = None,
) -> list[RecentOffer]:
    """Offers any agent or system made this customer in the last `days` days, newest first; one query."""
    since = (now or timezone.now()) - dt.timedelta(days=days)
    actions = (
        DecisionAction.objects.filter(decision__customer=customer, kind__in=OFFER_KINDS_AND_UNDO, created_at__gte=since)
        .exclude(offer_code="")
        .select_related("decision", "agent", "api_client")
        .only(
            "kind", "offer_code", "channel", "created_at", "decision__id", "decision__offers", "decision__agent_id",
            "agent__username", "agent__first_name", "agent__last_name", "api_client__name",
        )
        .order_by("created_at", "id")
    )  # fmt: skip
    if exclude_decision_id is not None:
        actions = actions.exclude(decision_id=exclude_decision_id)
    offers: dict[tuple[uuid.UUID, str], RecentOffer] = {}
    for action in actions:
        key = (action.decision_id, action.offer_code)
        if key not in offers:
            offers[key] = _recent_offer(action)
        if action.kind in ANSWER_KINDS:
            offers[key].answer, offers[key].answered_at = action.kind, action.created_at
        elif action.kind == DecisionAction.Kind.UNDONE:  # the acceptance was logged by mistake: no answer yet
            offers[key].answer, offers[key].answered_at = "", None
    return sorted(offers.values(), key=lambda offer: offer.made_at, reverse=True)


def _recent_offer(action: DecisionAction) -> RecentOffer:
    return RecentOffer(
        decision_id=action.decision_id,
        offer_code=action.offer_code,
        title=_offer_title(action.decision, action.offer_code),
        made_by=actor_name(action),
        channel=action.channel,
        made_at=action.created_at,
        advised_agent_id=action.decision.agent_id,
    )


def _offer_title(decision: Decision, offer_code: str) -> dict:
    return (decision.offer(offer_code) or {}).get("title") or {}


def actor_name(action: DecisionAction) -> str:
    """Who logged an action: the agent's full name or user name, or the CRM integration's name."""
    if action.agent_id is not None:
        return action.agent.get_full_name() or action.agent.get_username()
    if action.api_client_id is not None:
        return action.api_client.name
    return ""


def team_lead_level(team_id: int | None) -> int:
    """The highest authority level among a team's leads (0 without a team or a lead): what escalating to them
    can reach; an offer above it is for an administrator."""
    if team_id is None:
        return 0
    levels = AgentProfile.objects.filter(team_id=team_id, role=AgentProfile.Role.LEAD)
    return levels.aggregate(level=Max("authority_level"))["level"] or 0
