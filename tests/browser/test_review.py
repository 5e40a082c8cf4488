"""The team lead's offer log in the browser: filtering swaps the results in place with htmx, and works without it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import stored_decision
from tests.browser.pages import log_in
from tests.factories import CustomerFactory

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def review_log(agent, catalog):
    """Two decisions of the lead's team: one accepted, one without an offer."""
    accepted = stored_decision(customer=CustomerFactory(display_name="Anna Akkoord"), agent=agent)
    decision_action_record(decision=accepted, kind="presented", offer_code="loyal-10", agent=agent)
    decision_action_record(decision=accepted, kind="accepted", offer_code="loyal-10", agent=agent)
    stored_decision(customer=CustomerFactory(display_name="Bert Zonderaanbod"), agent=agent)


def test_a_lead_filters_the_offer_log_without_reloading_the_page(open_page, screenshot, lead, review_log):
    page = open_page()
    page.set_viewport_size(DESKTOP)
    log_in(page, "lead", path="/review/log/")
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_label("Uitkomst").select_option(label="Geaccepteerd")
    page.get_by_role("button", name="Tonen").click()

    page.wait_for_url("**outcome=accepted*")
    table = page.get_by_role("table")
    expect(table).to_contain_text("Anna Akkoord")
    expect(table).not_to_contain_text("Bert Zonderaanbod")
    expect(page.get_by_role("status")).to_have_text("1 advies")
    assert page.evaluate("window.stillTheSamePage") is True  # htmx swapped the results, no full load
    assert "outcome=accepted" in page.get_by_role("link", name="Downloaden als CSV").get_attribute("href")
    expect(page.get_by_role("link", name="Aanbodlogboek")).to_have_attribute("aria-current", "page")
    screenshot(page, "review-log-1280-nl")


def test_switching_language_keeps_the_filters_applied_in_place(open_page, lead, review_log):
    page = open_page()
    log_in(page, "lead", path="/review/log/")
    page.get_by_label("Uitkomst").select_option(label="Geaccepteerd")
    page.get_by_role("button", name="Tonen").click()
    page.wait_for_url("**outcome=accepted*")

    page.get_by_role("button", name="English").click()

    page.wait_for_url("**/review/log/?*outcome=accepted*")
    expect(page.get_by_role("table")).to_contain_text("Anna Akkoord")
    expect(page.get_by_role("table")).not_to_contain_text("Bert Zonderaanbod")


def test_the_offer_log_filters_without_javascript(open_page, lead, review_log):
    page = open_page(javascript=False)
    page.set_viewport_size(DESKTOP)
    log_in(page, "lead", path="/review/log/")

    page.get_by_label("Uitkomst").select_option(label="Geen aanbod gedaan")
    page.get_by_role("button", name="Tonen").click()

    page.wait_for_url("**outcome=no_offer*")
    expect(page.get_by_role("table")).to_contain_text("Bert Zonderaanbod")
    expect(page.get_by_role("table")).not_to_contain_text("Anna Akkoord")


def test_the_offer_log_fits_a_narrow_window_its_table_scrolling_in_its_own_frame(open_page, lead, review_log):
    page = open_page()  # 380 CSS pixels wide
    log_in(page, "lead", path="/review/log/")

    expect(page.get_by_role("table")).to_contain_text("Anna Akkoord")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_a_period_that_ends_before_it_starts_says_so_in_place_of_the_results(open_page, lead, review_log):
    page = open_page()
    page.set_viewport_size(DESKTOP)
    log_in(page, "lead", path="/review/log/")
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_label("Van", exact=True).fill("2026-11-25")
    page.get_by_label("Tot en met").fill("2026-11-01")
    page.get_by_role("button", name="Tonen").click()

    expect(page.get_by_role("alert")).to_have_text("De einddatum ligt voor de begindatum.")
    expect(page.get_by_role("table")).to_have_count(0)  # no results left standing under the refused period
    expect(page.locator(".request-failed")).to_have_count(0)
    assert page.evaluate("window.stillTheSamePage") is True


def test_the_escalations_list_asked_for_again_keeps_the_keyboard_users_place(open_page, agent, lead, catalog):
    first = stored_decision(customer=CustomerFactory(display_name="Eva Eerst"), agent=agent)
    decision_action_record(decision=first, kind="escalated", offer_code="half-price", agent=agent)
    page = open_page()
    page.clock.install()
    page.set_viewport_size(DESKTOP)
    log_in(page, "lead", path="/review/escalations/")
    link = page.get_by_role("link", name="Advies openen")
    link.focus()

    page.clock.run_for(21_000)  # the list is asked for again: nothing changed
    page.wait_for_timeout(500)
    expect(link).to_be_focused()

    later = stored_decision(customer=CustomerFactory(display_name="Lotte Later"), agent=agent)
    decision_action_record(decision=later, kind="escalated", offer_code="half-price", agent=agent)
    page.clock.run_for(21_000)  # and again: a new escalation came in
    expect(page.get_by_role("table")).to_contain_text("Lotte Later")
    focused = page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == first_link_href(first)


def first_link_href(decision) -> str:
    return f"/panel/?customer={decision.customer.external_id}&decision={decision.pk}"
