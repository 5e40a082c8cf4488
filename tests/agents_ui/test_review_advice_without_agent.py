"""Advice a CRM asked for without an agent, on the review pages: it counts for the team and the person who acted on
it, as the budget charges it, and the offer log, the KPIs and the fairness report select the same decisions."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from retention.models import AgentProfile, ProtectedAttributes
from retention.selectors.api import DecisionFilters, decisions_for_review
from retention.selectors.budget import team_budget_status
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import stored_decision
from tests.conftest import PASSWORD
from tests.factories import AgentProfileFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

FEE_CENTS = 5_000
LOYAL_COST = 6_600  # tests.agents_ui.decisions.OFFERS


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def crm_advice(name: str = "Via het CRM"):
    """Advice a CRM asked for without an agent: no agent, no team."""
    return stored_decision(customer=CustomerFactory(display_name=name), renewal_fee_cents=FEE_CENTS)


def log(decision, kind: str, offer_code: str = "", *, by, override_reason: str = ""):
    return decision_action_record(
        decision=decision, kind=kind, offer_code=offer_code, override_reason=override_reason, agent=by
    )


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def agent2(team):
    user = UserFactory(username="agent2", first_name="Ada", last_name="Tweede")
    return AgentProfileFactory(user=user, team=team).user


@pytest.fixture
def accepted_crm_advice(agent2):
    advice = crm_advice()
    log(advice, "presented", "loyal-10", by=agent2)
    log(advice, "accepted", "loyal-10", by=agent2)
    return advice


# --- the offer log ------------------------------------------------------------------------------


def test_the_offer_log_names_who_made_the_offer_and_the_team_that_pays_for_advice_without_an_agent(
    lead, accepted_crm_advice
):
    [row] = logged_in(lead).get(reverse("review-log")).context["rows"]
    html = logged_in(lead).get(reverse("review-log")).text

    assert (row.agent, row.team) == ("", "")  # the advice was made for no agent and no team
    assert (row.credited_agent, row.charged_team) == ("Ada Tweede", "Team Utrecht")
    line = html[html.index("Via het CRM") :].split("</tr>")[0]
    assert "Ada Tweede" in line and "advies gevraagd zonder medewerker" in line
    assert "Team Utrecht" in line and "betaalt het geaccepteerde aanbod" in line


def test_the_csv_adds_the_charged_team_and_the_credited_agent_and_keeps_its_columns(lead, accepted_crm_advice):
    [row] = csv_rows(logged_in(lead).get(reverse("review-log-csv")))

    assert (row["agent"], row["team"]) == ("", "")
    assert (row["charged_team"], row["credited_agent"]) == ("Team Utrecht", "Ada Tweede")
    assert list(row)[:20] == [
        "decision_id", "as_of_utc", "customer_id", "agent", "team", "channel", "risk_band", "churn_percent",
        "recommended_offer", "explored", "control_group", "offers_made", "accepted_offer", "declined_offers",
        "outcome", "escalated", "override_reasons", "accepted_cost_cents", "greedy_offer", "propensity",
    ]  # fmt: skip


def test_the_charged_team_is_the_one_the_api_names(lead, agent, accepted_crm_advice):
    own = stored_decision(customer=CustomerFactory(), agent=agent, renewal_fee_cents=FEE_CENTS)
    log(own, "presented", "speed-up", by=agent, override_reason="better_fit")
    log(own, "accepted", "speed-up", by=agent)
    open_offer = stored_decision(customer=CustomerFactory(), agent=agent, renewal_fee_cents=FEE_CENTS)
    log(open_offer, "presented", "loyal-10", by=agent)

    rows = {row["decision_id"]: row["charged_team"] for row in csv_rows(logged_in(lead).get(reverse("review-log-csv")))}
    api = {str(d.pk): d.charged_team or "" for d in decisions_for_review(filters=DecisionFilters())}

    assert rows == api
    assert rows[str(open_offer.pk)] == ""  # nothing accepted: no team pays


def test_the_credited_agent_of_advice_for_an_agent_is_that_agent(lead, agent):
    own = stored_decision(customer=CustomerFactory(), agent=agent, renewal_fee_cents=FEE_CENTS)
    log(own, "presented", "half-price", by=lead, override_reason="customer_request")

    [row] = csv_rows(logged_in(lead).get(reverse("review-log-csv")))

    assert (row["agent"], row["credited_agent"], row["team"]) == ("agent", "agent", "Team Utrecht")


# --- KPIs ---------------------------------------------------------------------------------------


def test_an_offer_made_on_advice_without_an_agent_counts_for_who_first_made_it(lead, agent2, accepted_crm_advice):
    override = crm_advice("Afwijking")
    log(override, "presented", "speed-up", by=agent2, override_reason="better_fit")

    page = logged_in(lead).get(reverse("review-kpis"))

    [row] = page.context["agents"]
    assert (row.agent_id, row.decisions, row.offers_made, row.overrides) == (agent2.pk, 2, 2, 1)
    assert (row.accepted, row.average_cost_cents, row.made_by_lead) == (1, LOYAL_COST, 0)
    assert "Zonder medewerker (CRM-systeem)" not in page.text


def test_on_advice_without_an_agent_a_leads_offer_after_an_escalation_is_not_the_agents_own(lead, agent2):
    advice = crm_advice()
    log(advice, "escalated", "half-price", by=agent2)
    log(advice, "presented", "half-price", by=lead)
    log(advice, "accepted", "half-price", by=agent2)  # she logs the answer to the offer her lead made

    [row] = logged_in(lead).get(reverse("review-kpis")).context["agents"]

    assert (row.agent_id, row.escalations, row.offers_made, row.accepted, row.made_by_lead) == (agent2.pk, 1, 0, 0, 1)


def test_a_crm_log_without_a_name_leaves_the_advice_without_an_agent(agent2, team):
    admin = AgentProfileFactory(user=UserFactory(username="admin"), team=None, role=AgentProfile.Role.ADMIN).user
    crm_advice()  # nobody logged anything on it

    [row] = logged_in(admin).get(reverse("review-kpis")).context["agents"]

    assert (row.agent_id, row.decisions) == (None, 1)


# --- one team filter for every page ---------------------------------------------------------------


def test_the_offer_log_the_kpis_and_the_fairness_report_count_the_same_decisions_for_a_team(
    lead, agent, agent2, accepted_crm_advice
):
    ProtectedAttributes.objects.create(customer=accepted_crm_advice.customer, values={"gender": "female"})
    stored_decision(customer=CustomerFactory(), agent=agent, renewal_fee_cents=FEE_CENTS)
    crm_advice("Nooit aangeraakt")  # no one of the team acted on it: it counts for no team
    admin = AgentProfileFactory(user=UserFactory(username="admin"), team=None, role=AgentProfile.Role.ADMIN).user

    for client, query in ((logged_in(lead), {}), (logged_in(admin), {"team": agent.agent_profile.team_id})):
        offer_log = client.get(reverse("review-log"), query).context["page"].paginator.count
        kpis = client.get(reverse("review-kpis"), query).context["kpis"].decisions
        fairness = client.get(reverse("review-fairness"), query).context["report"].rows

        assert offer_log == kpis == fairness == 2
    assert team_budget_status(team=agent.agent_profile.team).spent_cents == LOYAL_COST


def test_the_offer_log_filtered_by_agent_lists_the_advice_without_an_agent_the_kpis_credit_them_with(
    lead, agent, agent2, accepted_crm_advice
):
    stored_decision(customer=CustomerFactory(display_name="Van agent"), agent=agent, renewal_fee_cents=FEE_CENTS)
    taken_over = crm_advice("Eerst agent")
    log(taken_over, "escalated", "half-price", by=agent)
    log(taken_over, "presented", "half-price", by=lead)
    client = logged_in(lead)

    for user, names in ((agent2, {"Via het CRM"}), (agent, {"Van agent", "Eerst agent"})):
        rows = client.get(reverse("review-log"), {"agent": user.pk}).context["rows"]
        [credited] = [row for row in client.get(reverse("review-kpis")).context["agents"] if row.agent_id == user.pk]

        assert {row.customer_name for row in rows} == names
        assert credited.decisions == len(names)
