"""The synthetic base: deterministic, realistic in its shares, consistent in its history, with a hidden truth."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from statistics import mean

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ml.features import build_features
from ml.simulate import OFFER_KINDS, PERSONAS, PROVINCES, SimulatedCustomer, TariffSpec, simulate_base
from retention.records import records_to_frames
from retention.services.customers import record_errors

TODAY = dt.date(2025, 6, 2)
N = 3000


def catalog_tariffs() -> dict[str, TariffSpec]:
    catalog = json.loads((settings.BASE_DIR / "fixtures" / "catalog.json").read_text())
    return {
        t["code"]: TariffSpec(code=t["code"], products=tuple(t["products"]), monthly_fee_cents=t["monthly_fee_cents"])
        for t in catalog["tariffs"]
    }


@pytest.fixture(scope="module")
def tariffs() -> dict[str, TariffSpec]:
    return catalog_tariffs()


@pytest.fixture(scope="module")
def base(tariffs) -> list[SimulatedCustomer]:
    return simulate_base(n=N, seed=11, today=TODAY, tariffs=tariffs)


def labelled(base):
    return [customer for customer in base if customer.labelled]


def churned(base):
    return [customer for customer in labelled(base) if customer.record.renewals[0].result == "churned"]


def ending_soon(customer: SimulatedCustomer) -> bool:
    return TODAY < customer.renewal_date <= TODAY + dt.timedelta(days=90)


def test_the_same_seed_gives_the_same_base(tariffs):
    first = simulate_base(n=200, seed=5, today=TODAY, tariffs=tariffs)
    second = simulate_base(n=200, seed=5, today=TODAY, tariffs=tariffs)
    assert first == second


def test_another_seed_gives_other_customers(tariffs):
    first = simulate_base(n=200, seed=5, today=TODAY, tariffs=tariffs)
    other = simulate_base(n=200, seed=6, today=TODAY, tariffs=tariffs)
    assert {c.record.external_id for c in first}.isdisjoint({c.record.external_id for c in other})


def test_about_seven_in_ten_customers_have_a_labelled_renewal_in_the_past_two_years(base):
    assert 0.62 <= len(labelled(base)) / N <= 0.78
    for customer in labelled(base):
        assert TODAY - dt.timedelta(days=730) <= customer.record.renewals[0].date < TODAY


def test_churn_rate_at_renewal_is_between_15_and_25_percent(base):
    assert 0.15 <= len(churned(base)) / len(labelled(base)) <= 0.25


def test_about_one_in_six_customers_has_a_contract_ending_in_the_next_90_days(base):
    soon = [customer for customer in base if ending_soon(customer)]
    assert 0.13 <= len(soon) / N <= 0.22
    for customer in soon:
        active = [c for c in customer.record.contracts if c.status == "active"]
        assert not customer.labelled
        assert [c.end_date for c in active] == [customer.renewal_date]


def test_a_churned_customer_has_no_events_after_churning_and_no_active_contract(base):
    for customer in churned(base):
        churn_day = customer.record.renewals[0].date
        assert all(event.occurred_at.date() < churn_day for event in customer.record.events)
        assert {contract.status for contract in customer.record.contracts} == {"ended"}


def test_a_renewed_customer_has_a_new_contract_from_the_renewal_date_running_past_the_next_90_days(base):
    renewed = [c for c in labelled(base) if c.record.renewals[0].result == "renewed"]
    for customer in renewed:
        current = customer.record.contracts[-1]
        assert current.status == "active"
        assert current.start_date == customer.record.renewals[0].date
        assert current.end_date > TODAY + dt.timedelta(days=90)


def test_every_customer_has_one_contract_ending_at_their_renewal_moment(base):
    for customer in base:
        ending_at_renewal = [c for c in customer.record.contracts if c.end_date == customer.renewal_date]
        assert len(ending_at_renewal) == 1
        assert customer.record.signup_date <= ending_at_renewal[0].start_date


def test_every_record_can_be_stored(base):
    assert [customer.record.external_id for customer in base if record_errors(customer.record)] == []


def test_identities_look_dutch(base):
    ids = [customer.record.external_id for customer in base]
    assert len(set(ids)) == N
    assert all(re.fullmatch(r"NL\d{7}", external_id) for external_id in ids)
    assert all(re.fullmatch(r"06-\d{8}", customer.record.phone) for customer in base)
    assert {customer.record.region for customer in base} <= set(PROVINCES)
    assert any(" van der " in customer.record.display_name for customer in base)


def test_about_nine_in_ten_customers_are_consumers_on_consumer_bundles(base, tariffs):
    consumers = [customer for customer in base if customer.record.segment == "consumer"]
    assert 0.86 <= len(consumers) / N <= 0.94
    for customer in base:
        assert tariffs[customer.record.contracts[-1].bundle].segment == customer.record.segment


def test_products_are_those_of_the_bundle(base, tariffs):
    for customer in base:
        assert customer.record.products == list(tariffs[customer.record.contracts[-1].bundle].products)


def test_fees_are_plausible_euro_amounts(base):
    fees = [contract.monthly_fee_cents for customer in base for contract in customer.record.contracts]
    assert min(fees) >= 1_000
    assert max(fees) <= 15_000
    assert all(fee % 50 == 0 for fee in fees)


def test_long_standing_customers_pay_more_than_new_customers_for_the_same_bundle(base, tariffs):
    def gap_share(customer):
        contract = next(c for c in customer.record.contracts if c.end_date == customer.renewal_date)
        new_fee = tariffs[contract.bundle].monthly_fee_cents
        return (contract.monthly_fee_cents - new_fee) / new_fee

    def tenure_years(customer):
        return (customer.renewal_date - customer.record.signup_date).days / 365

    long_standing = [gap_share(c) for c in base if tenure_years(c) > 8]
    recent = [gap_share(c) for c in base if tenure_years(c) < 2]
    assert mean(long_standing) > mean(recent) + 0.1
    assert np.mean(np.array(long_standing) > 0) > 0.9


def test_events_are_utc_times_within_the_two_years_before_today(base):
    start = dt.datetime.combine(TODAY - dt.timedelta(days=730), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)
    events = [event for customer in base for event in customer.record.events]
    assert len(events) > 3 * N
    assert all(event.occurred_at.utcoffset() == dt.timedelta(0) for event in events)
    assert all(start <= event.occurred_at < end for event in events)


def test_nps_answers_are_scores_from_0_to_10_and_outages_last_some_hours(base):
    events = [event for customer in base for event in customer.record.events]
    assert {event.value for event in events if event.kind == "nps"} <= set(map(float, range(11)))
    assert all(event.value >= 0 for event in events if event.kind == "outage")
    assert all(event.value is None for event in events if event.kind not in ("nps", "outage"))
    assert set(Counter(event.kind for event in events)) == {
        "contact", "complaint", "outage", "nps", "payment_problem", "competitor_offer"
    }  # fmt: skip


def test_recent_complaints_raise_the_leave_probability(base):
    def complained_before_renewal(customer):
        moment = min(customer.renewal_date, TODAY)
        window = dt.timedelta(days=90)
        return any(
            e.kind == "complaint" and moment - window <= e.occurred_at.date() < moment for e in customer.record.events
        )

    with_complaint = [c.leave_probability for c in base if complained_before_renewal(c)]
    without = [c.leave_probability for c in base if not complained_before_renewal(c)]
    assert mean(with_complaint) > mean(without) + 0.05


def test_leaving_anyway_customers_respond_to_no_offer(base):
    leaving = [customer for customer in base if customer.persona == "leaving_anyway"]
    assert leaving
    assert max(max(customer.offer_effects.values()) for customer in leaving) < 0.05
    assert mean(customer.leave_probability for customer in leaving) > 0.5


@pytest.mark.parametrize(
    ("persona", "best_kind"), [("price_sensitive", "discount"), ("service_sensitive", "service_recovery")]
)
def test_each_persona_responds_best_to_the_offer_that_fits_it(base, persona, best_kind):
    members = [customer for customer in base if customer.persona == persona]
    average = {kind: mean(c.offer_effects[kind] for c in members) for kind in OFFER_KINDS}
    assert max(average, key=average.get) == best_kind


def test_truths_are_within_their_ranges(base):
    assert {customer.persona for customer in base} == set(PERSONAS)
    for customer in base:
        assert 0 < customer.leave_probability < 1
        assert 0 <= customer.pushiness <= 1
        assert set(customer.offer_effects) == set(OFFER_KINDS)
        assert all(0 <= effect <= 1 for effect in customer.offer_effects.values())


def test_pushiness_follows_the_persona_and_not_the_value_tier(base):
    frame = pd.DataFrame(
        {
            "persona": [c.persona for c in base],
            "tier": [c.record.value_tier for c in base],
            "pushiness": [c.pushiness for c in base],
        }
    )
    by_persona = frame.groupby("persona")["pushiness"].mean()
    by_tier = frame.groupby("tier")["pushiness"].mean()
    assert by_persona["deal_seeker"] - by_persona["loyal"] > 0.3
    assert by_tier.max() - by_tier.min() < 0.05


def test_a_model_of_the_observable_history_ranks_churn_well_but_not_perfectly(base, tariffs):
    history = labelled(base)
    rows, contracts, events = records_to_frames([c.record for c in history], as_of=dt.datetime.now(dt.UTC))
    rows["as_of"] = pd.to_datetime([c.renewal_date for c in history], utc=True)
    fees = {code: spec.monthly_fee_cents / 100 for code, spec in tariffs.items()}
    features = build_features(rows, contracts, events, fees).select_dtypes("number").dropna(axis=1, how="all")
    features = ((features - features.mean()) / features.std()).fillna(0.0).to_numpy()
    left = np.array([c.record.renewals[0].result == "churned" for c in history])
    half = len(history) // 2
    model = LogisticRegression(max_iter=500).fit(features[:half], left[:half])
    auc = roc_auc_score(left[half:], model.predict_proba(features[half:])[:, 1])
    assert 0.70 <= auc <= 0.88


def test_simulation_needs_a_consumer_tariff():
    business_only = {"zakelijk_internet": TariffSpec("zakelijk_internet", ("internet",), 5_000)}
    with pytest.raises(ValueError, match="consumer tariff"):
        simulate_base(n=10, seed=0, today=TODAY, tariffs=business_only)


def test_a_tariff_is_sold_to_the_segment_the_catalog_gives_it_whatever_its_code():
    tariffs = {
        "internet": TariffSpec("internet", ("internet",), 4_000),
        "bedrijf_internet": TariffSpec("bedrijf_internet", ("internet", "fixed"), 5_000, segment="business"),
    }

    base = simulate_base(n=400, seed=0, today=TODAY, tariffs=tariffs)

    bundles = {(customer.record.segment, tuple(customer.record.products)) for customer in base}
    assert bundles == {("consumer", ("internet",)), ("business", ("internet", "fixed"))}
    assert TariffSpec("zakelijk_x", ("internet",), 1).segment == "business"


def test_simulation_needs_at_least_one_customer(tariffs):
    with pytest.raises(ValueError, match="at least 1"):
        simulate_base(n=0, seed=0, today=TODAY, tariffs=tariffs)


# --- a base that answers offers otherwise ----------------------------------------------------


def test_named_offer_effects_change_only_those_effects(tariffs):
    default = simulate_base(n=300, seed=5, today=TODAY, tariffs=tariffs)
    other = simulate_base(
        n=300, seed=5, today=TODAY, tariffs=tariffs, offer_effects={"loyal": {"gift": 0.8}, "deal_seeker": {}}
    )

    for before, after in zip(default, other, strict=True):
        assert (after.record, after.persona, after.leave_probability) == (
            before.record,
            before.persona,
            before.leave_probability,
        )
        for kind in OFFER_KINDS:
            if before.persona == "loyal" and kind == "gift":
                assert 0.6 <= after.offer_effects[kind] <= 1.0, "0.8 give or take the customer's own quarter"
            else:
                assert after.offer_effects[kind] == before.offer_effects[kind]
    assert any(customer.persona == "loyal" for customer in default)


@pytest.mark.parametrize(
    ("effects", "message"),
    [
        ({"stingy": {"gift": 0.1}}, "unknown persona 'stingy'"),
        ({"loyal": {"cashback": 0.1}}, "unknown offer kind 'cashback' for 'loyal'"),
        ({"loyal": {"gift": 1.5}}, r"the share loyal.gift must be a number from 0 to 1, not 1.5"),
        ({"loyal": {"gift": -0.1}}, r"the share loyal.gift must be a number from 0 to 1"),
        ({"loyal": {"gift": "0.3"}}, r"the share loyal.gift must be a number from 0 to 1, not '0.3'"),
        ({"loyal": {"gift": True}}, r"the share loyal.gift must be a number from 0 to 1"),
        ({"loyal": 0.3}, "the effects of 'loyal' must map offer kinds to shares"),
        ([0.3], "offer effects must map personas"),
    ],
)
def test_offer_effects_naming_what_does_not_exist_are_refused(tariffs, effects, message):
    with pytest.raises(ValueError, match=message):
        simulate_base(n=10, seed=0, today=TODAY, tariffs=tariffs, offer_effects=effects)
