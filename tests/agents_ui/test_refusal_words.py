"""Every refusal of an action reaches the agent in their own language, naming the offer by its title."""

import html
import logging
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation

from agents_ui import views
from retention.models import AgentProfile, DecisionAction
from tests.agents_ui.decisions import stored_decision
from tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
DECISIONS_SERVICE = Path(__file__).resolve().parents[2] / "retention" / "services" / "decisions.py"


@pytest.fixture
def decision(agent, customer):
    return stored_decision(customer=customer, agent=agent)


def speaking(user, language: str):
    AgentProfile.objects.filter(user=user).update(language=language)
    return user


def refusal(client, decision, fields: dict) -> str:
    response = client.post(reverse("decision_action", args=[decision.pk]), fields, **HTMX)
    assert response.status_code == 422
    return html.unescape(response.text)


def accepted_speed_up(client, decision) -> None:
    url = reverse("decision_action", args=[decision.pk])
    accepted = client.post(url, {"kind": "accepted", "offer_code": "speed-up", "override_reason": "better_fit"}, **HTMX)
    assert accepted.status_code == 200


def codes_the_service_raises() -> set[str]:
    source = DECISIONS_SERVICE.read_text()
    codes = set(re.findall(r'code="(\w+)"', source))
    codes |= set(re.findall(r'_coded_refusal\(\s*[^,]+,\s*"(\w+)"', source))
    return codes


def test_every_code_the_decision_service_refuses_with_has_words_in_dutch_and_english():
    codes = codes_the_service_raises()

    assert {"nothing_to_undo", "unknown_offer", "offer_needed", "offer_not_expected", "hold_ended"} <= codes
    assert codes - set(views.REFUSALS_IN_AGENT_LANGUAGE) == set()
    for code, words in views.REFUSALS_IN_AGENT_LANGUAGE.items():
        with translation.override("nl"):
            dutch = str(words)
        with translation.override("en"):
            english = str(words)
        assert dutch != english, code


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("nl", "Niet vastgelegd: „Gratis snelheid omhoog” staat niet als geaccepteerd op dit advies: er is geen "
               "acceptatie om terug te draaien."),
        ("en", "Not logged: “Free speed upgrade” does not stand accepted on this advice: there is no acceptance to "
               "undo."),
    ],
)  # fmt: skip
def test_undoing_an_acceptance_twice_is_refused_in_the_agents_language_naming_the_offer(
    logged_in, agent, decision, language, words
):
    client = logged_in(speaking(agent, language))
    accepted_speed_up(client, decision)
    client.post(reverse("decision_action", args=[decision.pk]), {"kind": "undone", "offer_code": "speed-up"}, **HTMX)

    text = refusal(client, decision, {"kind": "undone", "offer_code": "speed-up"})

    assert words in text
    assert "speed-up" not in text.split("Not logged:" if language == "en" else "Niet vastgelegd:")[1][:200]


@pytest.mark.parametrize(
    ("language", "words", "wrong"),
    [
        ("nl", "hier hoort geen reden bij: een reden is alleen voor een ander aanbod dan het aanbevolen aanbod.",
         "kies waarom je iets anders aanbiedt"),
        ("en", "this needs no reason: a reason is only for offering something other than the recommended offer.",
         "choose why you offer something other"),
    ],
)  # fmt: skip
def test_an_undo_sent_with_a_reason_says_to_send_none_instead_of_asking_for_one(
    logged_in, agent, decision, language, words, wrong
):
    client = logged_in(speaking(agent, language))
    accepted_speed_up(client, decision)

    text = refusal(client, decision, {"kind": "undone", "offer_code": "speed-up", "override_reason": "better_fit"})

    assert words in text
    assert wrong not in text
    assert decision.actions.filter(kind=DecisionAction.Kind.UNDONE).count() == 0


def test_the_recommended_offer_sent_with_a_reason_says_to_send_none(logged_in, agent, decision):
    fields = {"kind": "presented", "offer_code": "loyal-10", "override_reason": "better_fit"}

    text = refusal(logged_in(agent), decision, fields)

    assert "hier hoort geen reden bij" in text
    assert "kies waarom" not in text


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("nl", "„Extra databundel” hoort niet bij de aanbiedingen van dit advies: laad het paneel opnieuw of vraag "
               "nieuw advies."),
        ("en", "“Extra data bundle” is not among the offers of this advice: reload the panel, or ask for new advice."),
    ],
)  # fmt: skip
def test_an_offer_of_the_catalog_not_on_this_advice_is_refused_by_its_title(
    logged_in, agent, decision, language, words
):
    OfferFactory(code="extra-data", title_nl="Extra databundel", title_en="Extra data bundle")

    text = refusal(logged_in(speaking(agent, language)), decision, {"kind": "accepted", "offer_code": "extra-data"})

    assert words in text


def test_a_code_nobody_knows_is_named_as_sent_in_dutch_words(logged_in, agent, decision):
    text = refusal(logged_in(agent), decision, {"kind": "accepted", "offer_code": "made-up"})

    assert "„made-up” hoort niet bij de aanbiedingen van dit advies" in text
    assert "was not among" not in text


@pytest.mark.parametrize(
    ("language", "fields", "words"),
    [
        ("nl", {"kind": "accepted"}, "dit gaat over een aanbod: leg het vast met de knoppen van het aanbod"),
        ("en", {"kind": "accepted"}, "this is about an offer: log it with the buttons of the offer it is about."),
        ("nl", {"kind": "undone"}, "dit gaat over een aanbod"),
        ("nl", {"kind": "no_action", "offer_code": "loyal-10"}, "„Geen actie” gaat niet over een aanbod"),
        ("en", {"kind": "no_action", "offer_code": "loyal-10"}, "“No action” is about no offer: log it without one."),
    ],
)
def test_an_action_with_an_offer_missing_or_one_too_many_is_refused_in_the_agents_language(
    logged_in, agent, decision, language, fields, words
):
    text = refusal(logged_in(speaking(agent, language)), decision, fields)

    assert words in text
    assert not decision.actions.exists()


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("nl", "Niet vastgelegd: dit formulier is al gebruikt voor een andere actie: laad het paneel opnieuw."),
        ("en", "Not logged: this form was already used for another action: reload the panel."),
    ],
)
def test_a_form_sent_again_for_another_action_is_refused_in_the_agents_language(
    logged_in, agent, decision, language, words
):
    client = logged_in(speaking(agent, language))
    client.post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action", "idempotency_key": "k-1"}, **HTMX)

    text = refusal(client, decision, {"kind": "escalated", "idempotency_key": "k-1"})

    assert words in text
    assert decision.actions.count() == 1


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("nl", "de gegevens van deze klant zijn op hun verzoek gewist: op hun advies wordt niets meer vastgelegd."),
        ("en", "this customer's data was erased at their request: nothing more is logged on their advice."),
    ],
)
def test_logging_on_an_erased_customers_advice_is_refused_in_the_agents_language(
    logged_in, agent, customer, decision, language, words
):
    customer.erased_at = timezone.now()
    customer.save(update_fields=["erased_at"])

    text = refusal(logged_in(speaking(agent, language)), decision, {"kind": "no_action"})

    assert words in text


@pytest.mark.parametrize(
    ("language", "fields", "words"),
    [
        ("nl", {"kind": "shout"}, "Wat er gebeurde: Selecteer een geldige keuze."),
        ("en", {"kind": "shout"}, "What happened: Select a valid choice."),
        ("nl", {"kind": "accepted", "offer_code": "x" * 51}, "Aanbod: "),
        ("nl", {"kind": "presented", "offer_code": "speed-up", "override_reason": "whim"}, "Reden voor een ander "
                                                                                          "aanbod: Selecteer"),
        ("nl", {"kind": "no_action", "idempotency_key": "k" * 81}, "dit formulier kon niet worden gelezen"),
    ],
)  # fmt: skip
def test_a_form_the_panel_cannot_read_names_its_fields_as_the_agent_knows_them(
    logged_in, agent, decision, language, fields, words
):
    text = refusal(logged_in(speaking(agent, language)), decision, fields)

    assert words in text
    assert not re.search(r"\b(kind|offer_code|override_reason|idempotency_key): ", text)


def test_a_refusal_the_panel_has_no_words_for_is_shown_as_the_service_says_it_and_logged_as_an_error(
    logged_in, agent, decision, monkeypatch, caplog
):
    def refuses_anew(**values):
        raise ValidationError({"kind": ValidationError("a rule added later", code="a_rule_added_later")})

    monkeypatch.setattr(views, "decision_action_record", refuses_anew)

    with caplog.at_level(logging.ERROR, logger="agents_ui.views"):
        text = refusal(logged_in(agent), decision, {"kind": "no_action"})

    assert "Niet vastgelegd: a rule added later" in text
    [record] = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "a_rule_added_later" in record.getMessage()


def test_a_known_refusal_is_not_logged_as_an_error(logged_in, agent, decision, caplog):
    with caplog.at_level(logging.ERROR, logger="agents_ui.views"):
        refusal(logged_in(agent), decision, {"kind": "accepted", "offer_code": "made-up"})

    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
