import datetime as dt
import importlib
import uuid

import pytest
from django.apps import apps as django_apps

from retention.models import Decision, DecisionAction, PolicyConfig
from retention.selectors import decisions as decisions_selectors
from retention.selectors.fairness import ActionFact, action_summary
from retention.selectors.outcome_log import COLUMNS, OutcomeLogError, logged_outcomes
from retention.services.decisions import decision_action_record
from tests.factories import CustomerFactory, RenewalResultFactory, offers_in_catalog

UTC = dt.UTC
FEE_CENTS = 5_000
# Default policy: margin rate 0.5 over 12 months.
DEFAULT_MARGIN_CENTS = FEE_CENTS * 6


def offer_json(code: str, *, kind: str = "discount", cost_cents: int = 3_000, acceptance: float = 0.8, **extra) -> dict:
    """One ranked offer as decision_create stores it."""
    offer = {
        "code": code,
        "kind": kind,
        "title": {"nl": code, "en": code},
        "cost_cents": cost_cents,
        "expected_acceptance": acceptance,
        "expected_net_value_cents": 1_000,
        "authority_level": 1,
        "within_authority": True,
        "over_team_budget": False,
        "needs_escalation": False,
        "propensity": 0.0,
    }
    offer.update(extra)
    return offer


STANDARD_OFFERS = [offer_json("korting-10", cost_cents=3_000), offer_json("gift-router", kind="gift", cost_cents=2_000)]


def logged_decision(customer, as_of: dt.datetime, **fields) -> Decision:
    """A stored decision with sensible defaults; `fields` override any of them."""
    values = {
        "id": uuid.uuid4(),
        "customer": customer,
        "channel": "phone",
        "as_of": as_of,
        "features": {"monthly_fee": FEE_CENTS / 100, "tenure_months": 30.0, "complaints_90d": 1},
        "model_versions": {"churn": "churn-v1"},
        "policy_version": 0,
        "churn_probability": 0.4,
        "risk_band": "medium",
        "reasons": [{"code": "complaints", "text": {"nl": "Klachten", "en": "Complaints"}}],
        "offers": STANDARD_OFFERS,
        "recommended_offer_code": "korting-10",
        "greedy_offer_code": "korting-10",
        "propensity": 0.9,
        "stay_probability_without_offer": 0.6,
        "renewal_fee_cents": FEE_CENTS,
    }
    values.update(fields)
    decision = Decision(**values)
    decision.full_clean()
    decision.save()
    offers_in_catalog(decision.offers)
    return decision


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, tzinfo=UTC)


def renewal(customer, day: int, result: str = "renewed"):
    return RenewalResultFactory(customer=customer, date=dt.date(2025, 3, day), result=result)


@pytest.fixture
def customer(db):
    return CustomerFactory()


def test_an_accepted_offer_is_the_treatment_and_its_cost_comes_off_the_kept_margin(customer, agent):
    decision = logged_decision(customer, at(1), team=None, agent=agent)
    decision_action_record(decision=decision, kind="presented", offer_code="korting-10", agent=agent)
    decision_action_record(decision=decision, kind="accepted", offer_code="korting-10", agent=agent)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert row["decision_id"] == str(decision.pk)
    assert row["agent_id"] == agent.pk
    assert (row["treatment_code"], row["treatment_kind"], row["accepted_cost_cents"]) == (
        "korting-10",
        "discount",
        3_000,
    )
    assert row["stayed"] is True
    assert row["margin_cents"] == DEFAULT_MARGIN_CENTS
    assert row["reward_cents"] == DEFAULT_MARGIN_CENTS - 3_000
    assert row["renewal_date"] == dt.date(2025, 3, 20)
    assert (row["recommended_code"], row["greedy_code"], row["propensity"]) == ("korting-10", "korting-10", 0.9)
    assert row["features"]["complaints_90d"] == 1
    assert [offer["code"] for offer in row["offers"]] == ["korting-10", "gift-router"]


def test_a_presented_offer_the_customer_churned_on_earns_nothing_and_costs_nothing(customer, agent):
    decision = logged_decision(customer, at(1))
    decision_action_record(decision=decision, kind="presented", offer_code="korting-10", agent=agent)
    decision_action_record(decision=decision, kind="declined", offer_code="korting-10", agent=agent)
    renewal(customer, 20, "churned")

    [row] = logged_outcomes().to_dict("records")

    assert (row["treatment_code"], row["treatment_kind"], row["accepted_cost_cents"]) == ("korting-10", "discount", 0)
    assert row["stayed"] is False
    assert row["reward_cents"] == 0


def test_no_offer_made_is_treatment_none_and_keeps_the_whole_margin_when_the_customer_stays(customer, agent):
    decision = logged_decision(customer, at(1), recommended_offer_code="", propensity=0.05, explored=True)
    decision_action_record(decision=decision, kind="no_action", agent=agent)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert (row["treatment_code"], row["treatment_kind"]) == ("", "none")
    assert row["reward_cents"] == DEFAULT_MARGIN_CENTS
    assert row["explored"] is True
    assert row["recommended_code"] == ""


def test_an_acceptance_corrected_by_a_decline_no_longer_counts_as_accepted(customer, agent):
    decision = logged_decision(customer, at(1))
    decision_action_record(decision=decision, kind="accepted", offer_code="korting-10", agent=agent)
    decision_action_record(decision=decision, kind="declined", offer_code="korting-10", agent=agent)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert (row["treatment_code"], row["accepted_cost_cents"]) == ("korting-10", 0)
    assert row["reward_cents"] == DEFAULT_MARGIN_CENTS


def test_an_acceptance_undone_leaves_the_offer_made_without_an_answer(customer, agent):
    decision = logged_decision(customer, at(1))
    reason = "" if decision.recommended_offer_code == "korting-10" else "other"
    decision_action_record(decision=decision, kind="presented", offer_code="korting-10", override_reason=reason,
                           agent=agent)  # fmt: skip
    decision_action_record(decision=decision, kind="accepted", offer_code="korting-10", agent=agent)
    decision_action_record(decision=decision, kind="undone", offer_code="korting-10", agent=agent)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert (row["treatment_code"], row["accepted_cost_cents"]) == ("korting-10", 0)
    facts = [ActionFact(a.kind, a.offer_code, a.override_reason, a.cost_cents) for a in decision.actions.order_by("pk")]
    summary = action_summary(facts)
    assert (summary.outcome, summary.accepted_code, summary.declined_codes) == ("open", "", ())


def test_an_accepted_offer_wins_over_one_presented_after_it(customer, agent):
    decision = logged_decision(customer, at(1))
    reason = "" if decision.recommended_offer_code == "gift-router" else "other"
    decision_action_record(
        decision=decision, kind="accepted", offer_code="gift-router", override_reason=reason, agent=agent
    )
    # Logged before presenting another offer beside an accepted one was refused: the log still holds such calls.
    DecisionAction.objects.create(
        decision=decision, kind="presented", offer_code="korting-10", override_reason="other", agent=agent
    )
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert (row["treatment_code"], row["treatment_kind"], row["accepted_cost_cents"]) == ("gift-router", "gift", 2_000)


def test_decisions_without_a_later_renewal_result_are_left_out(customer):
    logged_decision(customer, at(10))
    renewal(customer, 5)
    unlabelled = CustomerFactory()
    logged_decision(unlabelled, at(10))

    assert logged_outcomes().empty


def test_a_renewal_on_the_day_of_the_decision_labels_it(customer):
    decision = logged_decision(customer, at(10, hour=9))
    renewal(customer, 10)

    assert list(logged_outcomes()["decision_id"]) == [str(decision.pk)]


def test_the_decision_day_is_the_local_day_renewals_are_reported_in(customer):
    # 23:30 UTC on 9 March is 00:30 on 10 March in Amsterdam: a renewal on 9 March came before it.
    logged_decision(customer, dt.datetime(2025, 3, 9, 23, 30, tzinfo=UTC))
    renewal(customer, 9)

    assert logged_outcomes().empty


def test_one_renewal_labels_only_the_latest_decision_before_it(customer):
    logged_decision(customer, at(1))
    latest = logged_decision(customer, at(5))
    renewal(customer, 10, "churned")
    after = logged_decision(customer, at(12))
    renewal(customer, 25)

    frame = logged_outcomes()

    assert list(frame["decision_id"]) == [str(latest.pk), str(after.pk)]
    assert list(frame["stayed"]) == [False, True]
    assert list(frame["renewal_date"]) == [dt.date(2025, 3, 10), dt.date(2025, 3, 25)]


def test_advice_opened_again_and_left_without_a_word_does_not_supersede_the_answered_one(customer, agent):
    answered = logged_decision(customer, at(1), team=None, agent=agent)
    decision_action_record(decision=answered, kind="accepted", offer_code="korting-10", agent=agent)
    logged_decision(customer, at(1, hour=11), team=None, agent=agent)  # the panel opened again after the call
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert row["decision_id"] == str(answered.pk)
    assert (row["treatment_code"], row["stayed"]) == ("korting-10", True)


def test_on_a_later_day_even_untouched_advice_supersedes_the_answered_one(customer, agent):
    answered = logged_decision(customer, at(1), team=None, agent=agent)
    decision_action_record(decision=answered, kind="accepted", offer_code="korting-10", agent=agent)
    later = logged_decision(customer, at(3), team=None, agent=agent, recommended_offer_code="", propensity=0.5)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    # Preferring the answered one across days would pick decisions by what they recommended (an offer gets
    # logged on, no offer often not), which their logged chances do not account for.
    assert (row["decision_id"], row["treatment_code"]) == (str(later.pk), "")


def test_a_window_starting_later_that_day_leaves_out_untouched_advice_the_answered_one_superseded(customer, agent):
    answered = logged_decision(customer, at(1), team=None, agent=agent)
    decision_action_record(decision=answered, kind="accepted", offer_code="korting-10", agent=agent)
    logged_decision(customer, at(1, hour=11), team=None, agent=agent)
    renewal(customer, 20)

    assert logged_outcomes(since=at(1, hour=10) + dt.timedelta(minutes=30)).empty
    assert list(logged_outcomes(since=at(1, hour=9))["decision_id"]) == [str(answered.pk)]


def test_a_later_answered_decision_still_supersedes_an_earlier_answered_one(customer, agent):
    first = logged_decision(customer, at(1), team=None, agent=agent)
    decision_action_record(decision=first, kind="declined", offer_code="korting-10", agent=agent)
    later = logged_decision(customer, at(8), team=None, agent=agent)
    decision_action_record(decision=later, kind="no_action", agent=agent)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert (row["decision_id"], row["treatment_code"]) == (str(later.pk), "")


def test_the_first_renewal_result_after_a_decision_labels_it(customer):
    decision = logged_decision(customer, at(1))
    renewal(customer, 10, "churned")
    renewal(customer, 20, "renewed")

    [row] = logged_outcomes().to_dict("records")

    assert (row["decision_id"], row["stayed"]) == (str(decision.pk), False)


def test_the_window_selects_decisions_by_as_of_after_labelling(customer):
    logged_decision(customer, at(1))
    superseding = logged_decision(customer, at(8))
    renewal(customer, 10)
    other = CustomerFactory()
    inside = logged_decision(other, at(3))
    renewal(other, 10)

    assert list(logged_outcomes(since=at(1), until=at(5))["decision_id"]) == [str(inside.pk)]
    assert list(logged_outcomes(since=at(3, hour=10))["decision_id"]) == [str(inside.pk), str(superseding.pk)]
    assert list(logged_outcomes(until=at(3, hour=10))["decision_id"]) == []


def test_the_margin_uses_the_policy_version_the_decision_was_made_with(customer):
    PolicyConfig.objects.create(version=3, values={"margin_rate": 0.4, "horizon_months": 24})
    logged_decision(customer, at(1), policy_version=3, renewal_fee_cents=4_000)
    renewal(customer, 20)

    [row] = logged_outcomes().to_dict("records")

    assert row["margin_cents"] == 4_000 * 0.4 * 24
    assert row["policy_version"] == 3


def test_a_decision_logged_before_renewal_fees_were_stored_is_valued_on_its_monthly_fee(customer):
    logged_decision(customer, at(1), renewal_fee_cents=None, features={"monthly_fee": 42.5})
    renewal(customer, 20)
    with pytest.raises(OutcomeLogError, match="has no renewal fee to value"):
        logged_outcomes()

    fee_kept = importlib.import_module("retention.migrations.0018_decision_renewal_fee_kept")
    fee_kept.fee_from_the_features(django_apps, schema_editor=None)
    [row] = logged_outcomes().to_dict("records")

    assert (row["renewal_fee_cents"], row["margin_cents"]) == (4_250, 4_250 * 6)


def test_a_decision_naming_an_unknown_policy_version_is_refused_loudly(customer):
    logged_decision(customer, at(1), policy_version=7)
    renewal(customer, 20)

    with pytest.raises(OutcomeLogError, match="policy version 7"):
        logged_outcomes()


def test_a_naive_window_is_refused(db):
    with pytest.raises(ValueError, match="time-zone aware"):
        logged_outcomes(since=dt.datetime(2025, 3, 1))


def test_an_empty_log_gives_an_empty_frame_with_every_column(db):
    frame = logged_outcomes()

    assert frame.empty
    assert tuple(frame.columns) == COLUMNS


def _labelled_decisions(count: int, agent) -> None:
    for number in range(count):
        customer = CustomerFactory()
        decision = logged_decision(customer, at(1 + number % 5))
        decision_action_record(decision=decision, kind="presented", offer_code="korting-10", agent=agent)
        decision_action_record(decision=decision, kind="accepted", offer_code="korting-10", agent=agent)
        renewal(customer, 20, "renewed" if number % 2 else "churned")


@pytest.mark.parametrize("count", [2, 12])
def test_the_log_is_read_in_a_fixed_number_of_queries(agent, django_assert_num_queries, count):
    PolicyConfig.objects.create(version=1, values={"margin_rate": 0.4})
    _labelled_decisions(count, agent)

    # Lineage, results, the decisions' plain fields, their stored JSON (one query per IDS_PER_QUERY labelled
    # decisions), actions and policies.
    with django_assert_num_queries(6):
        frame = logged_outcomes(since=at(1, hour=0))

    assert len(frame) == count
    assert frame["reward_cents"].sum() == (count // 2) * DEFAULT_MARGIN_CENTS - count * 3_000


def test_the_stored_json_of_many_labelled_decisions_is_read_in_chunks_each_with_its_own_decision(agent, monkeypatch):
    monkeypatch.setattr(decisions_selectors, "IDS_PER_QUERY", 3)
    PolicyConfig.objects.create(version=1, values={"margin_rate": 0.4})
    _labelled_decisions(7, agent)

    frame = logged_outcomes(since=at(1, hour=0))

    stored = {str(pk): offers for pk, offers in Decision.objects.values_list("pk", "offers")}
    assert len(frame) == 7
    assert all(frame["offers"].map(len) > 0)
    assert [stored[decision_id] for decision_id in frame["decision_id"]] == list(frame["offers"])
