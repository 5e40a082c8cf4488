import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from retention.models import AgentProfile, DecisionAction, PolicyConfig
from tests.agents_ui.decisions import OFFERS, stored_decision
from tests.factories import AgentProfileFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}

# Each action kind with what it needs: answers follow a presented offer.
ACTIONS = [
    ({"kind": "presented", "offer_code": "loyal-10"}, "Aanbod gedaan"),
    ({"kind": "accepted", "offer_code": "loyal-10"}, "Geaccepteerd"),
    ({"kind": "declined", "offer_code": "loyal-10"}, "Afgewezen"),
    ({"kind": "thinking", "offer_code": "loyal-10"}, "Denkt erover na"),
    ({"kind": "escalated", "offer_code": "half-price"}, "Doorgezet"),
    ({"kind": "escalated"}, "Doorgezet"),
    ({"kind": "no_action"}, "Geen actie"),
]


@pytest.fixture
def decision(agent, customer):
    return stored_decision(customer=customer, agent=agent)


def action_url(decision) -> str:
    return reverse("decision_action", args=[decision.pk])


def panel_url(decision) -> str:
    return f"/panel/?customer={decision.customer.external_id}&decision={decision.pk}"


@pytest.mark.parametrize(("fields", "words"), ACTIONS)
def test_each_action_is_logged_by_a_plain_post_and_redirects_back_to_the_advice(
    logged_in, agent, decision, fields, words
):
    client = logged_in(agent)

    response = client.post(action_url(decision), fields)

    assert response.status_code == 302
    assert response["Location"] == panel_url(decision) + "#decision"  # opens at the offers, where the message is
    action = DecisionAction.objects.get()
    assert (action.decision, action.kind, action.offer_code, action.agent) == (
        decision, fields["kind"], fields.get("offer_code", ""), agent
    )  # fmt: skip
    page = client.get(response["Location"]).text
    offers = page[page.index('<section id="decision"') :]
    assert f"Vastgelegd: {words}." in offers[: offers.index("action-log")]
    assert words in page[page.index("action-log") :]


@pytest.mark.parametrize(("fields", "words"), ACTIONS)
def test_each_action_is_logged_with_htmx_and_answers_with_the_updated_fragment(
    logged_in, agent, decision, fields, words
):
    response = logged_in(agent).post(action_url(decision), fields, **HTMX)

    assert response.status_code == 200
    assert DecisionAction.objects.get().kind == fields["kind"]
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<section id="decision"')
    assert f"Vastgelegd: {words}." in response.text
    assert words in response.text[response.text.index("action-log") :]


def test_after_presenting_the_answer_buttons_appear_for_that_offer(logged_in, agent, decision):
    response = logged_in(agent).post(action_url(decision), {"kind": "presented", "offer_code": "loyal-10"}, **HTMX)

    assert 'data-shortcut="a"' in response.text
    assert 'value="accepted">\n  <input type="hidden" name="offer_code" value="loyal-10"' in response.text


def test_the_htmx_answer_also_refreshes_the_team_budget(logged_in, agent, decision):
    response = logged_in(agent).post(action_url(decision), {"kind": "accepted", "offer_code": "loyal-10"}, **HTMX)

    assert '<div id="budget" hx-swap-oob="true">' in response.text
    assert "€\u00a066,00" in response.text[response.text.index('id="budget"') :]


def test_override_without_reason_is_refused_with_a_message(logged_in, agent, decision):
    client = logged_in(agent)

    response = client.post(action_url(decision), {"kind": "presented", "offer_code": "speed-up"})

    assert response.status_code == 302
    assert not DecisionAction.objects.exists()
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Niet vastgelegd:")
    assert "waarom" in message.lower()


def test_override_without_reason_over_htmx_is_a_422_fragment_with_the_message(logged_in, agent, decision):
    response = logged_in(agent).post(action_url(decision), {"kind": "presented", "offer_code": "speed-up"}, **HTMX)

    assert response.status_code == 422
    assert not DecisionAction.objects.exists()
    assert 'role="alert"' in response.text
    assert "Niet vastgelegd:" in response.text


def test_accepting_a_second_offer_is_refused_in_the_agents_language_naming_the_accepted_one(logged_in, agent, decision):
    client = logged_in(agent)
    client.post(action_url(decision), {"kind": "accepted", "offer_code": "loyal-10"}, **HTMX)

    response = client.post(action_url(decision), {"kind": "accepted", "offer_code": "speed-up"}, **HTMX)

    assert response.status_code == 422
    assert "„Loyaliteitskorting 10%” is al geaccepteerd op dit advies." in response.text
    assert list(DecisionAction.objects.values_list("kind", "offer_code")) == [("accepted", "loyal-10")]


def test_an_acceptance_on_another_call_that_used_up_the_budget_is_named_with_what_is_left(logged_in, agent, customer):
    PolicyConfig.objects.create(version=1, values={"budget_per_customer_cents": 8_000})
    this_call, other_call = (stored_decision(customer=customer, agent=agent) for _ in range(2))
    client = logged_in(agent)
    client.post(action_url(other_call), {"kind": "accepted", "offer_code": "loyal-10"}, **HTMX)

    response = client.post(
        action_url(this_call), {"kind": "accepted", "offer_code": "speed-up", "override_reason": "better_fit"}, **HTMX
    )

    assert response.status_code == 422
    refusal = "„Gratis snelheid omhoog” kost meer dan er deze maand over is van het budget van deze klant (€\xa014,00)"
    assert refusal in response.text
    assert not this_call.actions.exists()


def test_an_offer_the_team_spent_the_budget_for_since_the_advice_is_refused_asking_for_the_team_lead(
    logged_in, agent, decision
):
    colleague_call = stored_decision(customer=CustomerFactory(), agent=agent)
    DecisionAction.objects.create(
        decision=colleague_call, kind="accepted", offer_code="speed-up", channel="phone", agent=agent,
        cost_cents=agent.agent_profile.team.monthly_budget_cents - 6_000,
    )  # fmt: skip

    response = logged_in(agent).post(action_url(decision), {"kind": "presented", "offer_code": "loyal-10"}, **HTMX)

    assert response.status_code == 422
    assert (
        "„Loyaliteitskorting 10%” kost meer dan er deze maand van het teambudget over is (€\u00a060,00), na wat de "
        "andere gesprekken van het team sinds dit advies hebben besteed of gereserveerd voor aanbiedingen die nog op "
        "antwoord wachten: vraag je teamleider."
    ) in response.text
    assert not decision.actions.exists()


def test_an_offer_declined_on_another_call_is_refused_in_the_agents_language(logged_in, agent, customer, decision):
    other_call = stored_decision(customer=customer, agent=agent)
    DecisionAction.objects.create(decision=other_call, kind="declined", offer_code="loyal-10", channel="chat")

    response = logged_in(agent).post(action_url(decision), {"kind": "presented", "offer_code": "loyal-10"}, **HTMX)

    assert response.status_code == 422
    assert "deze klant heeft „Loyaliteitskorting 10%” de afgelopen 30 dagen afgewezen" in response.text
    assert not decision.actions.exists()


def test_override_with_a_reason_is_logged(logged_in, agent, decision):
    fields = {"kind": "presented", "offer_code": "speed-up", "override_reason": "better_fit"}

    logged_in(agent).post(action_url(decision), fields, **HTMX)

    assert DecisionAction.objects.get().override_reason == "better_fit"


def test_an_offer_not_in_the_decision_is_refused_not_a_500(logged_in, agent, decision):
    response = logged_in(agent).post(action_url(decision), {"kind": "accepted", "offer_code": "made-up"}, **HTMX)

    assert response.status_code == 422
    assert "made-up" in response.text
    assert not DecisionAction.objects.exists()


def test_an_unknown_action_kind_is_refused_not_a_500(logged_in, agent, decision):
    response = logged_in(agent).post(action_url(decision), {"kind": "shout"})

    assert response.status_code == 302
    assert not DecisionAction.objects.exists()


def test_the_agent_cannot_present_an_offer_above_their_authority(logged_in, agent, decision):
    fields = {"kind": "presented", "offer_code": "half-price", "override_reason": "customer_request"}

    response = logged_in(agent).post(action_url(decision), fields, **HTMX)

    assert response.status_code == 422
    assert not DecisionAction.objects.exists()


def test_a_team_lead_presents_an_escalated_offer_on_the_agents_decision(logged_in, lead, decision):
    fields = {"kind": "presented", "offer_code": "half-price", "override_reason": "customer_request"}

    response = logged_in(lead).post(action_url(decision), fields, **HTMX)

    assert response.status_code == 200
    assert DecisionAction.objects.get().agent == lead


def test_a_repeated_form_logs_the_action_once(logged_in, agent, decision):
    client = logged_in(agent)
    fields = {"kind": "no_action", "idempotency_key": "form-123"}

    client.post(action_url(decision), fields, **HTMX)
    again = client.post(action_url(decision), fields, **HTMX)
    other = client.post(action_url(decision), {**fields, "kind": "escalated"}, **HTMX)

    assert again.status_code == 200
    assert other.status_code == 422 and "dit formulier is al gebruikt voor een andere actie" in other.text
    assert DecisionAction.objects.count() == 1


def test_a_panel_key_cannot_take_an_api_clients_key(logged_in, agent, decision):
    logged_in(agent).post(action_url(decision), {"kind": "no_action", "idempotency_key": "api:4:outcome-1"}, **HTMX)

    assert DecisionAction.objects.get().idempotency_key == f"panel:{agent.pk}:api:4:outcome-1"


def test_every_action_form_carries_its_own_idempotency_key(logged_in, agent, decision):
    html = logged_in(agent).get(panel_url(decision)).text

    keys = [part.split('"')[0] for part in html.split('name="idempotency_key" value="')[1:]]
    assert len(keys) >= 4
    assert len(set(keys)) == len(keys)


def test_logging_with_htmx_takes_the_same_number_of_queries_however_long_the_log(logged_in, agent, decision):
    client = logged_in(agent)
    with CaptureQueriesContext(connection) as first:
        client.post(action_url(decision), {"kind": "accepted", "offer_code": "loyal-10"}, **HTMX)
    client.post(action_url(decision), {"kind": "declined", "offer_code": "loyal-10"}, **HTMX)
    for _ in range(10):
        DecisionAction.objects.create(decision=decision, kind="thinking", offer_code="loyal-10", channel="phone")

    with CaptureQueriesContext(connection) as later:
        client.post(action_url(decision), {"kind": "accepted", "offer_code": "loyal-10"}, **HTMX)

    assert decision.actions.filter(kind="accepted").count() == 2
    assert len(later.captured_queries) == len(first.captured_queries)


def test_asking_a_team_lead_twice_about_one_offer_is_refused_in_the_agents_language(logged_in, agent, decision):
    client = logged_in(agent)
    ask = {"kind": "escalated", "offer_code": "half-price"}

    client.post(action_url(decision), ask, HTTP_HX_REQUEST="true")
    again = client.post(action_url(decision), ask, HTTP_HX_REQUEST="true")

    assert "is al doorgezet: het wacht op een antwoord" in again.text
    assert DecisionAction.objects.filter(kind="escalated").count() == 1


def test_the_panel_links_a_team_lead_to_the_escalations_and_an_agent_to_nothing_of_the_sort(
    logged_in, agent, lead, decision
):
    link = f'<a href="{reverse("review-escalations")}">Doorzettingen</a>'

    assert link in logged_in(lead).get(panel_url(decision)).text
    assert link not in logged_in(agent).get(panel_url(decision)).text


def test_in_a_team_without_a_lead_the_agent_asks_an_administrator_about_the_call(logged_in, agent, decision):
    page = logged_in(agent).get(panel_url(decision)).text

    assert "Een beheerder vragen over het gesprek" in page
    assert "een beheerder vragen over het gesprek" in page  # the key's legend says the same
    assert "Doorzetten naar teamleider" not in page and "doorzetten naar teamleider" not in page


def test_in_a_team_without_a_lead_escalating_the_call_says_an_administrator_finds_it(logged_in, agent, decision):
    response = logged_in(agent).post(action_url(decision), {"kind": "escalated"}, **HTMX)

    assert "Een beheerder vindt het onder Doorzettingen" in response.text
    assert "Je teamleider vindt het" not in response.text


def test_once_the_call_is_escalated_the_button_to_escalate_it_waits_for_an_answer(logged_in, agent, lead, decision):
    client = logged_in(agent)
    client.post(action_url(decision), {"kind": "escalated"}, **HTMX)

    page = client.get(panel_url(decision)).text

    assert "Doorzetten naar teamleider" not in page and "doorzetten naar teamleider" not in page


def test_a_team_lead_on_an_agents_advice_gets_no_button_to_escalate_to_a_team_lead(logged_in, agent, lead, decision):
    as_lead = logged_in(lead).get(panel_url(decision)).text
    as_agent = logged_in(agent).get(panel_url(decision)).text

    assert "Doorzetten naar teamleider" in as_agent and "doorzetten naar teamleider" in as_agent  # the key too
    assert "Doorzetten naar teamleider" not in as_lead and "doorzetten naar teamleider" not in as_lead
    assert "Teamleider vragen" not in as_lead  # the lead may make the offer above the agent's authority


def test_a_team_lead_escalating_their_teams_advice_is_refused_in_their_language(logged_in, lead, decision):
    response = logged_in(lead).post(action_url(decision), {"kind": "escalated"}, **HTMX)

    assert response.status_code == 422
    assert "je beslist zelf over dit advies" in response.text
    assert not DecisionAction.objects.exists()


def test_a_team_leads_own_advice_above_their_authority_asks_an_administrator(logged_in, lead, customer):
    level_3 = [*OFFERS[:2], {**OFFERS[2], "authority_level": 3, "required_authority_level": 3}]
    own = stored_decision(customer=customer, agent=lead, offers=level_3)

    page = logged_in(lead).get(panel_url(own)).text
    response = logged_in(lead).post(action_url(own), {"kind": "escalated", "offer_code": "half-price"}, **HTMX)

    assert "Beheerder nodig" in page and "Beheerder vragen" in page
    assert "boven je bevoegdheid: een beheerder beslist" in page
    assert "Teamleider vragen" not in page and "Doorzetten naar teamleider" not in page
    assert response.status_code == 200
    assert "Een beheerder vindt het onder Doorzettingen" in response.text


def test_an_offer_above_the_agents_authority_is_refused_in_their_language_naming_the_level(logged_in, agent, decision):
    fields = {"kind": "presented", "offer_code": "half-price", "override_reason": "customer_request"}

    response = logged_in(agent).post(action_url(decision), fields, **HTMX)

    assert response.status_code == 422
    assert "„Halve prijs” vraagt bevoegdheidsniveau 2" in response.text


def test_no_action_while_an_offer_stands_accepted_is_refused_for_what_it_is(logged_in, agent, decision):
    client = logged_in(agent)
    client.post(action_url(decision), {"kind": "accepted", "offer_code": "loyal-10"}, **HTMX)

    response = client.post(action_url(decision), {"kind": "no_action"}, **HTMX)

    assert response.status_code == 422
    assert "is op dit advies geaccepteerd, dus er is wel iets gedaan" in response.text


def test_an_offer_above_the_team_leads_authority_too_is_for_an_administrator_whoever_looks(
    logged_in, agent, lead, customer
):
    level_3 = [*OFFERS[:2], {**OFFERS[2], "authority_level": 3, "required_authority_level": 3}]
    advice = stored_decision(customer=customer, agent=agent, offers=level_3)

    for viewer in (agent, lead):
        page = logged_in(viewer).get(panel_url(advice)).text
        assert "Beheerder nodig" in page and "Beheerder vragen" in page
    asked = logged_in(agent).post(action_url(advice), {"kind": "escalated", "offer_code": "half-price"}, **HTMX)
    assert "Een beheerder vindt het onder Doorzettingen" in asked.text
    refused = logged_in(lead).post(
        action_url(advice), {"kind": "presented", "offer_code": "half-price", "override_reason": "other"}, **HTMX
    )
    assert refused.status_code == 422 and "vraagt bevoegdheidsniveau 3" in refused.text


def test_once_an_offer_stands_accepted_the_panel_offers_neither_another_offer_nor_no_action(logged_in, agent, decision):
    client = logged_in(agent)
    client.post(action_url(decision), {"kind": "presented", "offer_code": "loyal-10"})
    client.post(action_url(decision), {"kind": "accepted", "offer_code": "loyal-10"})

    page = client.get(panel_url(decision)).text

    assert 'name="kind" value="presented"' not in page
    assert 'name="kind" value="no_action"' not in page
    assert "Terugdraaien: per vergissing vastgelegd" in page  # what is left: correcting the acceptance


def test_thinking_it_over_pressed_twice_is_logged_once_and_says_so(logged_in, agent, decision):
    client = logged_in(agent)
    client.post(action_url(decision), {"kind": "presented", "offer_code": "loyal-10"})
    client.post(action_url(decision), {"kind": "thinking", "offer_code": "loyal-10"})

    again = client.post(action_url(decision), {"kind": "thinking", "offer_code": "loyal-10"}, **HTMX)

    assert again.status_code == 422
    assert "dit is al het laatste wat op dit advies is vastgelegd." in again.text
    assert DecisionAction.objects.filter(kind="thinking").count() == 1


def test_an_offer_an_administrator_made_reads_as_theirs_not_a_team_leads(logged_in, agent, decision):
    boss = AgentProfileFactory(
        user=UserFactory(username="boss"), team=None, role=AgentProfile.Role.ADMIN, authority_level=3
    ).user
    logged_in(agent).post(action_url(decision), {"kind": "escalated", "offer_code": "half-price"})
    logged_in(boss).post(
        action_url(decision), {"kind": "presented", "offer_code": "half-price", "override_reason": "customer_request"}
    )

    page = logged_in(agent).get(panel_url(decision)).text
    offer = page[page.index("Halve prijs") :]

    assert "Gedaan door een beheerder" in offer and "Gedaan door teamleider" not in offer


def test_an_administrator_deciding_an_escalation_sees_the_budget_of_the_team_it_spends(logged_in, agent, decision):
    boss = AgentProfileFactory(
        user=UserFactory(username="boss"), team=None, role=AgentProfile.Role.ADMIN, authority_level=3
    ).user
    logged_in(agent).post(action_url(decision), {"kind": "escalated", "offer_code": "half-price"})

    page = logged_in(boss).get(panel_url(decision)).text

    assert f"Budget van {decision.team.name} deze maand" in page


def test_an_offer_the_team_lead_made_reads_as_made_by_them_in_the_agents_panel(logged_in, agent, lead, decision):
    logged_in(agent).post(action_url(decision), {"kind": "escalated", "offer_code": "half-price"})
    logged_in(lead).post(
        action_url(decision), {"kind": "presented", "offer_code": "half-price", "override_reason": "customer_request"}
    )

    page = logged_in(agent).get(panel_url(decision)).text
    offer = page[page.index("Halve prijs") :]

    assert "Gedaan door teamleider" in offer
    assert f"gedaan door {lead.get_full_name() or lead.username}: je legt nog het antwoord van de klant vast" in offer
    assert "een teamleider beslist" not in offer[: offer.index("</li>")]


def test_a_lead_logging_no_action_is_told_what_still_waits_for_an_administrator(logged_in, agent, lead, customer):
    above_a_lead = {**OFFERS[2], "code": "forty-off", "authority_level": 3, "required_authority_level": 3}
    decision = stored_decision(customer=customer, agent=agent, offers=[*OFFERS, above_a_lead])
    for code in ("half-price", "forty-off"):
        DecisionAction.objects.create(decision=decision, agent=agent, kind="escalated", offer_code=code)

    response = logged_in(lead).post(action_url(decision), {"kind": "no_action"}, **HTMX)

    assert response.status_code == 200
    assert "Vastgelegd: Geen actie. Wat op een beheerder wacht, blijft voor die beheerder openstaan." in response.text
