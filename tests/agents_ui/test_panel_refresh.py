"""While an escalation waits, the agent's panel watches the advice's log for the team lead's decision."""

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from agents_ui.presenters import escalation_open
from agents_ui.review.selectors import open_escalations
from retention.models import AgentProfile, DecisionAction
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import OFFERS, UNPROFITABLE_OFFERS, stored_decision
from tests.factories import AgentProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def decision(agent, customer):
    return stored_decision(customer=customer, agent=agent)


def refresh_url(decision, shown) -> str:
    return reverse("decision_refresh", args=[decision.pk]) + f"?shown={shown}"


def log(decision, by, kind, offer_code="", **fields):
    return decision_action_record(decision=decision, agent=by, kind=kind, offer_code=offer_code, **fields)


def watches(page: str) -> bool:
    return "data-refresh" in page


def test_the_panel_watches_only_while_an_escalation_waits(logged_in, agent, lead, decision):
    client = logged_in(agent)
    panel = f"/panel/?customer={decision.customer.external_id}&decision={decision.pk}"
    assert not watches(client.get(panel).text)

    log(decision, agent, "escalated", "half-price")
    page = client.get(panel).text
    assert watches(page)
    assert f'hx-get="{refresh_url(decision, 1)}"' in page
    assert 'hx-trigger="every 10s"' in page

    log(decision, lead, "presented", "half-price", override_reason="better_fit")
    assert not watches(client.get(panel).text)


def test_nothing_new_answers_204_and_the_panel_stays_as_it_is(logged_in, agent, decision):
    log(decision, agent, "escalated", "half-price")

    response = logged_in(agent).get(refresh_url(decision, 1), **HTMX)

    assert response.status_code == 204
    assert response.content == b""


def test_the_team_leads_offer_comes_in_with_who_made_it_and_stops_the_watching(logged_in, agent, lead, decision):
    log(decision, agent, "escalated", "half-price")
    log(decision, lead, "presented", "half-price", override_reason="better_fit")

    response = logged_in(agent).get(refresh_url(decision, 1), **HTMX)

    assert response.status_code == 200
    page = response.text
    assert "Vastgelegd door lead: Aanbod gedaan: Halve prijs." in page
    assert "Gedaan door teamleider" in page
    assert not watches(page)
    # The customer's answer is now the agent's to log.
    assert 'value="accepted"' in page


def test_a_lead_turning_the_offer_down_comes_in_as_turned_down_on_that_offer(logged_in, agent, lead, decision):
    log(decision, agent, "escalated", "half-price")
    log(decision, lead, "no_action")

    page = logged_in(agent).get(refresh_url(decision, 1), **HTMX).text

    assert "lead heeft je vraag over Halve prijs afgewezen." in page
    assert "Afgewezen door lead" in page and "Doorgezet</span>" not in page
    assert not watches(page)


def test_the_agent_ending_the_call_turns_down_nothing(logged_in, agent, lead, decision):
    log(decision, agent, "escalated", "half-price")
    log(decision, agent, "no_action")

    page = logged_in(lead).get(refresh_url(decision, 1), **HTMX).text

    assert "Vastgelegd door agent: Geen actie." in page
    assert "Afgewezen" not in page


def test_an_offer_held_back_only_by_authority_is_made_by_the_lead_without_an_override_reason(
    logged_in, agent, lead, customer
):
    # The agent could make nothing worth its cost; half price is worth most but needs a team lead.
    first = [{**OFFERS[2], "expected_net_value_cents": 9_000}, *UNPROFITABLE_OFFERS[:2]]
    decision = stored_decision(customer=customer, agent=agent, offers=first, recommended_offer_code="")
    log(decision, agent, "escalated", "half-price")

    page = logged_in(lead).get(f"/panel/?customer={customer.external_id}&decision={decision.pk}").text
    log(decision, lead, "presented", "half-price")

    assert 'name="override_reason"' not in page.split('id="offer-1-title"')[1].split("</li>")[0]
    assert decision.actions.get(kind="presented").override_reason == ""
    with pytest.raises(ValidationError, match="needs a reason"):
        log(decision, lead, "presented", "loyal-10")  # worth less than making nothing: an override


def test_a_second_tab_making_the_same_offer_again_is_refused(lead, agent, decision):
    log(decision, agent, "escalated", "half-price")
    log(decision, lead, "presented", "half-price", override_reason="better_fit")

    with pytest.raises(ValidationError, match="already the last thing logged"):
        log(decision, lead, "presented", "half-price", override_reason="better_fit")
    assert decision.actions.count() == 2


def test_an_action_of_the_viewer_in_another_tab_is_not_said_to_be_someone_elses(logged_in, agent, decision):
    log(decision, agent, "escalated", "half-price")
    log(decision, agent, "escalated")

    page = logged_in(agent).get(refresh_url(decision, 1), **HTMX).text

    assert "Vastgelegd: Doorgezet." in page
    assert "Vastgelegd door" not in page
    assert watches(page)


def test_a_count_above_what_the_log_holds_shows_the_offers_without_feedback(logged_in, agent, decision):
    response = logged_in(agent).get(refresh_url(decision, 5), **HTMX)

    assert response.status_code == 200
    assert 'id="decision"' in response.text and "Vastgelegd" not in response.text


@pytest.mark.parametrize("shown", ["", "-1", "two"])
def test_a_refresh_without_a_valid_count_is_refused(logged_in, agent, decision, shown):
    response = logged_in(agent).get(reverse("decision_refresh", args=[decision.pk]) + f"?shown={shown}", **HTMX)

    assert response.status_code == 400


def test_a_look_after_the_sign_in_ended_says_nothing_and_leaves_the_page(client, agent, decision):
    # Not the sign-in page: the agent saved nothing, so no "not saved" message and no lost page mid-call.
    response = client.get(refresh_url(decision, 0), **HTMX)

    assert response.status_code == 204 and response.content == b""
    assert "HX-Redirect" not in response.headers


def test_a_refresh_for_unknown_advice_is_404(logged_in, agent, decision):
    response = logged_in(agent).get(f"/panel/decisions/{uuid.uuid4()}/?shown=3", **HTMX)

    assert response.status_code == 404


def test_a_refresh_asks_the_database_once_while_nothing_changed(logged_in, agent, decision, django_assert_num_queries):
    log(decision, agent, "escalated", "half-price")
    client = logged_in(agent)
    client.get(refresh_url(decision, 1), **HTMX)

    # The session and user, then the count of the log.
    with django_assert_num_queries(4):
        assert client.get(refresh_url(decision, 1), **HTMX).status_code == 204


# Logs as (kind, offer code, days ago), oldest first, and whether an escalation in them still waits. The panel and
# the escalations page must agree on every one.
LOGS = [
    ([], False),
    ([("escalated", "half-price", 0)], True),
    ([("escalated", "", 0)], True),
    ([("escalated", "half-price", 8)], False),
    ([("escalated", "", 8)], False),
    ([("escalated", "half-price", 0), ("presented", "half-price", 0)], False),
    ([("escalated", "half-price", 0), ("no_action", "", 0)], False),
    ([("escalated", "half-price", 0), ("presented", "loyal-10", 0)], True),
    ([("escalated", "half-price", 0), ("thinking", "loyal-10", 0)], True),
    ([("escalated", "", 0), ("presented", "loyal-10", 0)], False),
    ([("escalated", "", 0), ("escalated", "half-price", 0)], True),
    ([("escalated", "half-price", 0), ("presented", "half-price", 0), ("escalated", "", 0)], True),
    ([("no_action", "", 0), ("escalated", "half-price", 0)], True),
]


@pytest.mark.parametrize(("steps", "waits"), LOGS)
def test_the_panel_and_the_escalations_page_agree_on_what_waits(agent, decision, steps, waits):
    now = timezone.now()
    for number, (kind, code, days) in enumerate(steps):
        action = DecisionAction.objects.create(decision=decision, agent=agent, kind=kind, offer_code=code)
        # A second apart in the order given, so "after" means the same to both readers.
        moment = now - dt.timedelta(days=days, seconds=len(steps) - number)
        DecisionAction.objects.filter(pk=action.pk).update(created_at=moment)
    actions = list(DecisionAction.objects.filter(decision=decision).order_by("created_at", "id"))

    assert escalation_open(actions, now=now) is waits
    assert bool(open_escalations(team_ids=None, now=now)) is waits


ABOVE_A_LEAD = {**OFFERS[2], "code": "forty-off", "authority_level": 3, "required_authority_level": 3}


@pytest.mark.parametrize(
    ("who_logs_no_action", "still_waiting"),
    [("lead", ["forty-off"]), ("agent", []), ("administrator", [])],
)
def test_a_leads_no_action_leaves_open_what_waits_for_an_administrator(
    agent, lead, customer, who_logs_no_action, still_waiting
):
    decision = stored_decision(customer=customer, agent=agent, offers=[*OFFERS, ABOVE_A_LEAD])
    administrator = AgentProfileFactory(
        user=UserFactory(username="admin"), team=None, role=AgentProfile.Role.ADMIN, authority_level=3
    ).user
    now = timezone.now()
    steps = [(agent, "half-price"), (agent, "forty-off")]
    steps.append(({"lead": lead, "agent": agent, "administrator": administrator}[who_logs_no_action], ""))
    for number, (actor, code) in enumerate(steps):
        kind = "escalated" if code else "no_action"
        action = DecisionAction.objects.create(decision=decision, agent=actor, kind=kind, offer_code=code)
        DecisionAction.objects.filter(pk=action.pk).update(created_at=now - dt.timedelta(seconds=len(steps) - number))
    actions = list(DecisionAction.objects.filter(decision=decision).order_by("created_at", "id"))

    waiting = open_escalations(team_ids=None, now=now)

    assert [escalation.offer_code for escalation in waiting] == still_waiting
    assert escalation_open(actions, now=now, offers=decision.offers) is bool(still_waiting)
