"""Offer arbitration: which counter-offers this customer may get, and in which order.

Pure Python on plain values, no Django: a function of the customer's features and
scores, the catalog and the policy settings, so every guardrail can be tested
exhaustively. The same inputs always give the same ranking, whoever asks.

Expected incremental net value of an offer over the horizon:
    margin × P(stay | offer) − cost − margin × P(stay | no offer)
where margin is the monthly fee's margin over the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

RISK_BANDS = ("low", "medium", "high")
RECENT_EVENT_KINDS = ("complaint", "outage")


class PolicyError(ValueError):
    """Policy settings that cannot be applied."""


@dataclass(frozen=True)
class AuthorityLimit:
    max_discount_percent: float
    max_cost_cents: int


@dataclass(frozen=True)
class PolicySettings:
    horizon_months: int = 12
    margin_rate: float = 0.5
    exploration_share: float = 0.05
    control_share: float = 0.0
    authority: dict[int, AuthorityLimit] = field(
        default_factory=lambda: {
            1: AuthorityLimit(15, 6_000),
            2: AuthorityLimit(30, 20_000),
            3: AuthorityLimit(50, 100_000),
        }
    )
    budget_per_customer_cents: int = 30_000
    contact_policy_days: int = 30
    recent_offer_days: int = 14
    price_parity: bool = True
    risk_bands: dict[str, float] = field(default_factory=lambda: {"medium": 0.25, "high": 0.5})

    @classmethod
    def from_values(cls, values: dict) -> PolicySettings:
        """Settings from stored JSON; unknown keys or impossible values are refused."""
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise PolicyError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        data = dict(values)
        if "authority" in data:
            data["authority"] = {int(level): AuthorityLimit(**limit) for level, limit in data["authority"].items()}
        settings = cls(**data)
        settings.check()
        return settings

    def check(self) -> None:
        if self.horizon_months <= 0:
            raise PolicyError("horizon_months must be positive")
        if not 0 < self.margin_rate <= 1:
            raise PolicyError("margin_rate must be in (0, 1]")
        for name in ("exploration_share", "control_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise PolicyError(f"{name} must be between 0 and 1")
        if sorted(self.authority) != [1, 2, 3]:
            raise PolicyError("authority needs limits for levels 1, 2 and 3")
        if not 0 < self.risk_bands["medium"] < self.risk_bands["high"] < 1:
            raise PolicyError("risk_bands need 0 < medium < high < 1")

    def risk_band(self, churn_probability: float) -> str:
        if churn_probability >= self.risk_bands["high"]:
            return "high"
        if churn_probability >= self.risk_bands["medium"]:
            return "medium"
        return "low"


@dataclass(frozen=True)
class OfferSpec:
    code: str
    kind: str
    title: dict[str, str]
    authority_level: int
    prior_uplift: float
    discount_percent: Decimal = Decimal(0)
    duration_months: int = 0
    fixed_cost_cents: int = 0
    eligibility: dict = field(default_factory=dict)

    def cost_cents(self, monthly_fee_cents: int) -> int:
        """What the offer costs the company for a customer paying this fee."""
        discount = Decimal(monthly_fee_cents) * self.discount_percent / 100 * self.duration_months
        return self.fixed_cost_cents + int(discount.to_integral_value())


@dataclass(frozen=True)
class CustomerContext:
    segment: str
    value_tier: str
    products: frozenset[str]
    tenure_months: float | None
    monthly_fee_cents: int
    churn_probability: float
    recent_event_kinds: frozenset[str] = frozenset()
    declined_recently: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RankedOffer:
    code: str
    kind: str
    title: dict[str, str]
    cost_cents: int
    expected_acceptance: float
    expected_net_value_cents: int
    authority_level: int
    within_authority: bool
    propensity: float

    @property
    def needs_escalation(self) -> bool:
        return not self.within_authority

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "kind": self.kind,
            "title": self.title,
            "cost_cents": self.cost_cents,
            "expected_acceptance": round(self.expected_acceptance, 4),
            "expected_net_value_cents": self.expected_net_value_cents,
            "authority_level": self.authority_level,
            "within_authority": self.within_authority,
            "needs_escalation": self.needs_escalation,
            "propensity": self.propensity,
        }


@dataclass(frozen=True)
class Ranking:
    offers: tuple[RankedOffer, ...]
    recommended_code: str  # "" when making no offer is best
    stay_probability_without_offer: float


def ineligibility(offer: OfferSpec, customer: CustomerContext) -> str | None:
    """Why this customer may not get this offer, or None when they may."""
    rules = offer.eligibility
    if offer.code in customer.declined_recently:
        return "declined recently"
    if "segments" in rules and customer.segment not in rules["segments"]:
        return "other segment"
    if "value_tiers" in rules and customer.value_tier not in rules["value_tiers"]:
        return "other value tier"
    if not set(rules.get("requires_products", ())) <= customer.products:
        return "lacks a required product"
    if set(rules.get("excludes_products", ())) & customer.products:
        return "has an excluded product"
    if rules.get("min_tenure_months") is not None and (customer.tenure_months or 0) < rules["min_tenure_months"]:
        return "tenure too short"
    if customer.churn_probability < rules.get("min_risk", 0.0):
        return "risk too low"
    required_events = set(rules.get("requires_recent", ()))
    if required_events and not required_events & customer.recent_event_kinds:
        return "no recent complaint or outage"
    return None


def within_authority(offer: OfferSpec, cost_cents: int, agent_level: int, settings: PolicySettings) -> bool:
    """An agent may make an offer at or below their level whose discount and cost fit their limits."""
    if offer.authority_level > agent_level:
        return False
    limit = settings.authority[agent_level]
    return float(offer.discount_percent) <= limit.max_discount_percent and cost_cents <= limit.max_cost_cents


def stay_probability(churn_probability: float, uplift: float) -> float:
    """P(stay | offer) when the offer removes `uplift` of the chance to leave."""
    return 1.0 - churn_probability * (1.0 - uplift)


def horizon_margin_cents(customer: CustomerContext, settings: PolicySettings) -> float:
    return customer.monthly_fee_cents * settings.margin_rate * settings.horizon_months


def rank_offers(
    *,
    customer: CustomerContext,
    offers: list[OfferSpec],
    settings: PolicySettings,
    agent_level: int,
    uplifts: dict[str, float] | None = None,
) -> Ranking:
    """Eligible offers ranked by expected incremental net value, best first.

    `uplifts` overrides an offer's prior uplift by code (learned estimates); the
    recommendation is the best offer within the agent's authority worth more than
    making no offer, or "" when none is.
    """
    if not 1 <= agent_level <= 3:
        raise PolicyError(f"agent authority level must be 1 to 3, not {agent_level}")
    uplifts = uplifts or {}
    margin = horizon_margin_cents(customer, settings)
    stay_without = stay_probability(customer.churn_probability, 0.0)
    ranked = []
    for offer in offers:
        if ineligibility(offer, customer) is not None:
            continue
        cost = offer.cost_cents(customer.monthly_fee_cents)
        if cost > settings.budget_per_customer_cents:
            continue
        stay_with = stay_probability(customer.churn_probability, uplifts.get(offer.code, offer.prior_uplift))
        value = margin * stay_with - cost - margin * stay_without
        ranked.append(
            RankedOffer(
                code=offer.code,
                kind=offer.kind,
                title=offer.title,
                cost_cents=cost,
                expected_acceptance=stay_with,
                expected_net_value_cents=_round_cents(value),
                authority_level=offer.authority_level,
                within_authority=within_authority(offer, cost, agent_level, settings),
                propensity=1.0,
            )
        )
    ranked.sort(key=lambda offer: (-offer.expected_net_value_cents, offer.cost_cents, offer.code))
    recommended = next((o.code for o in ranked if o.within_authority and o.expected_net_value_cents > 0), "")
    return Ranking(offers=tuple(ranked), recommended_code=recommended, stay_probability_without_offer=stay_without)


def _round_cents(value: float) -> int:
    if math.isnan(value):
        raise PolicyError("expected value is not a number")
    return round(value)
