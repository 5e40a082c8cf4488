"""Accessibility basics, measured in the browser: names for every control, tab order, contrast, 200% zoom."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.pages import WORDS, offer_title, open_customer, other_presentable_offer

pytestmark = pytest.mark.browser

CONTROLS = "input:not([type=hidden]), select, textarea, button"
MIN_CONTRAST = 4.5
# Every element that holds visible text itself, with its colour and the colour it is painted on
# (semi-transparent backgrounds blended down to the first opaque one, white at the bottom).
TEXT_CONTRASTS = """() => {
  const parse = (colour) => {
    const [r, g, b, a = 1] = colour.match(/[\\d.]+/g).map(Number);
    return { r, g, b, a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const backdrop = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const colour = parse(getComputedStyle(node).backgroundColor);
      if (colour.a > 0) layers.push(colour);
      if (colour.a >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), { r: 255, g: 255, b: 255, a: 1 });
  };
  const luminance = ({ r, g, b }) => {
    const linear = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const ownText = (element) =>
    [...element.childNodes].some((node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
  return [...document.body.querySelectorAll("*")]
    .filter((element) => ownText(element) && element.checkVisibility({ visibilityProperty: true }))
    .filter((element) => element.getBoundingClientRect().width > 1)
    .map((element) => {
      const background = backdrop(element);
      const text = over(parse(getComputedStyle(element).color), background);
      const [light, dark] = [luminance(text), luminance(background)].sort((x, y) => y - x);
      return { text: element.textContent.trim().slice(0, 50), ratio: (light + 0.05) / (dark + 0.05) };
    });
}"""
# What a keyboard user reaches with Tab: the field's label, or a button's or link's name (shortcut keys left out).
FOCUSED = """() => {
  const element = document.activeElement;
  if (element.labels && element.labels.length) return element.labels[0].textContent.trim();
  if (element.hasAttribute("aria-label")) return element.getAttribute("aria-label");
  const shown = element.cloneNode(true);
  shown.querySelectorAll("[aria-hidden=true]").forEach((hidden) => hidden.remove());
  return shown.textContent.replace(/\\s+/g, " ").trim();
}"""
MAX_TABS = 40


def present_recommended(page, decision, words) -> None:
    title = offer_title(decision, decision.recommended_offer_code, "nl")
    page.get_by_role("button", name=f"{words.present}: {title}").click()
    expect(page.get_by_role("status")).to_have_text(words.logged_presented)


def test_every_form_control_has_an_accessible_name_and_a_label(open_page, agent, customer, catalog, churn_champion):
    words = WORDS["nl"]
    page = open_page()
    page.goto("/panel/")
    login_controls = page.locator(CONTROLS)
    for index in range(login_controls.count()):
        expect(login_controls.nth(index)).to_have_accessible_name(re.compile(r"\w"))
    decision = open_customer(page, "agent")
    present_recommended(page, decision, words)

    controls = page.locator(CONTROLS)
    assert controls.count() >= 10, "search, channel, override reason and the offer and answer buttons"
    for index in range(controls.count()):
        expect(controls.nth(index)).to_have_accessible_name(re.compile(r"\w"))
    unlabelled = page.locator("input:not([type=hidden]), select, textarea").evaluate_all(
        "fields => fields.filter(field => !field.labels.length).map(field => field.outerHTML)"
    )
    assert unlabelled == [], "every field has a visible <label>"
    expect(page.get_by_label(words.search_field)).to_be_visible()
    expect(page.get_by_label(words.channel)).to_be_visible()
    expect(page.get_by_label(words.override_reason)).to_be_visible()


def test_tab_goes_from_the_search_through_each_offer_in_order_to_the_last_action(
    open_page, agent, lead, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    # The language switch names the other language in that language.
    expected = [words.skip_link, "English", words.log_out, words.search_field, words.channel, words.search]
    for offer in decision.offers:
        title = offer["title"]["nl"]
        if not offer["within_authority"]:
            expected.append(f"{words.ask_team_lead}: {title}")
            continue
        if offer["code"] != decision.recommended_offer_code:
            expected.append(words.override_reason)
        expected.append(f"{words.present}: {title}")
    expected += [words.escalate, words.no_action]

    reached = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(FOCUSED))
        if reached[-1] == words.no_action:
            break

    assert reached == expected
    assert page.locator("[tabindex]:not([tabindex='-1']):not([tabindex='0'])").count() == 0


def test_text_contrast_is_at_least_4_5_to_1(open_page, agent, customer, catalog, churn_champion):
    words = WORDS["nl"]
    page = open_page()
    decision = open_customer(page, "agent")
    present_recommended(page, decision, words)

    contrasts = page.evaluate(TEXT_CONTRASTS)

    assert len(contrasts) > 40, "headings, facts, reasons, offers, buttons, badges and the log were measured"
    too_faint = [(item["text"], round(item["ratio"], 2)) for item in contrasts if item["ratio"] < MIN_CONTRAST]
    assert too_faint == []


def test_at_200_percent_zoom_nothing_scrolls_sideways_and_the_offers_stay_usable(
    open_page, screenshot, agent, customer, catalog, churn_champion
):
    words = WORDS["nl"]
    page = open_page(zoom=2)
    decision = open_customer(page, "agent")
    screenshot(page, "panel-380-zoom-200-nl")

    width = page.evaluate("document.documentElement.clientWidth")
    assert width == 190, "a 380-pixel frame at 200% zoom"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    buttons = page.locator("#decision button")
    for index in range(buttons.count()):
        box = buttons.nth(index).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    other = other_presentable_offer(decision)
    page.get_by_label(words.override_reason).select_option(index=1)
    page.get_by_role("button", name=f"{words.present}: {other['title']['nl']}").click()
    expect(page.get_by_role("status")).to_have_text(words.logged_presented)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
