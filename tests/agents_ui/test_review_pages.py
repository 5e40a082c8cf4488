"""The review pages: offer log filters and CSV, KPIs against hand-computed figures, budget months, fairness, queries."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents_ui.presenters import escalation_open
from agents_ui.review.selectors import offer_log_decisions, prefetched_summary
from retention.models import AgentProfile, DecisionAction, ProtectedAttributes
from retention.selectors.budget import month_start, month_starts, team_budget_months, team_budget_status
from retention.selectors.fairness import Outcome
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import OFFERS, days_ago, stored_decision
from tests.conftest import PASSWORD
from tests.factories import AgentProfileFactory, CustomerFactory, RenewalResultFactory, UserFactory

pytestmark = pytest.mark.django_db

FEE_CENTS = 5_000
# The default policy keeps half the fee for twelve months of a renewal.
MARGIN_CENTS = FEE_CENTS * 6
LOYAL_COST, SPEED_COST = 6_600, 2_000  # tests.agents_ui.decisions.OFFERS


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def decision_for(agent, *, name: str = "", **fields):
    customer = CustomerFactory(**({"display_name": name} if name else {}))
    return stored_decision(customer=customer, agent=agent, renewal_fee_cents=FEE_CENTS, **fields)


def act(decision, kind: str, offer_code: str = "", override_reason: str = ""):
    return decision_action_record(
        decision=decision, kind=kind, offer_code=offer_code, override_reason=override_reason, agent=decision.agent
    )


def renewed(decision, result: str = "renewed"):
    return RenewalResultFactory(customer=decision.customer, result=result, date=timezone.localdate())


def log_names(response) -> set[str]:
    return {row.customer_name for row in response.context["rows"]}


@pytest.fixture
def admin(db):
    return AgentProfileFactory(user=UserFactory(username="admin"), team=None, role=AgentProfile.Role.ADMIN).user


@pytest.fixture
def colleague(team):
    user = UserFactory(username="colleague", first_name="Cor", last_name="Collega")
    return AgentProfileFactory(user=user, team=team).user


# --- what happened to a decision: the SQL filter and the summary agree ---------------------------

ACTION_STORIES = [
    ([], Outcome.NO_OFFER),
    ([("presented", "loyal-10")], Outcome.OPEN),
    ([("presented", "loyal-10"), ("thinking", "loyal-10")], Outcome.OPEN),
    ([("presented", "loyal-10"), ("accepted", "loyal-10")], Outcome.ACCEPTED),
    ([("presented", "loyal-10"), ("declined", "loyal-10")], Outcome.DECLINED),
    ([("presented", "loyal-10"), ("accepted", "loyal-10"), ("declined", "loyal-10")], Outcome.DECLINED),
    ([("presented", "loyal-10"), ("declined", "loyal-10"), ("accepted", "loyal-10")], Outcome.ACCEPTED),
    ([("presented", "loyal-10"), ("declined", "loyal-10"), ("presented", "speed-up"), ("accepted", "speed-up")],
     Outcome.ACCEPTED),
    ([("escalated", "")], Outcome.NO_OFFER),
    ([("presented", "loyal-10"), ("accepted", "loyal-10"), ("undone", "loyal-10")], Outcome.OPEN),
    ([("presented", "loyal-10"), ("accepted", "loyal-10"), ("undone", "loyal-10"), ("declined", "loyal-10")],
     Outcome.DECLINED),
    ([("presented", "loyal-10"), ("accepted", "loyal-10"), ("undone", "loyal-10"), ("accepted", "loyal-10")],
     Outcome.ACCEPTED),
    ([("presented", "loyal-10"), ("declined", "loyal-10"), ("accepted", "loyal-10"), ("undone", "loyal-10")],
     Outcome.OPEN),
    ([("presented", "loyal-10"), ("declined", "loyal-10"), ("presented", "speed-up"), ("accepted", "speed-up"),
      ("undone", "speed-up")], Outcome.DECLINED),
]  # fmt: skip


@pytest.mark.parametrize(("story", "outcome"), ACTION_STORIES)
def test_the_outcome_filter_and_the_shown_outcome_agree(agent, story, outcome):
    decision = decision_for(agent)
    for kind, code in story:
        act(decision, kind, code, override_reason="better_fit" if code == "speed-up" and kind != "undone" else "")

    matching = {
        wanted for wanted in Outcome.ALL if offer_log_decisions(team_ids=None, outcome=wanted).filter(pk=decision.pk)
    }
    shown = prefetched_summary(offer_log_decisions(team_ids=None).get(pk=decision.pk)).outcome

    assert matching == {outcome}
    assert shown == outcome


def test_a_corrected_acceptance_costs_nothing_and_a_later_one_costs_its_offer(agent):
    corrected, switched = decision_for(agent), decision_for(agent)
    for kind in ("presented", "accepted", "declined"):
        act(corrected, kind, "loyal-10")
    act(switched, "presented", "loyal-10")
    act(switched, "declined", "loyal-10")
    act(switched, "presented", "speed-up", "better_fit")
    act(switched, "accepted", "speed-up")

    summaries = {d.pk: prefetched_summary(d) for d in offer_log_decisions(team_ids=None)}

    assert (summaries[corrected.pk].accepted_code, summaries[corrected.pk].accepted_cost_cents) == ("", 0)
    assert (summaries[switched.pk].accepted_code, summaries[switched.pk].accepted_cost_cents) == ("speed-up", 2_000)
    assert summaries[switched.pk].made_codes == ("loyal-10", "speed-up")
    assert summaries[switched.pk].override_reasons == ("better_fit",)


# --- offer log filters --------------------------------------------------------------------------


@pytest.fixture
def log(agent, colleague, catalog):
    """Five decisions of the lead's team with different stories."""
    accepted = decision_for(agent, name="Acceptatie", as_of=days_ago(1))
    act(accepted, "presented", "loyal-10")
    act(accepted, "accepted", "loyal-10")
    overridden = decision_for(colleague, name="Afwijking", as_of=days_ago(2))
    act(overridden, "presented", "speed-up", "customer_request")
    act(overridden, "declined", "speed-up")
    explored = decision_for(
        agent, name="Verkenning", as_of=days_ago(3), explored=True, recommended_offer_code="speed-up"
    )
    act(explored, "presented", "speed-up")
    escalated = decision_for(agent, name="Doorgezet", as_of=days_ago(20), risk_band="medium")
    act(escalated, "escalated")
    decision_for(colleague, name="Niets", as_of=days_ago(40), risk_band="low", control_group=True)
    return {"accepted": accepted, "overridden": overridden, "explored": explored, "escalated": escalated}


ALL_NAMES = {"Acceptatie", "Afwijking", "Verkenning", "Doorgezet", "Niets"}
TEN_DAYS_AGO = (timezone.localdate() - dt.timedelta(days=10)).isoformat()


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({}, ALL_NAMES),
        ({"outcome": "accepted"}, {"Acceptatie"}),
        ({"outcome": "declined"}, {"Afwijking"}),
        ({"outcome": "open"}, {"Verkenning"}),
        ({"outcome": "no_offer"}, {"Doorgezet", "Niets"}),
        ({"outcome": "escalated"}, {"Doorgezet"}),
        ({"offer": "speed-up"}, {"Afwijking", "Verkenning"}),
        ({"risk_band": "medium"}, {"Doorgezet"}),
        ({"overrides_only": "on"}, {"Afwijking"}),
        ({"explored_only": "on"}, {"Verkenning"}),
        ({"since": TEN_DAYS_AGO}, {"Acceptatie", "Afwijking", "Verkenning"}),
        ({"until": TEN_DAYS_AGO}, {"Doorgezet", "Niets"}),
        ({"outcome": "no_offer", "risk_band": "low"}, {"Niets"}),
    ],
)  # fmt: skip
def test_the_offer_log_filters(lead, log, query, names):
    response = logged_in(lead).get(reverse("review-log"), query)

    assert response.status_code == 200
    assert log_names(response) == names


def test_the_offer_log_filters_by_agent(lead, log, colleague):
    response = logged_in(lead).get(reverse("review-log"), {"agent": colleague.pk})

    assert log_names(response) == {"Afwijking", "Niets"}


@pytest.mark.parametrize(("value", "names"), [("1", {"Afwijking"}), ("false", None), ("nee", None)])
def test_a_filter_box_in_a_link_is_on_or_off_and_any_other_word_is_refused(lead, log, value, names):
    response = logged_in(lead).get(reverse("review-log"), {"overrides_only": value})

    if value == "nee":
        assert response.status_code == 400 and "Vink het vakje aan of laat het leeg." in response.text
    elif names is None:
        assert "Afwijking" in log_names(response) and len(log_names(response)) > 1
    else:
        assert log_names(response) == names


def test_the_offer_log_shows_what_happened_in_words(lead, log):
    response = logged_in(lead).get(reverse("review-log"), {"overrides_only": "on"})

    html = response.text
    assert "Gratis snelheid omhoog" in html  # the offer's Dutch title, not its code
    assert "Klant vroeg om iets anders" in html  # the override reason, in Dutch
    assert "Afgewezen" in html


def test_the_offer_log_lists_each_offer_made_apart(lead, log):
    # Titles hold commas ("12 maanden, 10% korting"), so offers joined by commas could not be told apart.
    act(log["explored"], "presented", "loyal-10", "customer_request")

    html = logged_in(lead).get(reverse("review-log")).text

    made = html[html.index("Verkenning") :].split("</tr>")[0]
    assert made.count("<li>") == 2


def test_the_offer_log_shows_the_accepted_cost(lead, log):
    [row] = logged_in(lead).get(reverse("review-log"), {"outcome": "accepted"}).context["rows"]

    assert (row.accepted.code, row.cost_cents) == ("loyal-10", LOYAL_COST)


def test_a_period_ending_before_it_starts_is_refused_and_the_filters_are_kept(lead, log):
    query = {"since": "2026-03-10", "until": "2026-03-01", "offer": "loyal-10"}

    response = logged_in(lead).get(reverse("review-log"), query)

    assert response.status_code == 400
    assert "De einddatum ligt voor de begindatum." in response.text
    assert 'value="2026-03-10"' in response.text
    assert '<option value="loyal-10" selected>' in response.text


@pytest.mark.parametrize("page", ["review-log", "review-kpis", "review-fairness", "review-log-csv"])
def test_the_first_and_last_days_a_date_can_hold_bound_nothing(lead, log, page):
    everything = logged_in(lead).get(reverse(page))
    edges = logged_in(lead).get(reverse(page), {"since": "0001-01-01", "until": "9999-12-31"})

    assert (everything.status_code, edges.status_code) == (200, 200)
    if page == "review-log-csv":
        assert b"".join(edges.streaming_content) == b"".join(everything.streaming_content)
    if page == "review-log":
        assert log_names(edges) == log_names(everything) != set()


def test_an_offer_log_no_decision_matches_says_so(lead, log):
    html = logged_in(lead).get(reverse("review-log"), {"since": "2099-01-01"}).text

    assert "0 adviezen" in html
    assert "Geen adviezen die bij deze filters passen." in html


def test_a_date_that_is_no_date_is_refused(lead):
    response = logged_in(lead).get(reverse("review-log"), {"since": "gisteren"})

    assert response.status_code == 400
    assert 'role="alert"' in response.text or "field-error" in response.text


@pytest.mark.parametrize("page", ["review-log", "review-log-csv", "review-kpis", "review-fairness"])
@pytest.mark.parametrize("day", ["26-11-2026", "26/11/2026", "11/26/2026", "2026-11-6", "20261126", "２０２６-11-26"])
def test_a_date_not_written_as_yyyy_mm_dd_is_refused_as_the_date_field_could_not_show_it(lead, page, day):
    response = logged_in(lead).get(reverse(page), {"since": day})

    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]
    assert "Vul de datum in als JJJJ-MM-DD, bijvoorbeeld 2026-11-26." in response.text
    # A date input can show no other form (the browser would warn of it): the field is left empty beside the error.
    assert 'type="date" name="since"' in response.text and f'value="{day}"' not in response.text


def test_a_date_written_as_yyyy_mm_dd_is_read(lead, log):
    response = logged_in(lead).get(reverse("review-log"), {"since": TEN_DAYS_AGO})

    assert response.status_code == 200
    assert f'value="{TEN_DAYS_AGO}"' in response.text


def test_the_offer_log_opens_on_the_same_last_90_days_as_the_kpis(lead, agent):
    decision_for(agent, name="Recent", as_of=days_ago(89))
    decision_for(agent, name="Oud", as_of=days_ago(120))
    client = logged_in(lead)

    first_opened = [row.customer_name for row in client.get(reverse("review-log")).context["rows"]]
    all_year = client.get(reverse("review-log"), {"since": days_ago(365).date().isoformat()}).context["rows"]

    assert first_opened == ["Recent"]
    assert client.get(reverse("review-kpis")).context["kpis"].decisions == 1
    assert [row.customer_name for row in all_year] == ["Recent", "Oud"]


def test_the_offer_log_is_paged(lead, agent):
    for day in range(30):
        decision_for(agent, as_of=days_ago(day + 1))
    client = logged_in(lead)

    first = client.get(reverse("review-log"), {"per_page": 25})
    second = client.get(reverse("review-log"), {"per_page": 25, "page": 2})

    assert len(first.context["rows"]) == 25 and len(second.context["rows"]) == 5
    assert "per_page=25&amp;page=2" in first.text
    assert first.context["rows"][0].made_at > first.context["rows"][-1].made_at


def test_an_htmx_request_gets_only_the_results(lead, log):
    response = logged_in(lead).get(reverse("review-log"), {"outcome": "accepted"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.lstrip().startswith('<div id="review-content"')
    assert "HX-Request" in response["Vary"]


def test_the_offer_log_is_in_english_for_an_english_lead(lead, log):
    lead.agent_profile.language = "en"
    lead.agent_profile.save()

    response = logged_in(lead).get(reverse("review-log"))

    assert "Offer log" in response.text and "Free speed upgrade" in response.text


# --- query counts -------------------------------------------------------------------------------


def queries_for(client: Client, url: str, query: dict) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, query)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(captured)


def a_busy_decision(agent):
    """An override declined, then the recommended offer accepted, each step checked by the action service."""
    decision = decision_for(agent)
    act(decision, "presented", "speed-up", "better_fit")
    act(decision, "declined", "speed-up")
    act(decision, "presented", "loyal-10")
    act(decision, "accepted", "loyal-10")
    return decision


def busy_decisions(agent, count: int) -> list:
    """`count` decisions of `agent`, each for its own customer with the log of a busy decision.

    The first goes through the action service; the others get copies of the rows it wrote, in one insert.
    A query count needs many such rows, not the service's checks (9 to 16 queries an action) run on each.
    """
    first = a_busy_decision(agent)
    copies = [decision_for(agent) for _ in range(count - 1)]
    copy_log(first, onto=copies)
    return [first, *copies]


def copy_log(source, *, onto) -> None:
    """Give each decision in `onto` the action rows the service wrote for `source`, in one insert.

    The rows are added in the log's order, so each copy's created_at times follow the same story.
    """
    story = list(source.actions.order_by("created_at"))
    DecisionAction.objects.bulk_create(
        DecisionAction(
            decision=decision,
            kind=step.kind,
            offer_code=step.offer_code,
            override_reason=step.override_reason,
            agent_id=step.agent_id,
            channel=step.channel,
            cost_cents=step.cost_cents,
        )
        for decision in onto
        for step in story
    )


@pytest.mark.parametrize("name", ["review-log", "review-log-csv"])
def test_the_offer_log_needs_the_same_queries_for_5_or_60_rows(lead, agent, colleague, name):
    client = logged_in(lead)
    busy_decisions(agent, 5)
    few = queries_for(client, reverse(name), {"per_page": 100})
    busy_decisions(colleague, 55)
    many = queries_for(client, reverse(name), {"per_page": 100})

    assert few == many
    assert many <= 12


def test_the_kpi_page_needs_the_same_queries_for_few_or_many_decisions(lead, agent, colleague):
    client = logged_in(lead)
    for decision in busy_decisions(agent, 1):
        renewed(decision)
    few = queries_for(client, reverse("review-kpis"), {})
    for decision in busy_decisions(colleague, 30):
        renewed(decision)

    assert queries_for(client, reverse("review-kpis"), {}) == few


# --- CSV ----------------------------------------------------------------------------------------


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_holds_the_filtered_log(lead, log):
    response = logged_in(lead).get(reverse("review-log-csv"), {"offer": "speed-up"})

    rows = csv_rows(response)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    by_id = {row["customer_id"]: row for row in rows}
    assert set(by_id) == {log["overridden"].customer.external_id, log["explored"].customer.external_id}
    overridden = by_id[log["overridden"].customer.external_id]
    assert overridden["offers_made"] == "speed-up"
    assert overridden["declined_offers"] == "speed-up"
    assert overridden["outcome"] == "declined"
    assert overridden["override_reasons"] == "customer_request"
    assert overridden["accepted_cost_cents"] == "0"
    assert overridden["as_of_utc"].endswith("+00:00")


def test_a_customer_who_objected_to_profiling_is_logged_without_their_score(lead, log):
    customer = log["accepted"].customer
    customer.objects_to_profiling = True
    customer.save()

    page = logged_in(lead).get(reverse("review-log")).text
    rows = {row["customer_id"]: row for row in csv_rows(logged_in(lead).get(reverse("review-log-csv")))}

    row = page[page.index("Acceptatie") :].split("</tr>")[0]
    assert "bezwaar tegen profilering" in row and "risk-tag" not in row
    assert (rows[customer.external_id]["risk_band"], rows[customer.external_id]["churn_percent"]) == ("", "")
    other = rows[log["overridden"].customer.external_id]
    assert other["risk_band"] and other["churn_percent"]
    # Nor does a filter by their stored band list them.
    banded = logged_in(lead).get(reverse("review-log"), {"risk_band": log["accepted"].risk_band}).text
    assert "Acceptatie" not in banded


def test_the_csv_names_no_customer_but_by_their_number(lead, log):
    text = b"".join(logged_in(lead).get(reverse("review-log-csv")).streaming_content).decode()

    assert "customer_name" not in text.splitlines()[0]
    assert not any(name in text for name in ALL_NAMES)


def test_the_csv_carries_what_off_policy_estimates_read(lead, log):
    [row] = csv_rows(logged_in(lead).get(reverse("review-log-csv"), {"explored_only": "on"}))

    assert row["explored"] == "yes" and row["recommended_offer"] == "speed-up"
    assert (row["greedy_offer"], float(row["propensity"])) == (
        log["explored"].greedy_offer_code,
        log["explored"].propensity,
    )


def test_the_csv_counts_accepted_costs_in_cents(lead, log):
    [row] = csv_rows(logged_in(lead).get(reverse("review-log-csv"), {"outcome": "accepted"}))

    assert (row["accepted_offer"], row["accepted_cost_cents"], row["explored"]) == ("loyal-10", "6600", "no")


def test_a_customer_number_cannot_become_a_spreadsheet_formula(lead, agent):
    stored_decision(customer=CustomerFactory(external_id='=HYPERLINK("http://evil","klik")'), agent=agent)

    [row] = csv_rows(logged_in(lead).get(reverse("review-log-csv")))

    assert row["customer_id"] == '\'=HYPERLINK("http://evil","klik")'


def test_a_formula_after_a_semicolon_is_defused_too_and_every_cell_is_quoted(lead, agent):
    # A Dutch Excel splits at semicolons: "K1;=1+1;" would be a number cell and a formula cell there.
    stored_decision(customer=CustomerFactory(external_id="K1;=1+1; -2"), agent=agent)

    client = logged_in(lead)
    [row] = csv_rows(client.get(reverse("review-log-csv")))
    text = b"".join(client.get(reverse("review-log-csv")).streaming_content).decode()

    assert row["customer_id"] == "K1;'=1+1;' -2"
    assert "\"K1;'=1+1;' -2\"" in text
    assert all(line.startswith('"') and line.endswith('"') for line in text.splitlines())


def test_a_bad_csv_filter_is_refused(lead):
    response = logged_in(lead).get(reverse("review-log-csv"), {"since": "2026-02-30"})

    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]


# --- KPIs ---------------------------------------------------------------------------------------


@pytest.fixture
def kpi_story(agent, lead, other_team):
    """Hand-computed figures are in the tests below.

    agent: accepted loyal-10 (renewed); overrode to speed-up, declined (churned); escalated (no result yet).
    lead:  accepted loyal-10 (renewed).
    another team: accepted loyal-10 (renewed), never counted for this lead.
    """
    d1 = decision_for(agent)
    act(d1, "presented", "loyal-10")
    act(d1, "accepted", "loyal-10")
    renewed(d1)
    d2 = decision_for(agent)
    act(d2, "presented", "speed-up", "better_fit")
    act(d2, "declined", "speed-up")
    renewed(d2, "churned")
    act(decision_for(agent), "escalated")
    d4 = decision_for(lead)
    act(d4, "presented", "loyal-10")
    act(d4, "accepted", "loyal-10")
    renewed(d4)
    stranger = AgentProfileFactory(user=UserFactory(username="stranger"), team=other_team).user
    d5 = decision_for(stranger)
    act(d5, "presented", "loyal-10")
    act(d5, "accepted", "loyal-10")
    renewed(d5)


def test_the_kpis_match_the_hand_computed_figures(lead, kpi_story):
    kpis = logged_in(lead).get(reverse("review-kpis")).context["kpis"]

    assert (kpis.decisions, kpis.offers_made, kpis.accepted) == (4, 3, 2)
    assert kpis.offer_share == pytest.approx(3 / 4)
    assert kpis.acceptance_rate == pytest.approx(2 / 3)
    assert kpis.accepted_cost_cents == 2 * LOYAL_COST
    assert (kpis.labelled, kpis.stayed) == (3, 2)
    assert kpis.save_rate == pytest.approx(2 / 3)
    assert kpis.net_retained_cents == 2 * (MARGIN_CENTS - LOYAL_COST)


def test_the_kpis_per_agent_show_overrides_escalations_and_average_cost(lead, agent, kpi_story):
    agents = {row.name: row for row in logged_in(lead).get(reverse("review-kpis")).context["agents"]}

    assert set(agents) == {"agent", "lead"}
    mine = agents["agent"]
    assert (mine.decisions, mine.offers_made, mine.overrides, mine.escalations) == (3, 2, 1, 1)
    assert mine.override_rate == pytest.approx(0.5)
    assert mine.average_cost_cents == LOYAL_COST
    assert (agents["lead"].override_rate, agents["lead"].average_cost_cents) == (0.0, LOYAL_COST)


def test_a_team_leads_override_on_an_agents_advice_counts_in_neither_the_agents_rate_nor_their_own(lead, agent):
    escalated = decision_for(agent)
    act(escalated, "escalated", "half-price")
    decision_action_record(
        decision=escalated, kind="presented", offer_code="half-price", override_reason="customer_request", agent=lead
    )
    own = decision_for(agent)
    act(own, "presented", "speed-up", "better_fit")

    agents = {row.name: row for row in logged_in(lead).get(reverse("review-kpis")).context["agents"]}

    assert set(agents) == {"agent"}
    assert (agents["agent"].offers_made, agents["agent"].overrides) == (1, 1)  # the lead's offer is not hers
    assert agents["agent"].made_by_lead == 1  # but it is in her row, beside her own
    overrides_in_log = logged_in(lead).get(reverse("review-log"), {"overrides_only": "on"}).context["rows"]
    assert len(overrides_in_log) == 2  # the offer log still lists both, with who logged what


def test_an_agents_average_accepted_cost_counts_only_the_offers_she_made(lead, agent):
    made_by_lead = decision_for(agent)
    decision_action_record(
        decision=made_by_lead, kind="presented", offer_code="half-price", override_reason="customer_request", agent=lead
    )
    act(made_by_lead, "accepted", "half-price")  # she logs the answer to the offer her lead made
    own = decision_for(agent)
    act(own, "presented", "loyal-10")
    act(own, "accepted", "loyal-10")

    page = logged_in(lead).get(reverse("review-kpis"))

    (mine,) = page.context["agents"]
    assert (mine.offers_made, mine.accepted, mine.average_cost_cents, mine.made_by_lead) == (1, 1, LOYAL_COST, 1)
    assert page.context["kpis"].accepted == 2  # the team's figures count both
    assert "Aanbiedingen door teamleider of beheerder" in page.text


def test_the_kpi_page_shows_the_figures_in_dutch(lead, kpi_story):
    html = logged_in(lead).get(reverse("review-kpis")).text

    assert "75,0%" in html  # with an offer made
    assert "66,7%" in html  # acceptance and save rate, as the fairness report gives rates
    assert "€\u00a0132,00" in html  # cost of accepted offers
    assert "€\u00a0468,00" in html  # net retained value
    assert "Afwijkingen per medewerker" in html


def test_advice_asked_without_an_agent_counts_for_the_team_whose_agent_acted_on_it_as_in_its_budget(
    lead, agent, other_team, kpi_story
):
    crm_advice = stored_decision(customer=CustomerFactory(), renewal_fee_cents=FEE_CENTS)
    decision_action_record(decision=crm_advice, kind="presented", offer_code="loyal-10", agent=agent)
    decision_action_record(decision=crm_advice, kind="accepted", offer_code="loyal-10", agent=agent)
    untouched = stored_decision(customer=CustomerFactory(display_name="Nooit Aangeraakt"), renewal_fee_cents=FEE_CENTS)
    client = logged_in(lead)

    kpis = client.get(reverse("review-kpis")).context["kpis"]
    log = client.get(reverse("review-log"))

    assert kpis.accepted_cost_cents == team_budget_status(team=agent.agent_profile.team).spent_cents
    assert crm_advice.customer.display_name in log_names(log)
    assert untouched.customer.display_name not in log_names(log)


def test_the_kpis_cover_only_the_chosen_period(lead, agent, kpi_story):
    old = decision_for(agent, as_of=days_ago(200))
    act(old, "presented", "loyal-10")
    since = (timezone.localdate() - dt.timedelta(days=365)).isoformat()
    client = logged_in(lead)

    assert client.get(reverse("review-kpis")).context["kpis"].decisions == 4  # the last 90 days by default
    assert client.get(reverse("review-kpis"), {"since": since}).context["kpis"].decisions == 5


def test_an_empty_period_shows_dashes_not_errors(lead):
    response = logged_in(lead).get(reverse("review-kpis"), {"since": "2020-01-01", "until": "2020-01-31"})

    assert response.status_code == 200
    assert response.context["kpis"].decisions == 0
    assert response.context["kpis"].save_rate is None
    assert "Geen adviezen in deze periode." in response.text


def test_without_renewal_results_the_net_retained_value_is_a_dash_not_zero(lead, agent):
    stored_decision(customer=CustomerFactory(), agent=agent)

    html = logged_in(lead).get(reverse("review-kpis")).text
    net = html[html.index("Netto behouden waarde") :]

    assert net.split("<dd>", 1)[1].startswith("–</dd>")


# --- escalations --------------------------------------------------------------------------------


def test_the_escalations_page_lists_what_waits_for_a_team_lead_and_links_to_the_advice(lead, agent, other_team):
    waiting = decision_for(agent, name="Wacht")
    act(waiting, "escalated", "half-price")
    handled = decision_for(agent, name="Gedaan")
    act(handled, "escalated", "half-price")
    DecisionAction.objects.create(decision=handled, kind="presented", offer_code="half-price", channel="phone")
    old = decision_for(agent, name="Oud")
    DecisionAction.objects.filter(pk=act(old, "escalated", "half-price").pk).update(created_at=days_ago(8))
    stranger = AgentProfileFactory(user=UserFactory(username="stranger"), team=other_team).user
    act(decision_for(stranger, name="Ander team"), "escalated", "half-price")

    response = logged_in(lead).get(reverse("review-escalations"))

    assert response.status_code == 200
    assert [row.customer_name for row in response.context["rows"]] == ["Wacht"]
    assert "1 doorzetting wacht op jou." in response.text
    assert "Nog " not in response.text  # nothing waits for an administrator
    assert f'href="/panel/?customer={waiting.customer.external_id}&amp;decision={waiting.pk}"' in response.text
    assert "Halve prijs" in response.text


def test_a_lead_turns_an_escalated_offer_down_by_logging_no_action(lead, agent):
    asked = decision_for(agent, name="Afgewezen")
    act(asked, "escalated", "half-price")
    waiting = decision_for(agent, name="Wacht")
    act(waiting, "escalated", "half-price")

    decision_action_record(decision=asked, kind="no_action", agent=lead)

    rows = logged_in(lead).get(reverse("review-escalations")).context["rows"]
    assert [row.customer_name for row in rows] == ["Wacht"]


def test_an_escalated_offer_is_answered_when_the_customer_accepts_another_meanwhile(lead, agent):
    settled = decision_for(agent, name="Ander aanbod")
    act(settled, "escalated", "half-price")
    DecisionAction.objects.create(decision=settled, kind="accepted", offer_code="speed-up", channel="phone")
    act(decision_for(agent, name="Wacht"), "escalated", "half-price")

    rows = logged_in(lead).get(reverse("review-escalations")).context["rows"]

    assert [row.customer_name for row in rows] == ["Wacht"]
    assert not escalation_open(list(settled.actions.order_by("created_at", "pk")), now=timezone.now())
    # The acceptance undone, the question is open again.
    DecisionAction.objects.create(decision=settled, kind="undone", offer_code="speed-up", channel="phone")
    rows = logged_in(lead).get(reverse("review-escalations")).context["rows"]
    assert sorted(row.customer_name for row in rows) == ["Ander aanbod", "Wacht"]
    assert escalation_open(list(settled.actions.order_by("created_at", "pk")), now=timezone.now())


def test_an_escalated_offer_is_answered_by_another_offer_the_lead_makes_not_by_one_the_agent_makes_meanwhile(
    lead, agent
):
    instead = decision_for(agent, name="Iets anders")
    act(instead, "escalated", "half-price")
    DecisionAction.objects.create(decision=instead, kind="presented", offer_code="speed-up", agent=lead)
    meanwhile = decision_for(agent, name="Wacht")
    act(meanwhile, "escalated", "half-price")
    DecisionAction.objects.create(decision=meanwhile, kind="presented", offer_code="speed-up", agent=agent)

    rows = logged_in(lead).get(reverse("review-escalations")).context["rows"]

    assert [row.customer_name for row in rows] == ["Wacht"]
    now = timezone.now()
    assert not escalation_open(list(instead.actions.order_by("created_at", "pk")), now=now)
    assert escalation_open(list(meanwhile.actions.order_by("created_at", "pk")), now=now)


def test_a_call_escalated_as_a_whole_waits_until_anything_is_logged_on_it_and_is_listed_once(lead, agent):
    waiting = decision_for(agent, name="Wacht")
    act(waiting, "escalated")
    handled = decision_for(agent, name="Gedaan")
    act(handled, "escalated")
    decision_action_record(decision=handled, kind="no_action", agent=lead)

    with pytest.raises(ValidationError) as twice:
        act(waiting, "escalated")

    assert twice.value.error_dict["kind"][0].code == "call_already_escalated"
    page = logged_in(lead).get(reverse("review-escalations"))
    assert [row.customer_name for row in page.context["rows"]] == ["Wacht"]
    assert "<td>Het hele gesprek</td>" in page.text


def test_an_offer_above_the_team_leads_own_authority_waits_for_an_administrator_not_the_lead(lead, agent):
    level_3 = [*OFFERS[:2], {**OFFERS[2], "authority_level": 3, "required_authority_level": 3}]
    act(decision_for(agent, name="Beheerder", offers=level_3), "escalated", "half-price")
    act(decision_for(agent, name="Teamleider"), "escalated", "half-price")
    admin = AgentProfileFactory(user=UserFactory(username="boss"), role="admin", authority_level=3, team=None).user

    for_lead = logged_in(lead).get(reverse("review-escalations"))
    for_admin = logged_in(admin).get(reverse("review-escalations")).context

    assert [row.customer_name for row in for_lead.context["rows"]] == ["Teamleider"]
    # The lead still sees that their agent waits, and for whom.
    assert [row.customer_name for row in for_lead.context["for_administrator"]] == ["Beheerder"]
    assert "Nog 1 wacht op een beheerder." in for_lead.text and "Wacht op een beheerder" in for_lead.text
    assert sorted(row.customer_name for row in for_admin["rows"]) == ["Beheerder", "Teamleider"]
    assert for_admin["for_administrator"] == []


def test_every_review_page_counts_the_escalations_waiting_for_the_lead_and_asks_again_every_20_seconds(lead, agent):
    act(decision_for(agent, name="Wacht"), "escalated", "half-price")
    act(decision_for(agent, name="Ook"), "escalated")
    client = logged_in(lead)

    page = client.get(reverse("review-budget")).text
    count = client.get(reverse("review-escalations-count"), HTTP_HX_REQUEST="true").text

    for html in (page, count):
        assert '<span aria-hidden="true">2</span><span class="visually-hidden">2 wachten op jou</span>' in html
        assert f'hx-get="{reverse("review-escalations-count")}" hx-trigger="every 20s"' in html
    listing = client.get(reverse("review-escalations")).text
    assert 'hx-trigger="every 20s" hx-select="#escalations-content"' in listing


def test_the_escalations_page_reads_the_escalations_once_for_its_list_and_its_count(lead, agent, monkeypatch):
    from agents_ui.review import access

    act(decision_for(agent, name="Wacht"), "escalated", "half-price")
    calls = []
    read = access.escalations_waiting
    monkeypatch.setattr(access, "escalations_waiting", lambda **kwargs: calls.append(1) or read(**kwargs))

    page = logged_in(lead).get(reverse("review-escalations")).text

    assert '<span aria-hidden="true">1</span>' in page and "Wacht" in page
    assert len(calls) == 1


def test_with_nothing_waiting_the_count_is_hidden_and_an_agent_may_not_ask_for_it(lead, agent):
    count = logged_in(lead).get(reverse("review-escalations-count")).text

    assert 'class="nav-count nav-count-none"' in count and "wacht" not in count
    assert logged_in(agent).get(reverse("review-escalations-count")).status_code == 403


def test_an_administrator_picks_the_team_whose_escalations_to_see_and_the_list_asks_again_for_it(
    admin, agent, other_team
):
    act(decision_for(agent, name="Ons team"), "escalated", "half-price")
    stranger = AgentProfileFactory(user=UserFactory(username="stranger"), team=other_team).user
    act(decision_for(stranger, name="Ander team"), "escalated", "half-price")
    client = logged_in(admin)

    every_team = client.get(reverse("review-escalations"))
    one_team = client.get(reverse("review-escalations"), {"team": other_team.pk})

    assert sorted(row.customer_name for row in every_team.context["rows"]) == ["Ander team", "Ons team"]
    assert [row.customer_name for row in one_team.context["rows"]] == ["Ander team"]
    assert f'hx-get="/review/escalations/?team={other_team.pk}"' in one_team.text


def test_no_escalation_waiting_says_so(lead):
    response = logged_in(lead).get(reverse("review-escalations"))

    assert response.text.count("Er wacht geen doorzetting op jou.") == 1
    assert "0 doorzettingen" not in response.text


# --- budget -------------------------------------------------------------------------------------


def spend(decision, cents: int, at: dt.datetime) -> None:
    action = DecisionAction.objects.create(
        decision=decision, kind="accepted", offer_code="loyal-10", channel="phone", cost_cents=cents
    )
    DecisionAction.objects.filter(pk=action.pk).update(created_at=at)


def test_the_budget_page_shows_six_months_with_their_status(lead, agent, team):
    team.monthly_budget_cents = 100_000
    team.save()
    decision = decision_for(agent)
    this_month = month_start(timezone.now())
    last_month, two_ago = month_starts(timezone.now(), 3)[1:]
    spend(decision, 80_000, this_month + dt.timedelta(hours=1))
    spend(decision, 60_000, last_month + dt.timedelta(days=3))
    spend(decision, 50_000, last_month + dt.timedelta(days=9))
    spend(decision, 10_000, two_ago + dt.timedelta(days=1))

    response = logged_in(lead).get(reverse("review-budget"))

    months = response.context["months"]
    assert [month.month for month in months] == [start.date() for start in month_starts(timezone.now(), 6)]
    statuses = [(m.teams[0].status.spent_cents, m.teams[0].status.level) for m in months[:4]]
    assert statuses == [(80_000, "amber"), (110_000, "red"), (10_000, "green"), (0, "green")]
    assert (months[1].teams[0].status.remaining_cents, months[1].teams[0].status.overspent_cents) == (0, 10_000)
    assert "€\u00a0100,00 te veel" in response.text
    assert "Budget bijna op" in response.text and "Budget op" in response.text
    assert "€\u00a01.100,00" in response.text


def test_the_budget_page_shows_what_offers_waiting_for_an_answer_hold_this_month_only(lead, agent, team):
    team.monthly_budget_cents = 100_000
    team.save()
    decision = decision_for(agent)
    spend(decision, 70_000, month_start(timezone.now()) + dt.timedelta(minutes=5))
    decision_action_record(decision=decision_for(agent), kind="presented", offer_code="loyal-10", agent=agent)

    response = logged_in(lead).get(reverse("review-budget"))

    this_month, last_month = (month.teams[0].status for month in response.context["months"][:2])
    assert (this_month.spent_cents, this_month.held_cents, this_month.remaining_cents) == (70_000, 6_600, 23_400)
    assert (this_month.level, last_month.held_cents) == ("amber", 0)
    rows = response.text.split("<tbody>")[1].split("</tr>")
    assert "€\u00a066,00" in rows[0] and "€\u00a0234,00" in rows[0]
    assert '<th scope="col" class="number">Gereserveerd</th>' in response.text
    assert "€\u00a066,00" not in rows[1]
    # 76.6% of the budget is spent or held: said beside the status that counts both, not beside what was spent.
    cells = rows[0].split("</td>")
    assert "(77%)" in cells[-2] and "(77%)" not in cells[1]


def test_spending_is_counted_in_the_local_month(agent, team):
    decision = decision_for(agent)
    first = month_start(timezone.now())
    spend(decision, 1_000, first + dt.timedelta(minutes=30))  # 00:30 local on the 1st: still before midnight UTC
    spend(decision, 2_000, first - dt.timedelta(minutes=30))

    months = team_budget_months(teams=[team], months=2)

    assert [row.status.spent_cents for row in months] == [1_000, 2_000]


def test_month_starts_cross_the_year_boundary():
    moment = dt.datetime(2026, 2, 15, 12, tzinfo=dt.UTC)

    assert [start.date() for start in month_starts(moment, 4)] == [
        dt.date(2026, 2, 1),
        dt.date(2026, 1, 1),
        dt.date(2025, 12, 1),
        dt.date(2025, 11, 1),
    ]


def test_the_admin_picks_a_team_for_the_budget(admin, team, other_team):
    response = logged_in(admin).get(reverse("review-budget"), {"team": other_team.pk})

    assert {row.status.team_name for month in response.context["months"] for row in month.teams} == {other_team.name}


# --- fairness -----------------------------------------------------------------------------------


@pytest.fixture
def unfair_log(agent):
    """High risk: ten women, of whom two got an offer; ten men, of whom eight did."""
    offers_by_gender(agent, female=2, male=8)


def offers_by_gender(agent, *, female: int, male: int) -> None:
    """Ten women and ten men at high risk, the first `female` and `male` of them offered.

    One offer is presented through the action service; the other offered decisions get copies of its
    row, as the page is under test here and not the service.
    """
    offered = []
    for number in range(20):
        gender = "female" if number < 10 else "male"
        decision = decision_for(agent)
        ProtectedAttributes.objects.create(customer=decision.customer, values={"gender": gender})
        if number % 10 < (female if gender == "female" else male):
            offered.append(decision)
    act(offered[0], "presented", "loyal-10")
    copy_log(offered[0], onto=offered[1:])


# In a group's cell, not the legend above the tables, which names the phrase too.
TOO_FEW_IN_A_CELL = '<br><span class="muted">te weinig om te beoordelen</span>'


@pytest.mark.parametrize("language", ["nl", "en"])
def test_the_fairness_page_flags_unequal_offers(lead, unfair_log, settings, language):
    settings.FAIRNESS_MIN_GROUP_SIZE = 5
    lead.agent_profile.language = language
    lead.agent_profile.save()

    response = logged_in(lead).get(reverse("review-fairness"))

    report = response.context["report"]
    [flagged] = [c for c in report.flagged if c.attribute == "gender"]
    assert (flagged.metric, flagged.risk_band, flagged.ratio) == ("offer_rate", "high", pytest.approx(0.25))
    assert ("Onder de drempel" if language == "nl" else "Below threshold") in response.text
    assert ("Geslacht" if language == "nl" else "Gender") in response.text
    assert (
        "Benjamini-Hochberg-methode: 0,05 of meer" if language == "nl" else "Benjamini-Hochberg method: 0.05 or more"
    ) in response.text
    assert ("20,0%" if language == "nl" else "20.0%") in response.text


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_flag_chance_could_give_says_so_with_its_adjusted_p_value(lead, agent, settings, language):
    offers_by_gender(agent, female=1, male=3)  # 10% against 30% of ten each: a ratio of 0.33
    settings.FAIRNESS_MIN_GROUP_SIZE = 5
    lead.agent_profile.language = language
    lead.agent_profile.save()

    response = logged_in(lead).get(reverse("review-fairness"))

    [flagged] = [c for c in response.context["report"].flagged if c.attribute == "gender"]
    assert flagged.may_be_chance
    adjusted = f"{flagged.adjusted_p_value:.2f}".replace(".", "," if language == "nl" else ".")
    note = "kan toeval zijn (gecorrigeerde p = {})" if language == "nl" else "may be chance (adjusted p = {})"
    assert note.format(adjusted) in response.text
    # The summary above the tables says it too, not only the table.
    summary = response.text.split('class="flagged-list"')[1].split("</ul>")[0]
    assert f"; {note.format(adjusted)})</li>" in summary


def test_small_groups_are_shown_but_not_flagged_on_the_page(lead, unfair_log, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 30

    response = logged_in(lead).get(reverse("review-fairness"))

    assert response.context["report"].flagged == ()
    assert TOO_FEW_IN_A_CELL in response.text
    assert "20,0%" in response.text


def test_groups_small_enough_to_single_customers_out_show_neither_value_nor_size(
    lead, unfair_log, settings, monkeypatch
):
    settings.FAIRNESS_MIN_GROUP_SIZE = 30
    monkeypatch.setattr("ml.fairness.PRIVATE_GROUP_SIZE", 11)  # the log's groups have ten decisions each

    response = logged_in(lead).get(reverse("review-fairness"))

    assert "minder dan 11: niet getoond" in response.text
    assert "20,0%" not in response.text and "(n=10)" not in response.text  # the gender groups' offer rates


@pytest.mark.parametrize("language", ["nl", "en"])
def test_a_large_group_without_renewal_results_says_so_not_that_it_is_too_small_to_show(
    lead, unfair_log, settings, language
):
    settings.FAIRNESS_MIN_GROUP_SIZE = 5  # the log's groups have ten decisions each, and no renewal result
    lead.agent_profile.language = language
    lead.agent_profile.save()

    html = logged_in(lead).get(reverse("review-fairness")).text

    dutch = language == "nl"
    save_rate = html[html.index("Behoudpercentage" if dutch else "Save rate") :].split("</tr>")[0]
    accepted = html[html.index("Gemiddelde kosten van geaccepteerde" if dutch else "Mean cost of accepted") :]
    assert save_rate.count("nog geen verlengingsuitkomsten" if dutch else "no renewal results yet") == 2
    assert accepted.split("</tr>")[0].count("geen aanbod geaccepteerd" if dutch else "no offer accepted") == 2
    assert ("niet getoond" if dutch else "not shown") not in save_rate + accepted.split("</tr>")[0]


def test_the_fairness_threshold_comes_from_the_settings(lead, unfair_log, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 5
    settings.FAIRNESS_RATIO_THRESHOLD = 0.2

    report = logged_in(lead).get(reverse("review-fairness")).context["report"]

    assert report.threshold == 0.2
    assert not [c for c in report.flagged if c.metric == "offer_rate"]


def test_a_decision_the_outcome_log_cannot_value_is_an_error_on_the_page_not_a_guess(lead, agent):
    decision = stored_decision(customer=CustomerFactory(), agent=agent, policy_version=99, renewal_fee_cents=FEE_CENTS)
    renewed(decision)

    response = logged_in(lead).get(reverse("review-kpis"))

    assert response.status_code == 500
    assert "De cijfers kunnen niet worden berekend" in response.text
    assert "policy version 99" in response.text


def test_the_fairness_page_lists_the_flagged_metrics_with_links(lead, unfair_log, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 5

    html = logged_in(lead).get(reverse("review-fairness")).text

    assert '<a href="#fairness-' in html
    assert "Hoog risico · Geslacht</a>: Aanbodpercentage (verhouding 0,25)" in html
