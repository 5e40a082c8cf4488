"""decision_create with exploration, the control group and an offer-response champion, as issue #6 asks.

These tests store their own policy (marked `exploring`, so the suite's exploration switch-off
does not apply) and check that every decision logs what the logging policy did and with
which chance, in a way that can be replayed from the decision alone.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from ml.models import ModelVersion
from ml.policy import (
    EXPLORED_OFFERS,
    NO_OFFER,
    CustomerContext,
    PolicySettings,
    Ranking,
    exploration_key,
    in_control_group,
    rank_offers,
    stay_probability,
)
from ml.registry import champions, model_version_promote, model_version_register
from ml.response import response_model_fit, response_training_set
from retention.models import Decision, PolicyConfig
from retention.selectors.budget import team_budget_status
from retention.selectors.catalog import offer_spec, offers_active, policy_current
from retention.services.decisions import decision_create
from tests.factories import ContractFactory, CustomerFactory, OfferFactory, ServiceEventFactory, TariffFactory

pytestmark = pytest.mark.exploring

POLICY_FIXTURE = Path(django_settings.BASE_DIR) / "fixtures" / "policy.json"
DECISIONS = 6


def store_policy(**changes) -> PolicySettings:
    values = {**json.loads(POLICY_FIXTURE.read_text()), **changes}
    PolicyConfig.objects.create(version=1, values=values)
    return PolicySettings.from_values(values)


@pytest.fixture
def catalog(db):
    TariffFactory(code="internet_tv", monthly_fee_cents=4_500, products=["internet", "tv"])
    return [
        OfferFactory(
            code="gift-router", kind="gift", discount_percent=0, duration_months=0, fixed_cost_cents=3_000,
            prior_uplift=0.3,
        ),
        OfferFactory(code="korting-10", discount_percent=10, duration_months=6, prior_uplift=0.2),
        OfferFactory(code="korting-40", discount_percent=40, duration_months=6, authority_level=3, prior_uplift=0.5),
    ]  # fmt: skip


def unhappy(external_id: str):
    customer = CustomerFactory(external_id=external_id, products=["internet", "tv"])
    ContractFactory(customer=customer, monthly_fee_cents=6_500)
    for days in (3, 12, 40):
        ServiceEventFactory(customer=customer, kind="complaint", occurred_at=timezone.now() - dt.timedelta(days=days))
    return customer


@pytest.fixture
def unhappy_customer(db):
    return unhappy("NL0000042")


def unhappy_customers(count: int, policy: PolicySettings | None = None) -> list:
    """Customers alike, each drawing its own exploration; with a policy, only those outside its control group."""
    numbers = (f"NL{number:07d}" for number in range(100, 200))
    outside = (n for n in numbers if policy is None or not in_control_group(n, policy))
    return [unhappy(number) for number, _ in zip(outside, range(count), strict=False)]


def arms(decision: Decision) -> list[str]:
    """What exploration draws from: no offer and the best few offers the deciding agent may make."""
    return [NO_OFFER, *[offer["code"] for offer in decision.offers if not offer["needs_escalation"]][:EXPLORED_OFFERS]]


def logged_chance(decision: Decision, policy: PolicySettings) -> float:
    """The chance that the control group, then epsilon-greedy over the arms, recommends what was recommended."""
    code = decision.recommended_offer_code
    explore = policy.exploration_share / len(arms(decision)) + (1 - policy.exploration_share) * (
        code == decision.greedy_offer_code
    )
    return policy.control_share * (code == NO_OFFER) + (1 - policy.control_share) * explore


def replayed(decision: Decision, *, agent_level: int) -> Ranking:
    """The ranking again, from what the decision stored and the catalog and policy it was made with."""
    features = decision.features
    new_fee = features.get("new_customer_fee")
    context = CustomerContext(
        segment=decision.customer.segment,
        value_tier=decision.customer.value_tier,
        products=frozenset(decision.customer.products),
        tenure_months=features["tenure_months"],
        monthly_fee_cents=round(features["monthly_fee"] * 100),
        churn_probability=decision.churn_probability,
        recent_event_kinds=frozenset(kind for kind in ("complaint", "outage") if features[f"{kind}s_90d"] > 0),
        new_customer_fee_cents=None if new_fee is None else round(new_fee * 100),
        best_tariff_fee_cents=decision.best_tariff["monthly_fee_cents"] if decision.best_tariff else None,
    )
    _, policy = policy_current()
    return rank_offers(
        customer=context,
        offers=[offer_spec(offer) for offer in offers_active()],
        settings=policy,
        agent_level=agent_level,
        team_budget_left_cents=team_budget_status(team=decision.team).remaining_cents if decision.team else None,
        decision_key=exploration_key(decision.customer.external_id, timezone.localdate(decision.as_of)),
        control_key=decision.customer.external_id,
    )


def test_with_every_decision_exploring_uniformly_each_is_logged_as_explored_among_the_arms(
    churn_champion, catalog, agent
):
    policy = store_policy(exploration_share=1.0, exploration_method="uniform", control_share=0.0)

    decisions = [
        decision_create(customer=customer, channel="phone", agent=agent) for customer in unhappy_customers(DECISIONS)
    ]

    for decision in decisions:
        assert decision.risk_band != "low", "at risk, so price parity makes every offer beat the best tariff"
        assert decision.explored is (decision.recommended_offer_code != decision.greedy_offer_code)
        assert decision.control_group is False
        assert decision.policy_version == 1
        assert len(arms(decision)) == 3, "no offer, the router and the 10% discount; the 40% needs a team lead"
        assert decision.recommended_offer_code in arms(decision)
        assert decision.propensity == pytest.approx(1 / 3)
        assert decision.propensity == pytest.approx(logged_chance(decision, policy))
        stored = {offer["code"]: offer["propensity"] for offer in decision.offers}
        third = pytest.approx(1 / 3, abs=1e-6)  # stored rounded to six decimals
        assert stored == {"gift-router": third, "korting-10": third, "korting-40": 0.0}


def test_the_whole_base_in_the_control_group_gets_no_offer(churn_champion, catalog, unhappy_customer, agent):
    store_policy(exploration_share=0.5, control_share=1.0)

    decision = decision_create(customer=unhappy_customer, channel="chat", agent=agent)

    assert decision.control_group is True
    assert decision.recommended_offer_code == NO_OFFER
    assert decision.explored is False
    assert decision.propensity == 1.0
    assert decision.greedy_offer_code != NO_OFFER, "the customer would otherwise have had an offer"
    assert decision.offers, "the ranked offers are still logged for the agent and for learning"


@pytest.mark.parametrize("method", ["uniform", "thompson"])
def test_the_stored_propensity_and_recommendation_are_those_recomputed_from_the_decision(
    churn_champion, catalog, agent, method
):
    policy = store_policy(exploration_share=0.5, exploration_method=method, control_share=0.2)
    # The control group is keyed on the customer: NL0000043 falls in the 20%.
    in_control = unhappy("NL0000043")
    outside = unhappy_customers(DECISIONS, policy)

    decisions = [
        decision_create(customer=customer, channel="phone", agent=agent) for customer in [*outside, in_control]
    ]

    assert [d.control_group for d in decisions] == [False] * DECISIONS + [True]
    drawn = {replayed(d, agent_level=1).exploration_drawn for d in decisions[:DECISIONS]}
    assert drawn == {True, False}, "decisions in and out of the exploration share are replayed"
    for decision in Decision.objects.filter(pk__in=[d.pk for d in decisions]).select_related("customer", "team"):
        if method == "uniform":
            assert decision.propensity == pytest.approx(logged_chance(decision, policy), abs=1e-12)
        ranking = replayed(decision, agent_level=1)
        assert (ranking.recommended_code, ranking.explored, ranking.control_group) == (
            decision.recommended_offer_code,
            decision.explored,
            decision.control_group,
        )
        assert ranking.propensity == decision.propensity
        assert [offer.as_json() for offer in ranking.offers] == decision.offers


def test_thompson_exploration_logs_a_chance_for_every_offer_the_agent_may_make(churn_champion, catalog, agent):
    store_policy(exploration_share=1.0, exploration_method="thompson", control_share=0.0)

    decisions = [
        decision_create(customer=customer, channel="phone", agent=agent) for customer in unhappy_customers(DECISIONS)
    ]

    for decision in decisions:
        stored = {offer["code"]: offer["propensity"] for offer in decision.offers}
        assert decision.explored is (decision.recommended_offer_code != decision.greedy_offer_code)
        assert stored["korting-40"] == 0.0, "needs a team lead, so never drawn"
        assert 0 <= sum(stored.values()) <= 1 + 1e-6
        if decision.recommended_offer_code:
            assert decision.propensity == pytest.approx(stored[decision.recommended_offer_code], abs=1e-6)
        else:
            assert decision.propensity == pytest.approx(1 - sum(stored.values()), abs=1e-5)


@pytest.mark.parametrize("method", ["uniform", "thompson"])
def test_the_same_customer_the_same_day_draws_the_same_whoever_asks_on_whichever_channel(
    churn_champion, catalog, agent, lead, method
):
    store_policy(exploration_share=0.5, exploration_method=method, control_share=0.0)

    for customer in unhappy_customers(DECISIONS):
        first = decision_create(customer=customer, channel="phone", agent=agent)
        again = decision_create(customer=customer, channel="phone", agent=agent)
        elsewhere = decision_create(customer=customer, channel="api", agent=lead)

        for other in (again, elsewhere):
            assert (other.recommended_offer_code, other.explored, other.propensity) == (
                first.recommended_offer_code,
                first.explored,
                first.propensity,
            )
            assert [offer["propensity"] for offer in other.offers] == [offer["propensity"] for offer in first.offers]


def test_the_exploration_key_is_the_customer_and_the_day():
    monday, tuesday = dt.date(2026, 11, 23), dt.date(2026, 11, 24)

    assert exploration_key("NL1", monday) == exploration_key("NL1", monday)
    assert len({exploration_key("NL1", monday), exploration_key("NL1", tuesday), exploration_key("NL2", monday)}) == 3


# --- with an offer-response champion ---------------------------------------------------------


def response_log(rows: int = 1_200, *, seed: int = 0) -> pd.DataFrame:
    """A labelled outcome log where the discount keeps more customers than no offer, the gift a few."""
    rng = np.random.default_rng(seed)
    complaints = rng.poisson(1.0, rows)
    leave = 1 / (1 + np.exp(-(-1.0 + 0.4 * complaints)))
    codes = rng.choice(["", "korting-10", "gift-router"], size=rows)
    removed = np.select([codes == "korting-10", codes == "gift-router"], [0.5, 0.1], 0.0)
    offers = [
        {"code": "korting-10", "kind": "discount", "cost_cents": 2_700},
        {"code": "gift-router", "kind": "gift", "cost_cents": 3_000},
    ]
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return pd.DataFrame(
        {
            "features": [
                {"complaints_90d": float(c), "tenure_months": float(t)}
                for c, t in zip(complaints, rng.uniform(6, 100, rows), strict=True)
            ],
            "churn_probability": leave,
            "treatment_kind": [{"": "", "korting-10": "discount", "gift-router": "gift"}[c] for c in codes],
            "treatment_code": codes,
            "offers": [offers] * rows,
            "renewal_fee_cents": 4_500,
            "stayed": rng.random(rows) >= leave * (1 - removed),
            "as_of": [start + dt.timedelta(days=int(day)) for day in rng.integers(0, 200, rows)],
        }
    )


@pytest.fixture
def acceptance_champion(churn_champion):
    result = response_model_fit(*response_training_set(response_log()), seed=0)
    version = model_version_register(
        kind=ModelVersion.Kind.ACCEPTANCE,
        model=result.model,
        metrics=result.metrics,
        training_window=result.window,
        training_rows=result.rows,
    )
    version = model_version_promote(version=version, by="test", reason="first offer-response model")
    yield version
    champions.clear()


def test_decisions_name_the_offer_response_champion_they_used(acceptance_champion, catalog, unhappy_customer, agent):
    store_policy(exploration_share=0.0, control_share=0.0)

    decision = decision_create(customer=unhappy_customer, channel="phone", agent=agent)

    assert decision.model_versions == {"churn": "churn-v1", "acceptance": acceptance_champion.label}
    assert acceptance_champion.label == "acceptance-v1"
    priors = {offer.code: stay_probability(decision.churn_probability, offer.prior_uplift) for offer in catalog}
    learned = {offer["code"]: offer["expected_acceptance"] for offer in decision.offers}
    assert any(abs(learned[code] - priors[code]) > 1e-3 for code in learned), "the estimates are not the priors"


def test_without_an_offer_response_champion_decisions_rank_on_the_catalog_priors(
    churn_champion, catalog, unhappy_customer, agent
):
    store_policy(exploration_share=0.0, control_share=0.0)

    decision = decision_create(customer=unhappy_customer, channel="phone", agent=agent)

    assert decision.model_versions == {"churn": "churn-v1"}
    for offer in decision.offers:
        prior = next(spec.prior_uplift for spec in catalog if spec.code == offer["code"])
        assert offer["expected_acceptance"] == pytest.approx(
            stay_probability(decision.churn_probability, prior), abs=1e-4
        )
