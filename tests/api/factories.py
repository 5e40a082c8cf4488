"""Decision log rows for API tests, made directly: the list and detail endpoints only read them."""

from __future__ import annotations

import factory
from django.utils import timezone

from retention.models import Decision, DecisionAction
from tests.factories import CustomerFactory, offers_in_catalog

OFFERS = [
    {"code": "korting-10", "title": {"nl": "10% korting", "en": "10% off"}, "kind": "discount", "cost_cents": 3300,
     "authority_level": 1, "within_authority": True},
    {"code": "gift-router", "title": {"nl": "Nieuwe router", "en": "New router"}, "kind": "gift", "cost_cents": 2500,
     "authority_level": 1, "within_authority": True},
]  # fmt: skip


class DecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Decision
        skip_postgeneration_save = True  # a decision refuses a second save

    customer = factory.SubFactory(CustomerFactory)
    channel = Decision.Channel.PHONE
    as_of = factory.LazyFunction(timezone.now)
    features = factory.LazyFunction(lambda: {"tenure_months": 30.0})
    model_versions = factory.LazyFunction(lambda: {"churn": "churn-v1"})
    policy_version = 1
    churn_probability = 0.42
    risk_band = "medium"
    reasons = factory.LazyFunction(list)
    offers = factory.LazyFunction(lambda: [dict(offer) for offer in OFFERS])
    recommended_offer_code = "korting-10"

    @factory.post_generation
    def in_catalog(decision, create, extracted, **kwargs):
        if create:
            offers_in_catalog(decision.offers)


class DecisionActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DecisionAction

    decision = factory.SubFactory(DecisionFactory)
    kind = DecisionAction.Kind.PRESENTED
    offer_code = "korting-10"
    channel = Decision.Channel.PHONE
