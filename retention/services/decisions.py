"""Writes of the decision log: a recommendation as it was made, and what the agent and customer did with it."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import numpy as np
import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ml.features import build_features
from ml.policy import CustomerContext, PolicySettings, rank_offers
from ml.reasons import top_reasons
from ml.registry import champions
from retention.models import AgentProfile, ApiClient, Customer, Decision, DecisionAction, Tariff
from retention.selectors.catalog import (
    new_customer_fees,
    offer_spec,
    offers_active,
    policy_current,
    tariffs_active,
)
from retention.selectors.decisions import offers_declined_since
from retention.selectors.history import customer_history_frames
from retention.selectors.panel import team_budget_status

ANSWER_KINDS = {DecisionAction.Kind.ACCEPTED, DecisionAction.Kind.DECLINED, DecisionAction.Kind.THINKING}
OFFER_KINDS = ANSWER_KINDS | {DecisionAction.Kind.PRESENTED}
FINAL_ANSWERS = {DecisionAction.Kind.ACCEPTED, DecisionAction.Kind.DECLINED}
DEFAULT_AUTHORITY_LEVEL = 1


def decision_create(
    *,
    customer: Customer,
    channel: str,
    agent: AbstractBaseUser | None = None,
    api_client: ApiClient | None = None,
    reason: str = "",
) -> Decision:
    """Score the customer now, rank the offers for this agent and store the whole decision."""
    if channel not in Decision.Channel.values:
        raise ValidationError({"channel": f"must be one of {', '.join(Decision.Channel.values)}"})
    now = timezone.now()
    decision_id = uuid.uuid4()
    profile = _profile(agent)
    tariffs = tariffs_active()
    features = build_features(*customer_history_frames(customers=[customer], as_of=now), new_customer_fees(tariffs))
    churn = champions.get("churn")
    probabilities, contributions = churn.model.explain(features)
    probability = float(probabilities[0])
    reasons = top_reasons(contributions.iloc[0], features.iloc[0])
    policy_version, policy = policy_current()
    best_tariff = _best_tariff(customer, _monthly_fee_cents(features.iloc[0]), tariffs)
    context = _customer_context(customer, features.iloc[0], probability, policy, now, best_tariff)
    specs = [offer_spec(offer) for offer in offers_active()]
    ranking = rank_offers(
        customer=context,
        offers=specs,
        settings=policy,
        agent_level=profile.authority_level if profile else DEFAULT_AUTHORITY_LEVEL,
        team_budget_left_cents=_team_budget_left(profile, now),
        decision_key=str(decision_id),
        control_key=customer.external_id,
    )
    decision = Decision(
        id=decision_id,
        customer=customer,
        agent=agent,
        api_client=api_client,
        team=profile.team if profile else None,
        channel=channel,
        reason=reason,
        as_of=now,
        features=_json_row(features.iloc[0]),
        model_versions={"churn": churn.version.label},
        policy_version=policy_version,
        churn_probability=probability,
        risk_band=policy.risk_band(probability),
        reasons=reasons,
        offers=[offer.as_json() for offer in ranking.offers],
        recommended_offer_code=ranking.recommended_code,
        greedy_offer_code=ranking.greedy_code,
        explored=ranking.explored,
        control_group=ranking.control_group,
        propensity=ranking.propensity,
        stay_probability_without_offer=ranking.stay_probability_without_offer,
        renewal_fee_cents=ranking.renewal_fee_cents,
        best_tariff=best_tariff,
    )
    decision.full_clean()
    decision.save()
    return decision


def _profile(agent: AbstractBaseUser | None) -> AgentProfile | None:
    if agent is None:
        return None
    return AgentProfile.objects.select_related("team").filter(user=agent).first()


def _team_budget_left(profile: AgentProfile | None, now: dt.datetime) -> int | None:
    if profile is None or profile.team is None:
        return None
    return team_budget_status(team=profile.team, now=now).remaining_cents


def _customer_context(
    customer: Customer,
    features: pd.Series,
    probability: float,
    policy: PolicySettings,
    now: dt.datetime,
    best_tariff: dict | None,
) -> CustomerContext:
    recent = {kind for kind in ("complaint", "outage") if _number(features.get(f"{kind}s_90d")) > 0}
    new_fee = _optional(features.get("new_customer_fee"))
    return CustomerContext(
        segment=customer.segment,
        value_tier=customer.value_tier,
        products=frozenset(customer.products or ()),
        tenure_months=_optional(features.get("tenure_months")),
        monthly_fee_cents=_monthly_fee_cents(features),
        churn_probability=probability,
        recent_event_kinds=frozenset(recent),
        declined_recently=offers_declined_since(
            customer=customer, since=now - dt.timedelta(days=policy.contact_policy_days)
        ),
        new_customer_fee_cents=round(new_fee * 100) if new_fee is not None else None,
        best_tariff_fee_cents=best_tariff["monthly_fee_cents"] if best_tariff else None,
    )


def _monthly_fee_cents(features: pd.Series) -> int:
    return round(_number(features.get("monthly_fee")) * 100)


def _best_tariff(customer: Customer, paid_cents: int, tariffs: list[Tariff]) -> dict | None:
    """The cheapest tariff sold today that covers every product the customer has."""
    products = set(customer.products or ())
    if not products:
        return None
    covering = [t for t in tariffs if products <= set(t.products) and t.code]
    if not covering:
        return None
    best = min(covering, key=lambda tariff: (tariff.monthly_fee_cents, tariff.code))
    return {
        "code": best.code,
        "name": best.name,
        "monthly_fee_cents": best.monthly_fee_cents,
        "yearly_saving_cents": max(0, (paid_cents - best.monthly_fee_cents) * 12),
    }


def _optional(value) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _number(value) -> float:
    return _optional(value) or 0.0


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
    """Append what happened to the log. A replayed idempotency key returns the first row and writes nothing."""
    if idempotency_key:
        existing = DecisionAction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            _check_replay(existing, decision=decision, kind=kind, offer_code=offer_code)
            return existing
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
    )
    action.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            action.save()
    except IntegrityError:
        # Two replays raced: the other one stored the row first.
        if idempotency_key:
            return DecisionAction.objects.get(idempotency_key=idempotency_key)
        raise
    return action


def _check_replay(existing: DecisionAction, *, decision: Decision, kind: str, offer_code: str) -> None:
    if (existing.decision_id, existing.kind, existing.offer_code) != (decision.pk, kind, offer_code):
        raise ValidationError({"idempotency_key": "already used for a different action"})


def _validated_offer(
    decision: Decision, kind: str, offer_code: str, override_reason: str, agent: AbstractBaseUser | None
) -> dict | None:
    if kind not in DecisionAction.Kind.values:
        raise ValidationError({"kind": f"must be one of {', '.join(DecisionAction.Kind.values)}"})
    if kind == DecisionAction.Kind.NO_ACTION:
        if offer_code:
            raise ValidationError({"offer_code": "no action cannot name an offer"})
        return None
    if not offer_code:
        if kind in OFFER_KINDS:
            raise ValidationError({"offer_code": "this action needs the offer it is about"})
        return None
    offer = next((o for o in decision.offers if o["code"] == offer_code), None)
    if offer is None:
        raise ValidationError({"offer_code": f"{offer_code!r} was not among this decision's offers"})
    if kind == DecisionAction.Kind.PRESENTED:
        _check_presentable(decision, offer, override_reason, agent)
    if kind in FINAL_ANSWERS and _already_answered(decision, offer_code, kind):
        raise ValidationError({"kind": f"{kind} for {offer_code!r} is already logged on this decision"})
    return offer


def _already_answered(decision: Decision, offer_code: str, kind: str) -> bool:
    """The same final answer twice would count an offer's cost twice; a different answer is a correction."""
    return decision.actions.filter(offer_code=offer_code, kind=kind).exists()


def _check_presentable(decision: Decision, offer: dict, override_reason: str, agent: AbstractBaseUser | None) -> None:
    if offer["code"] != decision.recommended_offer_code and not override_reason:
        raise ValidationError({"override_reason": "offering something other than the recommendation needs a reason"})
    # Within the deciding agent's authority, or presented by someone with more authority after escalation.
    if not offer["within_authority"] and _authority_level(agent) <= _authority_level(decision.agent):
        raise ValidationError(
            {"offer_code": f"needs authority level {offer['authority_level']}: escalate to a team lead"}
        )


def _authority_level(agent: AbstractBaseUser | None) -> int:
    profile = _profile(agent)
    return profile.authority_level if profile else DEFAULT_AUTHORITY_LEVEL
