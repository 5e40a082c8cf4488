"""factory_boy factories for the domain, shared by every test package."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from retention.models import (
    AgentProfile,
    ApiClient,
    Contract,
    Customer,
    Offer,
    RenewalResult,
    ServiceEvent,
    Tariff,
    Team,
)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")
    monthly_budget_cents = 500_000


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True  # the password hook saves what it changed

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(user, create: bool, extracted: str | None, **kwargs) -> None:
        user.set_password(extracted or "correct horse battery")
        if create:
            user.save(update_fields=["password"])


class AgentProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentProfile

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = AgentProfile.Role.AGENT
    authority_level = 1
    language = "nl"


class TariffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tariff
        django_get_or_create = ("code",)

    code = "internet_tv"
    name = "Internet + TV"
    products = ["internet", "tv"]
    monthly_fee_cents = 4_500


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"C{n:06d}")
    display_name = factory.Faker("name", locale="nl_NL")
    segment = Customer.Segment.CONSUMER
    value_tier = Customer.ValueTier.MEDIUM
    signup_date = factory.LazyFunction(lambda: timezone.now().date() - dt.timedelta(days=900))
    region = "Utrecht"
    products = ["internet", "tv"]


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract

    customer = factory.SubFactory(CustomerFactory)
    bundle = "internet_tv"
    contract_type = "1y"
    monthly_fee_cents = 5_500
    start_date = factory.LazyFunction(lambda: timezone.now().date() - dt.timedelta(days=330))
    end_date = factory.LazyFunction(lambda: timezone.now().date() + dt.timedelta(days=35))


class ServiceEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceEvent

    customer = factory.SubFactory(CustomerFactory)
    kind = ServiceEvent.Kind.COMPLAINT
    occurred_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=5))


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"offer-{n}")
    kind = Offer.Kind.DISCOUNT
    title_nl = factory.LazyAttribute(lambda o: f"Aanbod {o.code}")
    title_en = factory.LazyAttribute(lambda o: f"Offer {o.code}")
    discount_percent = 10
    duration_months = 12
    authority_level = 1
    prior_uplift = 0.2


def offers_in_catalog(offers: list[dict]) -> None:
    """The offers of stored advice are in the catalog, as the service's are: one withdrawn since is not made."""
    for offer in offers:
        if not Offer.objects.filter(code=offer["code"]).exists():
            title = offer.get("title") or {}
            OfferFactory(
                code=offer["code"],
                kind=offer.get("kind", Offer.Kind.DISCOUNT),
                title_nl=title.get("nl", offer["code"]),
                title_en=title.get("en", offer["code"]),
            )


class RenewalResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RenewalResult

    customer = factory.SubFactory(CustomerFactory)
    result = RenewalResult.Result.RENEWED
    date = factory.LazyFunction(lambda: timezone.now().date() - dt.timedelta(days=30))
    source = RenewalResult.Source.CRM


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiClient

    name = factory.Sequence(lambda n: f"crm-{n}")
    token_prefix = "x"
    token_hash = factory.Sequence(lambda n: f"{n:064d}")
    scopes = ["read", "score", "write_customers", "write_outcomes"]
