import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents_ui.views import SAME_CALL, SAVED_SEARCHES, SAVED_SEARCHES_KEPT, SEARCHES_PER_MINUTE
from ml.registry import ChampionUnavailable, NoChampion, champions
from retention.models import CustomerAccess, Decision, DecisionAction
from retention.selectors.panel import SEARCH_LIMIT
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import OFFERS, UNPROFITABLE_OFFERS, days_ago, stored_decision
from tests.factories import AgentProfileFactory, CustomerFactory, RenewalResultFactory, ServiceEventFactory, UserFactory

pytestmark = pytest.mark.django_db


def open_panel(client, external_id="C-1001", **parameters):
    query = "&".join(f"{name}={value}" for name, value in {"customer": external_id, **parameters}.items())
    return client.get(f"/panel/?{query}")


def section(html: str, element_id: str) -> str:
    """The HTML of the element with this id, up to the end of its section."""
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</section>", start)]


# --- opening the panel --------------------------------------------------------------------------


def test_agent_sees_the_panel_in_dutch_by_default(logged_in, agent, customer, catalog, churn_model):
    response = open_panel(logged_in(agent))

    assert response.status_code == 200
    assert '<html lang="nl">' in response.text
    assert "Kans dat de klant vertrekt" in response.text
    assert "Hoog risico" in response.text


def test_agent_with_english_profile_sees_the_panel_in_english(logged_in, agent, customer, catalog, churn_model):
    agent.agent_profile.language = "en"
    agent.agent_profile.save()

    response = open_panel(logged_in(agent))

    assert '<html lang="en">' in response.text
    assert "Chance the customer leaves" in response.text
    assert "High risk" in response.text


def test_opening_a_customer_asks_the_decision_service_for_advice(logged_in, agent, customer, catalog, churn_model):
    open_panel(logged_in(agent), channel="chat")

    decision = Decision.objects.get()
    assert (decision.customer, decision.agent, decision.channel) == (customer, agent, "chat")


@pytest.mark.parametrize("administrator", ["admin role", "superuser"])
def test_an_administrator_takes_no_calls_so_no_advice_is_made_in_their_name(
    logged_in, customer, catalog, churn_model, administrator
):
    user = UserFactory(username="beheer", is_superuser=administrator == "superuser")
    AgentProfileFactory(user=user, team=None, role="admin" if administrator == "admin role" else "agent")

    response = open_panel(logged_in(user))

    assert response.status_code == 403
    assert "Beheerders voeren geen gesprekken, dus er wordt geen advies op jouw naam gemaakt." in response.text
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("destination", "site", "click", "crm_origins", "made"),
    [
        ("document", "none", False, [], True),  # typed into the address bar, or a bookmark
        ("document", "cross-site", True, [], True),  # the agent clicking a link in the CRM
        ("iframe", "cross-site", False, ["https://crm.example"], True),  # the panel embedded in the CRM
        ("empty", "same-origin", False, [], True),  # htmx in the panel itself
        ("document", "cross-site", False, [], False),  # another site's script sending the browser here unseen
        ("document", "same-site", False, [], False),
        ("iframe", "cross-site", False, [], False),  # a hidden frame, where no CRM embeds the panel
        ("image", "cross-site", False, [], False),  # <img src> on another site
        ("script", "same-site", False, [], False),
        ("empty", "cross-site", False, [], False),  # another site's fetch with the agent's cookies
        ("image", "same-origin", False, [], False),
    ],
)
def test_only_the_agent_opening_the_panel_makes_advice_not_another_site_loading_it(
    logged_in, settings, agent, customer, catalog, churn_model, destination, site, click, crm_origins, made
):
    settings.CRM_ORIGINS = crm_origins
    headers = {"HTTP_SEC_FETCH_DEST": destination, "HTTP_SEC_FETCH_SITE": site}
    if click:
        headers["HTTP_SEC_FETCH_USER"] = "?1"

    response = logged_in(agent).get("/panel/?customer=C-1001&new=1", **headers)

    assert Decision.objects.exists() is made
    assert CustomerAccess.objects.exists() is made
    if not made and site != "same-origin":
        # The agent is asked to open the customer themselves, by a link of this site.
        assert response.status_code == 200
        assert 'href="/panel/?customer=C-1001&amp;new=1"' in response.text and "Open klant C-1001" in response.text
    elif not made:
        assert response.status_code == 403


def test_a_search_sent_by_another_site_is_not_run_until_the_agent_clicks(logged_in, agent, customer):
    response = logged_in(agent).get(
        "/panel/?q=C-1001", HTTP_SEC_FETCH_DEST="document", HTTP_SEC_FETCH_SITE="cross-site"
    )

    assert 'href="/panel/?q=C-1001"' in response.text and ">Zoeken</a>" in response.text
    assert "customers" not in response.context
    assert not CustomerAccess.objects.exists()


def test_the_phone_is_the_default_channel(logged_in, agent, customer, catalog, churn_model):
    open_panel(logged_in(agent))

    assert Decision.objects.get().channel == "phone"


def test_the_page_points_at_the_advice_shown_so_a_reload_does_not_ask_again(
    logged_in, agent, customer, catalog, churn_model
):
    response = open_panel(logged_in(agent))

    decision = Decision.objects.get()
    assert f'data-decision-url="/panel/?customer=C-1001&amp;decision={decision.pk}"' in response.text


def test_opening_the_customer_again_on_the_same_call_shows_the_advice_of_that_call(
    logged_in, agent, customer, catalog, churn_model
):
    client = logged_in(agent)
    open_panel(client)

    again = open_panel(client)

    decision = Decision.objects.get()
    assert f'data-decision-url="/panel/?customer=C-1001&amp;decision={decision.pk}"' in again.text
    reopened = section(again.text, "reopened")
    assert "Advies van dit gesprek (" in reopened
    assert 'href="/panel/?customer=C-1001&amp;channel=phone&amp;new=1"' in reopened


def test_reloading_ones_own_advice_of_this_call_keeps_the_way_to_new_advice(
    logged_in, agent, customer, catalog, churn_model
):
    colleague = AgentProfileFactory(user=UserFactory(username="colleague"), team=agent.agent_profile.team).user
    client = logged_in(agent)
    open_panel(client)
    decision = Decision.objects.get()

    reloaded = client.get(f"/panel/?customer=C-1001&decision={decision.pk}").text
    by_colleague = logged_in(colleague).get(f"/panel/?customer=C-1001&decision={decision.pk}").text

    assert 'href="/panel/?customer=C-1001&amp;channel=phone&amp;new=1"' in section(reloaded, "new-advice")
    assert 'id="new-advice"' not in by_colleague  # not their advice: they ask for their own by opening the customer


def test_asking_for_new_advice_makes_it_even_on_the_same_call(logged_in, agent, customer, catalog, churn_model):
    client = logged_in(agent)
    open_panel(client)

    response = open_panel(client, channel="phone", new=1)

    assert Decision.objects.count() == 2
    assert 'id="reopened"' not in response.text


def test_switching_language_after_asking_for_new_advice_shows_that_advice_and_asks_no_more(
    logged_in, agent, customer, catalog, churn_model
):
    client = logged_in(agent)
    page = open_panel(client, channel="phone", new=1)
    decision = Decision.objects.get()
    back = re.search(r'name="next" value="([^"]*)"', page.text).group(1).replace("&amp;", "&")
    assert back == f"/panel/?customer=C-1001&decision={decision.pk}"

    switched = client.post("/language/", {"language": "en", "next": back}, follow=True)

    assert switched.status_code == 200 and Decision.objects.count() == 1
    assert f'data-decision-url="/panel/?customer=C-1001&amp;decision={decision.pk}"' in switched.text


@pytest.mark.parametrize(("new", "decisions"), [("1", 2), ("true", 2), ("0", 1), ("false", 1)])
def test_new_is_read_as_sent(logged_in, agent, customer, catalog, churn_model, new, decisions):
    client = logged_in(agent)
    open_panel(client)

    open_panel(client, new=new)

    assert Decision.objects.count() == decisions


def test_after_the_call_on_another_channel_or_for_another_agent_the_panel_asks_for_new_advice(
    logged_in, agent, customer, catalog, churn_model
):
    open_panel(logged_in(agent))
    Decision.objects.update(created_at=timezone.now() - SAME_CALL - dt.timedelta(seconds=1))
    open_panel(logged_in(agent))
    open_panel(logged_in(agent), channel="chat")
    colleague = AgentProfileFactory(team=agent.agent_profile.team).user
    open_panel(logged_in(colleague))

    made = Decision.objects.order_by("created_at").values_list("agent", "channel")
    assert list(made) == [(agent.pk, "phone"), (agent.pk, "phone"), (agent.pk, "chat"), (colleague.pk, "phone")]


def test_an_earlier_decision_is_shown_without_making_a_new_one(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent, churn_probability=0.37, risk_band="medium")

    response = open_panel(logged_in(agent), decision=decision.pk)

    assert response.status_code == 200
    assert Decision.objects.count() == 1
    assert "37%" in response.text


def test_a_decision_of_another_customer_is_not_found(logged_in, agent, customer):
    decision = stored_decision(customer=CustomerFactory(), agent=agent)

    response = open_panel(logged_in(agent), decision=decision.pk)

    assert response.status_code == 404


def test_unknown_customer_is_a_clear_404(logged_in, agent, catalog, churn_model):
    response = open_panel(logged_in(agent), external_id="NOPE-9")

    assert response.status_code == 404
    assert "Geen klant gevonden met nummer NOPE-9." in response.text
    assert not Decision.objects.exists()


def test_an_unknown_channel_is_refused(logged_in, agent, customer, catalog, churn_model):
    response = open_panel(logged_in(agent), channel="pigeon")

    assert response.status_code == 400
    assert not Decision.objects.exists()


def test_without_a_trained_model_the_agent_is_told_so(logged_in, agent, customer, catalog, monkeypatch):
    def no_model(kind):
        raise NoChampion("no churn model")

    monkeypatch.setattr(champions, "get", no_model)

    response = open_panel(logged_in(agent))

    assert response.status_code == 503
    assert "churnmodel" in response.text


def test_when_no_churn_model_can_be_loaded_the_agent_is_told_so_not_shown_an_error_page(
    logged_in, agent, customer, catalog, monkeypatch
):
    def damaged(kind):
        raise ChampionUnavailable("the churn champion churn-v2 cannot be loaded (…), nor any champion before it")

    monkeypatch.setattr(champions, "get", damaged)

    response = open_panel(logged_in(agent))

    assert response.status_code == 503
    assert "bestanden van het churnmodel kunnen niet worden geladen" in response.text


def test_an_offer_response_model_that_cannot_be_loaded_leaves_the_offers_ranked_on_the_priors(
    logged_in, agent, customer, catalog, churn_model, monkeypatch, caplog
):
    serving_churn = champions.get

    def response_damaged(kind):
        if kind == "acceptance":
            raise ChampionUnavailable("the acceptance champion acceptance-v1 cannot be loaded (…)")
        return serving_churn(kind)

    monkeypatch.setattr(champions, "get", response_damaged)

    response = open_panel(logged_in(agent))

    assert response.status_code == 200
    assert Decision.objects.get().model_versions == {"churn": "churn v-test"}
    assert any("acceptance-v1 cannot be loaded" in record.getMessage() for record in caplog.records)


# --- search -------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["C-1001", "c-1001", "de vries", "0612345678", "06-12 34 56 78", "+31612345678"])
def test_agent_finds_a_customer_by_number_name_or_phone(logged_in, agent, customer, query):
    CustomerFactory(external_id="C-2002", display_name="Piet Bakker", phone="0201234567")

    response = logged_in(agent).post("/panel/", {"q": query}, follow=True)

    assert response.status_code == 200
    assert "/panel/?customer=C-1001&amp;channel=phone" in response.text
    assert "Piet Bakker" not in response.text
    assert not Decision.objects.exists()


def test_a_customer_number_is_found_without_its_letters_but_a_short_part_of_it_is_not(logged_in, agent):
    CustomerFactory(external_id="NL8656687", display_name="Lisa Jansen", phone="")
    CustomerFactory(external_id="NL1186568", display_name="Ander", phone="")
    client = logged_in(agent)

    found = client.post("/panel/", {"q": "8656687"}, follow=True).text
    short = client.post("/panel/", {"q": "8656"}, follow=True).text

    assert "Lisa Jansen" in found and "Ander" not in found
    assert "Lisa Jansen" not in short  # four characters match too much of every number to mean one


def test_a_search_with_more_hits_than_shown_lists_none_but_an_exact_customer_number(logged_in, agent, customer):
    for number in range(SEARCH_LIMIT + 1):
        CustomerFactory(external_id=f"H-{number:03d}", display_name=f"Hendriks {number:03d}")
    client = logged_in(agent)

    many = client.post("/panel/", {"q": "Hendriks 0"}, follow=True).text
    exact_name = client.post("/panel/", {"q": "Hendriks 007"}, follow=True).text
    CustomerFactory(external_id="HENDRIKS 0", display_name="Exact")
    exact_too = client.post("/panel/", {"q": "hendriks 0"}, follow=True).text

    assert many.count("/panel/?customer=H") == 0
    assert f"Meer dan {SEARCH_LIMIT} klanten passen bij „Hendriks 0”, dus er staat er geen hieronder." in many
    assert "Zoek op klantnummer, volledige naam of telefoonnummer" in many
    assert exact_name.count("/panel/?customer=H-") == 1 and "Meer dan" not in exact_name
    assert exact_too.count("/panel/?customer=H") == 1 and "Exact" in exact_too
    assert "alleen die met dit klantnummer staat hieronder" in exact_too


def test_scripted_searches_are_stopped_after_the_allowance_of_a_minute(logged_in, agent, customer):
    client = logged_in(agent)
    answers = [client.post("/panel/", {"q": f"Jan de Vries {n}"}, follow=True) for n in range(SEARCHES_PER_MINUTE + 1)]

    assert {answer.status_code for answer in answers[:SEARCHES_PER_MINUTE]} == {200}
    assert answers[-1].status_code == 429
    assert "zoekopdrachten in een minuut" in answers[-1].text


def test_a_search_without_hits_says_so(logged_in, agent, customer):
    response = logged_in(agent).post("/panel/", {"q": "Zwart"}, follow=True)

    assert "Geen klant gevonden voor „Zwart”." in response.text


def test_the_search_form_posts_so_what_was_typed_stays_out_of_every_address(logged_in, agent, customer):
    client = logged_in(agent)

    form = re.search(r'<form method="(\w+)" action="([^"]*)" role="search"', client.get("/panel/").text)
    posted = client.post("/panel/", {"q": "de Vries", "channel": "chat"})
    found = client.get(posted["Location"])

    assert form.groups() == ("post", "/panel/")
    assert posted.status_code == 303 and re.fullmatch(r"/panel/\?search=[0-9a-f]{20}", posted["Location"])
    assert found.status_code == 200
    assert 'href="/panel/?customer=C-1001&amp;channel=chat"' in found.text
    assert 'value="de Vries"' in found.text  # the field shows what was searched for
    assert "Vries" not in " ".join(re.findall(r'(?:href|action|value)="(/[^"]*)"', found.text))
    assert "no-store" in found["Cache-Control"]


def test_a_kept_search_shows_again_on_back_reload_or_in_another_language_and_only_to_its_agent(
    logged_in, agent, customer
):
    client = logged_in(agent)
    page = client.post("/panel/", {"q": "de Vries"})["Location"]

    again = client.get(page)
    switched = client.post("/language/", {"language": "en", "next": page}, follow=True)
    other = logged_in(AgentProfileFactory(user=UserFactory(username="agent9")).user).get(page)

    assert "Jan de Vries" in again.text
    assert switched.status_code == 200 and "Search results" in switched.text and "Jan de Vries" in switched.text
    assert other.status_code == 404 and "Jan de Vries" not in other.text
    assert "Deze zoekopdracht wordt niet meer bewaard" in other.text


def test_a_search_sent_twice_leads_to_one_kept_page_so_a_double_click_finds_it_whichever_save_wins(
    logged_in, agent, customer
):
    client = logged_in(agent)

    first = client.post("/panel/", {"q": "de Vries"})["Location"]
    second = client.post("/panel/", {"q": "de Vries"})["Location"]
    other = client.post("/panel/", {"q": "de Vries", "channel": "chat"})["Location"]

    assert first == second != other
    assert len(client.session[SAVED_SEARCHES]) == 2


def test_only_the_agents_latest_searches_are_kept(logged_in, agent, customer):
    client = logged_in(agent)
    first = client.post("/panel/", {"q": "de Vries"})["Location"]
    for number in range(SAVED_SEARCHES_KEPT):
        client.post("/panel/", {"q": f"zoek {number}"})

    assert client.get(first).status_code == 404
    assert len(client.session[SAVED_SEARCHES]) == SAVED_SEARCHES_KEPT


def test_an_empty_search_leads_back_to_the_start(logged_in, agent):
    response = logged_in(agent).post("/panel/", {"q": "  "})

    assert (response.status_code, response["Location"]) == (303, "/panel/")


def test_a_search_is_refused_without_the_pages_csrf_token(agent, customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.post("/panel/", {"q": "de Vries"})

    assert response.status_code == 403
    assert "Jan de Vries" not in response.text


def test_a_posted_search_only_searches_it_never_opens_a_customer(logged_in, agent, customer, catalog, churn_model):
    response = logged_in(agent).post("/panel/", {"customer": "C-1001"}, follow=True)

    assert response.status_code == 200
    assert "Jan de Vries" not in response.text
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"q": "x" * 201}, "Zoek met een klantnummer, naam of telefoonnummer van hoogstens 200 tekens."),
        ({"q": "de Vries", "channel": "fax"}, "De zoekopdracht kon niet worden gelezen. Zoek opnieuw."),
    ],
)
def test_a_search_that_cannot_be_read_says_why(logged_in, agent, customer, data, message):
    response = logged_in(agent).post("/panel/", data)

    assert response.status_code == 400
    assert message in response.text
    assert "Jan de Vries" not in response.text


def test_a_link_with_too_long_a_search_says_so_as_the_form_does(logged_in, agent, customer):
    response = logged_in(agent).get("/panel/", {"q": "x" * 201})

    assert response.status_code == 400
    assert "Zoek met een klantnummer, naam of telefoonnummer van hoogstens 200 tekens." in response.text


def test_a_link_with_a_search_still_finds_the_customer(logged_in, agent, customer):
    response = logged_in(agent).get("/panel/", {"q": "de Vries"})

    assert response.status_code == 200
    assert "/panel/?customer=C-1001&amp;channel=phone" in response.text


# --- what the panel shows -----------------------------------------------------------------------


def test_customer_card_compares_their_price_with_a_new_customers(logged_in, agent, customer, catalog, churn_model):
    html = open_panel(logged_in(agent)).text

    card = section(html, "customer-heading")
    assert "€\u00a055,00" in card
    assert "€\u00a045,00" in card
    assert "€\u00a010,00 per maand meer dan een nieuwe klant" in card
    assert re.search(r"\d{2}-\d{2}-\d{4}", card), "contract end in dd-mm-jjjj"


def test_customer_card_warns_when_the_records_have_the_customer_as_gone(logged_in, agent, customer, catalog):
    RenewalResultFactory(customer=customer, result="churned", date=timezone.localdate() - dt.timedelta(days=3))
    decision = stored_decision(customer=customer, agent=agent)

    card = section(open_panel(logged_in(agent), decision=decision.pk).text, "customer-heading")

    assert "Laatste verlengingsuitkomst" in card and "vertrokken op" in card
    assert "Staat geregistreerd als vertrokken" in card


def test_risk_shows_percentage_band_in_words_and_the_top_three_reasons(logged_in, agent, customer):
    reasons = [
        {"code": f"r{n}", "text": {"nl": f"reden {n}", "en": f"reason {n}"}, "impact": impact}
        for n, impact in enumerate([0.1, 0.9, -0.5, 0.3])
    ]
    decision = stored_decision(customer=customer, agent=agent, reasons=reasons)

    risk = section(open_panel(logged_in(agent), decision=decision.pk).text, "risk-heading")

    assert "64%" in risk
    assert "Hoog risico" in risk
    assert [text for text in ("reden 1", "reden 2", "reden 3") if text in risk] == ["reden 1", "reden 2", "reden 3"]
    assert "reden 0" not in risk
    assert "verlaagt het risico" in risk


def test_the_card_of_a_customer_whose_contract_ended_shows_that_contract_as_ended(
    logged_in, agent, customer, catalog, churn_model
):
    customer.contracts.update(status="ended", end_date=timezone.localdate() - dt.timedelta(days=3))

    card = open_panel(logged_in(agent)).text.split('id="customer-heading"')[1].split("</section>")[0]

    assert "<dt>Betaalde per maand</dt>" in card and "€\u00a055,00" in card
    assert "<dt>Contract afgelopen</dt>" in card and "Betaalt per maand" not in card


def test_reasons_are_in_the_agents_language(logged_in, agent, customer):
    agent.agent_profile.language = "en"
    agent.agent_profile.save()
    decision = stored_decision(customer=customer, agent=agent)

    html = open_panel(logged_in(agent), decision=decision.pk).text

    assert "2 complaints" in html
    assert "2 klachten" not in html


def test_talking_points_cover_the_reasons_that_raise_the_risk(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    points = section(open_panel(logged_in(agent), decision=decision.pk).text, "talking-heading")

    assert "klacht" in points.lower()
    assert "nieuwe klanten" in points.lower()


def test_offers_show_cost_chance_and_the_recommendation(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")

    assert offers.index("Loyaliteitskorting 10%") < offers.index("Gratis snelheid omhoog") < offers.index("Halve prijs")
    assert "€\u00a066,00" in offers
    assert "41%" in offers
    assert "Aanbevolen" in offers


def test_an_offer_above_authority_is_shown_as_needing_a_team_lead_with_escalation(logged_in, agent, lead, customer):
    decision = stored_decision(customer=customer, agent=agent)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    half_price = offers[offers.index("Halve prijs") :]

    assert "Teamleider nodig" in half_price
    assert 'name="kind" value="escalated">\n  <input type="hidden" name="offer_code" value="half-price">' in half_price
    assert 'value="presented">\n  <input type="hidden" name="offer_code" value="half-price"' not in half_price


def test_an_offer_over_the_teams_budget_says_so_apart_from_authority(logged_in, agent, customer):
    over_budget = [
        {**offer, "over_team_budget": offer["code"] != "speed-up", "needs_escalation": offer["code"] != "speed-up"}
        for offer in OFFERS
    ]
    decision = stored_decision(customer=customer, agent=agent, offers=over_budget)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    loyal = offers[offers.index("Loyaliteitskorting 10%") : offers.index("Gratis snelheid omhoog")]
    speed_up = offers[offers.index("Gratis snelheid omhoog") : offers.index("Halve prijs")]
    half_price = offers[offers.index("Halve prijs") :]

    budget, authority = "meer dan het teambudget deze maand nog toelaat", "boven je bevoegdheid"
    assert "Teamleider nodig" in loyal and budget in loyal and authority not in loyal
    assert 'value="escalated">\n  <input type="hidden" name="offer_code" value="loyal-10">' in loyal
    assert "Teamleider nodig" not in speed_up and budget not in speed_up
    assert budget in half_price and authority in half_price


def test_a_team_lead_may_make_an_offer_over_the_teams_budget_on_their_own_advice(logged_in, lead, customer):
    over_budget = [{**offer, "over_team_budget": True, "needs_escalation": True} for offer in OFFERS[:1]]
    decision = stored_decision(customer=customer, agent=lead, offers=over_budget)

    offers = section(open_panel(logged_in(lead), decision=decision.pk).text, "decision")

    assert 'value="presented">\n  <input type="hidden" name="offer_code" value="loyal-10"' in offers
    assert "aan jou als teamleider" in offers
    assert 'value="escalated">\n  <input type="hidden" name="offer_code" value="loyal-10"' not in offers


def test_an_accepted_offer_can_be_corrected_from_the_panel(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)
    for kind in ("presented", "accepted"):
        DecisionAction.objects.create(decision=decision, kind=kind, offer_code="loyal-10", channel="phone")

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    loyal = offers[offers.index("Loyaliteitskorting 10%") : offers.index("Gratis snelheid omhoog")]

    assert 'name="kind" value="undone">' in loyal  # a mis-click, not the customer declining
    assert "Terugdraaien: per vergissing vastgelegd" in loyal
    assert 'name="kind" value="declined">' in loyal and "Toch afgewezen" in loyal  # the customer changed their mind


@pytest.mark.parametrize("query", ["", "?customer=%20"])
def test_an_empty_panel_says_how_to_find_the_customer(logged_in, agent, query):
    html = logged_in(agent).get(f"/panel/{query}").text

    assert "Zoek de klant aan de lijn op klantnummer, naam of telefoonnummer." in html


def test_a_team_lead_may_present_an_offer_above_the_agents_authority(logged_in, agent, lead, customer):
    decision = stored_decision(customer=customer, agent=agent)

    offers = section(open_panel(logged_in(lead), decision=decision.pk).text, "decision")

    assert 'value="presented">\n  <input type="hidden" name="offer_code" value="half-price"' in offers


def test_other_agents_can_read_but_not_log_on_an_advice(logged_in, agent, customer):
    colleague = AgentProfileFactory(user=UserFactory(username="colleague"), team=agent.agent_profile.team).user
    decision = stored_decision(customer=customer, agent=colleague)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")

    assert "Loyaliteitskorting 10%" in offers
    assert "<form" not in offers


def test_no_offer_needed_when_nothing_is_recommended(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent, recommended_offer_code="", offers=UNPROFITABLE_OFFERS)

    html = open_panel(logged_in(agent), decision=decision.pk).text

    assert "Geen aanbod nodig." in html
    assert "Aanbevolen" not in html


def test_advice_without_a_known_fee_says_no_offer_can_be_priced_not_that_none_is_needed(logged_in, agent, customer):
    decision = stored_decision(
        customer=customer, agent=agent, offers=[], recommended_offer_code="", renewal_fee_cents=0
    )

    page = open_panel(logged_in(agent), decision=decision.pk).text

    assert "Geen aanbod te berekenen." in page
    assert "Geen aanbod nodig." not in page and "wordt geen aanbod aanbevolen" not in page
    assert "Er is nu geen aanbod dat deze klant kan krijgen." not in page  # said once, above


def test_when_only_offers_needing_a_team_lead_are_worth_their_cost_the_panel_says_so_not_that_none_is_needed(
    logged_in, agent, lead, customer
):
    offers = [*UNPROFITABLE_OFFERS[:2], OFFERS[2]]  # only "half-price", above the agent's authority, pays
    decision = stored_decision(customer=customer, agent=agent, recommended_offer_code="", offers=offers)

    html = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")

    assert "Geen aanbod nodig." not in html
    assert "De aanbiedingen die hun kosten waard zijn, vragen een teamleider." in html
    assert "Teamleider vragen" in html


def test_presenting_an_offer_other_than_the_recommendation_asks_for_a_reason(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    recommended = offers[offers.index("Loyaliteitskorting 10%") : offers.index("Gratis snelheid omhoog")]
    other = offers[offers.index("Gratis snelheid omhoog") : offers.index("Halve prijs")]

    assert 'name="override_reason"' not in recommended
    assert 'name="override_reason" id="override-2" required' in other
    assert '<label for="override-2">' in other


def test_best_tariff_advice_shows_the_yearly_saving(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    tariff = section(open_panel(logged_in(agent), decision=decision.pk).text, "tariff-heading")

    assert "Internet + TV" in tariff
    assert "€\u00a0120,00 per jaar" in tariff


def test_a_cheaper_price_for_their_own_bundle_is_worded_as_such(logged_in, agent, customer):
    own = stored_decision(customer=customer, agent=agent)
    other = stored_decision(
        customer=customer, agent=agent,
        best_tariff={"code": "internet", "name": "Alleen internet", "monthly_fee_cents": 3_500,
                     "yearly_saving_cents": 24_000},
    )  # fmt: skip
    client = logged_in(agent)

    own_bundle = section(open_panel(client, decision=own.pk).text, "tariff-heading")
    other_bundle = section(open_panel(client, decision=other.pk).text, "tariff-heading")

    assert "huidige prijs van de eigen bundel (<strong>Internet + TV</strong>, €\u00a045,00 per maand)" in own_bundle
    assert "<strong>Alleen internet</strong> dekt al hun producten voor €\u00a035,00 per maand" in other_bundle


def test_a_discount_ending_with_the_contract_is_named_with_both_fees(logged_in, agent, customer):
    decision = stored_decision(
        customer=customer, agent=agent,
        best_tariff={"code": "internet_tv", "name": "Internet + TV", "monthly_fee_cents": 4_500,
                     "yearly_saving_cents": 30_000, "current_fee_cents": 5_000, "fee_after_contract_end_cents": 7_000},
    )  # fmt: skip

    tariff = section(open_panel(logged_in(agent), decision=decision.pk).text, "tariff-heading")

    assert "€ 300,00 per jaar" in tariff
    assert "nu betaalt de klant € 50,00 per maand, daarna € 70,00 als er niets verandert" in tariff


def test_without_a_known_fee_the_panel_claims_no_saving_and_asks(logged_in, agent, customer):
    decision = stored_decision(
        customer=customer, agent=agent,
        best_tariff={"code": "internet_tv", "name": "Internet + TV", "monthly_fee_cents": 4_500,
                     "yearly_saving_cents": None, "current_fee_cents": None, "fee_after_contract_end_cents": None},
    )  # fmt: skip

    tariff = section(open_panel(logged_in(agent), decision=decision.pk).text, "tariff-heading")

    assert "Wat de klant nu betaalt staat niet in onze gegevens" in tariff
    assert "betaalt de klant nu niet" not in tariff


def test_when_no_tariff_covers_their_products_the_panel_says_so(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent, best_tariff=None)

    tariff = section(open_panel(logged_in(agent), decision=decision.pk).text, "tariff-heading")

    assert "Geen tarief dat we nu verkopen dekt alle producten van de klant" in tariff


def test_each_offer_shows_its_expected_value_with_its_sign_over_the_policys_horizon(logged_in, agent, customer):
    losing = {**OFFERS[2], "expected_net_value_cents": -2_760}
    decision = stored_decision(customer=customer, agent=agent, offers=[*OFFERS[:2], losing], horizon_months=12)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")

    assert offers.count("Verwachte waarde</dt>") == 3
    assert "+\u00a0€\u00a0120,00" in offers and "+\u00a0€\u00a080,00" in offers
    assert "\u2212\u00a0€\u00a027,60" in offers
    assert "de marge die het aanbod in 12 maanden meer behoudt dan geen aanbod, min de kosten" in offers


def test_no_offer_needed_comes_with_its_cost_value_and_chance(logged_in, agent, customer):
    decision = stored_decision(
        customer=customer,
        agent=agent,
        recommended_offer_code="",
        stay_probability_without_offer=0.7,
        offers=UNPROFITABLE_OFFERS,
    )

    html = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    no_offer = html[html.index('class="no-offer"') : html.index("</div>", html.index('class="no-offer"'))]

    assert "Geen aanbod nodig." in no_offer
    assert "Waarom een aanbod, terwijl er geen wordt aanbevolen?" in html
    assert "Waarom een ander aanbod dan het aanbevolen aanbod?" not in html
    assert re.search(r"Kosten voor ons</dt><dd>€\u00a00,00.*Verwachte waarde</dt><dd>€\u00a00,00", no_offer, re.S)
    assert "Kans dat de klant blijft</dt><dd>70%" in no_offer


def test_no_offer_held_back_by_exploration_or_the_control_group_is_not_called_needed(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent, recommended_offer_code="", greedy_offer_code="loyal-10")

    html = open_panel(logged_in(agent), decision=decision.pk).text

    assert "Geen aanbod nodig." not in html
    assert "Voor dit gesprek wordt geen aanbod aanbevolen." in html
    assert "badge-recommended" not in html


def test_the_chance_without_an_offer_is_the_one_the_values_were_counted_against(logged_in, agent, customer):
    decision = stored_decision(
        customer=customer, agent=agent, churn_probability=0.64, stay_probability_without_offer=0.5
    )

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")

    assert offers.count("(zonder aanbod 50%)") == len(OFFERS)


def more_offers(number: int) -> list[dict]:
    """`number` offers ranked after OFFERS, each worth less than the one before."""
    return [
        {**OFFERS[1], "code": f"extra-{n}", "title": {"nl": f"Extra {n}", "en": f"Extra {n}"},
         "expected_net_value_cents": 1_000 - n}
        for n in range(number)
    ]  # fmt: skip


def test_the_best_three_offers_are_listed_and_the_rest_folded_away_numbered_on(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent, offers=[*OFFERS, *more_offers(3)])

    html = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    listed, folded = html.split('<details class="more-offers">')

    assert all(
        title in listed for title in ("1. Loyaliteitskorting 10%", "2. Gratis snelheid omhoog", "3. Halve prijs")
    )
    assert "Extra" not in listed
    assert "<summary>Nog 3 aanbiedingen, lager gerangschikt</summary>" in folded
    assert all(f"{rank}. Extra {n}" in folded for rank, n in ((4, 0), (5, 1), (6, 2)))


def test_a_recommended_offer_or_one_with_something_logged_is_listed_even_when_ranked_lower(logged_in, agent, customer):
    offers = [*OFFERS, *more_offers(4)]
    decision = stored_decision(customer=customer, agent=agent, offers=offers, recommended_offer_code="extra-2")
    DecisionAction.objects.create(decision=decision, kind="presented", offer_code="extra-3", channel="phone")

    html = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")
    listed, folded = html.split('<details class="more-offers">')

    assert "4. Extra 2" in listed and "5. Extra 3" in listed
    assert "Aanbevolen" in listed.split("4. Extra 2")[1]
    assert "<summary>Nog 2 aanbiedingen, lager gerangschikt</summary>" in folded
    assert "6. Extra 0" in folded and "7. Extra 1" in folded


def test_with_three_offers_or_fewer_nothing_is_folded(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    html = open_panel(logged_in(agent), decision=decision.pk).text

    assert "more-offers" not in html


def test_each_offers_chance_is_shown_next_to_the_chance_without_an_offer(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent, churn_probability=0.64)

    offers = section(open_panel(logged_in(agent), decision=decision.pk).text, "decision")

    assert offers.count("(zonder aanbod 36%)") == len(OFFERS)


def test_no_template_syntax_reaches_the_page(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)
    DecisionAction.objects.create(decision=decision, kind="presented", offer_code="loyal-10", channel="phone")

    html = open_panel(logged_in(agent), decision=decision.pk).text

    assert not re.search(r"\{[#%{]|[#%}]\}", html)


def test_every_shortcut_has_a_legend_and_a_button(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)
    DecisionAction.objects.create(decision=decision, kind="presented", offer_code="loyal-10", channel="phone")

    html = open_panel(logged_in(agent), decision=decision.pk).text

    assert "Sneltoetsen" in html
    shortcuts = re.findall(r'data-shortcut="(\w)"', html)
    assert sorted(shortcuts) == sorted(["2", "a", "d", "t", "e", "n"]), "offer 1 is presented: its answer is next"


# --- offers made recently -----------------------------------------------------------------------


def test_an_offer_made_in_the_last_14_days_on_any_channel_is_shown_first(logged_in, agent, customer):
    colleague = AgentProfileFactory(user=UserFactory(username="colleague", first_name="Els", last_name="Jansen")).user
    earlier = stored_decision(customer=customer, agent=colleague, channel="chat")
    for kind in ("presented", "declined"):
        DecisionAction.objects.create(
            decision=earlier, kind=kind, offer_code="speed-up", channel="chat", agent=colleague
        )
    current = stored_decision(customer=customer, agent=agent)

    html = open_panel(logged_in(agent), decision=current.pk).text

    banner = section(html, "recent-heading")
    assert html.index("recent-heading") < html.index("customer-heading")
    assert "Gratis snelheid omhoog" in banner
    assert "Els Jansen" in banner
    assert "Chat" in banner
    assert "Afgewezen" in banner


def test_an_offer_still_thought_over_links_its_own_agent_to_the_advice_it_was_made_on(logged_in, agent, customer):
    # After "Ask for new advice" the pending offer is listed here: its answer is logged on the advice it was made on.
    colleague = AgentProfileFactory(user=UserFactory(username="colleague"), team=agent.agent_profile.team).user
    earlier = stored_decision(customer=customer, agent=agent)
    for kind in ("presented", "thinking"):
        DecisionAction.objects.create(decision=earlier, kind=kind, offer_code="speed-up", channel="phone", agent=agent)
    answered = stored_decision(customer=customer, agent=agent)
    for kind in ("presented", "declined"):
        DecisionAction.objects.create(decision=answered, kind=kind, offer_code="loyal-10", channel="phone", agent=agent)
    current = stored_decision(customer=customer, agent=agent)

    own = section(open_panel(logged_in(agent), decision=current.pk).text, "recent-heading")
    others = section(open_panel(logged_in(colleague), decision=current.pk).text, "recent-heading")

    link = f"/panel/?customer=C-1001&amp;decision={earlier.pk}"
    assert link in own and "Leg het antwoord van de klant vast op dat advies" in own
    assert own.count("Leg het antwoord") == 1  # the declined offer needs nothing more
    assert link not in others


def test_a_decline_the_contact_policy_still_holds_back_is_in_the_banner_an_older_offer_is_not(
    logged_in, agent, customer
):
    """Declined 20 days ago, the offer is left out of the advice for 30 days: the banner says why. Offers made
    longer ago than both the contact policy's days and the days an acceptance holds are not listed."""
    earlier = stored_decision(customer=customer, agent=agent)
    for kind in ("presented", "declined"):
        DecisionAction.objects.create(decision=earlier, kind=kind, offer_code="speed-up", channel="phone")
    older = stored_decision(customer=customer, agent=agent)
    DecisionAction.objects.create(decision=older, kind="presented", offer_code="loyal-10", channel="phone")
    DecisionAction.objects.filter(decision=earlier).update(created_at=days_ago(20))
    DecisionAction.objects.filter(decision=older).update(created_at=days_ago(31))
    current = stored_decision(customer=customer, agent=agent)

    banner = section(open_panel(logged_in(agent), decision=current.pk).text, "recent-heading")

    assert "in de laatste 30 dagen" in banner
    assert "Gratis snelheid omhoog" in banner
    assert "Afgewezen" in banner
    assert "Loyaliteitskorting" not in banner


# --- team budget --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spent_cents", "level", "words"),
    [(0, "green", "Binnen budget"), (3_749, "green", "Binnen budget"), (3_750, "amber", "Budget bijna op"),
     (4_999, "amber", "Budget bijna op"), (5_000, "red", "Budget op"), (7_000, "red", "Budget op")],
)  # fmt: skip
def test_team_budget_status_is_coloured_and_worded_by_share_spent(
    logged_in, agent, customer, spent_cents, level, words
):
    team = agent.agent_profile.team
    team.monthly_budget_cents = 5_000
    team.save()
    decision = stored_decision(customer=customer, agent=agent)
    if spent_cents:
        DecisionAction.objects.create(
            decision=decision, kind="accepted", offer_code="loyal-10", channel="phone", cost_cents=spent_cents
        )

    budget = section(open_panel(logged_in(agent), decision=decision.pk).text, "budget")

    assert f"budget-{level}" in budget
    assert words in budget
    left = 5_000 - spent_cents
    if left >= 0:
        assert f"nog €\u00a0{left // 100},{left % 100:02d} over" in budget
    else:
        assert f"€\u00a0{-left // 100},{-left % 100:02d} boven het budget" in budget


def test_the_panel_budget_names_what_offers_waiting_for_an_answer_hold(logged_in, agent, customer):
    team = agent.agent_profile.team
    team.monthly_budget_cents = 10_000
    team.save()
    decision = stored_decision(customer=customer, agent=agent)
    decision_action_record(decision=decision, kind="presented", offer_code="loyal-10", agent=agent)

    budget = section(open_panel(logged_in(agent), decision=decision.pk).text, "budget")

    assert "€\u00a00,00 van €\u00a0100,00 besteed" in budget
    assert "€\u00a066,00 gereserveerd voor aanbiedingen die op het antwoord van de klant wachten" in budget
    assert "nog €\u00a034,00 over" in budget and "(66%)" in budget


def test_a_user_without_team_sees_no_budget(logged_in, customer):
    loner = AgentProfileFactory(user=UserFactory(username="loner"), team=None).user
    decision = stored_decision(customer=customer, agent=loner)

    html = open_panel(logged_in(loner), decision=decision.pk).text

    assert "budget-heading" not in html


# --- query count --------------------------------------------------------------------------------


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def grow_history(customer, agent, decision, size: int) -> None:
    for number in range(size):
        ServiceEventFactory(customer=customer, kind="complaint" if number % 2 else "outage")
        earlier = stored_decision(customer=customer, agent=agent)
        for kind in ("presented", "thinking"):
            DecisionAction.objects.create(decision=earlier, kind=kind, offer_code="loyal-10", channel="phone")
        DecisionAction.objects.create(decision=decision, kind="presented", offer_code="speed-up", channel="phone")
        DecisionAction.objects.create(decision=decision, kind="accepted", offer_code="speed-up", channel="phone")


def test_the_panel_query_count_does_not_grow_with_offers_actions_or_events(
    logged_in, agent, customer, django_assert_max_num_queries
):
    client = logged_in(agent)
    small = stored_decision(customer=customer, agent=agent, offers=OFFERS[:1])
    before = queries_for(client, f"/panel/?customer=C-1001&decision={small.pk}")
    large = stored_decision(customer=customer, agent=agent, offers=OFFERS * 5)
    grow_history(customer, agent, large, size=12)

    after = queries_for(client, f"/panel/?customer=C-1001&decision={large.pk}")

    assert after == before
    # session, user and agent profile, then thirteen for the panel itself (the policy among them, for the days
    # an accepted offer is held back and an offer made holds the budget; the last renewal result on the customer
    # card; the team's budget, accepted and held; the team's leads' authority; the row of the access log)
    with django_assert_max_num_queries(16):
        client.get(f"/panel/?customer=C-1001&decision={large.pk}")


def test_new_advice_adds_a_fixed_number_of_queries_around_the_service(logged_in, agent, customer, catalog, churn_model):
    client = logged_in(agent)
    before = queries_for(client, "/panel/?customer=C-1001")
    grow_history(customer, agent, Decision.objects.get(), size=12)
    Decision.objects.update(created_at=timezone.now() - SAME_CALL)  # all of another call: new advice again

    after = queries_for(client, "/panel/?customer=C-1001")

    assert after == before
