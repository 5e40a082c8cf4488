"""The campaign simulator on a small synthetic base, with the catalog and policy of the fixtures.

The catalog is read from fixtures/catalog.json into the policy's own types, as the command
reads it from the database after seed_demo; the agent has authority level 1, so the
authority guardrail has offers to keep out.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from ml.campaign import (
    KNOWN_EFFECTS,
    STATIC_POLICIES,
    TRUTH_FITTED,
    CampaignCustomer,
    CampaignSetup,
    campaign_run,
    guardrail_violation,
    known_effects_choices,
    logged_by_kind,
    oracle_choices,
    truth_fitted_choices,
)
from ml.policy import CustomerContext, OfferSpec, PolicySettings, TariffOption, renewal_fee_cents
from ml.simulate import TariffSpec, simulate_base

FIXTURES = Path(django_settings.BASE_DIR) / "fixtures"
EVALUATION = 400
LEARNING = 1_000
ROUNDS = 2
POLICIES = [*STATIC_POLICIES, "this_policy_cold", "this_policy_learned", TRUTH_FITTED, KNOWN_EFFECTS, "oracle"]
TODAY = dt.date(2025, 6, 2)


def catalog_offers() -> tuple[OfferSpec, ...]:
    return tuple(
        OfferSpec(
            code=offer["code"],
            kind=offer["kind"],
            title={"nl": offer["title_nl"], "en": offer["title_en"]},
            authority_level=offer["authority_level"],
            prior_uplift=offer["prior_uplift"],
            discount_percent=Decimal(str(offer.get("discount_percent", 0))),
            duration_months=offer.get("duration_months", 0),
            fixed_cost_cents=offer.get("fixed_cost_cents", 0),
            eligibility=offer.get("eligibility", {}),
        )
        for offer in json.loads((FIXTURES / "catalog.json").read_text())["offers"]
    )


def catalog_tariffs() -> tuple[TariffOption, ...]:
    return tuple(
        TariffOption(
            code=tariff["code"],
            name=tariff["name"],
            products=frozenset(tariff["products"]),
            monthly_fee_cents=tariff["monthly_fee_cents"],
        )
        for tariff in json.loads((FIXTURES / "catalog.json").read_text())["tariffs"]
    )


def fixture_policy() -> PolicySettings:
    return PolicySettings.from_values(json.loads((FIXTURES / "policy.json").read_text()))


def setup(**changes) -> CampaignSetup:
    values = {
        "offers": catalog_offers(),
        "tariffs": catalog_tariffs(),
        "settings": fixture_policy(),
        "agent_level": 1,
        "seed": 0,
    }
    values.update(changes)
    return CampaignSetup(**values)


@pytest.fixture(scope="module")
def report():
    tariffs = {
        tariff.code: TariffSpec(
            code=tariff.code, products=tuple(sorted(tariff.products)), monthly_fee_cents=tariff.monthly_fee_cents
        )
        for tariff in catalog_tariffs()
    }
    base = simulate_base(n=EVALUATION + LEARNING, seed=0, today=TODAY, tariffs=tariffs)
    return campaign_run(
        evaluation=base[:EVALUATION], learning=base[EVALUATION:], setup=setup(), rounds=ROUNDS, today=TODAY
    )


def result(report, name: str):
    return next(result for result in report.results if result.name == name)


def test_a_small_campaign_reports_every_policy_on_the_same_customers(report):
    data = report.as_json()

    assert [policy["policy"] for policy in data["policies"]] == POLICIES
    assert {policy["customers"] for policy in data["policies"]} == {EVALUATION}
    assert data["logged_outcomes"] == LEARNING
    assert [entry["logged_outcomes"] for entry in data["learning_rounds"]] == [LEARNING // ROUNDS, LEARNING]
    for policy in data["policies"]:
        assert 0 < policy["customers_kept"] <= EVALUATION
        assert policy["offer_cost_eur"] >= 0


def test_each_round_reports_what_the_log_holds_of_every_offer_kind_so_far(report):
    first, last = report.rounds

    assert sum(first["logged_by_kind"].values()) == LEARNING // ROUNDS
    assert sum(last["logged_by_kind"].values()) == LEARNING
    assert set(last["logged_by_kind"]) <= {"none", "discount", "gift", "upgrade", "service_recovery"}
    assert all(last["logged_by_kind"].get(kind, 0) >= count for kind, count in first["logged_by_kind"].items())
    counts = list(last["logged_by_kind"].values())
    assert counts == sorted(counts, reverse=True), "most logged first"


def test_logged_by_kind_counts_the_offer_kind_of_every_logged_decision():
    log = [{"offer_kind": kind} for kind in ("none", "gift", "none", "upgrade", "gift", "none")]

    assert list(logged_by_kind(log).items()) == [("none", 3), ("gift", 2), ("upgrade", 1)]
    assert logged_by_kind([]) == {}


def test_this_policy_breaks_no_guardrail_cold_or_after_learning(report):
    for name in ("this_policy_cold", "this_policy_learned"):
        assert result(report, name).guardrail_violations == 0
        assert result(report, name).offers_made > 0, "a policy making no offers breaks nothing trivially"


def test_no_policy_in_the_comparison_breaks_a_guardrail(report):
    assert {result.name: result.guardrail_violations for result in report.results} == dict.fromkeys(POLICIES, 0)


def test_the_oracle_gains_at_least_as_much_as_any_other_policy(report):
    oracle = result(report, "oracle")

    assert oracle.incremental_value_cents > 0
    for other in report.results:
        assert oracle.incremental_value_cents >= other.incremental_value_cents - 1, other.name
    assert oracle.share_of_oracle == 1.0


def test_making_no_offers_is_the_baseline_every_policy_is_measured_against(report):
    baseline = result(report, "no_offers")

    assert (baseline.incremental_value_cents, baseline.offers_made, baseline.offer_cost_cents) == (0, 0, 0)
    assert baseline.share_of_oracle == 0.0
    for other in report.results:
        assert other.incremental_value_cents == pytest.approx(other.net_value_cents - baseline.net_value_cents)


def test_the_last_learning_round_is_the_learned_policy_of_the_comparison(report):
    learned = result(report, "this_policy_learned")
    last = report.rounds[-1]

    assert last["net_retained_value_eur"] == round(learned.net_value_cents / 100, 2)
    assert last["share_of_oracle"] == pytest.approx(learned.share_of_oracle)


def test_a_campaign_needs_at_least_one_round():
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        campaign_run(evaluation=[], learning=[], setup=setup(), rounds=0, today=TODAY)


@pytest.mark.parametrize("name", [TRUTH_FITTED, KNOWN_EFFECTS])
def test_the_references_keep_no_more_than_the_oracle_and_no_less_than_no_offers(report, name):
    reference = result(report, name)

    assert 0 <= reference.incremental_value_cents <= result(report, "oracle").incremental_value_cents
    assert reference.guardrail_violations == 0


# --- guardrail_violation --------------------------------------------------------------------


def campaign_customer(campaign: CampaignSetup, **context_changes) -> CampaignCustomer:
    """A consumer with internet and tv at medium risk, paying more than a new customer (5,250) for the bundle."""
    values = {
        "segment": "consumer",
        "value_tier": "medium",
        "products": frozenset({"internet", "tv"}),
        "tenure_months": 36.0,
        "monthly_fee_cents": 6_000,
        "churn_probability": 0.4,
        "new_customer_fee_cents": 5_250,
        "best_tariff_fee_cents": 5_250,
    }
    values.update(context_changes)
    context = CustomerContext(**values)
    fee = renewal_fee_cents(context, campaign.settings)
    return CampaignCustomer(
        key="guardrails",
        context=context,
        features={},
        fee_cents=fee,
        margin_cents=fee * campaign.settings.margin_rate * campaign.settings.horizon_months,
        eligible=(),
        leave_probability=0.4,
        offer_effects={},
        pushiness=0.5,
    )


def test_an_allowed_offer_or_no_offer_breaks_nothing():
    campaign = setup()
    customer = campaign_customer(campaign)

    assert guardrail_violation(customer, "", campaign) is None
    assert guardrail_violation(customer, "slimme-speaker", campaign) is None


def test_guardrail_violation_catches_an_ineligible_offer():
    campaign = setup()

    assert guardrail_violation(campaign_customer(campaign), "zakelijk-korting-20", campaign) == "other segment"
    declined = campaign_customer(campaign, declined_recently=frozenset({"slimme-speaker"}))
    assert guardrail_violation(declined, "slimme-speaker", campaign) == "declined recently"


def test_guardrail_violation_catches_an_offer_over_the_budget_per_customer():
    campaign = setup(settings=replace(fixture_policy(), budget_per_customer_cents=3_000))

    assert (
        guardrail_violation(campaign_customer(campaign), "slimme-speaker", campaign) == "over the per-customer budget"
    )


def test_guardrail_violation_catches_an_offer_beyond_the_agents_authority():
    campaign = setup(agent_level=1)
    customer = campaign_customer(campaign)

    assert guardrail_violation(customer, "korting-25-12m", campaign) == "beyond the agent's authority"
    assert guardrail_violation(customer, "korting-25-12m", replace(campaign, agent_level=2)) is None


def test_guardrail_violation_catches_an_offer_worse_than_moving_to_the_best_tariff():
    campaign = setup()
    low_risk = campaign_customer(campaign, churn_probability=0.1, monthly_fee_cents=9_000)

    assert low_risk.fee_cents == 9_000, "no price parity at low risk"
    assert guardrail_violation(low_risk, "slimme-speaker", campaign) == "worse than the best tariff"


def test_guardrail_violation_catches_a_customer_at_risk_left_above_the_new_customer_price():
    campaign = setup()
    customer = replace(campaign_customer(campaign, best_tariff_fee_cents=None), fee_cents=6_000)

    assert guardrail_violation(customer, "slimme-speaker", campaign) == "pays more than a new customer"


# --- the oracle and the known-effects reference -----------------------------------------------


def with_a_gift_that_halves_leaving(campaign: CampaignSetup, **context_changes) -> CampaignCustomer:
    speaker = next(offer for offer in campaign.offers if offer.code == "slimme-speaker")
    return replace(campaign_customer(campaign, **context_changes), eligible=(speaker,), offer_effects={"gift": 0.5})


def test_where_the_churn_model_has_the_leave_chance_right_knowing_the_effects_chooses_as_the_oracle():
    campaign = setup()
    customer = with_a_gift_that_halves_leaving(campaign)  # leave chance 0.4, and the churn model says 0.4

    assert oracle_choices([customer], campaign) == known_effects_choices([customer], campaign) == ["slimme-speaker"]


def test_knowing_the_effects_still_judges_who_leaves_by_the_churn_model():
    campaign = setup()
    overstated = replace(with_a_gift_that_halves_leaving(campaign), leave_probability=0.05)
    understated = replace(with_a_gift_that_halves_leaving(campaign, churn_probability=0.05), leave_probability=0.4)

    assert oracle_choices([overstated, understated], campaign) == ["", "slimme-speaker"]
    assert known_effects_choices([overstated, understated], campaign) == ["slimme-speaker", ""]


def test_where_the_gain_follows_a_feature_the_truth_fitted_on_features_chooses_as_the_oracle():
    campaign = setup()
    template = with_a_gift_that_halves_leaving(campaign)

    def customer(number: int) -> CampaignCustomer:
        """The gift halves leaving for the customers whose "x" is positive, and does nothing for the rest."""
        x = (number % 20) - 9.5
        return replace(template, features={"x": x}, offer_effects={"gift": 0.5 if x > 0 else 0.0})

    learning = [customer(number) for number in range(400)]
    evaluation = [customer(number) for number in range(400, 440)]

    fitted = truth_fitted_choices(evaluation, learning, campaign)
    assert fitted == oracle_choices(evaluation, campaign)
    assert set(fitted) == {"", "slimme-speaker"}


def test_the_truth_fitted_on_features_cannot_tell_apart_customers_the_features_do_not():
    campaign = setup()
    template = with_a_gift_that_halves_leaving(campaign)
    # The same features; the gift works for every second customer, which only the oracle can see.
    learning = [replace(template, offer_effects={"gift": 0.5 * (number % 2)}) for number in range(200)]
    evaluation = learning[:10]

    assert len(set(truth_fitted_choices(evaluation, learning, campaign))) == 1
    assert oracle_choices(evaluation, campaign) == ["", "slimme-speaker"] * 5
