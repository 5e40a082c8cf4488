"""Making an offer: it holds its cost of the team's budget until the customer answers it or the policy's hold
ends ("thinking it over" logged for an offer not made before makes it, so holds too), and one withdrawn from the
catalog since the advice is not made.

Before holds, every agent could make offers up to the team's whole remainder at once, and the customers' yes to
each was honoured: ten offers of € 66 made against € 100 left were all accepted.
"""

import datetime as dt
import importlib

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention.models import Customer, DecisionAction, Offer, PolicyConfig, offer_hold
from retention.selectors.budget import held_offers, month_start, team_budget_status
from retention.services import decisions
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import OFFERS, stored_decision
from tests.factories import AgentProfileFactory, CustomerFactory, UserFactory

COST = next(offer["cost_cents"] for offer in OFFERS if offer["code"] == "loyal-10")  # the recommended offer


@pytest.fixture
def team(team):
    team.monthly_budget_cents = 10_000
    team.save()
    return team


def advice(agent):
    return stored_decision(customer=CustomerFactory(), agent=agent)


def present(decision, agent, code="loyal-10"):
    reason = "" if code == decision.recommended_offer_code else "other"
    return decision_action_record(
        decision=decision, kind="presented", offer_code=code, override_reason=reason, agent=agent
    )


def refusal_code(refused: pytest.ExceptionInfo) -> str:
    return refused.value.error_dict["offer_code"][0].code


def made_days_ago(action: DecisionAction, days: float, hold_days: int = 14) -> None:
    made = timezone.now() - dt.timedelta(days=days)
    DecisionAction.objects.filter(pk=action.pk).update(created_at=made, held_until=made + dt.timedelta(days=hold_days))


def test_offers_made_and_unanswered_hold_their_cost_so_the_team_cannot_promise_its_budget_twice(agent, team):
    calls = [advice(agent) for _ in range(5)]
    present(calls[0], agent)

    refused = []
    for call in calls[1:]:
        with pytest.raises(ValidationError) as refusal:
            present(call, agent)
        refused.append(refusal_code(refusal))
    status = team_budget_status(team=team)

    assert refused == ["team_budget_spent"] * 4
    assert (status.spent_cents, status.held_cents, status.remaining_cents) == (0, COST, 10_000 - COST)
    assert status.level == "green" and status.percent_used == 66


def test_the_customers_yes_turns_the_hold_into_spending_and_frees_nothing_twice(agent, team):
    call = advice(agent)
    present(call, agent)
    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)

    status = team_budget_status(team=team)

    assert (status.spent_cents, status.held_cents, status.remaining_cents) == (COST, 0, 10_000 - COST)


def test_a_decline_frees_the_hold_and_an_undone_acceptance_holds_again(agent, team):
    declined, undone = advice(agent), advice(agent)
    present(declined, agent)
    decision_action_record(decision=declined, kind="declined", offer_code="loyal-10", agent=agent)
    freed = team_budget_status(team=team).held_cents
    present(undone, agent)
    decision_action_record(decision=undone, kind="accepted", offer_code="loyal-10", agent=agent)
    decision_action_record(decision=undone, kind="undone", offer_code="loyal-10", agent=agent)

    status = team_budget_status(team=team)

    assert freed == 0
    assert (status.spent_cents, status.held_cents) == (0, COST)


def test_making_the_same_offer_again_on_the_same_advice_moves_its_hold(agent, team):
    call = advice(agent)
    present(call, agent)
    decision_action_record(decision=call, kind="no_action", agent=agent)

    present(call, agent)

    assert team_budget_status(team=team).held_cents == COST


def test_a_yes_within_the_hold_is_honoured_whatever_the_team_spent_since(agent, team):
    call, colleague = advice(agent), advice(agent)
    made = present(call, agent)
    made_days_ago(made, 13)
    DecisionAction.objects.create(
        decision=colleague, kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)

    assert team_budget_status(team=team).spent_cents == 9_000 + COST


def test_a_yes_after_the_hold_ended_is_checked_against_the_budget_as_it_stands(agent, team, lead):
    call, colleague = advice(agent), advice(agent)
    made_days_ago(present(call, agent), 15)
    DecisionAction.objects.create(
        decision=colleague, kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    with pytest.raises(ValidationError, match="made more than 14 days ago") as refusal:
        decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)
    assert refusal_code(refusal) == "hold_ended"
    assert team_budget_status(team=team).held_cents == 0
    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=lead)  # a lead may spend over


def test_a_hold_that_ended_is_named_by_its_own_length_not_the_policy_in_force_now(agent, team):
    call, colleague = advice(agent), advice(agent)
    made_days_ago(present(call, agent), 15)
    PolicyConfig.objects.create(version=1, values={"offer_hold_days": 3})
    DecisionAction.objects.create(
        decision=colleague, kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    with pytest.raises(ValidationError, match="made more than 14 days ago"):
        decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)


def test_a_yes_after_the_hold_ended_is_taken_while_the_budget_still_allows_it(agent, team):
    call = advice(agent)
    made_days_ago(present(call, agent), 30)

    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)

    assert team_budget_status(team=team).spent_cents == COST


def test_with_no_hold_days_an_offer_made_holds_nothing_and_every_yes_is_checked(agent, team):
    PolicyConfig.objects.create(version=1, values={"offer_hold_days": 0})
    call, colleague = advice(agent), advice(agent)
    present(call, agent)
    held = team_budget_status(team=team).held_cents
    DecisionAction.objects.create(
        decision=colleague, kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    with pytest.raises(ValidationError) as refusal:
        decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)

    assert held == 0
    assert refusal_code(refusal) == "team_budget_spent"  # nothing was held, so no hold ended


def test_an_erased_customers_offers_hold_nothing_as_they_take_no_more_answers(agent, team):
    call = advice(agent)
    present(call, agent)

    Customer.objects.filter(pk=call.customer_id).update(erased_at=timezone.now())

    assert team_budget_status(team=team).held_cents == 0


def test_a_team_leads_offer_over_the_budget_holds_too_and_shows_the_team_over_it(agent, team, lead):
    call = advice(agent)
    DecisionAction.objects.create(
        decision=advice(agent), kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    present(call, lead)
    status = team_budget_status(team=team)

    assert (status.held_cents, status.remaining_cents, status.overspent_cents, status.level) == (
        COST,
        0,
        9_000 + COST - 10_000,
        "red",
    )


def test_what_is_held_counts_in_the_month_the_answer_would_spend_it(agent, team):
    early_this_month = month_start(timezone.now()) + dt.timedelta(hours=2)
    made = present(advice(agent), agent)
    DecisionAction.objects.filter(pk=made.pk).update(created_at=early_this_month - dt.timedelta(hours=3))

    status = team_budget_status(team=team, now=early_this_month)

    assert (status.spent_cents, status.held_cents) == (0, COST)


def test_accepting_one_offer_frees_what_the_others_made_on_the_same_advice_held(agent, team):
    call = advice(agent)
    present(call, agent)
    present(call, agent, code="speed-up")
    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)

    status = team_budget_status(team=team)

    assert (status.spent_cents, status.held_cents) == (COST, 0)


def test_a_longer_hold_in_a_new_policy_does_not_bring_back_a_hold_that_ended(agent, team):
    call = advice(agent)
    made_days_ago(present(call, agent), 15)

    PolicyConfig.objects.create(version=1, values={"offer_hold_days": 30})

    assert team_budget_status(team=team).held_cents == 0


def think(decision, agent, code="loyal-10"):
    reason = "" if code == decision.recommended_offer_code else "other"
    return decision_action_record(
        decision=decision, kind="thinking", offer_code=code, override_reason=reason, agent=agent
    )


def test_thinking_it_over_logged_for_an_offer_not_made_holds_its_cost_as_making_it_would(agent, team):
    call, colleague = advice(agent), advice(agent)
    thought = think(call, agent)

    with pytest.raises(ValidationError) as refusal:
        present(colleague, agent)

    assert (thought.held_cents, thought.charged_team) == (COST, team)
    assert refusal_code(refusal) == "team_budget_spent"
    assert team_budget_status(team=team).held_cents == COST


def test_thinking_it_over_after_the_offer_was_made_holds_nothing_more(agent, team):
    call = advice(agent)
    present(call, agent)

    thought = think(call, agent)

    assert thought.held_cents == 0
    assert team_budget_status(team=team).held_cents == COST


def test_a_yes_to_an_offer_thought_over_is_honoured_within_its_hold_and_spends_it_once(agent, team):
    call, colleague = advice(agent), advice(agent)
    think(call, agent)
    DecisionAction.objects.create(
        decision=colleague, kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)
    status = team_budget_status(team=team)

    assert (status.spent_cents, status.held_cents) == (9_000 + COST, 0)


def test_thinking_it_over_an_offer_not_made_is_refused_when_the_budget_cannot_hold_it(agent, team, lead):
    call = advice(agent)
    DecisionAction.objects.create(
        decision=advice(agent), kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    with pytest.raises(ValidationError) as refusal:
        think(call, agent)

    assert refusal_code(refusal) == "team_budget_spent"
    assert not call.actions.exists()
    assert think(call, lead).held_cents == COST  # a team lead may still make it


def test_the_same_offer_accepted_on_the_customers_newer_advice_ends_the_hold_of_the_older(agent, team):
    team.monthly_budget_cents = 20_000
    team.save()
    older = advice(agent)
    present(older, agent)
    newer = stored_decision(customer=older.customer, agent=agent)
    present(newer, agent)

    decision_action_record(decision=newer, kind="accepted", offer_code="loyal-10", agent=agent)
    status = team_budget_status(team=team)

    assert (status.spent_cents, status.held_cents) == (COST, 0)


def test_a_yes_on_the_older_advice_after_the_offer_was_accepted_on_newer_advice_is_checked_again(agent, team):
    PolicyConfig.objects.create(version=1, values={"recent_offer_days": 0})  # the same offer twice is allowed
    team.monthly_budget_cents = 20_000
    team.save()
    older = advice(agent)
    present(older, agent)
    newer = stored_decision(customer=older.customer, agent=agent)
    decision_action_record(decision=newer, kind="accepted", offer_code="loyal-10", agent=agent)
    DecisionAction.objects.create(
        decision=advice(agent), kind="accepted", offer_code="speed-up", channel="phone", agent=agent, cost_cents=9_000
    )

    with pytest.raises(ValidationError) as refusal:
        decision_action_record(decision=older, kind="accepted", offer_code="loyal-10", agent=agent)

    assert refusal_code(refusal) == "hold_ended"  # with the yes on the newer advice


def test_the_same_offer_made_again_on_the_customers_newer_advice_moves_the_hold_there(agent, team):
    older = advice(agent)
    present(older, agent)
    newer = stored_decision(customer=older.customer, agent=agent)

    present(newer, agent)  # the team holds COST already for this offer to this customer: it moves, so fits

    held = held_offers(now=timezone.now()).filter(charged_team=team)
    assert [(made.decision_id, made.held_cents) for made in held] == [(newer.pk, COST)]


def test_a_yes_on_newer_advice_counts_what_the_team_holds_for_it_on_older_advice_as_its_own(agent, team):
    older = advice(agent)
    present(older, agent)
    DecisionAction.objects.create(
        decision=advice(agent), kind="accepted", offer_code="speed-up", channel="phone", agent=agent,
        cost_cents=10_000 - COST,
    )  # fmt: skip
    newer = stored_decision(customer=older.customer, agent=agent)

    decision_action_record(decision=newer, kind="accepted", offer_code="loyal-10", agent=agent)

    status = team_budget_status(team=team)
    assert (status.spent_cents, status.held_cents, status.overspent_cents) == (10_000, 0, 0)


def test_an_acceptance_elsewhere_undone_does_not_bring_back_the_hold_it_ended(agent, team):
    """The room the acceptance freed may have been promised to other calls since: a hold coming back then put
    the team over its budget, and its yes was honoured unchecked."""
    older = crm_advice()
    present(older, agent)
    newer = stored_decision(customer=older.customer)
    decision_action_record(decision=newer, kind="accepted", offer_code="loyal-10")  # the CRM, for no team
    freed = team_budget_status(team=team).held_cents

    decision_action_record(decision=newer, kind="undone", offer_code="loyal-10")

    assert (freed, team_budget_status(team=team).held_cents) == (0, 0)
    assert offer_hold(list(older.actions.all()), "loyal-10", now=timezone.now(), taken_elsewhere=[
        newer.actions.get(kind="accepted").created_at
    ]) is None  # fmt: skip


def test_an_offer_thought_over_with_its_reason_is_accepted_without_a_second_one(agent, team):
    call = advice(agent)
    think(call, agent, code="speed-up")  # not the recommended offer: "other" given as its reason

    accepted = decision_action_record(decision=call, kind="accepted", offer_code="speed-up", agent=agent)

    assert accepted.override_reason == ""


# --- advice asked for without an agent, answered by agents of a team ------------------------------


@pytest.fixture
def other_agent(other_team):
    other_team.monthly_budget_cents = 1_000  # less than the offer costs
    other_team.save()
    return AgentProfileFactory(user=UserFactory(username="other-agent"), team=other_team).user


def crm_advice():
    """Advice a CRM client for several teams asked for without an agent: it spends no team's budget by itself."""
    return stored_decision(customer=CustomerFactory())


def test_a_yes_logged_by_an_agent_of_another_team_than_the_one_that_held_the_offer_is_checked_against_theirs(
    agent, team, other_agent, other_team
):
    call = crm_advice()
    present(call, agent)  # held by the presenting agent's team

    with pytest.raises(ValidationError) as refusal:
        decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=other_agent)

    assert refusal_code(refusal) == "team_budget_spent"
    assert team_budget_status(team=other_team).spent_cents == 0


def test_an_offer_made_for_no_team_holds_nothing_and_a_teams_yes_to_it_is_checked(other_agent, other_team):
    call = crm_advice()
    decision_action_record(decision=call, kind="presented", offer_code="loyal-10")  # the CRM, naming nobody

    with pytest.raises(ValidationError) as refusal:
        decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=other_agent)

    assert refusal_code(refusal) == "team_budget_spent"
    assert team_budget_status(team=other_team).committed_cents == 0


def test_a_yes_logged_without_an_agent_spends_the_team_that_held_the_offer(agent, team):
    call = crm_advice()
    present(call, agent)

    accepted = decision_action_record(decision=call, kind="accepted", offer_code="loyal-10")
    status = team_budget_status(team=team)

    assert accepted.charged_team == team
    assert (status.spent_cents, status.held_cents) == (COST, 0)


# --- offers logged before teams and holds were stored (migration 0016) ------------------------------


def logged_before_holds(decision, kind, *, agent=None, days=0.0, code="loyal-10") -> DecisionAction:
    action = DecisionAction.objects.create(decision=decision, kind=kind, offer_code=code, channel="phone", agent=agent)
    DecisionAction.objects.filter(pk=action.pk).update(
        created_at=timezone.now() - dt.timedelta(days=days), charged_team=None, held_cents=0, held_until=None
    )
    return action


def backfill() -> None:
    migration = importlib.import_module("retention.migrations.0016_action_held_cents")
    migration.charge_and_hold_what_was_logged(django_apps, schema_editor=None)


def test_the_backfill_charges_the_team_each_offer_counted_for_and_holds_only_offers_still_within_the_hold(
    agent, team, other_agent, other_team
):
    on_advice, no_team = advice(agent), crm_advice()
    accepted = logged_before_holds(on_advice, "accepted", agent=other_agent, days=40)
    recent = logged_before_holds(no_team, "presented", agent=other_agent, days=3)
    yes_without_agent = logged_before_holds(no_team, "accepted", days=2)
    old = logged_before_holds(crm_advice(), "presented", agent=agent, days=20)

    backfill()
    for action in (accepted, recent, yes_without_agent, old):
        action.refresh_from_db()

    assert accepted.charged_team == team  # the advice's team, not the agent's
    assert (recent.charged_team, yes_without_agent.charged_team) == (other_team, other_team)
    assert (recent.held_cents, recent.held_until) == (COST, recent.created_at + dt.timedelta(days=14))
    assert (old.charged_team, old.held_cents, old.held_until) == (team, 0, None)  # its hold had ended


def test_the_backfill_leaves_what_the_service_stored(agent, team, other_team):
    made = present(advice(agent), agent)
    DecisionAction.objects.filter(pk=made.pk).update(charged_team=other_team, held_cents=1)

    backfill()
    made.refresh_from_db()

    assert (made.charged_team, made.held_cents) == (other_team, 1)


# --- the rule in Python and in SQL ----------------------------------------------------------------

STEP = st.tuples(
    st.sampled_from(["presented", "thinking", "accepted", "declined", "undone", "no_action"]),
    st.sampled_from(["loyal-10", "speed-up"]),
    st.integers(min_value=0, max_value=30),  # days ago
    st.sampled_from([0, 1]),  # on the customer's first advice or their second
)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, max_size=10))
def test_the_customers_logs_and_the_team_budget_agree_on_what_is_held(agent, steps):
    """The panel and the answer's check read one decision's log in Python, with what was logged of the same offer on
    the customer's other advice; the budget counts every team's in SQL."""
    calls = [advice(agent)]
    calls.append(stored_decision(customer=calls[0].customer, agent=agent))
    now = timezone.now()
    # The logs are in order: each step at its day, or the previous step's if that is later.
    moment = now - dt.timedelta(days=31)
    made = [set(), set()]  # per advice, offers made or held so far: "thinking it over" holds only one not among them
    for kind, code, days_ago, which in steps:
        moment = max(moment, now - dt.timedelta(days=days_ago)) + dt.timedelta(seconds=1)
        cost = OFFERS[0]["cost_cents"] if code == "loyal-10" else OFFERS[1]["cost_cents"]
        holds = kind == "presented" or (kind == "thinking" and code not in made[which])
        if kind in ("presented", "thinking", "accepted", "declined"):
            made[which].add(code)
        action = DecisionAction.objects.create(
            decision=calls[which],
            kind=kind,
            offer_code="" if kind == "no_action" else code,
            channel="phone",
            agent=agent,
            held_cents=cost if holds else 0,
        )
        held_until = moment + dt.timedelta(days=14) if holds else None
        DecisionAction.objects.filter(pk=action.pk).update(created_at=moment, held_until=held_until)

    for call in calls:
        # As the answer's check reads it: this log in Python, with when the offer was taken on other advice.
        in_python = {code for code in ("loyal-10", "speed-up") if decisions._hold(call, code)}
        in_sql = set(held_offers(now=now).filter(decision=call).values_list("offer_code", flat=True))

        assert in_python == in_sql
        assert held_offers(now=now).filter(decision=call).count() == len(in_sql)  # each offer once


# --- an offer withdrawn from the catalog since the advice -------------------------------------------


def withdraw(code: str) -> None:
    Offer.objects.filter(code=code).update(is_active=False)


def test_an_offer_withdrawn_since_the_advice_is_not_made_nor_asked_of_a_team_lead(agent, team):
    call = advice(agent)
    withdraw("loyal-10")

    refusals = []
    for kind in ("presented", "accepted", "escalated"):
        with pytest.raises(ValidationError, match="no longer in the catalog") as refusal:
            decision_action_record(decision=call, kind=kind, offer_code="loyal-10", agent=agent)
        refusals.append(refusal_code(refusal))

    assert refusals == ["offer_withdrawn"] * 3
    assert not call.actions.exists()


def test_the_customers_answer_to_an_offer_made_before_it_was_withdrawn_is_logged(agent, team):
    call = advice(agent)
    present(call, agent)
    withdraw("loyal-10")

    decision_action_record(decision=call, kind="thinking", offer_code="loyal-10", agent=agent)
    decision_action_record(decision=call, kind="accepted", offer_code="loyal-10", agent=agent)

    assert list(call.actions.values_list("kind", flat=True)) == ["presented", "thinking", "accepted"]
