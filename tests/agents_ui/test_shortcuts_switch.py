"""Each agent may turn the panel's single-key shortcuts off (WCAG 2.1.4), and on again."""

from __future__ import annotations

import pytest

from retention.models import AgentProfile

pytestmark = pytest.mark.django_db


def shortcuts_of(user) -> bool:
    return AgentProfile.objects.get(user=user).keyboard_shortcuts


def test_turning_shortcuts_off_is_kept_and_the_page_says_so(logged_in, agent):
    client = logged_in(agent)

    response = client.post("/shortcuts/", {"shortcuts": "off", "next": "/panel/?q=Jansen"})

    assert (response.status_code, response["Location"]) == (302, "/panel/?q=Jansen")
    assert shortcuts_of(agent) is False
    assert 'data-shortcuts="off"' in client.get("/panel/").text


def test_turning_them_on_again(logged_in, agent):
    client = logged_in(agent)
    client.post("/shortcuts/", {"shortcuts": "off"})

    response = client.post("/shortcuts/", {"shortcuts": "on"})

    assert response["Location"] == "/panel/"
    assert shortcuts_of(agent) is True
    assert 'data-shortcuts="on"' in client.get("/panel/").text


def test_anything_but_on_or_off_changes_nothing(logged_in, agent):
    response = logged_in(agent).post("/shortcuts/", {"shortcuts": "maybe"})

    assert response.status_code == 403
    assert shortcuts_of(agent) is True


def test_a_return_address_on_another_site_is_not_followed(logged_in, agent):
    response = logged_in(agent).post("/shortcuts/", {"shortcuts": "off", "next": "https://evil.example/"})

    assert response["Location"] == "/panel/"
