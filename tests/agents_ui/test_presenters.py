"""The panel's view of a decision, built without the database: unsaved rows are enough."""

import datetime as dt

from django.utils import timezone, translation

from agents_ui.presenters import Viewer, decision_panel
from retention.models import Decision, DecisionAction
from tests.agents_ui.decisions import OFFERS


def unsaved_decision(**fields) -> Decision:
    values = {"churn_probability": 0.236, "risk_band": "low", "reasons": [], "offers": OFFERS,
              "recommended_offer_code": "loyal-10", "best_tariff": None, **fields}  # fmt: skip
    return Decision(**values)


def action(kind: str, offer_code: str = "", **fields) -> DecisionAction:
    # Stored actions carry the moment they were logged; the panel reads it (an old escalation no longer waits).
    return DecisionAction(kind=kind, offer_code=offer_code, created_at=timezone.now(), **fields)


def made_and_held(offer_code: str, *, days_left: float, cost_cents: int = 6_600) -> DecisionAction:
    held_until = timezone.now() + dt.timedelta(days=days_left)
    return action("presented", offer_code, held_cents=cost_cents, held_until=held_until)


def offers_by_code(panel):
    return {offer.code: offer for offer in panel.offers}


def test_risk_is_a_whole_percentage_with_its_band_in_words():
    with translation.override("en"):
        panel = decision_panel(decision=unsaved_decision(), actions=[])

    assert (panel.risk_percent, panel.risk_band_label) == (24, "Low risk")


def test_only_the_offer_presented_last_gets_the_answer_shortcuts():
    actions = [action("presented", "loyal-10"), action("presented", "speed-up")]

    offers = offers_by_code(decision_panel(decision=unsaved_decision(), actions=actions))

    assert [button.shortcut for button in offers["speed-up"].answer_buttons] == ["a", "d", "t"]
    assert [button.shortcut for button in offers["loyal-10"].answer_buttons] == ["", "", ""]
    assert offers["half-price"].answer_buttons == []


def test_the_latest_answer_is_the_offers_state():
    actions = [action("presented", "loyal-10"), action("thinking", "loyal-10"), action("accepted", "loyal-10")]

    offers = offers_by_code(decision_panel(decision=unsaved_decision(), actions=actions))

    assert offers["loyal-10"].answer == "accepted"
    assert not offers["loyal-10"].shows_present_button


def test_accepted_or_declined_ends_the_answers_leaving_its_corrections_but_thinking_it_over_does_not():
    def buttons_after(*answers: str) -> list[tuple[str, str]]:
        actions = [action("presented", "loyal-10"), *(action(answer, "loyal-10") for answer in answers)]
        offer = offers_by_code(decision_panel(decision=unsaved_decision(), actions=actions))["loyal-10"]
        return [(button.kind, button.shortcut) for button in offer.answer_buttons]

    assert buttons_after("accepted") == [("declined", ""), ("undone", "")]
    assert buttons_after("declined") == buttons_after("accepted", "declined") == [("accepted", "")]
    answers = [("accepted", "a"), ("declined", "d"), ("thinking", "t")]
    assert buttons_after("thinking") == buttons_after("accepted", "undone") == answers  # an undo leaves no answer


def test_once_another_offer_stands_accepted_an_earlier_offer_may_only_be_declined_and_none_is_asked_about():
    made_first = [action("presented", "speed-up"), action("presented", "loyal-10"), action("accepted", "loyal-10")]

    offers = offers_by_code(decision_panel(decision=unsaved_decision(), actions=made_first))
    declined = offers_by_code(
        decision_panel(decision=unsaved_decision(), actions=[*made_first, action("declined", "speed-up")])
    )

    assert [(button.kind, button.shortcut) for button in offers["speed-up"].answer_buttons] == [("declined", "")]
    assert declined["speed-up"].answer_buttons == []  # "accepted after all" would make a second acceptance
    assert offers["half-price"].waits_for_team_lead and not offers["half-price"].shows_escalate_button
    assert offers_by_code(decision_panel(decision=unsaved_decision(), actions=[]))["half-price"].shows_escalate_button


def test_an_offer_above_authority_cannot_be_presented_by_the_agent_even_after_escalation():
    actions = [action("escalated", "half-price")]

    half_price = offers_by_code(decision_panel(decision=unsaved_decision(), actions=actions))["half-price"]

    assert half_price.needs_team_lead and half_price.escalated
    assert not half_price.shows_present_button
    assert half_price.present_shortcut == ""


def test_someone_with_more_authority_can_present_it():
    panel = decision_panel(
        decision=unsaved_decision(), actions=[], viewer=Viewer(authority_level=2, answers_for_team=True)
    )

    assert offers_by_code(panel)["half-price"].present_shortcut == "3"


def test_an_offer_the_team_has_no_budget_left_for_now_waits_for_a_team_lead_unless_it_was_already_made():
    viewer = Viewer(team_budget_left_cents=5_000)  # loyal-10 costs 6,600, speed-up 2,000

    now = offers_by_code(decision_panel(decision=unsaved_decision(), actions=[], viewer=viewer))
    made = offers_by_code(
        decision_panel(decision=unsaved_decision(), actions=[made_and_held("loyal-10", days_left=3)], viewer=viewer)
    )
    hold_ended = offers_by_code(
        decision_panel(decision=unsaved_decision(), actions=[made_and_held("loyal-10", days_left=-1)], viewer=viewer)
    )
    as_lead = offers_by_code(
        decision_panel(
            decision=unsaved_decision(),
            actions=[],
            viewer=Viewer(team_budget_left_cents=5_000, decides_over_budget=True),
        )
    )

    assert now["loyal-10"].waits_for_team_lead and not now["loyal-10"].shows_present_button
    assert not now["speed-up"].needs_team_lead and now["speed-up"].shows_present_button
    assert not made["loyal-10"].needs_team_lead
    assert [button.kind for button in made["loyal-10"].answer_buttons] == ["accepted", "declined", "thinking"]
    assert hold_ended["loyal-10"].needs_team_lead  # the yes is checked against the budget again
    assert as_lead["loyal-10"].shows_present_button


def test_every_offer_but_the_recommended_one_asks_for_an_override_reason():
    offers = offers_by_code(decision_panel(decision=unsaved_decision(), actions=[]))

    assert {code for code, offer in offers.items() if offer.needs_override_reason} == {"speed-up", "half-price"}


def test_with_nothing_recommended_every_offer_is_an_override_and_no_offer_is_needed():
    panel = decision_panel(decision=unsaved_decision(recommended_offer_code=""), actions=[])

    assert panel.no_offer_needed
    assert all(offer.needs_override_reason and not offer.recommended for offer in panel.offers)


def test_the_log_names_the_offer_in_the_agents_language_and_the_override_reason():
    logged = DecisionAction(kind="presented", offer_code="speed-up", override_reason="better_fit")

    with translation.override("nl"):
        [entry] = decision_panel(decision=unsaved_decision(), actions=[logged]).actions

    assert (entry.kind_label, entry.offer_title) == ("Aanbod gedaan", "Gratis snelheid omhoog")
    assert entry.override_label == "Een ander aanbod past beter bij de klant"


def test_an_offer_above_the_team_leads_authority_reads_as_needing_an_administrator_whoever_looks():
    level_3 = [*OFFERS[:2], {**OFFERS[2], "authority_level": 3, "required_authority_level": 3}]
    for viewer in (Viewer(team_lead_level=2), Viewer(authority_level=3, answers_for_team=True, team_lead_level=2)):
        offers = offers_by_code(decision_panel(decision=unsaved_decision(offers=level_3), actions=[], viewer=viewer))
        assert offers["half-price"].beyond_team_lead
    within = offers_by_code(decision_panel(decision=unsaved_decision(), actions=[], viewer=Viewer(team_lead_level=2)))
    assert within["half-price"].needs_team_lead and not within["half-price"].beyond_team_lead
