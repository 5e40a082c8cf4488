"""Every user switches the pages' language themselves, from the panel or the review pages."""

from __future__ import annotations

import pytest
from django.test import Client

from retention.models import AgentProfile

pytestmark = pytest.mark.django_db


def language_of(user) -> str:
    return AgentProfile.objects.get(user=user).language


@pytest.mark.parametrize("page", ["/panel/", "/review/log/"])
def test_the_header_offers_the_other_language(logged_in, lead, page):
    html = logged_in(lead).get(page).text
    assert '<button type="submit" name="language" value="en" class="link-button" lang="en">English</button>' in html


def test_switching_stores_the_choice_and_returns_to_the_page(logged_in, agent):
    client = logged_in(agent)

    response = client.post("/language/", {"language": "en", "next": "/panel/?q=Jansen"})

    assert (response.status_code, response["Location"]) == (302, "/panel/?q=Jansen")
    assert language_of(agent) == "en"
    assert '<html lang="en">' in client.get("/panel/").text
    assert "Nederlands" in client.get("/panel/").text


def test_an_unknown_language_changes_nothing(logged_in, agent):
    response = logged_in(agent).post("/language/", {"language": "de", "next": "/panel/"})

    assert response.status_code == 403
    assert language_of(agent) == "nl"


def test_a_return_address_on_another_site_is_not_followed(logged_in, agent):
    response = logged_in(agent).post("/language/", {"language": "en", "next": "https://evil.example/"})

    assert response["Location"] == "/panel/"


def test_switching_needs_a_post_and_a_login(logged_in, agent):
    anonymous = Client().post("/language/", {"language": "en"})

    assert logged_in(agent).get("/language/").status_code == 405
    assert (anonymous.status_code, anonymous["Location"].split("?")[0]) == (302, "/login/")
    assert language_of(agent) == "nl"


def test_the_sign_in_page_after_signing_out_speaks_the_language_chosen_not_the_computers(logged_in, agent):
    client = logged_in(agent)
    client.post("/language/", {"language": "en", "next": "/panel/"})
    client.get("/panel/")

    client.post("/logout/")
    page = client.get("/login/", headers={"accept-language": "nl-NL,nl;q=0.9"}).text

    assert '<html lang="en">' in page
