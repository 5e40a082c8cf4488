from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.policy import (
    SCALAR_SETTING_TYPES,
    CustomerContext,
    OfferSpec,
    PolicyError,
    PolicySettings,
    TariffOption,
    best_tariff,
    fee_after_contract_end_cents,
    ineligibility,
    monthly_fee_cents,
    rank_offers,
    within_authority,
)

POLICY = PolicySettings()


def offer(code="ten-percent", **overrides):
    values = {
        "code": code,
        "kind": "discount",
        "title": {"nl": code, "en": code},
        "authority_level": 1,
        "prior_uplift": 0.2,
        "discount_percent": Decimal(10),
        "duration_months": 12,
    }
    values.update(overrides)
    return OfferSpec(**values)


def customer(**overrides):
    values = {
        "segment": "consumer",
        "value_tier": "medium",
        "products": frozenset({"internet", "tv"}),
        "tenure_months": 48.0,
        "monthly_fee_cents": 6_000,
        "churn_probability": 0.5,
    }
    values.update(overrides)
    return CustomerContext(**values)


def test_expected_value_is_margin_kept_minus_cost():
    ranking = rank_offers(customer=customer(), offers=[offer()], settings=POLICY, agent_level=1)
    (ranked,) = ranking.offers
    margin = 6_000 * 0.5 * 12
    assert ranked.cost_cents == 7_200
    assert ranked.expected_acceptance == pytest.approx(0.6)
    assert ranked.expected_net_value_cents == round(margin * 0.6 - 7_200 - margin * 0.5)


def test_no_offer_is_recommended_when_none_is_worth_its_cost():
    ranking = rank_offers(customer=customer(churn_probability=0.05), offers=[offer()], settings=POLICY, agent_level=1)
    assert ranking.recommended_code == ""
    assert ranking.offers[0].expected_net_value_cents < 0


def test_an_offer_above_the_agents_authority_is_shown_as_needing_escalation():
    big = offer("forty-percent", authority_level=3, discount_percent=Decimal(40), duration_months=6, prior_uplift=0.9)
    gift = offer("router", kind="gift", discount_percent=Decimal(0), duration_months=0, fixed_cost_cents=2_000)
    ranking = rank_offers(customer=customer(churn_probability=0.9), offers=[big, gift], settings=POLICY, agent_level=1)
    assert ranking.offers[0].code == "forty-percent"
    assert ranking.offers[0].needs_escalation
    assert ranking.recommended_code == "router"


def test_eligibility_rules_filter_offers():
    business_only = offer(eligibility={"segments": ["business"]})
    assert ineligibility(business_only, customer()) == "other segment"
    needs_mobile = offer(eligibility={"requires_products": ["mobile"]})
    assert ineligibility(needs_mobile, customer()) == "lacks a required product"
    loyal = offer(eligibility={"min_tenure_months": 60})
    assert ineligibility(loyal, customer()) == "tenure too short"
    recovery = offer(eligibility={"requires_recent": ["outage"]})
    assert ineligibility(recovery, customer()) == "no recent complaint or outage"
    assert ineligibility(recovery, customer(recent_event_kinds=frozenset({"outage"}))) is None


def test_an_offer_declined_recently_is_not_ranked_again():
    ranking = rank_offers(
        customer=customer(declined_recently=frozenset({"ten-percent"})),
        offers=[offer()],
        settings=POLICY,
        agent_level=1,
    )
    assert ranking.offers == ()


def test_an_offer_accepted_recently_is_not_made_again():
    ranking = rank_offers(
        customer=customer(accepted_recently=frozenset({"ten-percent"})),
        offers=[offer()],
        settings=POLICY,
        agent_level=1,
    )
    assert ranking.offers == ()
    assert ineligibility(offer(), customer(accepted_recently=frozenset({"ten-percent"}))) == "accepted recently"


def test_what_the_customer_accepted_this_month_spends_their_budget():
    gift = offer(code="gift", kind="gift", discount_percent=Decimal(0), duration_months=0, fixed_cost_cents=5_000)
    settings = replace(POLICY, budget_per_customer_cents=12_000)

    def ranked(spent: int) -> list[str]:
        ranking = rank_offers(
            customer=customer(spent_this_month_cents=spent), offers=[gift], settings=settings, agent_level=3
        )
        return [offer.code for offer in ranking.offers]

    assert (ranked(7_000), ranked(7_001), ranked(20_000)) == (["gift"], [], [])


def test_the_best_tariff_is_one_of_the_customers_own_segment():
    everything = frozenset({"internet", "fixed", "mobile"})
    tariffs = [
        TariffOption("alles_in_1", "Alles-in-1", everything | {"tv"}, 7_950),
        TariffOption("zakelijk_compleet", "Zakelijk Compleet", everything, 8_950, segment="business"),
    ]

    assert best_tariff(everything, tariffs, segment="business").code == "zakelijk_compleet"
    assert best_tariff(everything, tariffs, segment="consumer").code == "alles_in_1"
    assert best_tariff(frozenset({"internet"}), tariffs[1:], segment="consumer") is None


def test_a_customer_without_a_known_fee_gets_no_offer_priced_on_nothing():
    gift = offer(code="gift", kind="gift", discount_percent=Decimal(0), duration_months=0, fixed_cost_cents=2_500)
    ranking = rank_offers(
        customer=customer(monthly_fee_cents=0), offers=[offer(), gift], settings=POLICY, agent_level=3
    )

    assert (ranking.offers, ranking.recommended_code) == ((), "")
    assert ineligibility(offer(), customer(monthly_fee_cents=0)) == "no known monthly fee"


def test_a_discount_larger_than_the_fee_leaves_nothing_to_pay_not_a_negative_fee():
    assert [monthly_fee_cents({"monthly_fee": fee}) for fee in (-40.0, 0.0, 29.95, None)] == [0, 0, 2995, 0]


def test_unknown_policy_settings_are_refused():
    with pytest.raises(PolicyError, match="unknown policy settings"):
        PolicySettings.from_values({"horizon_months": 12, "margin": 0.3})
    with pytest.raises(PolicyError, match="margin_rate"):
        PolicySettings.from_values({"margin_rate": 2})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"margin_rate": "0,5"}, 'margin_rate must be a number, not "0,5"'),
        ({"horizon_months": 12.5}, "horizon_months must be a whole number, not 12.5"),
        ({"price_parity": 1}, "price_parity must be true or false, not 1"),
        ({"exploration_share": True}, "exploration_share must be a number, not true"),
        ({"exploration_method": None}, "exploration_method must be text, not null"),
        ({"authority": [15, 30, 50]}, "authority must map each level to its limits"),
        ({"authority": {"een": {}}}, 'authority levels are 1, 2 and 3, not "een"'),
        ({"authority": {"1": {"max_discount_percent": 15}}}, "authority level 1 needs exactly max_discount_percent"),
        (
            {"authority": {"1": {"max_discount_percent": "15", "max_cost_cents": 6000}}},
            'authority level 1: max_discount_percent must be a number, not "15"',
        ),
        ({"risk_bands": {"medium": 0.25}}, 'risk_bands needs exactly "medium" and "high"'),
        ({"exploration_share": 0.0004}, "exploration_share must be 0 or at least 0.001"),
        ({"risk_bands": {"medium": "laag", "high": 0.5}}, 'risk_bands: medium must be a number, not "laag"'),
        (["horizon_months", 12], "the policy must be a JSON object of settings"),
    ],
)
def test_a_setting_of_the_wrong_shape_is_refused_naming_it(values, message):
    with pytest.raises(PolicyError) as refused:
        PolicySettings.from_values(values)
    assert str(refused.value).startswith(message)


def test_every_setting_has_its_type_checked():
    nested = {"authority", "risk_bands"}
    assert set(PolicySettings.__dataclass_fields__) == set(SCALAR_SETTING_TYPES) | nested


offers_strategy = st.lists(
    st.builds(
        offer,
        code=st.text("abcdefgh", min_size=1, max_size=6),
        authority_level=st.integers(1, 3),
        prior_uplift=st.floats(0, 1),
        discount_percent=st.decimals(0, 60, places=0),
        duration_months=st.integers(0, 24),
        fixed_cost_cents=st.integers(0, 50_000),
    ),
    max_size=8,
    unique_by=lambda o: o.code,
)
customers_strategy = st.builds(
    customer,
    churn_probability=st.floats(0, 1),
    monthly_fee_cents=st.integers(0, 30_000),
    tenure_months=st.one_of(st.none(), st.floats(0, 400)),
)


@settings(max_examples=200, deadline=None)
@given(customers_strategy, offers_strategy, st.integers(1, 3))
def test_no_recommendation_breaks_authority_or_budget(context, offers, level):
    ranking = rank_offers(customer=context, offers=offers, settings=POLICY, agent_level=level)
    values = [o.expected_net_value_cents for o in ranking.offers]
    assert values == sorted(values, reverse=True)
    for ranked in ranking.offers:
        assert ranked.cost_cents <= POLICY.budget_per_customer_cents
    if ranking.recommended_code:
        chosen = next(o for o in ranking.offers if o.code == ranking.recommended_code)
        source = next(o for o in offers if o.code == chosen.code)
        limit = POLICY.authority[level]
        assert source.authority_level <= level
        assert float(source.discount_percent) <= limit.max_discount_percent
        assert chosen.cost_cents <= limit.max_cost_cents
        assert chosen.expected_net_value_cents > 0


@settings(max_examples=100, deadline=None)
@given(customers_strategy, offers_strategy, st.integers(1, 3))
def test_the_level_an_offer_requires_is_the_lowest_whose_limits_take_it(context, offers, level):
    ranking = rank_offers(customer=context, offers=offers, settings=POLICY, agent_level=level)
    for ranked in ranking.offers:
        source = next(o for o in offers if o.code == ranked.code)
        takes = [within_authority(source, ranked.cost_cents, each, POLICY) for each in (1, 2, 3)]
        assert ranked.required_level == (takes.index(True) + 1 if any(takes) else None)
        assert ranked.within_authority is (ranked.required_level is not None and level >= ranked.required_level)
        assert ranked.as_json()["required_authority_level"] == ranked.required_level


@settings(max_examples=100, deadline=None)
@given(customers_strategy, offers_strategy, st.integers(1, 3))
def test_the_same_inputs_give_the_same_ranking(context, offers, level):
    first = rank_offers(customer=context, offers=offers, settings=POLICY, agent_level=level)
    second = rank_offers(customer=context, offers=list(reversed(offers)), settings=POLICY, agent_level=level)
    assert first == second


@pytest.mark.parametrize(
    ("discount_ends_in_days", "days_to_contract_end", "expected"),
    [
        (20.0, 20.0, 7_000),  # ends with the contract
        (5.0, 20.0, 7_000),  # ends before it
        (200.0, 20.0, 5_000),  # runs on into the next term
        (None, 20.0, 5_000),  # no end date: runs on
        (20.0, None, 5_000),  # the contract's end unknown: today's fee is all there is to go on
    ],
)
def test_the_fee_after_the_contract_adds_back_a_discount_that_ends_by_then(
    discount_ends_in_days, days_to_contract_end, expected
):
    features = {
        "monthly_fee": 50.0,
        "discount_monthly": 20.0,
        "discount_ends_in_days": discount_ends_in_days,
        "days_to_contract_end": days_to_contract_end,
    }
    assert fee_after_contract_end_cents(features) == expected


def test_an_unknown_fee_stays_unknown_after_the_contract():
    assert fee_after_contract_end_cents({"monthly_fee": None, "discount_monthly": 20.0}) == 0


def test_an_offer_on_a_two_year_renewal_is_set_against_the_best_tariff_over_both_years():
    # € 60 now, € 50 for the cheapest covering tariff (at low risk price parity leaves the fee as it is): 25% off
    # for a year saves € 180 in the first year, more than the € 120 the tariff saves then, but the second year at
    # the full fee gives it back and more.
    at_risk = customer(best_tariff_fee_cents=5_000, churn_probability=0.2)
    one_year = offer("quarter-off", discount_percent=Decimal(25), prior_uplift=0.9)
    two_years = replace(one_year, code="quarter-off-2y", commitment_months=24)

    ranking = rank_offers(customer=at_risk, offers=[one_year, two_years], settings=POLICY, agent_level=3)

    assert [ranked.code for ranked in ranking.offers] == ["quarter-off"]


def test_a_commitment_shorter_than_a_year_is_still_compared_over_a_year():
    at_risk = customer(best_tariff_fee_cents=5_000, churn_probability=0.2)
    month_to_month = offer("quarter-off", discount_percent=Decimal(25), duration_months=1, commitment_months=1)

    ranking = rank_offers(customer=at_risk, offers=[month_to_month], settings=POLICY, agent_level=3)

    assert ranking.offers == ()  # € 15 off once, against € 120 a year saved by moving
