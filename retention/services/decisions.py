"""Writes of the decision log: a recommendation as it was made, and what the agent and customer did with it."""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ml.features import build_features
from ml.models import ModelVersion
from ml.policy import (
    CustomerContext,
    OfferHistory,
    OfferSpec,
    PolicySettings,
    Ranking,
    StayEstimates,
    best_tariff,
    budget_left_cents,
    exploration_key,
    fee_after_contract_end_cents,
    monthly_fee_cents,
    rank_offers,
    renewal_fee_cents,
    team_budget_left_for_offer,
)
from ml.reasons import calendar_months, top_reasons
from ml.registry import ChampionUnavailable, LoadedModel, NoChampion, champions
from ml.response import stay_estimates
from retention.models import (
    BUDGET_KINDS,
    HOLDING_KINDS,
    MADE_KINDS,
    OFFER_ACTION_KINDS,
    STANDING_ANSWER_KINDS,
    AgentProfile,
    ApiClient,
    Customer,
    Decision,
    DecisionAction,
    Tariff,
    Team,
    offer_hold,
)
from retention.selectors.budget import held_for_customer, taken_elsewhere
from retention.selectors.catalog import (
    new_customer_fees,
    offer_in_catalog,
    offer_spec,
    offers_active,
    policy_current,
    tariff_option,
    tariffs_active,
)
from retention.selectors.decisions import offer_history
from retention.selectors.history import customer_history_frames
from retention.selectors.panel import team_budget_status

logger = logging.getLogger(__name__)

DEFAULT_AUTHORITY_LEVEL = 1
# The actions that put an offer from the advice to the customer, or ask a lead to.
OFFERS_MADE_FROM_ADVICE = frozenset({DecisionAction.Kind.PRESENTED, DecisionAction.Kind.ESCALATED})
# The stages of one recommendation, in order; recommendation_compute reports the end of each.
RECOMMENDATION_STAGES = ("features", "churn", "response", "arbitration")
Lap = Callable[[str], None]


def decision_create(
    *,
    customer: Customer,
    channel: str,
    agent: AbstractBaseUser | None = None,
    api_client: ApiClient | None = None,
    reason: str = "",
    idempotency_key: str | None = None,
) -> Decision:
    """Score the customer now, rank the offers for this agent and store the whole decision."""
    profile = _profile(agent)
    now = timezone.now()
    _check_advice_may_be_given(customer=customer, channel=channel, agent=agent, profile=profile, now=now)
    team = _advice_team(profile, api_client)
    sources = recommendation_sources()
    recommendation = recommendation_compute(
        customer=customer,
        frames=customer_history_frames(customers=[customer], as_of=now),
        sources=sources,
        history=offer_history(customer=customer, now=now, policy=sources.policy),
        agent_level=profile.authority_level if profile else DEFAULT_AUTHORITY_LEVEL,
        team_budget_left_cents=_team_budget_left(team, now),
        team_holds_cents=held_for_customer(customer_id=customer.pk, team=team, now=now) if team else {},
        decision_key=exploration_key(customer.external_id, timezone.localdate(now)),
        control_key=customer.external_id,
    )
    decision = _decision_row(
        recommendation,
        sources,
        customer=customer,
        agent=agent,
        api_client=api_client,
        team=team,
        channel=channel,
        reason=reason,
        as_of=now,
        idempotency_key=idempotency_key,
    )
    decision.full_clean(validate_unique=False)
    decision.save()
    return decision


def _check_advice_may_be_given(
    *, customer: Customer, channel: str, agent: AbstractBaseUser | None, profile: AgentProfile | None, now: dt.datetime
) -> None:
    """Refuse, before anything is scored, advice on an unknown channel, for someone who takes no calls, or about
    a customer who objected to profiling or has left."""
    if channel not in Decision.Channel.values:
        raise ValidationError({"channel": f"must be one of {', '.join(Decision.Channel.values)}"})
    if agent is not None and not _takes_calls(agent, profile):
        raise ValidationError(
            {"agent": ValidationError("%(agent)r does not take calls: name the agent on the call", code="not_a_caller",
                                      params={"agent": agent.get_username()})}
        )  # fmt: skip
    if customer.objects_to_profiling:
        raise ProfilingObjection(customer, best_tariff_advice(customer=customer, now=now))
    if (left_on := departure_day(customer)) is not None:
        raise FormerCustomer(customer, left_on)


def _decision_row(recommendation, sources, *, as_of: dt.datetime, **asked) -> Decision:
    """The decision as stored: what was asked (`asked`: for which customer, by whom, on which channel, why, under
    which idempotency key) and everything the advice was made of."""
    ranking = recommendation.ranking
    return Decision(
        id=uuid.uuid4(),
        **asked,
        as_of=as_of,
        features=_json_row(recommendation.features.iloc[0]),
        model_versions=sources.model_versions,
        policy_version=sources.policy_version,
        churn_probability=recommendation.churn_probability,
        risk_band=sources.policy.risk_band(recommendation.churn_probability),
        reasons=recommendation.reasons,
        offers=[offer.as_json() for offer in ranking.offers],
        recommended_offer_code=ranking.recommended_code,
        greedy_offer_code=ranking.greedy_code,
        explored=ranking.explored,
        control_group=ranking.control_group,
        propensity=ranking.propensity,
        stay_probability_without_offer=ranking.stay_probability_without_offer,
        renewal_fee_cents=ranking.renewal_fee_cents,
        horizon_months=sources.policy.horizon_months,
        best_tariff=recommendation.best_tariff,
    )


def decision_create_once(
    *,
    idempotency_key: str,
    customer: Customer,
    channel: str,
    agent: AbstractBaseUser | None = None,
    api_client: ApiClient | None = None,
    reason: str = "",
) -> tuple[Decision, bool]:
    """`decision_create` once per key: asked again with the same key and request, the first advice comes back
    (True: a replay), however the two requests met. The same key for another customer, channel, agent or reason for
    the call raises IdempotencyConflict: a replay that kept the first reason would drop the second without a word."""
    asked = (customer.pk, channel, agent.pk if agent else None, reason)
    existing = Decision.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                decision = decision_create(
                    customer=customer, channel=channel, agent=agent, api_client=api_client, reason=reason,
                    idempotency_key=idempotency_key,
                )  # fmt: skip
            return decision, False
        except IntegrityError:
            # A request with the same key, sent at the same moment, stored its advice first.
            existing = Decision.objects.get(idempotency_key=idempotency_key)
    if (existing.customer_id, existing.channel, existing.agent_id, existing.reason) != asked:
        raise IdempotencyConflict("this Idempotency-Key was used before for advice on another request")
    return existing, True


class IdempotencyConflict(Exception):
    """The key was used before for something else."""


class ProfilingObjection(Exception):
    """The customer objected to profiling for offers, so no advice is made: no churn score, no ranked offers and
    nothing logged. Only the best-tariff advice, which every customer is owed before a contract is prolonged and
    which reads their products and fee alone, comes with the refusal."""

    def __init__(self, customer: Customer, best_tariff: dict | None) -> None:
        super().__init__(
            f"customer {customer.external_id} objected to profiling for offers: no score or advice is made for them"
        )
        self.best_tariff = best_tariff


class FormerCustomer(Exception):
    """The customer left (see `CustomerQuerySet.former`): advice keeps customers, and there is none to keep, so
    none is made and nothing is logged. A contract the CRM sends for their return makes them a customer again."""

    def __init__(self, customer: Customer, left_on: dt.date) -> None:
        super().__init__(
            f"customer {customer.external_id} left on {left_on.isoformat()}: no score or advice is made for a "
            "former customer until the CRM sends a contract they came back on"
        )
        self.left_on = left_on


def departure_day(customer: Customer) -> dt.date | None:
    """The day the customer left, if they are a former customer; None while they are a customer."""
    return Customer.objects.former().filter(pk=customer.pk).values_list("left_on", flat=True).first()


def best_tariff_advice(*, customer: Customer, now: dt.datetime) -> dict | None:
    """The cheapest tariff sold today that covers the customer's products, with the yearly saving against what they
    will pay once their contract ends; no model is asked."""
    tariffs = tariffs_active()
    features = build_features(*customer_history_frames(customers=[customer], as_of=now), new_customer_fees(tariffs))
    return _best_tariff(customer, features.iloc[0], tariffs)


@dataclass(frozen=True)
class RecommendationSources:
    """What every recommendation made now reads besides the customer's own history."""

    tariffs: list[Tariff]
    offers: list[OfferSpec]
    policy_version: int
    policy: PolicySettings
    churn: LoadedModel
    response: LoadedModel | None  # the offer-response champion; None before one is trained (catalog priors)

    @property
    def model_versions(self) -> dict[str, str]:
        versions = {"churn": self.churn.version.label}
        if self.response is not None:
            versions["acceptance"] = self.response.version.label
        return versions


def recommendation_sources() -> RecommendationSources:
    """The tariffs and offers sold today, the policy in force and the serving models.

    Raises NoChampion when no churn model serves; an offer-response model is optional.
    """
    tariffs = tariffs_active()
    churn = champions.get("churn")
    policy_version, policy = policy_current()
    return RecommendationSources(
        tariffs=tariffs,
        offers=[offer_spec(offer) for offer in offers_active()],
        policy_version=policy_version,
        policy=policy,
        churn=churn,
        response=_response_champion(),
    )


def _response_champion() -> LoadedModel | None:
    """The offer-response model serving, or None: the catalog's priors rank the offers, as before one was trained,
    also while no version's files can be loaded (logged on every advice, as `/health/` and the models page say)."""
    try:
        return champions.get(ModelVersion.Kind.ACCEPTANCE)
    except ChampionUnavailable as error:
        logger.error("advice ranked on the catalog's priors: %s", error)
        return None
    except NoChampion:
        return None


@dataclass(frozen=True)
class Recommendation:
    """One customer's scores and ranked offers, before decision_create stores them."""

    features: pd.DataFrame  # the customer's one feature row
    churn_probability: float
    reasons: list[dict]
    best_tariff: dict | None
    ranking: Ranking


def recommendation_compute(
    *,
    customer: Customer,
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    sources: RecommendationSources,
    history: OfferHistory,
    agent_level: int,
    team_budget_left_cents: int | None,
    decision_key: str,
    control_key: str,
    team_holds_cents: Mapping[str, int] = MappingProxyType({}),
    lap: Lap = lambda stage: None,
) -> Recommendation:
    """Features, churn score and reasons, offer-response estimates and the ranking for one customer.

    Reads and writes nothing in the database: `frames` is the customer's history as
    `customer_history_frames` gives it, `sources` what `recommendation_sources` read. `lap` is
    called with each name of RECOMMENDATION_STAGES as that stage ends, so the stages can be timed.
    """
    features = build_features(*frames, new_customer_fees(sources.tariffs))
    lap("features")
    row = features.iloc[0]
    probabilities, contributions = sources.churn.model.explain(features)
    probability = float(probabilities[0])
    told = _told_facts(customer, as_of=frames[0]["as_of"].iloc[0], features=row)
    reasons = top_reasons(contributions.iloc[0], row, facts=told, unread=sources.churn.model.schema.unreadable(row))
    lap("churn")
    tariff = _best_tariff(customer, row, sources.tariffs)
    context = _customer_context(customer, row, probability, history, tariff, told.get("tenure_months"))
    stay = _stay_estimates(features, context, sources)
    lap("response")
    ranking = rank_offers(
        customer=context,
        offers=sources.offers,
        settings=sources.policy,
        stay=stay,
        agent_level=agent_level,
        team_budget_left_cents=team_budget_left_cents,
        team_holds_cents=team_holds_cents,
        decision_key=decision_key,
        control_key=control_key,
    )
    lap("arbitration")
    return Recommendation(
        features=features, churn_probability=probability, reasons=reasons, best_tariff=tariff, ranking=ranking
    )


def _profile(agent: AbstractBaseUser | None) -> AgentProfile | None:
    if agent is None:
        return None
    return AgentProfile.objects.select_related("team").filter(user=agent).first()


def _stay_estimates(
    features: pd.DataFrame, context: CustomerContext, sources: RecommendationSources
) -> StayEstimates | None:
    """The offer-response champion's blended estimates, or None (the catalog priors) before one is trained."""
    if sources.response is None:
        return None
    (estimates,) = stay_estimates(
        model=sources.response.model,
        evidence=sources.response.version.metrics.get("evidence", {}),
        customers=features,
        contexts=[context],
        fees_cents=[renewal_fee_cents(context, sources.policy)],
        offers=sources.offers,
        prior_strength=sources.policy.prior_strength,
    )
    return estimates


def _advice_team(profile: AgentProfile | None, api_client: ApiClient | None) -> Team | None:
    """The team whose budget the advice spends: the agent's. Advice a CRM asks for without naming an agent is
    charged to the one team the client speaks for; a client for several teams, or for every team, cannot say
    which, so that advice spends no team's budget (the customer's budget still holds)."""
    if profile is not None:
        return profile.team
    if api_client is None:
        return None
    teams = list(api_client.teams.all()[:2])
    return teams[0] if len(teams) == 1 else None


def _team_budget_left(team: Team | None, now: dt.datetime) -> int | None:
    """The team's budget less what it accepted and holds this month; below 0 once it is over (see
    `ml.policy.team_budget_left_for_offer`)."""
    if team is None:
        return None
    return team_budget_status(team=team, now=now).unspent_cents


def _told_facts(customer: Customer, *, as_of, features: pd.Series) -> dict:
    """What the records tell more exactly than the features, for the reasons' words: whole calendar months of
    tenure, as the customer card counts them (the feature counts months of average length), and calendar days to
    the contract's end (the feature counts from now to the end day's first instant in UTC, a day short for most of
    a day: a contract ending tomorrow read as ending in 0 days)."""
    # Plain datetimes: pandas' Timestamp arithmetic cost a fifth of a millisecond here, on every recommendation.
    moment = as_of.to_pydatetime() if isinstance(as_of, pd.Timestamp) else as_of
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    today = timezone.localdate(moment)
    facts = {}
    if customer.signup_date is not None and customer.signup_date <= today:
        facts["tenure_months"] = calendar_months(customer.signup_date, today)
    days = features.get("days_to_contract_end")
    if days is not None and days == days:  # NaN: no contract end known
        # The feature is the end day's first UTC instant less now: adding it back gives that instant, give or take
        # the float's rounding, which half a minute more leaves on the same day.
        end_day = (moment + dt.timedelta(days=float(days), seconds=30)).date()
        facts["days_to_contract_end"] = (end_day - today).days
    return facts


def _customer_context(
    customer: Customer,
    features: pd.Series,
    probability: float,
    history: OfferHistory,
    best_tariff: dict | None,
    calendar_tenure_months: int | None,
) -> CustomerContext:
    """The customer as the offer rules see them. A tenure rule ("5 years or more") counts whole calendar months
    where the signup date is known, as the card shows them: the feature's months of average length made a customer
    5 years to the day eligible only from a later hour, and one a day short on some dates."""
    context = CustomerContext.from_features(
        features,
        segment=customer.segment,
        value_tier=customer.value_tier,
        products=frozenset(customer.products or ()),
        churn_probability=probability,
        best_tariff_fee_cents=best_tariff["monthly_fee_cents"] if best_tariff else None,
        history=history,
    )
    if calendar_tenure_months is None:
        return context
    return replace(context, tenure_months=float(calendar_tenure_months))


def _best_tariff(customer: Customer, features: pd.Series, tariffs: list[Tariff]) -> dict | None:
    """The cheapest covering tariff, and what moving to it saves a year against the fee the customer will pay once
    their contract ends (article 105(3) advice is about prolonging it): a discount that ends with the contract no
    longer counts. Fees and saving are None where the records hold no fee."""
    options = [tariff_option(tariff) for tariff in tariffs]
    best = best_tariff(frozenset(customer.products or ()), options, segment=customer.segment)
    if best is None:
        return None
    paid_now, paid_after = monthly_fee_cents(features), fee_after_contract_end_cents(features)
    return {
        "code": best.code,
        "name": best.name,
        "monthly_fee_cents": best.monthly_fee_cents,
        "yearly_saving_cents": max(0, (paid_after - best.monthly_fee_cents) * 12) if paid_after else None,
        "current_fee_cents": paid_now or None,
        "fee_after_contract_end_cents": paid_after or None,
    }


def _json_row(row: pd.Series) -> dict:
    """Feature values as JSON: numbers, text or null (NaN is not JSON)."""
    values = {}
    for name, value in row.items():
        if isinstance(value, float | np.floating):
            values[name] = None if math.isnan(value) else float(value)
        elif isinstance(value, np.integer):
            values[name] = int(value)
        elif value is None or isinstance(value, str | int | bool):
            values[name] = value
        else:
            values[name] = str(value)
    return values


def decision_action_record(
    *,
    decision: Decision,
    kind: str,
    offer_code: str = "",
    override_reason: str = "",
    agent: AbstractBaseUser | None = None,
    api_client: ApiClient | None = None,
    idempotency_key: str | None = None,
) -> DecisionAction:
    """Append what happened to the log. An idempotency key already stored writes nothing and raises
    IdempotencyKeyTaken with the row stored under it, for the caller to judge whether this is its replay.

    The customer's row is locked while the log is read and written: the panel and a CRM answering at the same
    moment would otherwise each see no acceptance standing and together accept two offers, or one twice.
    """
    if agent is not None and not may_act_on(agent, decision):
        raise PermissionDenied(
            f"{agent.get_username()!r} may not log what happened on advice given to another agent: that agent, "
            "their team's lead or an administrator does"
        )
    with transaction.atomic():
        _lock_customer_open_to_logging(decision, kind, offer_code)
        if idempotency_key:
            existing = DecisionAction.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                raise IdempotencyKeyTaken(existing)
        offer = _validated_offer(decision, kind, offer_code, override_reason, agent)
        action = DecisionAction(
            decision=decision,
            kind=kind,
            offer_code=offer_code,
            override_reason=override_reason,
            agent=agent,
            api_client=api_client,
            channel=decision.channel,
            cost_cents=offer["cost_cents"] if offer and kind == DecisionAction.Kind.ACCEPTED else 0,
            idempotency_key=idempotency_key or None,
            **_budget_fields(decision, kind, offer, _profile(agent)),
        )
        action.full_clean(validate_unique=False)
        _save_under_key(action, idempotency_key)
    return action


def _lock_customer_open_to_logging(decision: Decision, kind: str, offer_code: str) -> None:
    """Lock the customer's row, not only the decision's: what they accepted on their other decisions counts against
    the same monthly budget and the same "accepted recently" rule. Refuse what may no longer be logged about them."""
    customer = (
        Customer.objects.select_for_update()
        .filter(pk=decision.customer_id)
        .only("erased_at", "objects_to_profiling")
        .first()
    )
    if customer is not None and customer.erased_at is not None:
        # Their advice stays in the log as it was when they were erased; anything added would be about them.
        raise ValidationError(
            "this customer's data was erased at their request: nothing more is logged on their advice",
            code="customer_erased",
        )
    if customer is not None and customer.objects_to_profiling:
        _check_no_offer_made_since_objection(decision, kind, offer_code)


def _save_under_key(action: DecisionAction, idempotency_key: str | None) -> None:
    try:
        with transaction.atomic():
            action.save()
    except IntegrityError:
        # The same key raced under another decision's lock: the other request stored its row first.
        if not idempotency_key:
            raise
        raise IdempotencyKeyTaken(DecisionAction.objects.get(idempotency_key=idempotency_key)) from None


class IdempotencyKeyTaken(Exception):
    """An action is stored under this idempotency key already: `action`, which may or may not be what was asked."""

    def __init__(self, action: DecisionAction) -> None:
        super().__init__(f"idempotency key {action.idempotency_key!r} is taken")
        self.action = action


def _check_no_offer_made_since_objection(decision: Decision, kind: str, offer_code: str) -> None:
    """Advice made before an objection to profiling ranked offers by a profile of the customer: no offer from it is
    made now, and an answer to an offer nobody presented would make it. What they answer to an offer presented
    before the objection still happened, and is logged."""
    if kind in (DecisionAction.Kind.NO_ACTION, DecisionAction.Kind.UNDONE):
        return  # neither makes an offer
    if kind not in OFFERS_MADE_FROM_ADVICE and _logged(decision, offer_code, {DecisionAction.Kind.PRESENTED}):
        return
    message = "this customer objected to profiling for offers: no offer from this advice is made to them"
    raise ValidationError({"offer_code": ValidationError(message, code="profiling_objection")})


def _validated_offer(
    decision: Decision, kind: str, offer_code: str, override_reason: str, agent: AbstractBaseUser | None
) -> dict | None:
    """The offer this action is about, once every rule for its kind allows it; None for an action about no offer."""
    if kind not in DecisionAction.Kind.values:
        raise ValidationError({"kind": f"must be one of {', '.join(DecisionAction.Kind.values)}"})
    if kind == DecisionAction.Kind.NO_ACTION:
        _check_no_action(decision, offer_code)
        return None
    if not offer_code:
        _check_about_no_offer(decision, kind, _profile(agent))
        return None
    offer = _offer_of(decision, offer_code)
    if kind == DecisionAction.Kind.UNDONE:
        _check_acceptance_to_undo(decision, offer_code, override_reason)
        return offer
    _check_still_in_catalog(decision, kind, offer)
    if override_reason and offer_code == decision.recommended_offer_code:
        raise ValidationError(
            {"override_reason": ValidationError("the recommended offer is no override: send no reason",
                                                code="not_an_override")}
        )  # fmt: skip
    OFFER_RULES[kind](decision, offer, override_reason, _profile(agent))
    return offer


def _check_no_action(decision: Decision, offer_code: str) -> None:
    if offer_code:
        raise ValidationError(
            {"offer_code": ValidationError("no action cannot name an offer", code="offer_not_expected")}
        )
    _check_no_offer_accepted(decision)
    _check_not_just_logged(decision, DecisionAction.Kind.NO_ACTION, "")


def _check_about_no_offer(decision: Decision, kind: str, profile: AgentProfile | None) -> None:
    """Only an escalation may be about the whole call rather than an offer."""
    if kind in OFFER_ACTION_KINDS or kind == DecisionAction.Kind.UNDONE:
        raise ValidationError(
            {"offer_code": ValidationError("this action needs the offer it is about", code="offer_needed")}
        )
    _check_escalation_asks_higher_authority(decision, None, profile)
    _check_call_open_to_escalate(decision)


def _offer_of(decision: Decision, offer_code: str) -> dict:
    offer = decision.offer(offer_code)
    if offer is None:
        _check_not_left_out_as_declined(decision, offer_code)
        raise ValidationError(
            {"offer_code": ValidationError("%(offer)r was not among this decision's offers", code="unknown_offer",
                                           params={"offer": offer_code})}
        )  # fmt: skip
    return offer


def _check_presenting(decision: Decision, offer: dict, override_reason: str, profile: AgentProfile | None) -> None:
    code = offer["code"]
    _check_not_just_logged(decision, DecisionAction.Kind.PRESENTED, code)
    if accepted := _accepted_offers(_standing_answers(decision)):
        # One offer stands accepted per decision: another made now could not be accepted, and would stand open.
        raise ValidationError({"offer_code": _stands_accepted(accepted[0])})
    _check_override_reason(decision, DecisionAction.Kind.PRESENTED, code, override_reason)
    _check_presentable(decision, offer, profile)
    _check_customer_guardrails(decision, offer, making=True)
    hold = _hold(decision, code)
    _check_team_budget_left(decision, offer, profile, team=_charged_team(decision, profile, None), hold=hold)


def _check_accepting(decision: Decision, offer: dict, override_reason: str, profile: AgentProfile | None) -> None:
    standing = _check_not_answered_so_already(decision, DecisionAction.Kind.ACCEPTED, offer["code"])
    _check_acceptable(decision, offer, profile, standing)
    _check_override_reason(decision, DecisionAction.Kind.ACCEPTED, offer["code"], override_reason)


def _check_declining(decision: Decision, offer: dict, override_reason: str, profile: AgentProfile | None) -> None:
    code = offer["code"]
    if not _discussed(decision, code):
        _check_no_other_offer_accepted(decision, code)
        _check_answer_to_unmade_offer(decision, DecisionAction.Kind.DECLINED, offer, override_reason, profile)
    _check_not_answered_so_already(decision, DecisionAction.Kind.DECLINED, code)


def _check_thinking(decision: Decision, offer: dict, override_reason: str, profile: AgentProfile | None) -> None:
    code = offer["code"]
    _check_offer_open(decision, code)
    _check_no_other_offer_accepted(decision, code)
    _check_not_just_logged(decision, DecisionAction.Kind.THINKING, code)
    if not _discussed(decision, code):
        _check_answer_to_unmade_offer(decision, DecisionAction.Kind.THINKING, offer, override_reason, profile)
    if _thinking_makes_offer(decision, code):
        _check_team_budget_left(decision, offer, profile, team=_charged_team(decision, profile, None), hold=None)


def _thinking_makes_offer(decision: Decision, offer_code: str) -> bool:
    """ "Thinking it over" logged for an offer nobody made or held on this decision says it was made: like an offer
    presented, it holds the offer's cost while the customer thinks, or its later yes would find the budget spent
    by other calls. Once the offer was made, thinking it over changes no hold."""
    earlier = decision.actions.filter(offer_code=offer_code)
    return not earlier.filter(Q(kind__in=MADE_KINDS) | Q(held_cents__gt=0)).exists()


def _check_escalating(decision: Decision, offer: dict, override_reason: str, profile: AgentProfile | None) -> None:
    code = offer["code"]
    _check_offer_open(decision, code)
    _check_no_other_offer_accepted(decision, code)
    _check_escalation_asks_higher_authority(decision, offer, profile)
    _check_not_waiting_already(decision, code)


# The rules of each action about an offer, in the order they are checked (the first broken one is reported).
OFFER_RULES = {
    DecisionAction.Kind.PRESENTED: _check_presenting,
    DecisionAction.Kind.ACCEPTED: _check_accepting,
    DecisionAction.Kind.DECLINED: _check_declining,
    DecisionAction.Kind.THINKING: _check_thinking,
    DecisionAction.Kind.ESCALATED: _check_escalating,
}


def _check_not_answered_so_already(decision: Decision, kind: str, offer_code: str) -> dict[str, str]:
    """The same final answer twice would count an offer's cost twice; the other one corrects it. Returns the
    decision's standing answers."""
    standing = _standing_answers(decision)
    if standing.get(offer_code) == kind:
        raise ValidationError(
            {
                "kind": ValidationError(
                    "%(kind)s for %(offer)r is already logged on this decision",
                    code="already_answered",
                    params={"kind": kind, "offer": offer_code},
                )
            }
        )
    return standing


def _check_still_in_catalog(decision: Decision, kind: str, offer: dict) -> None:
    """An offer withdrawn from the catalog since the advice is not made any more, nor asked of a team lead; the
    customer's answer to one made before it was withdrawn is still logged, as they were offered it."""
    making = kind in (DecisionAction.Kind.PRESENTED, DecisionAction.Kind.ESCALATED) or not _made(
        decision, offer["code"]
    )
    if making and not offer_in_catalog(offer["code"]):
        raise _coded_refusal(offer, "offer_withdrawn", "is no longer in the catalog: ask for new advice")


def _check_acceptance_to_undo(decision: Decision, offer_code: str, override_reason: str) -> None:
    """An undo takes back an acceptance that stands on this decision, nothing else."""
    if override_reason:
        raise ValidationError(
            {"override_reason": ValidationError("an undo makes no offer: send no reason", code="not_an_override")}
        )
    if _standing_answers(decision).get(offer_code) != DecisionAction.Kind.ACCEPTED:
        raise ValidationError(
            {
                "kind": ValidationError(
                    "%(offer)r does not stand accepted on this decision: there is no acceptance to undo",
                    code="nothing_to_undo",
                    params={"offer": offer_code},
                )
            }
        )


def _standing_answers(decision: Decision) -> dict[str, str]:
    """Each offer's latest final answer on this decision. The same answer twice would count an offer's cost
    twice, while a different one corrects it."""
    answers = decision.actions.filter(kind__in=STANDING_ANSWER_KINDS).order_by("created_at", "pk")
    return dict(answers.values_list("offer_code", "kind"))


def _accepted_offers(standing: dict[str, str]) -> list[str]:
    return sorted(code for code, kind in standing.items() if kind == DecisionAction.Kind.ACCEPTED)


def _check_escalation_asks_higher_authority(
    decision: Decision, offer: dict | None, profile: AgentProfile | None
) -> None:
    """An escalation asks a team lead to decide. The team's own lead (or an administrator) would be asking
    themselves, and it would wait among the escalations for nobody, unless the offer is above their own
    authority too: then someone with more authority decides it."""
    if not leads_team_of(profile, decision):
        return
    if offer is None or _authorised(decision, offer, profile):
        raise ValidationError(
            {"kind": ValidationError("you answer for this team's advice: decide it yourself instead of escalating",
                                     code="escalation_by_lead")}
        )  # fmt: skip


def _check_call_open_to_escalate(decision: Decision) -> None:
    """A call escalated as a whole waits until something is logged on it (a key pressed twice would list it
    twice), and a call with an offer standing accepted has nothing left to ask about."""
    if _latest_action(decision) == (DecisionAction.Kind.ESCALATED, ""):
        raise ValidationError(
            {
                "kind": ValidationError(
                    "this call was already escalated and waits for an answer", code="call_already_escalated"
                )
            }
        )
    _check_no_offer_accepted(decision)


def _latest_action(decision: Decision) -> tuple[str, str] | None:
    """The kind and offer of the last thing logged on the decision (None before anything is)."""
    return decision.actions.order_by("-created_at", "-pk").values_list("kind", "offer_code").first()


def _check_no_offer_accepted(decision: Decision) -> None:
    """Logging that nothing was done, or asking a team lead about the call, while an offer stands accepted."""
    if accepted := _accepted_offers(_standing_answers(decision)):
        raise ValidationError({"kind": _stands_accepted(accepted[0], code="offer_stands_accepted")})


def _check_no_other_offer_accepted(decision: Decision, offer_code: str) -> None:
    """While one offer stands accepted no other is made (a decline of one never made says it was made), asked
    about or thought over: it could not be accepted before the first is corrected. The customer's no to an offer
    made before the acceptance is still logged."""
    if others := [code for code in _accepted_offers(_standing_answers(decision)) if code != offer_code]:
        raise ValidationError({"offer_code": _stands_accepted(others[0])})


def _check_not_waiting_already(decision: Decision, offer_code: str) -> None:
    """An offer a team lead was asked about and nobody has acted on since waits already: asking again (a key
    pressed twice) would list it twice among the escalations."""
    latest = (
        decision.actions.filter(offer_code=offer_code).order_by("-created_at", "-pk").values_list("kind", flat=True)
    )
    if latest.first() == DecisionAction.Kind.ESCALATED:
        raise ValidationError(
            {"kind": ValidationError("%(offer)r was already escalated and waits for an answer",
                                     code="already_escalated", params={"offer": offer_code})}
        )  # fmt: skip


def _check_override_reason(decision: Decision, kind: str, offer_code: str, override_reason: str) -> None:
    """An offer other than the recommendation is an override, and the team lead's overrides count it by its
    reason: it needs one when made, or when answered without having been made on this decision (as a CRM may
    log only the customer's answer), unless it is an escalation granted (`_escalation_granted`)."""
    if override_reason or offer_code == decision.recommended_offer_code:
        return
    if kind != DecisionAction.Kind.PRESENTED and _logged(
        decision, offer_code, MADE_KINDS | {DecisionAction.Kind.THINKING}
    ):
        return  # made, or thought over (which made it, with its reason if it needed one)
    if _escalation_granted(decision, offer_code):
        return
    raise ValidationError(
        {"override_reason": ValidationError("offering something other than the recommendation needs a reason",
                                            code="override_reason_needed")}
    )  # fmt: skip


def _escalation_granted(decision: Decision, offer_code: str) -> bool:
    """An offer asked about because it needs more authority or budget, worth more than what the agent could make:
    made by whoever has them, it follows the advice rather than overriding it."""
    return decision.outranks_its_choice(offer_code) and _logged(decision, offer_code, {DecisionAction.Kind.ESCALATED})


def _made(decision: Decision, offer_code: str) -> bool:
    """The offer was made on this decision: presented, or given a final answer (which made it)."""
    return _logged(decision, offer_code, MADE_KINDS)


def _discussed(decision: Decision, offer_code: str) -> bool:
    """The offer was made on this decision, or a team lead was asked for it while the customer listened."""
    return _logged(decision, offer_code, MADE_KINDS | {DecisionAction.Kind.THINKING, DecisionAction.Kind.ESCALATED})


def _logged(decision: Decision, offer_code: str, kinds: Iterable[str]) -> bool:
    return decision.actions.filter(offer_code=offer_code, kind__in=kinds).exists()


def _check_answer_to_unmade_offer(
    decision: Decision, kind: str, offer: dict, override_reason: str, profile: AgentProfile | None
) -> None:
    """A customer answers only an offer someone made: an answer logged without the offer made first says the
    one logging it made it, so it follows the rules of making it (a reason when it overrides the advice, the
    authority, and the contact policy), as an acceptance logged alone does. Before, a "declined" for an offer
    nobody made was logged and kept that offer out of the customer's advice for the contact policy's days."""
    _check_override_reason(decision, kind, offer["code"], override_reason)
    if not _authorised(decision, offer, profile):
        raise ValidationError({"offer_code": _escalation_needed(offer, answer=True)})
    _check_customer_guardrails(decision, offer, making=True)


def _check_not_just_logged(decision: Decision, kind: str, offer_code: str) -> None:
    """The same "thinking it over", "no action" or offer made as the last thing logged on the decision is a key
    pressed twice, or a page left open in a second tab: the log would show the call twice as long as it was."""
    if _latest_action(decision) == (kind, offer_code):
        raise ValidationError(
            {"kind": ValidationError("%(kind)s is already the last thing logged on this decision",
                                     code="just_logged", params={"kind": kind})}
        )  # fmt: skip


def _check_offer_open(decision: Decision, offer_code: str) -> None:
    """An offer standing accepted has been answered: the customer no longer thinks it over, and nobody needs to be
    asked about it. Declining it corrects the acceptance and stays allowed."""
    if _standing_answers(decision).get(offer_code) == DecisionAction.Kind.ACCEPTED:
        raise ValidationError({"kind": _stands_accepted(offer_code, code="offer_stands_accepted")})


def _check_presentable(decision: Decision, offer: dict, profile: AgentProfile | None) -> None:
    if not _authorised(decision, offer, profile):
        raise ValidationError({"offer_code": _escalation_needed(offer)})


def _check_acceptable(decision: Decision, offer: dict, profile: AgentProfile | None, standing: dict[str, str]) -> None:
    """One offer stands accepted per decision, as the learning log and the budgets count it; an offer beyond the
    deciding agent's authority is accepted only once someone with the authority made it."""
    if accepted := _accepted_offers(standing):
        raise ValidationError({"offer_code": _stands_accepted(accepted[0])})
    _check_customer_guardrails(decision, offer, making=False)
    presented = _logged(decision, offer["code"], {DecisionAction.Kind.PRESENTED})
    hold = _hold(decision, offer["code"])
    team = _charged_team(decision, profile, hold)
    if hold is None or hold.charged_team_id != getattr(team, "pk", None):
        # Presenting checked the team's budget as it then stood and held the cost since; an answer logged without
        # the offer made, after its hold ended, or for another team than the one that held it (an agent of another
        # team logging the yes on advice asked for without an agent) is checked against the budget as it stands.
        _check_team_budget_left(decision, offer, profile, team=team, hold=hold, made_before=presented)
    if not _authorised(decision, offer, profile) and not presented:
        raise ValidationError({"offer_code": _escalation_needed(offer, answer=True)})


def _check_customer_guardrails(decision: Decision, offer: dict, *, making: bool) -> None:
    """The per-customer rules the ranking applied, applied again to what the customer has done since: an older
    decision, or one made on another channel, was ranked before that and would let the same credit be given
    twice, or two offers together pass the customer's monthly budget. Making an offer also follows the contact
    policy: one declined on another call or channel within its days is not made again, as the ranking would not
    have listed it."""
    history, policy = _history_besides(decision)
    if offer["code"] in history.accepted_recently:
        raise _coded_refusal(
            offer, "accepted_recently", "was accepted by this customer within the last %(days)s days",
            days=policy.recent_offer_days,
        )  # fmt: skip
    left = budget_left_cents(history.spent_this_month_cents, policy)
    if offer["cost_cents"] > left:
        raise _coded_refusal(
            offer, "customer_budget_spent",
            "costs more than is left of this customer's budget this month (%(left)s cents)", left=left,
        )  # fmt: skip
    if making:
        _check_not_declined_recently(offer["code"], history, policy)


def _check_not_left_out_as_declined(decision: Decision, offer_code: str) -> None:
    """An offer the ranking left out because the customer declined it lately is refused as such, not as a code the
    decision never heard of: a CRM then tells the contact policy from a mistyped code."""
    _check_not_declined_recently(offer_code, *_history_besides(decision))


def _history_besides(decision: Decision) -> tuple[OfferHistory, PolicySettings]:
    """What the customer was offered, accepted and spent on other advice, under the policy in force now."""
    _, policy = policy_current()
    history = offer_history(customer=decision.customer, now=timezone.now(), policy=policy, except_decision=decision)
    return history, policy


def _check_not_declined_recently(offer_code: str, history: OfferHistory, policy: PolicySettings) -> None:
    if offer_code in history.declined_recently:
        raise _coded_refusal(
            {"code": offer_code}, "declined_recently", "was declined by this customer within the last %(days)s days",
            days=policy.contact_policy_days,
        )  # fmt: skip


def _coded_refusal(offer: dict, code: str, message: str, **params) -> ValidationError:
    """A refusal the panel words in the agent's language by its code, naming the offer by its title."""
    return ValidationError(
        {"offer_code": ValidationError("%(offer)r " + message, code=code, params={"offer": offer["code"], **params})}
    )


def _check_team_budget_left(
    decision: Decision,
    offer: dict,
    profile: AgentProfile | None,
    *,
    team: Team | None,
    hold: DecisionAction | None,
    made_before: bool = False,
) -> None:
    """The budget of the team the offer is charged to as it stands now, not as it stood when the advice was given:
    the team's other calls since may have spent it, or made offers that hold part of it. A team lead may still make
    the offer, as on the advice itself. What the team holds for this offer to this customer does not count against
    it (`ml.policy.team_budget_left_for_offer`). `hold` and `made_before` only choose the words of a refusal: the
    offer was made on this decision (`made_before`) and holds nothing now (`hold` None), so its hold ended."""
    if team is None or leads_team_of(profile, decision):
        return
    # One check per team at a time, so two offers made, or two acceptances logged without the offer made first,
    # cannot both take the same remainder.
    Team.objects.select_for_update().filter(pk=team.pk).exists()
    status = team_budget_status(team=team)
    # What the team holds for this offer to this customer, here or on their other advice: making or accepting it
    # here moves that hold or turns it into spending, so it does not count against itself.
    own_hold = held_for_customer(customer_id=decision.customer_id, team=team).get(offer["code"], 0)
    left = team_budget_left_for_offer(status.unspent_cents, own_hold)
    if offer["cost_cents"] <= left:
        return
    ended = _last_hold_for(decision, offer["code"], team) if made_before and hold is None else None
    if ended is not None:
        raise _coded_refusal(
            offer, "hold_ended",
            "holds nothing of the team's budget any more (made more than %(days)s days ago, or answered since) and "
            "costs more than the budget has left this month (%(left)s cents): escalate to a team lead",
            days=round((ended.held_until - ended.created_at).total_seconds() / 86_400), left=left,
        )  # fmt: skip
    raise _coded_refusal(
        offer, "team_budget_spent",
        "costs more than the team's budget has left this month (%(left)s cents): escalate to a team lead",
        left=left,
    )  # fmt: skip


def _last_hold_for(decision: Decision, offer_code: str, team: Team) -> DecisionAction | None:
    """The last time the offer was made on this decision holding its cost of this team's budget, if ever; its hold
    lasted the policy's days at that time."""
    made = decision.actions.filter(
        kind__in=list(HOLDING_KINDS), offer_code=offer_code, charged_team=team, held_cents__gt=0
    )
    return made.exclude(held_until=None).order_by("-created_at", "-pk").first()


def _hold(decision: Decision, offer_code: str) -> DecisionAction | None:
    """The offer's hold on this decision's team budget, while it waits for the customer's answer."""
    elsewhere = taken_elsewhere(decision__customer_id=decision.customer_id, offer_code=offer_code).exclude(
        decision=decision
    )
    return offer_hold(
        decision.actions.all(),
        offer_code,
        now=timezone.now(),
        taken_elsewhere=elsewhere.values_list("created_at", flat=True),
    )


def _charged_team(decision: Decision, profile: AgentProfile | None, hold: DecisionAction | None) -> Team | None:
    """The team an offer made or accepted now spends: the advice's, else the acting agent's; an acceptance logged
    without an agent on advice made for no team spends the team that held the offer, so that money is not lost."""
    if decision.team is not None:
        return decision.team
    if profile is not None and profile.team is not None:
        return profile.team
    return hold.charged_team if hold is not None else None


def _budget_fields(decision: Decision, kind: str, offer: dict | None, profile: AgentProfile | None) -> dict:
    """What an action stores of the team budget: the team an offer made or accepted counts against, and what an
    offer made holds of it, until when."""
    if offer is None or kind not in BUDGET_KINDS | HOLDING_KINDS:
        return {}
    if kind == DecisionAction.Kind.THINKING and not _thinking_makes_offer(decision, offer["code"]):
        return {}
    hold = _hold(decision, offer["code"]) if kind == DecisionAction.Kind.ACCEPTED else None
    team = _charged_team(decision, profile, hold)
    if kind == DecisionAction.Kind.ACCEPTED or team is None:
        return {"charged_team": team}
    hold_days = policy_current()[1].offer_hold_days
    if hold_days <= 0:
        return {"charged_team": team}
    return {
        "charged_team": team,
        "held_cents": offer["cost_cents"],
        "held_until": timezone.now() + dt.timedelta(days=hold_days),
    }


def _stands_accepted(offer_code: str, code: str = "another_offer_accepted") -> ValidationError:
    """The panel words this refusal in the agent's language by its code: accepting another offer, or logging
    that nothing was done, while one stands accepted."""
    return ValidationError(
        "%(offer)r is already accepted on this decision: log it as declined first to correct",
        code=code,
        params={"offer": offer_code},
    )


def _escalation_needed(offer: dict, *, answer: bool = False) -> ValidationError:
    """Why this maker may not make (or, with `answer`, accept unmade) the offer: above their authority, or over
    the team's budget; coded, so the panel can say it in the agent's language."""
    also = " (someone with that authority makes or accepts it)" if answer else ""
    if not offer["within_authority"]:
        needed = required_level_of(offer)
        if needed is None:
            return ValidationError(
                "%(offer)r is beyond the limits of every authority level" + also, code="beyond_authority",
                params={"offer": offer["code"]},
            )  # fmt: skip
        return ValidationError(
            "needs authority level %(level)s: escalate to someone with it" + also, code="needs_authority",
            params={"offer": offer["code"], "level": needed},
        )  # fmt: skip
    return ValidationError(
        "costs more than the team's budget has left this month: escalate to a team lead" + also,
        code="over_team_budget", params={"offer": offer["code"]},
    )  # fmt: skip


def _authorised(decision: Decision, offer: dict, profile: AgentProfile | None) -> bool:
    return may_make_offer(
        above_authority=not offer["within_authority"],
        over_team_budget=bool(offer.get("over_team_budget")),
        maker_has_authority=answers_for_team(profile, decision) and authority_covers(_authority_level(profile), offer),
        decides_over_budget=leads_team_of(profile, decision),
    )


def authority_covers(level: int, offer: dict) -> bool:
    """Whether an authority level may make this offer of a decision: the offer's discount and cost within that
    level's limits, as the ranking recorded the lowest level that takes it (advice stored before it recorded
    that falls back on the offer's catalog level). An offer no level's limits take is made by nobody."""
    needed = required_level_of(offer)
    return needed is not None and level >= needed


def decides_escalation(level: int, offer: dict) -> bool:
    """Whether someone of this authority level may decide an escalated offer of a decision: one only over the
    team's budget (a team lead's call), or one above the advised agent's authority that the level covers.
    An offer no lead of the team decides waits for an administrator."""
    return offer.get("within_authority", True) or authority_covers(level, offer)


def no_action_answers_escalation(no_action: DecisionAction, offer: dict | None) -> bool:
    """Whether a "no action" logged after an offer was escalated answers that escalation. It does, except when a
    team lead logs it on an offer above their own authority: that one waits for an administrator, and the lead
    turning down what they decide must not drop what they do not. (An agent's or a CRM's "no action" ends the call's
    escalations, as the customer is gone.)"""
    profile = getattr(no_action.agent, "agent_profile", None) if no_action.agent_id else None
    if profile is None or profile.role != AgentProfile.Role.LEAD or offer is None:
        return True
    return decides_escalation(profile.authority_level, offer)


def required_level_of(offer: dict) -> int | None:
    """The authority level a decision's offer needs (None: no level may make it)."""
    return offer["required_authority_level"] if "required_authority_level" in offer else offer["authority_level"]


def answers_for_team(profile: AgentProfile | None, decision: Decision) -> bool:
    """Administrators answer for every team; anyone else for their own, which is also the team charged for
    advice asked without an agent."""
    if profile is None:
        return False
    if profile.role == AgentProfile.Role.ADMIN or decision.team_id is None:
        return True
    return profile.team_id == decision.team_id


def may_make_offer(
    *, above_authority: bool, over_team_budget: bool, maker_has_authority: bool, decides_over_budget: bool
) -> bool:
    """Within the deciding agent's authority and the team's budget, or made after escalation: an offer above the
    deciding agent's authority by someone of the team whose own authority covers it (a team lead of level 2 does
    not make a level-3 offer), and one only over the team's budget by a team lead, who answers for that budget.
    The panel asks the same of its viewer, to offer the buttons this accepts."""
    if above_authority:
        return maker_has_authority and (not over_team_budget or decides_over_budget)
    return not over_team_budget or decides_over_budget


def takes_calls(user: AbstractBaseUser) -> bool:
    """Agents and team leads take calls; an administrator (or a superuser) does not. Their authority and budget are
    no agent's: advice in their name would rank offers nobody on a call could make, and charge them to no team's
    budget. They act on others' advice instead, deciding what was escalated to them."""
    try:
        profile = user.agent_profile  # read once per user object, and not at all where it was loaded with the user
    except AgentProfile.DoesNotExist:
        profile = None
    return _takes_calls(user, profile)


def _takes_calls(user: AbstractBaseUser, profile: AgentProfile | None) -> bool:
    return profile is not None and profile.role != AgentProfile.Role.ADMIN and not user.is_superuser


def may_act_on(agent: AbstractBaseUser, decision: Decision) -> bool:
    """The agent who got the advice logs what happened; their team's lead and administrators may act for them.
    Advice asked without an agent may be answered by anyone who answers for the team it is charged to."""
    if decision.agent_id is None:
        return answers_for_team(_profile(agent), decision)
    return decision.agent_id == agent.pk or leads_team_of(_profile(agent), decision)


def leads_team_of(profile: AgentProfile | None, decision: Decision) -> bool:
    """The lead of the team the advice is charged to, or an administrator: who may spend beyond what the team has
    left this month, and act on a colleague's advice. The panel asks the same of its viewer."""
    leads = profile is not None and profile.role in {AgentProfile.Role.LEAD, AgentProfile.Role.ADMIN}
    return leads and answers_for_team(profile, decision)


def _authority_level(profile: AgentProfile | None) -> int:
    return profile.authority_level if profile else DEFAULT_AUTHORITY_LEVEL
