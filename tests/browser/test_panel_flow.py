"""The agent's whole call in a real browser: log in, find the customer, read the advice, present, log the answer."""

import re

import pytest
from playwright.sync_api import expect

from retention.models import Decision, DecisionAction
from retention.services.decisions import decision_action_record
from tests.browser.conftest import WAIT_MS
from tests.browser.pages import (
    LOGIN_WORDS,
    WORDS,
    log_in,
    logged,
    offer_title,
    open_customer,
    other_presentable_offer,
    rank_of,
    search_and_open,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("language", ["nl", "en"])
def test_agent_finds_the_customer_presents_the_advice_and_logs_the_answer(
    open_page, screenshot, agent, customer, catalog, churn_champion, language
):
    agent.agent_profile.language = language
    agent.agent_profile.save()
    words = WORDS[language]
    page = open_page()

    log_in(page, "agent")
    search_and_open(page, "de Vries", "Jan de Vries", words)

    risk = page.get_by_role("region", name=words.risk_heading)
    expect(risk).to_contain_text(re.compile(r"\d+%"))
    expect(risk.get_by_role("listitem")).to_have_count(3)
    decision = Decision.objects.get(customer=customer)
    assert decision.recommended_offer_code, "the customer is risky enough for an offer"
    title = offer_title(decision, decision.recommended_offer_code, language)
    offers = page.get_by_role("region", name=words.offers_heading)
    expect(offers.get_by_role("list").first.get_by_role("listitem")).to_have_count(len(decision.offers))
    screenshot(page, f"panel-380-{language}")

    offers.get_by_role("button", name=f"{words.present}: {title}").click()
    expect(page.get_by_role("status")).to_have_text(words.logged_presented)
    offers.get_by_role("button", name=f"{words.accepted}: {title}").click()
    expect(page.get_by_role("status")).to_have_text(words.logged_accepted)
    expect(offers.get_by_role("button", name=f"{words.accepted}: {title}", exact=True)).to_have_count(0)
    expect(offers.get_by_role("button", name=f"{words.undo_accepted}: {title}", exact=True)).to_have_count(1)
    screenshot(page, f"panel-380-{language}-after-answer")

    code = decision.recommended_offer_code
    assert logged(decision) == [("presented", code, "agent"), ("accepted", code, "agent")]
    accepted = DecisionAction.objects.get(decision=decision, kind="accepted")
    assert accepted.cost_cents == next(o["cost_cents"] for o in decision.offers if o["code"] == code) > 0


def test_logging_swaps_the_offers_in_place_without_reloading_the_page(
    open_page, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    title = offer_title(decision, decision.recommended_offer_code, "nl")
    page.evaluate("window.loadedOnce = true")

    with page.expect_response(lambda response: "/actions/" in response.url) as answer:
        page.get_by_role("button", name=f"{words.present}: {title}").click()

    assert answer.value.request.headers.get("hx-request") == "true"
    assert answer.value.status == 200
    expect(page.get_by_role("status")).to_have_text(words.logged_presented)
    assert page.evaluate("window.loadedOnce === true"), "the same document: only the fragment was swapped"
    assert page.evaluate("document.activeElement.id") == "action-feedback", "focus follows the feedback"
    expect(page.locator("#budget")).to_have_count(1)
    assert logged(decision) == [("presented", decision.recommended_offer_code, "agent")]


def test_without_javascript_the_forms_still_log_and_come_back_to_the_same_advice(
    open_page, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page(javascript=False)
    decision = open_customer(page, "agent")
    title = offer_title(decision, decision.recommended_offer_code, "nl")

    page.get_by_role("button", name=f"{words.present}: {title}").click()

    expect(page.get_by_role("status")).to_contain_text(words.logged_presented)
    assert f"decision={decision.pk}" in page.url
    assert logged(decision) == [("presented", decision.recommended_offer_code, "agent")]


def test_keyboard_shortcuts_present_the_offer_and_log_the_answer_but_not_while_typing(
    open_page, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    recommended = str(rank_of(decision, decision.recommended_offer_code))
    other = rank_of(decision, other_presentable_offer(decision)["code"])
    page.evaluate("window.loadedOnce = true")

    page.get_by_label(words.search_field).press(recommended)
    page.locator("main").focus()
    page.keyboard.press(str(other))
    expect(page.locator(f"#override-{other}")).to_be_focused()
    assert posts == [], "typing in a field, or an offer still missing its override reason, logs nothing"

    page.locator("main").focus()
    page.keyboard.press(recommended)
    expect(page.get_by_role("status")).to_have_text(words.logged_presented)
    page.keyboard.press("a")
    expect(page.get_by_role("status")).to_have_text(words.logged_accepted)
    page.keyboard.press("a")
    page.evaluate("() => new Promise(requestAnimationFrame)")
    assert len(posts) == 2, "a second 'accepted' would count the offer twice against the budget"
    expect(page.locator("#shortcut-hint")).to_have_text("Toets a doet nu niets: niets in het advies wacht erop.")

    assert page.evaluate("window.loadedOnce === true"), "an answer right after a swap still goes through htmx"
    assert page.get_by_label(words.search_field).input_value() == recommended
    code = decision.recommended_offer_code
    assert logged(decision) == [("presented", code, "agent"), ("accepted", code, "agent")]


def test_a_word_typed_outside_a_field_logs_nothing(open_page, agent, customer, catalog, churn_champion):
    page = open_page()
    decision = open_customer(page, "agent")
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    page.locator("main").focus()
    page.keyboard.type("Dennis", delay=60)  # a name meant for the CRM beside the panel: d, e and n are shortcuts
    page.wait_for_timeout(1_000)

    assert posts == []
    assert logged(decision) == []


def test_an_agent_who_turns_shortcuts_off_logs_nothing_by_key(open_page, agent, customer, catalog, churn_champion):
    page = open_page()
    decision = open_customer(page, "agent")
    page.get_by_role("button", name="Sneltoetsen uitzetten").click()
    expect(page.get_by_text("Sneltoetsen staan uit")).to_be_visible()
    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

    page.locator("main").focus()
    page.keyboard.press(str(rank_of(decision, decision.recommended_offer_code)))
    page.wait_for_timeout(1_000)

    assert posts == []
    assert page.locator(".action-form kbd").count() == 0
    assert page.locator("[aria-keyshortcuts]").count() == 0
    page.get_by_role("button", name="Sneltoetsen aanzetten").click()
    expect(page.locator("[aria-keyshortcuts]").first).to_be_attached()


def test_a_team_lead_offer_needs_escalation_first(open_page, agent, lead, customer, catalog, churn_champion):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    title = offer_title(decision, "quarter-off", "nl")
    offer = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=title))

    expect(offer.get_by_role("button", name=f"{words.present}: {title}")).to_have_count(0)
    offer.get_by_role("button", name=f"{words.ask_team_lead}: {title}").click()

    expect(page.get_by_role("status")).to_contain_text("Vastgelegd")
    expect(page.get_by_role("status")).to_contain_text("Je teamleider vindt het onder Doorzettingen")
    assert logged(decision) == [("escalated", "quarter-off", "agent")]


def escalated_to_the_lead(open_page, settings):
    """The agent's panel, looking at the log every second, after asking the team lead about the quarter-off offer;
    with the advice, the offer's title and its list item."""
    settings.PANEL_REFRESH_SECONDS = 1
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    title = offer_title(decision, "quarter-off", "nl")
    offer = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=title))
    offer.get_by_role("button", name=f"{words.ask_team_lead}: {title}").click()
    expect(page.get_by_role("status")).to_contain_text("Je teamleider vindt het onder Doorzettingen")
    return page, decision, title, offer


def test_the_team_leads_offer_reaches_the_agents_panel_without_a_reload(
    open_page, settings, agent, lead, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page, decision, title, offer = escalated_to_the_lead(open_page, settings)
    page.get_by_role("searchbox").focus()

    # The lead makes the offer from the escalations page while the agent keeps the customer on the line.
    decision_action_record(
        decision=decision, agent=lead, kind="presented", offer_code="quarter-off", override_reason="better_fit"
    )

    expect(page.get_by_role("status")).to_contain_text("Vastgelegd door lead: Aanbod gedaan", timeout=WAIT_MS)
    expect(offer).to_contain_text("Gedaan door teamleider")
    expect(offer.get_by_role("button", name=f"{words.accepted}: {title}")).to_be_visible()
    # Focus stayed where the agent had put it, outside the offers; a screen reader hears the news all the same.
    expect(page.get_by_role("searchbox")).to_be_focused()
    expect(page.locator("#announcer")).to_contain_text("Vastgelegd door lead: Aanbod gedaan")
    offer.get_by_role("button", name=f"{words.accepted}: {title}").click()
    expect(page.get_by_role("status")).to_have_text(words.logged_accepted)
    assert logged(decision) == [
        ("escalated", "quarter-off", "agent"),
        ("presented", "quarter-off", "lead"),
        ("accepted", "quarter-off", "agent"),
    ]


def test_the_leads_decision_waits_while_the_agent_is_choosing_in_the_offers(
    open_page, settings, agent, lead, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page, decision, _, _ = escalated_to_the_lead(open_page, settings)
    reason = page.get_by_label(words.override_reason)
    reason.select_option(index=1)
    reason.focus()  # where a choice made by mouse or keys leaves it
    chosen = reason.input_value()

    decision_action_record(
        decision=decision, agent=lead, kind="presented", offer_code="quarter-off", override_reason="better_fit"
    )
    page.wait_for_timeout(3_000)  # three looks at the log, each finding the lead's offer

    expect(reason).to_be_focused()
    expect(reason).to_have_value(chosen)
    expect(page.get_by_role("status")).not_to_contain_text("Vastgelegd door lead")
    page.keyboard.press("Tab")  # on to the button that sends the choice
    page.wait_for_timeout(1_500)
    expect(reason).to_have_value(chosen)
    expect(page.get_by_role("status")).not_to_contain_text("Vastgelegd door lead")
    page.get_by_role("searchbox").focus()
    expect(page.get_by_role("status")).to_contain_text("Vastgelegd door lead: Aanbod gedaan", timeout=WAIT_MS)


def test_a_click_after_the_session_ended_logs_nothing_and_comes_back_to_the_same_advice_after_logging_in(
    open_page, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    title = offer_title(decision, decision.recommended_offer_code, "nl")
    page.context.clear_cookies(name="sessionid")

    page.get_by_role("button", name=f"{words.present}: {title}").click()

    page.wait_for_url(re.compile(r"/login/\?next="))
    expect(page.get_by_role("status")).to_contain_text("Je sessie was verlopen, dus dat is niet vastgelegd.")
    assert logged(decision) == []
    page.get_by_label(LOGIN_WORDS.username).fill("agent")
    page.get_by_label(LOGIN_WORDS.password).fill(PASSWORD)
    page.get_by_role("button", name=LOGIN_WORDS.log_in).click()
    page.wait_for_url(re.compile(rf"/panel/\?customer=C-1001&decision={decision.pk}$"))
    page.get_by_role("button", name=f"{words.present}: {title}").click()
    expect(page.get_by_role("status")).to_have_text(words.logged_presented)
    assert Decision.objects.count() == 1
    assert logged(decision) == [("presented", decision.recommended_offer_code, "agent")]


def test_a_server_error_says_the_click_may_have_been_saved_a_refusal_that_it_was_not(
    open_page, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    title = offer_title(decision, decision.recommended_offer_code, "nl")
    answers = iter([502, 403])
    page.route("**/actions/", lambda route: route.fulfill(status=next(answers), body="", content_type="text/plain"))
    present = page.get_by_role("button", name=f"{words.present}: {title}")

    present.click()
    expect(page.locator(".request-failed")).to_contain_text("Misschien niet vastgelegd")
    present.click()
    expect(page.locator(".request-failed")).to_contain_text("Niet vastgelegd: de server weigerde het.")


def test_while_an_action_is_on_its_way_its_button_is_disabled_and_the_advice_busy(
    open_page, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    title = offer_title(decision, decision.recommended_offer_code, "nl")
    waiting = []
    page.route("**/actions/", lambda route: waiting.append(route))  # held until the test lets it through
    present = page.get_by_role("button", name=f"{words.present}: {title}")

    present.click()
    expect(present).to_be_disabled()
    expect(page.locator("#decision")).to_have_attribute("aria-busy", "true")
    waiting[0].continue_()

    expect(page.get_by_role("status")).to_have_text(words.logged_presented)
    expect(page.locator("#decision")).not_to_have_attribute("aria-busy", "true")
    assert logged(decision) == [("presented", decision.recommended_offer_code, "agent")]


def test_an_objection_recorded_mid_call_takes_the_panel_to_the_customer_as_they_now_are(
    open_page, settings, agent, lead, customer, catalog, churn_champion
):
    page, decision, _, _ = escalated_to_the_lead(open_page, settings)

    customer.objects_to_profiling = True  # the CRM records the customer's objection while the agent waits
    customer.save()

    expect(page.get_by_role("heading", name="Geen advies: bezwaar tegen profilering")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Tariefadvies")).to_be_visible()
    expect(page.get_by_text("Kans dat de klant vertrekt")).to_have_count(0)
    assert page.url.endswith(f"/panel/?customer={customer.external_id}")
    assert logged(decision) == [("escalated", "quarter-off", "agent")]
