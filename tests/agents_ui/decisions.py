"""Decisions written straight to the database, so a test controls every field the panel shows."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from retention.models import Decision
from tests.factories import offers_in_catalog

OFFERS = [
    {
        "code": "loyal-10",
        "title": {"nl": "Loyaliteitskorting 10%", "en": "Loyalty discount 10%"},
        "kind": "discount",
        "expected_acceptance": 0.41,
        "expected_net_value_cents": 12_000,
        "cost_cents": 6_600,
        "authority_level": 1,
        "within_authority": True,
        "needs_escalation": False,
        "propensity": 1.0,
    },
    {
        "code": "speed-up",
        "title": {"nl": "Gratis snelheid omhoog", "en": "Free speed upgrade"},
        "kind": "upgrade",
        "expected_acceptance": 0.33,
        "expected_net_value_cents": 8_000,
        "cost_cents": 2_000,
        "authority_level": 1,
        "within_authority": True,
        "needs_escalation": False,
        "propensity": 1.0,
    },
    {
        "code": "half-price",
        "title": {"nl": "Halve prijs", "en": "Half price"},
        "kind": "discount",
        "expected_acceptance": 0.55,
        "expected_net_value_cents": 4_000,
        "cost_cents": 29_000,  # within the default per-customer budget, as the ranking leaves it
        "authority_level": 2,
        "within_authority": False,
        "required_authority_level": 2,  # above an agent's authority, within a team lead's
        "needs_escalation": True,
        "propensity": 1.0,
    },
]


# The same offers, none worth its cost: the advice a customer gets when no offer is needed.
UNPROFITABLE_OFFERS = [
    {**offer, "expected_net_value_cents": -abs(offer["expected_net_value_cents"])} for offer in OFFERS
]


def stored_decision(*, customer, agent=None, **fields) -> Decision:
    """A decision as the service stores it, written directly so a test controls every field."""
    values = {
        "channel": Decision.Channel.PHONE,
        "as_of": timezone.now(),
        "features": {},
        "model_versions": {"churn": "churn v-test"},
        "policy_version": 0,
        "churn_probability": 0.64,
        "risk_band": "high",
        "reasons": [
            {"code": "complaints", "text": {"nl": "2 klachten", "en": "2 complaints"}, "impact": 0.9},
            {"code": "price_gap", "text": {"nl": "Betaalt meer", "en": "Pays more"}, "impact": 0.5},
            {"code": "tenure", "text": {"nl": "Al 6 jaar klant", "en": "Customer for 6 years"}, "impact": -0.2},
        ],
        "offers": OFFERS,
        "recommended_offer_code": "loyal-10",
        "best_tariff": {"code": "internet_tv", "name": "Internet + TV", "monthly_fee_cents": 4_500,
                        "yearly_saving_cents": 12_000},
        **fields,
    }  # fmt: skip
    team = agent.agent_profile.team if agent is not None else None
    offers_in_catalog(values["offers"])
    return Decision.objects.create(customer=customer, agent=agent, team=team, **values)


def days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)
