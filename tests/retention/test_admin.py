"""The admin: policy versions checked as the service reads them, added and never edited or deleted; the model
registry read-only."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from retention.models import AgentProfile, ApiClient, Offer, PolicyConfig, Tariff
from retention.tokens import token_hash
from tests.conftest import PASSWORD
from tests.factories import AgentProfileFactory, UserFactory

ADD = "/admin/retention/policyconfig/add/"
DEMO_POLICY = {
    "horizon_months": 12,
    "margin_rate": 0.5,
    "exploration_share": 0.05,
    "control_share": 0.0,
    "budget_per_customer_cents": 30000,
    "contact_policy_days": 30,
    "recent_offer_days": 14,
    "price_parity": True,
    "risk_bands": {"medium": 0.25, "high": 0.5},
    "authority": {
        "1": {"max_discount_percent": 15, "max_cost_cents": 6000},
        "2": {"max_discount_percent": 30, "max_cost_cents": 20000},
        "3": {"max_discount_percent": 50, "max_cost_cents": 100000},
    },
}


@pytest.fixture
def superuser_client(db) -> Client:
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def in_force(db) -> PolicyConfig:
    return PolicyConfig.objects.create(version=1, values=DEMO_POLICY)


def add(client: Client, version: int, values) -> object:
    return client.post(ADD, {"version": version, "values": json.dumps(values)})


def test_a_policy_the_service_could_not_read_is_refused_with_the_reason_and_nothing_stored(superuser_client, in_force):
    response = add(superuser_client, 2, {**DEMO_POLICY, "margin_rate": "0,5"})

    assert response.status_code == 200
    assert "margin_rate must be a number, not &#x27;0,5&#x27;" in response.text
    assert list(PolicyConfig.objects.values_list("version", flat=True)) == [1]


def test_every_problem_of_a_policy_is_listed_at_once(superuser_client, in_force):
    response = add(superuser_client, 2, {**DEMO_POLICY, "horizon_months": 0, "price_parity": "ja"})

    assert "horizon_months must be between 1 and 60, not 0" in response.text
    assert "price_parity must be true or false" in response.text


def test_an_exploration_share_too_small_to_evaluate_is_refused(superuser_client, in_force):
    response = add(superuser_client, 2, {**DEMO_POLICY, "exploration_share": 0.0004})

    assert "exploration_share must be 0 or at least 0.001" in response.text
    assert PolicyConfig.objects.count() == 1


def test_authority_that_shrinks_as_the_level_rises_is_refused(superuser_client, in_force):
    authority = {**DEMO_POLICY["authority"], "3": {"max_discount_percent": 15, "max_cost_cents": 6000}}

    response = add(superuser_client, 2, {**DEMO_POLICY, "authority": authority})

    assert "authority level 3 max_discount_percent (15) is below level 2&#x27;s (30)" in response.text
    assert "authority level 3 max_cost_cents (6000) is below level 2&#x27;s (20000)" in response.text
    assert PolicyConfig.objects.count() == 1


TARIFF_ADD = "/admin/retention/tariff/add/"
OFFER_ADD = "/admin/retention/offer/add/"
A_TARIFF = {
    "code": "nieuw",
    "name": "Nieuw",
    "products": '["internet"]',
    "monthly_fee_cents": 4000,
    "segment": "consumer",
}
AN_OFFER = {
    "code": "cadeau", "kind": "gift", "title_nl": "Cadeau", "title_en": "Gift", "discount_percent": "0",
    "duration_months": "0", "commitment_months": "12", "fixed_cost_cents": "3000", "eligibility": "{}",
    "authority_level": "1", "prior_uplift": "0.1", "is_active": "on",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"products": '[["internet"]]'}, "must be a non-empty list of products"),
        ({"products": '"internet"'}, "must be a non-empty list of products"),
        ({"products": '["Internet"]'}, "has unknown values Internet (known: fixed, internet, mobile, tv)"),
        ({"monthly_fee_cents": 0}, "moet minstens 100 cent zijn (€ 1): minder is een bedrag dat in euro"),
        ({"monthly_fee_cents": 45}, "moet minstens 100 cent zijn (€ 1): minder is een bedrag dat in euro"),
        ({"monthly_fee_cents": 2_000_000}, "hoogstens 1000000"),
        ({"code": "ü ü"}, "slug"),
        ({"active_from": "2026-12-31", "active_until": "2026-01-01"}, "eindigt voordat het begint"),
    ],
)
def test_a_tariff_every_recommendation_could_not_read_is_refused(superuser_client, changes, message):
    response = superuser_client.post(TARIFF_ADD, {**A_TARIFF, **changes})

    assert response.status_code == 200
    assert message in response.text
    assert not Tariff.objects.exists()


def test_a_sound_tariff_is_added(superuser_client):
    response = superuser_client.post(TARIFF_ADD, A_TARIFF)

    assert response.status_code == 302
    assert Tariff.objects.get().products == ["internet"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fixed_cost_cents": "0"}, "een aanbod moet iets kosten"),
        ({"fixed_cost_cents": "0", "discount_percent": "50"}, "moet ingevuld zijn als het aanbod een korting geeft"),
        ({"fixed_cost_cents": "0", "duration_months": "6"}, "een korting van 0% geeft niets"),
        ({"duration_months": "2000000000", "discount_percent": "10"}, "hoogstens 60"),
        ({"fixed_cost_cents": "9223372036854775807"}, "hoogstens 10000000"),
    ],
)
def test_an_offer_that_gives_nothing_is_refused(superuser_client, changes, message):
    response = superuser_client.post(OFFER_ADD, {**AN_OFFER, **changes})

    assert response.status_code == 200
    assert message in response.text
    assert not Offer.objects.exists()


@pytest.mark.parametrize(
    ("eligibility", "message"),
    [
        ({"requires_products": [["internet"]]}, "requires_products must be a non-empty list of products"),
        ({"segments": ["consumer", "private"]}, "segments has unknown values private (known: business, consumer)"),
    ],
)
def test_eligibility_rules_an_offer_could_not_be_checked_on_are_refused_naming_the_rule(
    superuser_client, eligibility, message
):
    response = superuser_client.post(OFFER_ADD, {**AN_OFFER, "eligibility": json.dumps(eligibility)})

    assert response.status_code == 200
    assert message in response.text
    assert not Offer.objects.exists()


def test_a_gift_with_its_cost_is_added(superuser_client):
    response = superuser_client.post(OFFER_ADD, AN_OFFER)

    assert response.status_code == 302
    assert Offer.objects.get().fixed_cost_cents == 3000


def test_a_new_version_must_come_after_the_one_in_force(superuser_client, in_force):
    response = add(superuser_client, 1, DEMO_POLICY)

    assert "een nieuwe beleidsversie komt na de versie die nu geldt (1)" in response.text
    assert PolicyConfig.objects.count() == 1


def test_an_administrator_who_chose_english_reads_the_admins_checks_and_help_in_english(in_force):
    administrator = AgentProfileFactory(
        user=UserFactory(username="admin-en", is_staff=True, is_superuser=True),
        role=AgentProfile.Role.ADMIN,
        language="en",
    ).user
    client = Client()
    client.force_login(administrator)

    tariff = client.post(TARIFF_ADD, {**A_TARIFF, "monthly_fee_cents": 45, "active_from": "2026-12-31",
                                      "active_until": "2026-01-01"})  # fmt: skip
    offer = client.post(OFFER_ADD, {**AN_OFFER, "fixed_cost_cents": "0"})
    policy = add(client, 1, DEMO_POLICY)

    assert "must be at least 100 cents (€ 1): less is a fee typed in euros rather than cents" in tariff.text
    assert "ends before it starts" in tariff.text
    assert "What a new customer pays a month, in cents." in tariff.text
    assert "an offer must cost something" in offer.text
    assert "a new policy version comes after the one in force (1)" in policy.text
    assert not Tariff.objects.exists() and not Offer.objects.exists()


def test_the_admin_gives_help_texts_in_dutch(superuser_client):
    page = superuser_client.get(TARIFF_ADD)

    assert "Wat een nieuwe klant per maand betaalt, in centen." in page.text


def test_a_valid_policy_is_added_with_who_added_it(superuser_client, in_force):
    response = add(superuser_client, 2, {**DEMO_POLICY, "margin_rate": 0.4})

    assert response.status_code == 302
    added = PolicyConfig.objects.get(version=2)
    assert (added.values["margin_rate"], added.created_by.username) == (0.4, "root")


def test_the_add_form_starts_from_the_version_in_force(superuser_client, in_force):
    form = superuser_client.get(ADD).context["adminform"].form
    assert form.initial["version"] == 2
    assert {name: form.initial["values"][name] for name in DEMO_POLICY} == DEMO_POLICY


def test_a_stored_version_is_neither_edited_nor_deleted(superuser_client, in_force):
    change = f"/admin/retention/policyconfig/{in_force.pk}/change/"

    edited = superuser_client.post(change, {"version": 1, "values": json.dumps({**DEMO_POLICY, "margin_rate": 0.9})})
    deleted = superuser_client.post(f"/admin/retention/policyconfig/{in_force.pk}/delete/", {"post": "yes"})

    assert (edited.status_code, deleted.status_code) == (403, 403)
    in_force.refresh_from_db()
    assert in_force.values["margin_rate"] == 0.5


@pytest.mark.parametrize("model", ["modelversion", "modelpromotion"])
def test_model_versions_and_their_decisions_are_read_only_in_the_admin(superuser_client, model):
    assert superuser_client.get(f"/admin/ml/{model}/add/").status_code == 403
    assert superuser_client.get(f"/admin/ml/{model}/").status_code == 200


API_CLIENT_ADD = "/admin/retention/apiclient/add/"


def test_an_api_client_added_in_the_admin_gets_a_working_token_shown_once(superuser_client, team):
    response = superuser_client.post(
        API_CLIENT_ADD, {"name": "crm-a", "scopes": ["score", "read"], "teams": [team.pk], "is_active": "on"}
    )
    second = superuser_client.post(API_CLIENT_ADD, {"name": "crm-b", "scopes": ["read"], "is_active": "on"})

    assert response.status_code == second.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "Het token staat hier één keer en daarna nooit meer" in response.text  # the admin's language
    token = re.search(r'id="token" type="text" readonly size="60" value="([^"]+)"', response.text).group(1)
    client = ApiClient.objects.get(name="crm-a")
    assert (client.scopes, list(client.teams.all()), client.token_prefix) == (["read", "score"], [team], token[:8])
    assert client.token_hash == token_hash(token) != ApiClient.objects.get(name="crm-b").token_hash
    assert APIClient().get("/api/v1/decisions/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert token not in superuser_client.get(f"/admin/retention/apiclient/{client.pk}/change/").text


def test_an_api_client_needs_a_known_scope_and_a_name_of_its_own(superuser_client):
    superuser_client.post(API_CLIENT_ADD, {"name": "crm-a", "scopes": ["read"], "is_active": "on"})

    unknown = superuser_client.post(API_CLIENT_ADD, {"name": "crm-b", "scopes": ["admin"], "is_active": "on"})
    taken = superuser_client.post(API_CLIENT_ADD, {"name": "crm-a", "scopes": ["read"], "is_active": "on"})

    assert unknown.context["adminform"].form.errors["scopes"][0].startswith("Selecteer een geldige keuze. admin")
    assert list(taken.context["adminform"].form.errors) == ["name"]
    assert list(ApiClient.objects.values_list("name", flat=True)) == ["crm-a"]


def test_an_api_client_added_inactive_is_stored_inactive(superuser_client):
    response = superuser_client.post(API_CLIENT_ADD, {"name": "crm-a", "scopes": ["read"]})

    token = re.search(r'value="([^"]{20,})"', response.text).group(1)
    assert not ApiClient.objects.get(name="crm-a").is_active
    assert APIClient().get("/api/v1/decisions/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401


def test_the_next_policy_starts_from_the_one_in_force_with_settings_added_since_at_their_defaults(
    superuser_client, in_force
):
    initial = superuser_client.get(ADD).context["adminform"].form.initial["values"]

    assert initial["offer_hold_days"] == 14
    assert initial["margin_rate"] == DEMO_POLICY["margin_rate"]


def test_a_hold_longer_than_a_year_is_refused(superuser_client, in_force):
    response = add(superuser_client, 2, {**DEMO_POLICY, "offer_hold_days": 100_000})

    assert "offer_hold_days must be 0 to 365 days" in response.text
    assert list(PolicyConfig.objects.values_list("version", flat=True)) == [1]
