"""What an agent does in the browser, in steps and words the browser tests share."""

from __future__ import annotations

from dataclasses import dataclass

from retention.models import Decision, DecisionAction
from tests.conftest import PASSWORD


@dataclass(frozen=True)
class Words:
    """The panel's words in one language, as an agent reads them."""

    username: str
    password: str
    log_in: str
    search_field: str
    channel: str
    search: str
    risk_heading: str
    reasons_heading: str
    offers_heading: str
    present: str
    ask_team_lead: str
    accepted: str
    escalate: str
    no_action: str
    undo_accepted: str
    override_reason: str
    logged_presented: str
    logged_accepted: str
    skip_link: str
    log_out: str


WORDS = {
    "nl": Words(
        username="Gebruikersnaam",
        password="Wachtwoord",
        log_in="Inloggen",
        search_field="Klantnummer, naam of telefoon",
        channel="Kanaal",
        search="Zoeken",
        risk_heading="Kans dat de klant vertrekt",
        reasons_heading="Belangrijkste redenen",
        offers_heading="Aanbiedingen",
        present="Aanbieden",
        ask_team_lead="Teamleider vragen",
        accepted="Geaccepteerd",
        escalate="Doorzetten naar teamleider",
        no_action="Geen actie",
        undo_accepted="Terugdraaien: per vergissing vastgelegd",
        override_reason="Waarom een ander aanbod dan het aanbevolen aanbod?",
        logged_presented="Vastgelegd: Aanbod gedaan.",
        logged_accepted="Vastgelegd: Geaccepteerd.",
        skip_link="Naar de inhoud",
        log_out="Uitloggen",
    ),
    "en": Words(
        username="Username",
        password="Password",
        log_in="Log in",
        search_field="Customer number, name or phone",
        channel="Channel",
        search="Search",
        risk_heading="Chance the customer leaves",
        reasons_heading="Main reasons",
        offers_heading="Offers",
        present="Present",
        ask_team_lead="Ask team lead",
        accepted="Accepted",
        escalate="Escalate to team lead",
        no_action="No action",
        undo_accepted="Undo: logged by mistake",
        override_reason="Why another offer than the recommended one?",
        logged_presented="Logged: Offer presented.",
        logged_accepted="Logged: Accepted.",
        skip_link="Skip to content",
        log_out="Log out",
    ),
}
# The browser speaks Dutch, so the login page is Dutch whatever the agent's own language.
LOGIN_WORDS = WORDS["nl"]


def log_in(page, username: str, *, path: str = "/panel/") -> None:
    """Open `path`, get sent to the login page, log in and land back on `path`."""
    page.goto(path)
    page.get_by_label(LOGIN_WORDS.username).fill(username)
    page.get_by_label(LOGIN_WORDS.password).fill(PASSWORD)
    page.get_by_role("button", name=LOGIN_WORDS.log_in).click()
    page.wait_for_url(f"**{path}*")


def search_and_open(page, query: str, result: str, words: Words) -> None:
    """Search the way an agent does and open the customer from the results."""
    page.get_by_label(words.search_field).fill(query)
    page.get_by_role("button", name=words.search).click()
    page.get_by_role("link", name=result).click()
    page.wait_for_url("**/panel/?customer=*")


def open_customer(page, username: str, external_id: str = "C-1001") -> Decision:
    """Log in straight onto a customer's panel; the advice the panel made for them."""
    log_in(page, username, path=f"/panel/?customer={external_id}")
    return Decision.objects.get(customer__external_id=external_id)


def offer_title(decision: Decision, code: str, language: str) -> str:
    offer = next(offer for offer in decision.offers if offer["code"] == code)
    return offer["title"][language]


def other_presentable_offer(decision: Decision) -> dict:
    """An offer within the agent's authority that is not the recommended one (it needs an override reason)."""
    return next(
        offer
        for offer in decision.offers
        if offer["within_authority"] and offer["code"] != decision.recommended_offer_code
    )


def rank_of(decision: Decision, code: str) -> int:
    return next(rank for rank, offer in enumerate(decision.offers, 1) if offer["code"] == code)


def logged(decision: Decision) -> list[tuple[str, str, str]]:
    """The decision's log as (kind, offer, agent's user name), oldest first."""
    actions = DecisionAction.objects.filter(decision=decision).select_related("agent").order_by("created_at", "id")
    return [(action.kind, action.offer_code, action.agent.username) for action in actions]
