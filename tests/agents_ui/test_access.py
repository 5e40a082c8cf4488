import datetime as dt
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from agents_ui.login import MAX_FAILURES, GuardedAuthenticationForm
from retention.models import Decision, DecisionAction
from tests.agents_ui.decisions import stored_decision
from tests.conftest import PASSWORD
from tests.factories import AgentProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_login_with_the_panel_as_next(client):
    response = client.get("/panel/?customer=C-1001")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=/panel/")


def test_anonymous_visitor_cannot_log_an_action(client, customer):
    decision = stored_decision(customer=customer)

    response = client.post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action"})

    assert response.status_code == 302
    assert not DecisionAction.objects.exists()


def test_a_click_after_the_session_ended_sends_the_whole_page_to_log_in_and_back_to_the_advice(client, customer):
    decision = stored_decision(customer=customer)
    page = f"/panel/?customer=C-1001&decision={decision.pk}"
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": f"http://testserver{page}"}

    response = client.post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action"}, **htmx)

    assert response.status_code == 200
    login = urlsplit(response["HX-Redirect"])
    assert (login.path, parse_qs(login.query)["next"]) == (reverse("login"), [page])
    assert not DecisionAction.objects.exists()
    login_page = client.get(response["HX-Redirect"]).text
    assert "Je sessie was verlopen, dus dat is niet vastgelegd." in login_page


def test_a_click_from_a_page_without_its_csrf_cookie_is_explained_not_a_bare_403(customer, agent):
    client = Client(enforce_csrf_checks=True)
    client.login(username=agent.username, password=PASSWORD)
    decision = stored_decision(customer=customer, agent=agent)
    page = f"/panel/?customer=C-1001&decision={decision.pk}"
    url = reverse("decision_action", args=[decision.pk])

    plain = client.post(url, {"kind": "no_action"})
    htmx = client.post(
        url, {"kind": "no_action"}, HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=f"http://testserver{page}"
    )

    assert plain.status_code == 403
    assert "Deze pagina was verlopen, dus er is niets vastgelegd." in plain.text
    assert htmx["HX-Redirect"] == page
    assert not DecisionAction.objects.exists()


def test_without_script_an_expired_page_leads_back_to_the_advice_without_asking_anew(customer, agent):
    client = Client(enforce_csrf_checks=True)
    client.login(username=agent.username, password=PASSWORD)
    decision = stored_decision(customer=customer, agent=agent)
    url = reverse("decision_action", args=[decision.pk])

    plain = client.post(url, {"kind": "no_action"}, HTTP_REFERER="http://testserver/panel/?customer=C-1001&new=1")

    assert plain.status_code == 403
    assert "<h1>Niet vastgelegd</h1>" in plain.text
    assert '<a href="/panel/?customer=C-1001">Terug naar de pagina, om het opnieuw te doen</a>' in plain.text


def test_a_sign_in_from_an_expired_page_says_the_sign_in_did_not_happen_not_that_nothing_was_saved(agent):
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        reverse("login"), {"username": agent.username, "password": PASSWORD}, HTTP_REFERER="http://testserver/login/"
    )

    assert response.status_code == 403
    assert "<h1>Niet ingelogd</h1>" in response.text
    assert "De inlogpagina was verlopen, dus je bent niet ingelogd." in response.text
    assert '<a href="/login/">Terug naar de inlogpagina</a>' in response.text
    assert "niets vastgelegd" not in response.text


def test_without_script_a_click_after_the_session_ended_logs_in_and_returns_to_the_page(client, customer):
    decision = stored_decision(customer=customer)
    page = f"/panel/?customer=C-1001&decision={decision.pk}"

    response = client.post(
        reverse("decision_action", args=[decision.pk]), {"kind": "no_action"}, HTTP_REFERER=f"http://testserver{page}"
    )

    login = urlsplit(response["Location"])
    assert (login.path, parse_qs(login.query)["next"]) == (reverse("login"), [page])
    assert "Je sessie was verlopen, dus dat is niet vastgelegd." in client.get(response["Location"]).text
    assert not DecisionAction.objects.exists()


def test_a_referer_on_another_site_is_not_followed_back(client, customer):
    decision = stored_decision(customer=customer)

    response = client.post(
        reverse("decision_action", args=[decision.pk]), {"kind": "no_action"}, HTTP_REFERER="https://evil.example/x"
    )

    assert parse_qs(urlsplit(response["Location"]).query)["next"] == ["/panel/"]


def test_root_redirects_to_the_panel(client):
    assert client.get("/")["Location"] == reverse("panel")


def test_every_page_names_the_products_icon_so_browsers_do_not_ask_for_a_missing_one(client):
    from django.contrib.staticfiles import finders

    page = client.get(reverse("login")).text

    assert '<link rel="icon" type="image/svg+xml" href="/static/agents_ui/favicon.svg">' in page
    assert finders.find("agents_ui/favicon.svg") is not None


def test_login_page_is_in_dutch_by_default(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert '<html lang="nl">' in response.text
    assert "Inloggen" in response.text


def test_agent_logs_in_and_lands_on_the_panel(client, agent):
    response = client.post(reverse("login"), {"username": "agent", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("panel")


def test_wrong_password_is_refused_with_a_message(client, agent):
    response = client.post(reverse("login"), {"username": "agent", "password": "wrong"})

    assert response.status_code == 200
    assert 'role="alert"' in response.text


@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_after_ten_wrong_passwords_even_the_right_one_waits(client, agent, fresh_cache):
    for _ in range(MAX_FAILURES):
        client.post(reverse("login"), {"username": "agent", "password": "guess"})

    locked = client.post(reverse("login"), {"username": "agent", "password": PASSWORD})
    elsewhere = Client(REMOTE_ADDR="10.0.0.9").post(reverse("login"), {"username": "agent", "password": PASSWORD})

    assert locked.status_code == 200
    assert "Te vaak mislukt aangemeld voor deze gebruiker: probeer het over 15 minuten opnieuw." in locked.text
    assert elsewhere.status_code == 302


@pytest.mark.parametrize("look_alike", ["\uff41gent", "\U0001d41agent", " agent "])
def test_a_look_alike_spelling_of_the_username_counts_against_the_same_account(client, agent, fresh_cache, look_alike):
    # Django signs "ａgent" (full-width a) or a bold mathematical "𝐚gent" in as "agent": each spelling used to
    # get ten guesses of its own.
    for _ in range(MAX_FAILURES):
        client.post(reverse("login"), {"username": "agent", "password": "guess"})

    locked = client.post(reverse("login"), {"username": look_alike, "password": PASSWORD})

    assert locked.status_code == 200
    assert "Te vaak mislukt aangemeld" in locked.text


def test_guesses_at_another_spelling_of_a_username_do_not_lock_the_account(client, agent, fresh_cache):
    # Usernames are matched exactly: "AGENT" reaches no account, so guessing at it must not lock "agent" out.
    for _ in range(MAX_FAILURES + 1):
        client.post(reverse("login"), {"username": "AGENT", "password": "guess"})

    assert client.post(reverse("login"), {"username": "agent", "password": PASSWORD}).status_code == 302


def test_behind_a_proxy_the_lockout_counts_by_the_clients_address(agent, fresh_cache, settings):
    settings.FORWARDED_FOR_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    guesser = Client(HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    for _ in range(MAX_FAILURES):
        guesser.post(reverse("login"), {"username": "agent", "password": "guess"})
    # A client cannot pick its own address by writing the header: only the entry the proxy appended counts.
    spoofing = Client(HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7", **proxy)
    agent_at_work = Client(HTTP_X_FORWARDED_FOR="192.0.2.44", **proxy)

    assert "Te vaak mislukt" in guesser.post(reverse("login"), {"username": "agent", "password": PASSWORD}).text
    assert "Te vaak mislukt" in spoofing.post(reverse("login"), {"username": "agent", "password": PASSWORD}).text
    assert agent_at_work.post(reverse("login"), {"username": "agent", "password": PASSWORD}).status_code == 302


def test_the_admin_sign_in_is_guarded_the_same_way(client, agent, fresh_cache):
    agent.is_staff = True
    agent.save()
    for _ in range(MAX_FAILURES):
        client.post("/admin/login/", {"username": "agent", "password": "guess"})

    locked = client.post("/admin/login/", {"username": "agent", "password": PASSWORD})

    assert locked.status_code == 200
    assert "Te vaak mislukt aangemeld" in locked.text


def test_guesses_sent_together_each_count(agent, fresh_cache, monkeypatch):
    form_class = GuardedAuthenticationForm
    request = RequestFactory().post("/login/")
    turns = threading.Condition()
    counted, finished = [], []

    def slow_check(self):
        # As slow as hashing a password, so the two attempts overlap: a guess being checked waits until the
        # other one is checked too or has been refused. Waiting for that, not for a fixed time, keeps the
        # overlap on a slow machine and costs nothing when the guard works.
        with turns:
            counted.append(1)
            turns.notify_all()
            turns.wait_for(lambda: len(counted) == 2 or finished, timeout=10)
        raise ValidationError("wrong")

    monkeypatch.setattr(AuthenticationForm, "clean", slow_check)
    cache.set("sign-in-attempts:127.0.0.1:agent", MAX_FAILURES - 1, timeout=60)

    def guess():
        form = form_class(request, data={"username": "agent", "password": "guess"})
        form.is_valid()
        with turns:
            finished.append(1)
            turns.notify_all()

    threads = [threading.Thread(target=guess) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(counted) == 1  # the tenth attempt was checked, the eleventh refused unchecked


def test_a_successful_sign_in_forgets_the_failures_before_it(client, agent, fresh_cache):
    for _ in range(MAX_FAILURES - 1):
        client.post(reverse("login"), {"username": "agent", "password": "guess"})
    assert client.post(reverse("login"), {"username": "agent", "password": PASSWORD}).status_code == 302
    client.post(reverse("logout"))

    client.post(reverse("login"), {"username": "agent", "password": "guess"})

    assert client.post(reverse("login"), {"username": "agent", "password": PASSWORD}).status_code == 302


def test_logout_is_a_post_that_ends_the_session(logged_in, agent):
    client = logged_in(agent)

    response = client.post(reverse("logout"))

    assert response["Location"] == reverse("login")
    assert client.get(reverse("panel")).status_code == 302


@pytest.mark.parametrize("login_url", ["/login/", "/admin/login/"])
def test_a_sign_in_ends_a_shift_after_it_was_made_however_much_it_is_used(db, settings, login_url):
    UserFactory(username="lead", is_staff=True)
    client = Client()
    signed_in_at = timezone.now()
    client.post(login_url, {"username": "lead", "password": PASSWORD})
    ends = client.session.get_expiry_date()

    client.post(reverse("language"), {"language": "en", "next": "/login/"})  # changes the session

    shift = dt.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    assert signed_in_at + shift <= ends <= timezone.now() + shift
    assert client.session["_session_expiry"] == ends.isoformat()  # a fixed moment, not renewed by the change
    assert client.session.get_expiry_date() == ends


def test_outsider_without_agent_profile_gets_403_and_no_customer_data(logged_in, outsider, customer):
    response = logged_in(outsider).get(f"/panel/?customer={customer.external_id}")

    assert response.status_code == 403
    assert customer.display_name not in response.text
    assert not Decision.objects.exists()


def test_outsider_search_gets_403(logged_in, outsider, customer):
    response = logged_in(outsider).get("/panel/?q=Jan")

    assert response.status_code == 403
    assert "Jan de Vries" not in response.text


def test_outsider_cannot_log_an_action(logged_in, outsider, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    response = logged_in(outsider).post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action"})

    assert response.status_code == 403
    assert not DecisionAction.objects.exists()


def test_agent_cannot_log_on_another_agents_decision(logged_in, agent, customer):
    colleague = AgentProfileFactory(user=UserFactory(username="colleague"), team=agent.agent_profile.team).user
    decision = stored_decision(customer=customer, agent=colleague)

    response = logged_in(agent).post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action"})

    assert response.status_code == 403
    assert "Dit advies is voor een andere medewerker gemaakt" in response.text
    assert "geen medewerkersprofiel" not in response.text
    assert not DecisionAction.objects.exists()


def test_a_team_lead_acts_for_their_own_team_only(logged_in, agent, lead, other_team, customer):
    other_lead = AgentProfileFactory(
        user=UserFactory(username="other-lead"), team=other_team, role="lead", authority_level=3
    ).user
    decision = stored_decision(customer=customer, agent=agent)
    fields = {"kind": "presented", "offer_code": "half-price", "override_reason": "customer_request"}

    refused = logged_in(other_lead).post(reverse("decision_action", args=[decision.pk]), fields)
    panel = logged_in(other_lead).get(f"/panel/?customer={customer.external_id}&decision={decision.pk}")
    own = logged_in(lead).post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action"})

    assert refused.status_code == 403
    assert 'name="kind" value="presented"' not in panel.text
    assert own.status_code == 302
    assert list(DecisionAction.objects.values_list("kind", "agent__username")) == [("no_action", "lead")]


def test_pages_with_customer_data_are_never_cached(logged_in, agent, customer, api_client):
    panel = logged_in(agent).get(f"/panel/?customer={customer.external_id}")
    api = api_client.get(f"/api/v1/customers/{customer.external_id}/")

    for response in (panel, api):
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_action_on_an_unknown_decision_is_404(logged_in, agent):
    response = logged_in(agent).post(reverse("decision_action", args=[uuid.uuid4()]), {"kind": "no_action"})

    assert response.status_code == 404


def test_actions_need_a_csrf_token(agent, customer):
    client = Client(enforce_csrf_checks=True)
    client.login(username="agent", password=PASSWORD)
    decision = stored_decision(customer=customer, agent=agent)

    response = client.post(reverse("decision_action", args=[decision.pk]), {"kind": "no_action"})

    assert response.status_code == 403
    assert not DecisionAction.objects.exists()


def test_logging_an_action_by_get_is_not_allowed(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)

    response = logged_in(agent).get(reverse("decision_action", args=[decision.pk]))

    assert response.status_code == 405


@pytest.mark.parametrize("path", ["/admin/", "/admin/retention/team/", "/admin/auth/user/", "/admin/retention/offer/"])
def test_an_agent_never_sees_an_admin_page(logged_in, agent, other_team, path):
    client = logged_in(agent)

    response = client.get(path)
    landing = client.get(path, follow=True)

    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert (landing.resolver_match.namespace, landing.resolver_match.url_name) == ("admin", "login")
    assert other_team.name not in landing.text


def test_the_panel_shows_only_the_agents_own_team_budget(logged_in, agent, other_team, customer):
    other_team.monthly_budget_cents = 987_600
    other_team.save()
    stranger = AgentProfileFactory(user=UserFactory(username="stranger"), team=other_team).user
    theirs = stored_decision(customer=customer, agent=stranger)
    DecisionAction.objects.create(
        decision=theirs, kind="accepted", offer_code="loyal-10", channel="phone", cost_cents=12_345
    )
    ours = stored_decision(customer=customer, agent=agent)
    client = logged_in(agent)

    page = client.get(f"/panel/?customer={customer.external_id}&decision={ours.pk}").text
    fragment = client.post(
        reverse("decision_action", args=[ours.pk]), {"kind": "no_action"}, HTTP_HX_REQUEST="true"
    ).text

    for html in (page, fragment):
        assert "Budget van Team Utrecht deze maand" in html
        assert "€\u00a00,00 van €\u00a05.000,00 besteed" in html
        assert "Team Rotterdam" not in html
        assert "9.876,00" not in html and "123,45" not in html


def test_another_teams_advice_shows_the_viewers_budget_not_theirs(logged_in, agent, other_team, customer):
    stranger = AgentProfileFactory(user=UserFactory(username="stranger"), team=other_team).user
    theirs = stored_decision(customer=customer, agent=stranger)

    html = logged_in(agent).get(f"/panel/?customer={customer.external_id}&decision={theirs.pk}").text

    assert "Team Utrecht" in html
    assert "Team Rotterdam" not in html


def test_an_anonymous_visitor_sees_only_the_login_form(client, customer):
    response = client.get(f"/panel/?customer={customer.external_id}", follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert 'name="username"' in response.text
    assert customer.display_name not in response.text
    assert "risk" not in response.text.lower() and "risico" not in response.text


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/panel/", "frame-ancestors 'self' https://crm.example.nl"),
        ("/login/", "frame-ancestors 'self' https://crm.example.nl"),
        ("/review/log/", "frame-ancestors 'self'"),
        ("/admin/login/", "frame-ancestors 'self'"),
        ("/api/v1/offers/", "frame-ancestors 'self'"),
    ],
)
def test_only_the_panel_may_be_framed_by_the_crm(db, settings, path, policy):
    settings.CRM_ORIGINS = ["https://crm.example.nl"]

    response = Client().get(path)

    directives = response["Content-Security-Policy"].split("; ")
    assert directives[-1] == policy
    own_page = not path.startswith(("/admin/", "/api/"))
    assert ("script-src 'self'" in directives and "object-src 'none'" in directives) is own_page
    assert not any("unsafe-eval" in directive or ("script-src" in directive and "unsafe-inline" in directive)
                   for directive in directives)  # fmt: skip


def test_an_address_with_no_page_gets_a_page_in_the_readers_language_with_a_way_back(logged_in, agent):
    as_agent = logged_in(agent).get("/panel/nergens/")
    anonymous = Client().get("/nergens/")
    api = Client().get("/api/v1/nergens/")

    assert as_agent.status_code == 404 and "Pagina niet gevonden" in as_agent.text
    assert 'href="/panel/"' in as_agent.text
    assert anonymous.status_code == 404 and 'href="/login/"' in anonymous.text
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_a_server_error_page_needs_nothing_that_could_fail_itself():
    page = render_to_string("500.html")

    assert "Er ging iets mis" in page and "Something went wrong" in page and "{%" not in page
