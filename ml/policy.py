"""Offer arbitration: which counter-offers this customer may get, and in which order.

Pure Python on plain values, no Django: a function of the customer's features and
scores, the catalog and the policy settings, so every guardrail can be tested
exhaustively. The same inputs always give the same ranking, whoever asks.

Expected incremental net value of an offer over the horizon:
    margin × P(stay | offer) − cost − margin × P(stay | no offer)
where margin is the renewal fee's margin over the horizon. The cost counts as
committed once the offer is made, a conservative reading that never flatters an offer.

Randomness (exploration, the control group) comes from generators seeded by a key
the caller passes (`exploration_key`: the customer and the day; the customer's id), so a
decision can be replayed exactly from what it stores and the propensity of what was shown is always known.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType

import numpy as np

RISK_BANDS = ("low", "medium", "high")
RECENT_EVENT_KINDS = ("complaint", "outage")
NO_OFFER = ""
EXPLORATION_METHODS = ("thompson", "uniform")
# Uniform exploration draws among no offer and the best few offers the agent may make: the ones the
# panel shows. Trying offers the estimates already rank far down would cost much and teach little.
EXPLORED_OFFERS = 3
# Thompson exploration's chances are counted over this many draws of the values (seeded by the
# exploration key); the arm acted on is then drawn with those chances, so the logged chance is that of the act.
THOMPSON_DRAWS = 1024


MIN_EXPLORATION_SHARE = 0.001


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
    # How an exploring decision picks its arm: "thompson" draws each offer's value from what is known
    # of it, "uniform" takes no offer or one of the best EXPLORED_OFFERS alike.
    exploration_method: str = "thompson"
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
    # Days an offer made holds its cost of the team's budget while the customer thinks it over; their yes within
    # them is honoured whatever the team spent since, a later one is checked against the budget as it then stands.
    offer_hold_days: int = 14
    price_parity: bool = True
    risk_bands: dict[str, float] = field(default_factory=lambda: {"medium": 0.25, "high": 0.5})
    # Logged outcomes of an offer at which the learned response weighs as much as the catalog's prior.
    prior_strength: float = 200.0

    @classmethod
    def from_values(cls, values: dict) -> PolicySettings:
        """Settings from stored JSON; unknown keys, values of the wrong type and impossible values are refused,
        each naming the setting, so a policy typed into the admin cannot be saved to fail every page later."""
        if not isinstance(values, dict):
            raise PolicyError("the policy must be a JSON object of settings")
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise PolicyError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        data = dict(values)
        for name, value in data.items():
            if name in SCALAR_SETTING_TYPES:
                _check_type(name, value, SCALAR_SETTING_TYPES[name])
        if "authority" in data:
            data["authority"] = _authority_from(data["authority"])
        if "risk_bands" in data:
            data["risk_bands"] = _risk_bands_from(data["risk_bands"])
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
        if 0 < self.exploration_share < MIN_EXPLORATION_SHARE:
            # Off-policy evaluation divides by the chance an explored offer had; below this share the rarest chances
            # come near the propensity floor it raises smaller ones to (ml.evaluation.PROPENSITY_FLOOR).
            raise PolicyError(f"exploration_share must be 0 or at least {MIN_EXPLORATION_SHARE}")
        if self.exploration_method not in EXPLORATION_METHODS:
            raise PolicyError(f"exploration_method must be one of {', '.join(EXPLORATION_METHODS)}")
        if self.budget_per_customer_cents < 0:
            raise PolicyError("budget_per_customer_cents cannot be negative")
        for name in ("contact_policy_days", "recent_offer_days", "offer_hold_days"):
            if not 0 <= getattr(self, name) <= MAX_POLICY_DAYS:
                raise PolicyError(f"{name} must be 0 to {MAX_POLICY_DAYS} days")
        if self.prior_strength <= 0:
            raise PolicyError("prior_strength must be positive")
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


# A year: a longer hold, contact policy or pause keeps budget or offers back longer than any plan is made for.
MAX_POLICY_DAYS = 365
# The JSON type of each plain setting: a whole number, any number, true or false, or text.
WHOLE, NUMBER, FLAG, TEXT = "a whole number", "a number", "true or false", "text"
SCALAR_SETTING_TYPES = {
    "horizon_months": WHOLE,
    "margin_rate": NUMBER,
    "exploration_share": NUMBER,
    "exploration_method": TEXT,
    "control_share": NUMBER,
    "budget_per_customer_cents": WHOLE,
    "contact_policy_days": WHOLE,
    "recent_offer_days": WHOLE,
    "offer_hold_days": WHOLE,
    "price_parity": FLAG,
    "prior_strength": NUMBER,
}


def _check_type(name: str, value: object, expected: str) -> None:
    # JSON's true and false are Python's bools, which are ints too: a flag is no number, a number no flag.
    fits = {
        WHOLE: isinstance(value, int) and not isinstance(value, bool),
        NUMBER: isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
        FLAG: isinstance(value, bool),
        TEXT: isinstance(value, str),
    }[expected]
    if not fits:
        raise PolicyError(f"{name} must be {expected}, not {json.dumps(value)}")


def _authority_from(value: object) -> dict[int, AuthorityLimit]:
    if not isinstance(value, dict):
        raise PolicyError('authority must map each level to its limits, e.g. {"1": {"max_discount_percent": 15, '
                          '"max_cost_cents": 6000}}')  # fmt: skip
    limits = {}
    for level, limit in value.items():
        if not str(level).isdecimal():
            raise PolicyError(f"authority levels are 1, 2 and 3, not {json.dumps(level)}")
        if not isinstance(limit, dict) or set(limit) != {"max_discount_percent", "max_cost_cents"}:
            raise PolicyError(f"authority level {level} needs exactly max_discount_percent and max_cost_cents")
        _check_type(f"authority level {level}: max_discount_percent", limit["max_discount_percent"], NUMBER)
        _check_type(f"authority level {level}: max_cost_cents", limit["max_cost_cents"], WHOLE)
        if limit["max_discount_percent"] < 0 or limit["max_cost_cents"] < 0:
            raise PolicyError(f"authority level {level}: the limits cannot be negative")
        limits[int(level)] = AuthorityLimit(**limit)
    return limits


def _risk_bands_from(value: object) -> dict[str, float]:
    if not isinstance(value, dict) or set(value) != {"medium", "high"}:
        raise PolicyError('risk_bands needs exactly "medium" and "high", e.g. {"medium": 0.25, "high": 0.5}')
    for band, threshold in value.items():
        _check_type(f"risk_bands: {band}", threshold, NUMBER)
    return dict(value)


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
    # How long accepting binds the customer to the renewed contract.
    commitment_months: int = 12

    def cost_cents(self, monthly_fee_cents: int) -> int:
        """What the offer costs the company for a customer paying this fee."""
        return self.fixed_cost_cents + self._discount_cents(monthly_fee_cents, self.duration_months)

    @property
    def compared_months(self) -> int:
        """The period over which the offer is set against moving to the cheapest tariff: what accepting binds
        the customer to, and at least a year."""
        return max(12, self.commitment_months)

    def value_cents_over(self, monthly_fee_cents: int, months: int) -> int:
        """What the offer is worth to the customer in the coming `months`."""
        return self.fixed_cost_cents + self._discount_cents(monthly_fee_cents, min(self.duration_months, months))

    def _discount_cents(self, monthly_fee_cents: int, months: int) -> int:
        discount = Decimal(monthly_fee_cents) * self.discount_percent / 100 * months
        return int(discount.to_integral_value())


@dataclass(frozen=True)
class OfferHistory:
    """How the customer answered offers lately, as the decision log tells it."""

    declined_recently: frozenset[str] = frozenset()  # within the contact policy's days
    accepted_recently: frozenset[str] = frozenset()  # within `recent_offer_days`
    spent_this_month_cents: int = 0  # the cost of the offers accepted this calendar month


@dataclass(frozen=True)
class CustomerContext:
    segment: str
    value_tier: str
    products: frozenset[str]
    tenure_months: float | None
    monthly_fee_cents: int  # once the contract ends, before any offer (`fee_after_contract_end_cents`); 0 unknown
    churn_probability: float
    recent_event_kinds: frozenset[str] = frozenset()
    declined_recently: frozenset[str] = frozenset()
    # Offers the customer accepted lately are not made again, and what they accepted this month spends
    # their budget: another call must not bring the same credit twice.
    accepted_recently: frozenset[str] = frozenset()
    spent_this_month_cents: int = 0
    # What a new customer pays for the same bundle, and the cheapest tariff covering their products.
    new_customer_fee_cents: int | None = None
    best_tariff_fee_cents: int | None = None

    @classmethod
    def from_features(
        cls,
        features: Mapping,
        *,
        segment: str,
        value_tier: str,
        products: frozenset[str],
        churn_probability: float,
        best_tariff_fee_cents: int | None,
        history: OfferHistory | None = None,
    ) -> CustomerContext:
        """The context from a customer's feature row (a dict or a pandas row, as build_features makes it)."""
        history = history or OfferHistory()
        new_fee = feature_number(features.get("new_customer_fee"))
        return cls(
            segment=segment,
            value_tier=value_tier,
            products=products,
            tenure_months=feature_number(features.get("tenure_months")),
            monthly_fee_cents=fee_after_contract_end_cents(features),
            churn_probability=churn_probability,
            recent_event_kinds=frozenset(
                kind for kind in RECENT_EVENT_KINDS if (feature_number(features.get(f"{kind}s_90d")) or 0.0) > 0
            ),
            declined_recently=history.declined_recently,
            accepted_recently=history.accepted_recently,
            spent_this_month_cents=history.spent_this_month_cents,
            new_customer_fee_cents=None if new_fee is None else round(new_fee * 100),
            best_tariff_fee_cents=best_tariff_fee_cents,
        )


def feature_number(value) -> float | None:
    """A feature value as a float, or None when it is missing (None or NaN)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def monthly_fee_cents(features: Mapping) -> int:
    """What the customer pays a month, in cents, from the feature row (in euros there); 0 when unknown, and when a
    discount larger than the fee (stored before such contracts were refused) would make it negative."""
    return max(0, round((feature_number(features.get("monthly_fee")) or 0.0) * 100))


def fee_after_contract_end_cents(features: Mapping) -> int:
    """What the customer will pay a month once their contract ends, if nothing changes: today's fee, plus any
    discount running now that ends by the contract's end (a welcome discount for the contract's term does not run
    on into a prolonged one). Renewal advice is about that fee, not today's. 0 when unknown."""
    paid = monthly_fee_cents(features)
    discount = feature_number(features.get("discount_monthly")) or 0.0
    discount_ends_in = feature_number(features.get("discount_ends_in_days"))
    contract_ends_in = feature_number(features.get("days_to_contract_end"))
    if paid <= 0 or discount <= 0 or discount_ends_in is None or contract_ends_in is None:
        return paid
    # Both count days from the same moment to an end day's first instant, so the same day gives the same number.
    lapses = discount_ends_in <= contract_ends_in + 1e-6
    return paid + round(discount * 100) if lapses else paid


@dataclass(frozen=True)
class StayEstimates:
    """P(stay) for this customer without an offer and with each offer, by code.

    `evidence` holds, by offer code, the logged outcomes behind each offer's learned effect; an
    offer missing there rests on its catalog prior alone.
    """

    without_offer: float
    with_offer: Mapping[str, float]
    evidence: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_priors(cls, customer: CustomerContext, offers: list[OfferSpec]) -> StayEstimates:
        """Cold start: each offer removes its catalog prior share of the chance to leave."""
        return cls(
            without_offer=stay_probability(customer.churn_probability, 0.0),
            with_offer={
                offer.code: stay_probability(customer.churn_probability, offer.prior_uplift) for offer in offers
            },
        )


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
    over_team_budget: bool = False
    # The lowest authority level whose limits cover the offer at this cost; None when no level's do.
    required_level: int | None = None

    @property
    def needs_escalation(self) -> bool:
        return not self.within_authority or self.over_team_budget

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
            "required_authority_level": self.required_level,
            "over_team_budget": self.over_team_budget,
            "needs_escalation": self.needs_escalation,
            # Nine significant digits, not six decimals: at a 0.1% exploration share Thompson's smallest chance is
            # about 1e-6, which six decimals would store 2% off (and below that, as never tried).
            "propensity": float(f"{self.propensity:.9g}"),
        }


@dataclass(frozen=True)
class Ranking:
    offers: tuple[RankedOffer, ...]
    recommended_code: str  # "" when making no offer is best (or when exploring or in the control group says so)
    stay_probability_without_offer: float
    renewal_fee_cents: int
    price_parity_applied: bool
    greedy_code: str  # what the policy would recommend without exploration or control group
    propensity: float  # the chance the logging policy recommends `recommended_code`
    # The draw changed the recommendation: it is not the offer worth most. A decision in the exploration share that
    # drew the best arm recommends what the policy would have anyway (its propensity says how likely that was).
    explored: bool
    control_group: bool
    exploration_drawn: bool = False  # the decision fell in the exploration share, whichever arm it drew


def ineligibility(offer: OfferSpec, customer: CustomerContext) -> str | None:
    """Why this customer may not get this offer, or None when they may."""
    rules = offer.eligibility
    if customer.monthly_fee_cents <= 0:
        # Without a contract and its fee, an offer has no price to be counted on, nor a margin to keep.
        return "no known monthly fee"
    if offer.code in customer.declined_recently:
        return "declined recently"
    if offer.code in customer.accepted_recently:
        return "accepted recently"
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


@dataclass(frozen=True)
class TariffOption:
    code: str
    name: str
    products: frozenset[str]
    monthly_fee_cents: int
    segment: str = "consumer"


def best_tariff(products: frozenset[str], tariffs: list[TariffOption], *, segment: str) -> TariffOption | None:
    """The cheapest tariff sold today to the customer's segment that covers every product the customer has: a
    business customer cannot simply move to a consumer bundle, nor the other way round."""
    if not products:
        return None
    covering = [
        tariff for tariff in tariffs if products <= tariff.products and tariff.code and tariff.segment == segment
    ]
    return min(covering, key=lambda tariff: (tariff.monthly_fee_cents, tariff.code), default=None)


def renewal_fee_cents(customer: CustomerContext, settings: PolicySettings) -> int:
    """The monthly fee the customer renews at before any offer.

    With price parity on, a customer at risk renews at no more than a new customer pays
    for the same bundle, nor more than the cheapest tariff covering their products.
    """
    fee = customer.monthly_fee_cents
    if not settings.price_parity or settings.risk_band(customer.churn_probability) == "low":
        return fee
    references = [ref for ref in (customer.new_customer_fee_cents, customer.best_tariff_fee_cents) if ref is not None]
    return min([fee, *references])


def rankable(offer: OfferSpec, customer: CustomerContext, fee_cents: int, settings: PolicySettings) -> bool:
    """Eligible, no worse than the best tariff, and within what is left of the per-customer budget at this
    renewal fee."""
    return (
        ineligibility(offer, customer) is None
        and not worse_than_best_tariff(offer, customer, fee_cents)
        and offer.cost_cents(fee_cents) <= customer_budget_left_cents(customer, settings)
    )


def customer_budget_left_cents(customer: CustomerContext, settings: PolicySettings) -> int:
    """What is left of the per-customer budget this month, after the offers the customer accepted."""
    return budget_left_cents(customer.spent_this_month_cents, settings)


def budget_left_cents(spent_this_month_cents: int, settings: PolicySettings) -> int:
    return max(0, settings.budget_per_customer_cents - spent_this_month_cents)


def worse_than_best_tariff(offer: OfferSpec, customer: CustomerContext, fee_cents: int) -> bool:
    """True when simply moving to the cheapest covering tariff leaves the customer better off than this offer,
    over the months accepting it binds them (at least a year): a 25% discount for a year on a two-year renewal
    leaves the second year at the full fee."""
    if customer.best_tariff_fee_cents is None:
        return False
    months = offer.compared_months
    with_offer = fee_cents * months - offer.value_cents_over(fee_cents, months)
    return with_offer > customer.best_tariff_fee_cents * months


def within_authority(offer: OfferSpec, cost_cents: int, agent_level: int, settings: PolicySettings) -> bool:
    """An agent may make an offer at or below their level whose discount and cost fit their limits."""
    if offer.authority_level > agent_level:
        return False
    limit = settings.authority[agent_level]
    return float(offer.discount_percent) <= limit.max_discount_percent and cost_cents <= limit.max_cost_cents


def required_level(offer: OfferSpec, cost_cents: int, settings: PolicySettings) -> int | None:
    """The lowest authority level that may make the offer at this cost: whoever makes it needs at least that."""
    return next(
        (level for level in sorted(settings.authority) if within_authority(offer, cost_cents, level, settings)), None
    )


def _left_for(code: str, team_budget_left_cents: int | None, team_holds_cents: Mapping[str, int]) -> int | None:
    if team_budget_left_cents is None:
        return None
    return team_budget_left_for_offer(team_budget_left_cents, team_holds_cents.get(code, 0))


def team_budget_left_for_offer(unspent_cents: int, held_for_offer_cents: int) -> int:
    """What a team may still spend on one offer: its budget less what it accepted and holds this month (below 0 once
    over it), plus what it already holds for this very offer to this customer, which making or accepting the offer
    moves or turns into spending. The ranking and the check of an offer made or accepted both count it so."""
    return max(0, unspent_cents + held_for_offer_cents)


def stay_probability(churn_probability: float, uplift: float) -> float:
    """P(stay | offer) when the offer removes `uplift` of the chance to leave."""
    return 1.0 - churn_probability * (1.0 - uplift)


def rank_offers(
    *,
    customer: CustomerContext,
    offers: list[OfferSpec],
    settings: PolicySettings,
    agent_level: int,
    stay: StayEstimates | None = None,
    team_budget_left_cents: int | None = None,
    team_holds_cents: Mapping[str, int] = MappingProxyType({}),
    decision_key: str = "",
    control_key: str = "",
) -> Ranking:
    """Eligible offers ranked by expected incremental net value, best first.

    `stay` gives learned P(stay) per offer (the catalog priors when None). `team_holds_cents`: what the team
    already holds of its budget for an offer to this customer (made on their earlier advice), which making it here
    moves rather than spends again; it counts as left for that offer. The greedy
    recommendation is the best offer needing no escalation and worth more than making no
    offer, or no offer. A `control_key` in the control group gets no offer; otherwise
    with the exploration share, keyed on `decision_key`, the recommendation is drawn from
    no offer and the offers the agent may make (see `_exploration`).
    """
    if not 1 <= agent_level <= 3:
        raise PolicyError(f"agent authority level must be 1 to 3, not {agent_level}")
    stay = stay or StayEstimates.from_priors(customer, offers)
    fee = renewal_fee_cents(customer, settings)
    margin = fee * settings.margin_rate * settings.horizon_months
    ranked = _ranked_offers(
        customer, offers, stay, fee, margin, agent_level, settings, team_budget_left_cents, team_holds_cents
    )
    greedy = next((o.code for o in ranked if not o.needs_escalation and o.expected_net_value_cents > 0), NO_OFFER)
    drawn = _what_is_drawn(settings, decision_key=decision_key, control_key=control_key)
    exploring = _exploration([o for o in ranked if not o.needs_escalation], stay, margin, drawn, decision_key)
    choice = _logging_choice(greedy, exploring.pick, drawn, decision_key=decision_key, control_key=control_key)
    propensities = {arm: _propensity(arm, greedy, exploring, drawn) for arm in [NO_OFFER, *exploring.chances]}
    return Ranking(
        offers=tuple(replace(o, propensity=propensities.get(o.code, 0.0)) for o in ranked),
        recommended_code=choice.code,
        stay_probability_without_offer=stay.without_offer,
        renewal_fee_cents=fee,
        price_parity_applied=fee < customer.monthly_fee_cents,
        greedy_code=greedy,
        propensity=propensities.get(choice.code, 0.0),
        explored=choice.explored and choice.code != greedy,
        control_group=choice.control,
        exploration_drawn=choice.explored,
    )


def _ranked_offers(
    customer: CustomerContext,
    offers: list[OfferSpec],
    stay: StayEstimates,
    fee: int,
    margin: float,
    agent_level: int,
    settings: PolicySettings,
    team_budget_left_cents: int | None,
    team_holds_cents: Mapping[str, int],
) -> list[RankedOffer]:
    """The offers the rules let this customer be given, best expected net value first (then cheapest, then by code,
    so that equal values always come in one order)."""
    ranked = [
        _ranked(
            offer,
            offer.cost_cents(fee),
            stay,
            margin,
            agent_level,
            settings,
            _left_for(offer.code, team_budget_left_cents, team_holds_cents),
        )
        for offer in offers
        if rankable(offer, customer, fee, settings)
    ]
    return sorted(ranked, key=lambda offer: (-offer.expected_net_value_cents, offer.cost_cents, offer.code))


def _what_is_drawn(settings: PolicySettings, *, decision_key: str, control_key: str) -> PolicySettings:
    """The settings with the shares that are drawn for: a share that nothing is drawn for (no key given) is no
    chance at all, so what is logged is what actually could happen."""
    return replace(
        settings,
        exploration_share=settings.exploration_share if decision_key else 0.0,
        control_share=settings.control_share if control_key else 0.0,
    )


def _ranked(
    offer: OfferSpec,
    cost: int,
    stay: StayEstimates,
    margin: float,
    agent_level: int,
    settings: PolicySettings,
    team_budget_left_cents: int | None,
) -> RankedOffer:
    stay_with = stay.with_offer.get(offer.code, stay.without_offer)
    value = margin * stay_with - cost - margin * stay.without_offer
    return RankedOffer(
        code=offer.code,
        kind=offer.kind,
        title=offer.title,
        cost_cents=cost,
        expected_acceptance=stay_with,
        expected_net_value_cents=_round_cents(value),
        authority_level=offer.authority_level,
        within_authority=within_authority(offer, cost, agent_level, settings),
        required_level=required_level(offer, cost, settings),
        propensity=0.0,
        over_team_budget=team_budget_left_cents is not None and cost > team_budget_left_cents,
    )


@dataclass(frozen=True)
class _Choice:
    code: str
    explored: bool
    control: bool


def in_control_group(control_key: str, settings: PolicySettings) -> bool:
    return bool(control_key) and keyed_uniform("control", control_key) < settings.control_share


def _logging_choice(
    greedy: str, explored: str, settings: PolicySettings, *, decision_key: str, control_key: str
) -> _Choice:
    if in_control_group(control_key, settings):
        return _Choice(NO_OFFER, explored=False, control=True)
    if decision_key and keyed_uniform("explore", decision_key) < settings.exploration_share:
        return _Choice(explored, explored=True, control=False)
    return _Choice(greedy, explored=False, control=False)


@dataclass(frozen=True)
class _Exploring:
    chances: dict[str, float]  # by arm (no offer included): the chance an exploring decision takes it
    pick: str  # the arm this decision takes if it explores


def _exploration(
    explorable: Sequence[RankedOffer], stay: StayEstimates, margin: float, settings: PolicySettings, key: str
) -> _Exploring:
    """What an exploring decision would recommend, and the chance of each arm.

    Thompson: each offer's value is drawn from what is known of it (its expected value, give or
    take `value_uncertainty_cents`) and the best draw wins, no offer being worth 0. An offer the
    evidence already puts far below no offer is hardly ever tried, so exploring costs little,
    while one whose worth is still open is tried often, where learning pays.
    """
    if settings.exploration_method == "uniform":
        arms = [NO_OFFER, *[offer.code for offer in explorable][:EXPLORED_OFFERS]]
        pick = random.Random(_seed("explore-arm", key)).choice(arms)
        return _Exploring(chances=dict.fromkeys(arms, 1 / len(arms)), pick=pick)
    arms = [NO_OFFER, *[offer.code for offer in explorable]]
    if settings.exploration_share == 0 or len(arms) == 1:
        return _Exploring(chances={NO_OFFER: 1.0, **dict.fromkeys(arms[1:], 0.0)}, pick=NO_OFFER)
    leave = 1.0 - stay.without_offer
    means = np.array([0.0, *[offer.expected_net_value_cents for offer in explorable]])
    spreads = np.array(
        [0.0, *[value_uncertainty_cents(margin, leave, stay.evidence.get(o.code, 0), settings) for o in explorable]]
    )
    draws = means + spreads * np.random.default_rng(_seed("thompson", key)).standard_normal((THOMPSON_DRAWS, len(arms)))
    winners = np.argmax(draws, axis=1)
    chances = np.bincount(winners, minlength=len(arms)) / THOMPSON_DRAWS
    # The arm is drawn from the counted chances with a number of its own, not taken from one of the counted
    # draws: the chance logged is then exactly the chance the arm had, which off-policy estimates divide by.
    pick = int(np.searchsorted(np.cumsum(chances), keyed_uniform("thompson-pick", key), side="right"))
    return _Exploring(chances=dict(zip(arms, chances.tolist(), strict=True)), pick=arms[min(pick, len(arms) - 1)])


def value_uncertainty_cents(margin: float, leave: float, evidence: int, settings: PolicySettings) -> float:
    """How far an offer's expected value may be off: the share of the leave chance it removes is
    known about as well as the difference of two leave rates, each measured on the catalog prior's
    worth in outcomes (`prior_strength`) plus the logged outcomes of the offer."""
    leave = min(max(leave, 0.0), 1.0)
    return margin * math.sqrt(2 * leave * (1 - leave) / (settings.prior_strength + evidence))


def _propensity(arm: str, greedy: str, exploring: _Exploring, settings: PolicySettings) -> float:
    """The chance the logging policy recommends `arm`: control share, then the exploring share's draw, else greedy."""
    explore = settings.exploration_share * exploring.chances.get(arm, 0.0) + (1 - settings.exploration_share) * (
        arm == greedy
    )
    control = settings.control_share
    return control * (arm == NO_OFFER) + (1 - control) * explore


def exploration_key(customer_id: str, day: dt.date) -> str:
    """The key a decision's exploration is drawn with: one customer on one (local) day.

    Not the decision's own id: opening the customer again, or a CRM asking beside the agent, would
    then draw again, and whoever asked often enough would in time be shown what exploration offers.
    The same customer the same day gets the same draw, whoever asks and on which channel.
    """
    return f"{customer_id}:{day.isoformat()}"


def keyed_uniform(purpose: str, key: str) -> float:
    """A number in [0, 1) that depends only on the purpose and the key."""
    return random.Random(_seed(purpose, key)).random()


def _seed(purpose: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{purpose}:{key}".encode()).digest()[:8], "big")


def _round_cents(value: float) -> int:
    if math.isnan(value):
        raise PolicyError("expected value is not a number")
    return round(value)
