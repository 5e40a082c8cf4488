"""Who may open the review pages and whose data they see: leads their own team, administrators every team."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path, reverse

from agents_ui.review import navigation
from agents_ui.review.access import lead_required
from agents_ui.review.navigation import review_nav
from retention.models import AgentProfile
from tests.agents_ui.decisions import stored_decision
from tests.conftest import PASSWORD
from tests.factories import AgentProfileFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

REVIEW_PAGES = [
    "review",
    "review-log",
    "review-log-csv",
    "review-kpis",
    "review-escalations",
    "review-budget",
    "review-fairness",
]


@lead_required
def models_page(request):
    return HttpResponse("models")


# Used only by the test that marks itself with this module as its urlconf: the real urls plus a models page.
urlpatterns = [
    path("review/models/", models_page, name="review-models"),
    path("", include("config.urls")),
]


@pytest.fixture
def admin(db):
    profile = AgentProfileFactory(user=UserFactory(username="admin"), team=None, role=AgentProfile.Role.ADMIN)
    return profile.user


@pytest.fixture
def other_agent(other_team):
    return AgentProfileFactory(user=UserFactory(username="other-agent"), team=other_team).user


@pytest.fixture
def decisions(agent, other_agent):
    """One decision in the lead's team, one in another team, one from a CRM system without a team."""
    return {
        "own": stored_decision(customer=CustomerFactory(display_name="Anna Eigenteam"), agent=agent),
        "other": stored_decision(customer=CustomerFactory(display_name="Bram Andersteam"), agent=other_agent),
        "no_team": stored_decision(customer=CustomerFactory(display_name="Carla Zonderteam")),
    }


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def csv_text(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.parametrize("name", REVIEW_PAGES)
def test_anonymous_visitor_is_sent_to_login(client, name):
    url = reverse(name)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=" + url)


def test_a_look_a_review_page_takes_after_the_session_ended_sends_the_whole_page_to_the_login(client):
    page = reverse("review-kpis")

    response = client.get(
        reverse("review-escalations-count"), HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{page}"
    )

    assert response.status_code == 200 and not response.content  # no login form to land inside the page
    assert response["HX-Redirect"] == reverse("login") + "?next=" + page


@pytest.mark.parametrize("name", REVIEW_PAGES)
def test_agent_gets_a_403_page_with_no_data(agent, decisions, name):
    response = logged_in(agent).get(reverse(name))

    assert response.status_code == 403
    assert "Anna Eigenteam" not in response.text
    assert not [d for d in decisions.values() if d.customer.external_id in response.text]  # nor customer numbers
    assert "teamleiders" in response.text  # the refusal says who the pages are for, in the agent's Dutch


@pytest.mark.parametrize("name", REVIEW_PAGES)
def test_outsider_without_a_profile_gets_a_403_page(outsider, decisions, name):
    response = logged_in(outsider).get(reverse(name))

    assert response.status_code == 403
    assert "Anna Eigenteam" not in response.text


def test_a_lead_without_a_team_is_told_so(db):
    lead = AgentProfileFactory(user=UserFactory(username="lonely"), team=None, role=AgentProfile.Role.LEAD).user

    response = logged_in(lead).get(reverse("review-log"))

    assert response.status_code == 403
    assert "geen team" in response.text


def test_review_home_redirects_a_lead_to_the_offer_log(lead):
    response = logged_in(lead).get(reverse("review"))

    assert response.status_code == 302
    assert response["Location"] == reverse("review-log")


def test_lead_sees_only_their_own_teams_decisions(lead, decisions):
    client = logged_in(lead)

    log = client.get(reverse("review-log"))
    exported = csv_text(client.get(reverse("review-log-csv")))

    assert log.status_code == 200
    assert "Anna Eigenteam" in log.text
    assert "Bram Andersteam" not in log.text and "Carla Zonderteam" not in log.text
    number = {name: decision.customer.external_id for name, decision in decisions.items()}
    assert number["own"] in exported
    assert number["other"] not in exported and number["no_team"] not in exported
    assert client.get(reverse("review-kpis")).context["kpis"].decisions == 1


def test_lead_has_no_team_filter_and_cannot_pick_another_teams_agent(lead, decisions, other_agent):
    client = logged_in(lead)

    page = client.get(reverse("review-log"))
    refused = client.get(reverse("review-log"), {"agent": other_agent.pk})

    assert "team" not in page.context["form"].fields
    assert refused.status_code == 400
    assert "Bram Andersteam" not in refused.text


@pytest.mark.parametrize(
    "page", ["review-log", "review-log-csv", "review-kpis", "review-fairness", "review-budget", "review-escalations"]
)
@pytest.mark.parametrize("team_value", ["other", "999", "abc"])
def test_a_lead_asking_for_another_team_through_the_team_parameter_is_refused_and_told_why(
    lead, decisions, other_team, page, team_value
):
    value = str(other_team.pk) if team_value == "other" else team_value

    response = logged_in(lead).get(reverse(page), {"team": value})

    assert response.status_code == 400
    assert "text/html" in response["Content-Type"]
    assert f"Je ziet alleen de cijfers van je eigen team; dit adres vraagt om een ander team (team={value})." in (
        response.text
    )
    assert "Bram Andersteam" not in response.text and "Anna Eigenteam" not in response.text


@pytest.mark.parametrize(
    "page", ["review-log", "review-log-csv", "review-kpis", "review-fairness", "review-budget", "review-escalations"]
)
def test_a_lead_naming_their_own_team_or_none_in_the_team_parameter_sees_their_team(lead, decisions, team, page):
    client = logged_in(lead)

    for value in (str(team.pk), ""):
        response = client.get(reverse(page), {"team": value})

        assert response.status_code == 200
        if page == "review-log":
            assert "Anna Eigenteam" in response.text and "Bram Andersteam" not in response.text


def test_lead_sees_only_their_own_teams_budget(lead, team, other_team):
    response = logged_in(lead).get(reverse("review-budget"))

    assert team.name in response.text
    assert other_team.name not in response.text


def test_admin_sees_every_team_and_decisions_without_one(admin, decisions):
    response = logged_in(admin).get(reverse("review-log"))

    assert all(name in response.text for name in ("Anna Eigenteam", "Bram Andersteam", "Carla Zonderteam"))


def test_admin_filters_by_team(admin, decisions, other_team):
    client = logged_in(admin)

    response = client.get(reverse("review-log"), {"team": other_team.pk})
    kpis = client.get(reverse("review-kpis"), {"team": other_team.pk}).context["kpis"]

    assert "Bram Andersteam" in response.text
    assert "Anna Eigenteam" not in response.text and "Carla Zonderteam" not in response.text
    assert kpis.decisions == 1


def test_admin_sees_every_teams_budget(admin, team, other_team):
    response = logged_in(admin).get(reverse("review-budget"))

    assert team.name in response.text and other_team.name in response.text


def test_superuser_without_a_profile_sees_everything(decisions):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)

    response = logged_in(root).get(reverse("review-log"))

    assert response.status_code == 200
    assert "Bram Andersteam" in response.text and "Carla Zonderteam" in response.text


@pytest.mark.parametrize(
    "page", ["review-log", "review-escalations", "review-kpis", "review-budget", "review-fairness", "review-models"]
)
def test_every_review_page_opens_for_a_superuser_without_a_profile(decisions, page):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)

    assert logged_in(root).get(reverse(page)).status_code == 200


def test_the_navigation_leaves_out_a_page_that_is_not_installed(lead, monkeypatch):
    monkeypatch.setattr(navigation, "REVIEW_PAGES", [*navigation.REVIEW_PAGES, ("review-nowhere", "Nowhere")])

    response = logged_in(lead).get(reverse("review-log"))

    labels = [entry.label for entry in response.context["review_nav"]()]
    assert labels[:5] == ["Aanbodlogboek", "Doorzettingen", "KPI's", "Budget", "Eerlijkheid"]
    assert "Nowhere" not in labels


@pytest.mark.urls(__name__)
def test_the_navigation_links_the_models_page_once_it_exists(lead, rf):
    request = rf.get("/review/log/")

    assert [entry.url for entry in review_nav(request)][-1] == "/review/models/"
    assert logged_in(lead).get("/review/models/").text == "models"


def test_the_current_page_is_marked_in_the_navigation(lead):
    response = logged_in(lead).get(reverse("review-kpis"))

    assert '<a href="/review/kpis/" aria-current="page">' in response.text


def test_the_refusal_offers_an_agent_the_way_back_to_the_panel(agent):
    response = logged_in(agent).get(reverse("review-log"))

    assert f'href="{reverse("panel")}"' in response.text
