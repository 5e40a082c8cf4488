"""Reads of the offer catalog, tariffs and policy settings."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from ml.policy import OfferSpec, PolicySettings, TariffOption
from ml.simulate import TariffSpec
from retention.models import Offer, PolicyConfig, Tariff


def offers_active(*, on: dt.date | None = None) -> list[Offer]:
    return list(_offers_on(on or timezone.localdate()).order_by("code"))


def offer_titles_in_catalog(code: str, *, on: dt.date | None = None) -> dict[str, str] | None:
    """An offer's title in each language, as the catalog has it on this day; None when it offers none by the code."""
    titles = _offers_on(on or timezone.localdate()).filter(code=code).values("title_nl", "title_en").first()
    return {"nl": titles["title_nl"], "en": titles["title_en"]} if titles else None


def offer_in_catalog(code: str, *, on: dt.date | None = None) -> bool:
    """Whether the offer may be made on this day: active, and within its dates."""
    return _offers_on(on or timezone.localdate()).filter(code=code).exists()


def _offers_on(on: dt.date) -> QuerySet[Offer]:
    return (
        Offer.objects.filter(is_active=True)
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=on))
        .filter(Q(active_until__isnull=True) | Q(active_until__gte=on))
    )


def offer_spec(offer: Offer) -> OfferSpec:
    return OfferSpec(
        code=offer.code,
        kind=offer.kind,
        title={"nl": offer.title_nl, "en": offer.title_en},
        authority_level=offer.authority_level,
        prior_uplift=offer.prior_uplift,
        discount_percent=offer.discount_percent,
        duration_months=offer.duration_months,
        commitment_months=offer.commitment_months,
        fixed_cost_cents=offer.fixed_cost_cents,
        eligibility=offer.eligibility or {},
    )


def tariff_spec(tariff: Tariff) -> TariffSpec:
    """The tariff as the simulator sells it, in the catalog's segment."""
    return TariffSpec(
        code=tariff.code,
        products=tuple(tariff.products),
        monthly_fee_cents=tariff.monthly_fee_cents,
        segment=tariff.segment,
    )


def tariff_option(tariff: Tariff) -> TariffOption:
    return TariffOption(
        code=tariff.code,
        name=tariff.name,
        products=frozenset(tariff.products),
        monthly_fee_cents=tariff.monthly_fee_cents,
        segment=tariff.segment,
    )


def policy_current() -> tuple[int, PolicySettings]:
    """The policy version in force and its settings; the built-in defaults (version 0) until one is stored."""
    config = PolicyConfig.objects.order_by("-version").first()
    if config is None:
        return 0, PolicySettings()
    return config.version, PolicySettings.from_values(config.values)


def tariffs_active(*, on: dt.date | None = None) -> list[Tariff]:
    return list(tariffs_sold(on or timezone.localdate()).order_by("monthly_fee_cents", "code"))


def tariffs_sold(on: dt.date) -> QuerySet[Tariff]:
    """The tariffs a new customer can take on this day: what a bundle costs a new customer is only these."""
    return Tariff.objects.filter(Q(active_from__isnull=True) | Q(active_from__lte=on)).filter(
        Q(active_until__isnull=True) | Q(active_until__gte=on)
    )


def new_customer_fees(tariffs: list[Tariff] | None = None) -> dict[str, float]:
    """What a new customer pays a month for each bundle sold today, in euros, by tariff code."""
    return {
        tariff.code: tariff.monthly_fee_cents / 100 for tariff in (tariffs if tariffs is not None else tariffs_active())
    }
