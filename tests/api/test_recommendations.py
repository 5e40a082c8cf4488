import pytest

from retention.api.views_recommendations import recommendation_json
from retention.models import Decision, PolicyConfig
from tests.conftest import api_client_with
from tests.factories import (
    AgentProfileFactory,
    ContractFactory,
    CustomerFactory,
    OfferFactory,
    TariffFactory,
    UserFactory,
)

URL = "/api/v1/recommendations/"


@pytest.fixture
def customer(db):
    TariffFactory()
    OfferFactory(code="gift-router", kind="gift", discount_percent=0, duration_months=0, fixed_cost_cents=2_500)
    OfferFactory(code="korting-10", discount_percent=10, duration_months=6)
    customer = CustomerFactory(external_id="NL1234567")
    ContractFactory(customer=customer)
    return customer


def test_a_recommendation_names_the_fee_offers_are_priced_on_and_the_teams_budget(
    churn_champion, customer, api_client, agent
):
    asked_by_agent = api_client.post(
        URL, {"customer_id": "NL1234567", "channel": "phone", "agent": "agent"}, format="json"
    )
    asked_by_crm = api_client.post(URL, {"customer_id": "NL1234567", "channel": "api"}, format="json")

    body = asked_by_agent.json()
    decision = Decision.objects.get(pk=body["id"])
    assert body["renewal_fee_cents"] == decision.renewal_fee_cents > 0
    team = agent.agent_profile.team
    assert body["team_budget"] == {
        "team": team.name,
        "budget_cents": team.monthly_budget_cents,
        "spent_cents": 0,
        "held_cents": 0,
        "remaining_cents": team.monthly_budget_cents,
        "overspent_cents": 0,
        "status": "green",
    }
    assert asked_by_crm.json()["team_budget"] is None


def test_a_customer_without_a_known_fee_gets_no_offers_and_no_claim_that_none_is_needed(
    churn_champion, customer, api_client
):
    CustomerFactory(external_id="NL7654321")  # no contract

    body = api_client.post(URL, {"customer_id": "NL7654321", "channel": "api"}, format="json").json()

    assert (body["offers"], body["renewal_fee_cents"], body["no_offer_needed"]) == ([], None, False)


def test_only_a_user_with_an_agent_profile_is_named_as_the_agent(churn_champion, customer, api_client, outsider):
    response = api_client.post(
        URL, {"customer_id": "NL1234567", "channel": "phone", "agent": "outsider"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["agent"] == ["no active agent named 'outsider'"]
    assert not Decision.objects.exists()


def test_an_administrator_is_not_named_as_the_agent_but_a_team_lead_is(churn_champion, customer, api_client, lead):
    AgentProfileFactory(user=UserFactory(username="admin", is_superuser=True), role="admin", authority_level=3)
    body = {"customer_id": "NL1234567", "channel": "phone"}

    as_admin = api_client.post(URL, {**body, "agent": "admin"}, format="json")
    as_lead = api_client.post(URL, {**body, "agent": "lead"}, format="json")

    assert as_admin.status_code == 400
    assert as_admin.json()["error"]["fields"]["agent"] == ["'admin' is an administrator: name the agent on the call"]
    assert as_lead.status_code == 201
    assert Decision.objects.get().agent == lead


def test_a_client_bound_to_another_team_cannot_ask_in_this_teams_agents_name(
    churn_champion, customer, agent, other_team
):
    bound, record = api_client_with(["score"], name="crm-rotterdam")
    record.teams.set([other_team])

    named = bound.post(URL, {"customer_id": "NL1234567", "channel": "phone", "agent": "agent"}, format="json")
    unnamed = bound.post(URL, {"customer_id": "NL1234567", "channel": "api"}, format="json")

    assert named.status_code == 403
    assert named.json()["error"]["message"] == "this API client speaks for no agent named 'agent'"
    assert unnamed.status_code == 201
    assert Decision.objects.get().api_client == record


def test_a_team_bound_client_learns_nothing_of_who_works_outside_its_teams(churn_champion, customer, agent, other_team):
    AgentProfileFactory(user=UserFactory(username="admin"), role="admin", team=None, authority_level=3)
    bound, record = api_client_with(["score"], name="crm-rotterdam")
    record.teams.set([other_team])

    answers = {
        name: bound.post(URL, {"customer_id": "NL1234567", "channel": "phone", "agent": name}, format="json")
        for name in ("agent", "admin", "nobody")
    }

    assert {name: response.status_code for name, response in answers.items()} == {
        "agent": 403,
        "admin": 403,
        "nobody": 403,
    }
    assert {response.json()["error"]["message"].split("named")[0] for response in answers.values()} == {
        "this API client speaks for no agent "
    }
    assert not Decision.objects.exists()


def test_advice_a_one_team_client_asks_without_an_agent_spends_that_teams_budget(
    churn_champion, customer, other_team, team
):
    other_team.monthly_budget_cents = 1_000  # less than the router's € 25
    other_team.save()
    bound, record = api_client_with(["score", "write_outcomes"], name="crm-rotterdam")
    record.teams.set([other_team])
    for_two_teams, two_record = api_client_with(["score"], name="crm-two-teams")
    two_record.teams.set([other_team, team])

    body = bound.post(URL, {"customer_id": "NL1234567", "channel": "api", "limit": 0}, format="json").json()
    accepted = bound.post(
        "/api/v1/outcomes/",
        {"recommendation_id": body["id"], "offer_code": "gift-router", "result": "accepted",
         "override_reason": "customer_request"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="router",
    )  # fmt: skip
    unsure = for_two_teams.post(URL, {"customer_id": "NL1234567", "channel": "api"}, format="json").json()

    assert body["team_budget"]["team"] == other_team.name
    assert Decision.objects.get(pk=body["id"]).team == other_team
    assert next(o for o in body["offers"] if o["code"] == "gift-router")["over_team_budget"]
    assert accepted.status_code == 422
    assert "costs more than the team's budget has left this month" in str(accepted.json()["error"]["fields"])
    assert accepted.json()["error"]["refusals"] == ["team_budget_spent"]
    assert unsure["team_budget"] is None


def test_an_offer_made_through_the_api_holds_its_cost_in_the_team_budget_until_answered(churn_champion, customer, team):
    bound, record = api_client_with(["score", "write_outcomes"], name="crm-utrecht")
    record.teams.set([team])
    body = bound.post(URL, {"customer_id": "NL1234567", "channel": "api", "limit": 0}, format="json").json()
    offer = next(o for o in body["offers"] if not o["needs_escalation"])
    made = {"recommendation_id": body["id"], "offer_code": offer["code"], "result": "presented"}
    if offer["code"] != body["recommended_offer"]:
        made["override_reason"] = "customer_request"
    response = bound.post("/api/v1/outcomes/", made, format="json", HTTP_IDEMPOTENCY_KEY="made-1")
    assert response.status_code == 201, response.json()

    again = bound.post(URL, {"customer_id": "NL1234567", "channel": "api"}, format="json").json()["team_budget"]

    assert (again["spent_cents"], again["held_cents"]) == (0, offer["cost_cents"])
    assert again["remaining_cents"] == team.monthly_budget_cents - offer["cost_cents"]


@pytest.mark.exploring
@pytest.mark.parametrize(("share", "field"), [("exploration_share", "explored"), ("control_share", "control_group")])
def test_a_recommendation_says_when_it_explores_or_the_customer_is_in_the_control_group(
    churn_champion, customer, api_client, share, field
):
    PolicyConfig.objects.create(version=1, values={share: 1.0})

    body = api_client.post(URL, {"customer_id": "NL1234567", "channel": "api"}, format="json").json()

    decision = Decision.objects.get(pk=body["id"])
    if field == "control_group":
        assert body[field] is True and decision.control_group is True and body["explored"] is False
    else:  # explored only where the draw changed the recommendation
        changed = decision.recommended_offer_code != decision.greedy_offer_code
        assert body["explored"] is decision.explored is changed and body["control_group"] is False


def test_a_recommendation_has_the_documented_fields(churn_champion, customer, api_client):
    response = api_client.post(URL, {"customer_id": "NL1234567", "channel": "phone", "limit": 0}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {
        "id",
        "customer_id",
        "churn_probability",
        "risk_band",
        "reasons",
        "recommended_offer",
        "no_offer_needed",
        "explored",
        "control_group",
        "stay_probability_without_offer",
        "horizon_months",
        "offers",
        "model_version",
        "policy_version",
        "created_at",
    }
    assert body["customer_id"] == "NL1234567"
    assert body["horizon_months"] == 12
    assert 0 < body["stay_probability_without_offer"] < 1
    assert body["no_offer_needed"] is (body["recommended_offer"] is None)
    assert body["model_version"] == "churn-v1"
    assert body["response_model_version"] is None  # no offer-response model: the catalog's priors ranked them
    assert {o["code"] for o in body["offers"]} == {"gift-router", "korting-10"}
    assert set(body["offers"][0]) >= {
        "code",
        "title",
        "kind",
        "expected_acceptance",
        "expected_net_value_cents",
        "cost_cents",
        "authority_level",
        "needs_escalation",
        "within_authority",
        "over_team_budget",
        "propensity",
    }
    assert all(isinstance(reason["text"], str) for reason in body["reasons"])
    assert {o["code"]: o["required_authority_level"] for o in body["offers"]} == {"gift-router": 1, "korting-10": 1}
    assert Decision.objects.get(pk=body["id"]).api_client is not None


def test_limit_caps_the_offers_listed(churn_champion, customer, api_client):
    response = api_client.post(URL, {"customer_id": "NL1234567", "channel": "chat", "limit": 1}, format="json")
    assert len(response.json()["offers"]) == 1


def test_reasons_come_in_english_on_request(churn_champion, customer, api_client):
    body = api_client.post(URL, {"customer_id": "NL1234567", "channel": "chat", "language": "en"}, format="json").json()
    decision = Decision.objects.get(pk=body["id"])
    assert [r["text"] for r in body["reasons"]] == [r["text"]["en"] for r in decision.reasons]


def test_without_a_token_the_api_answers_401(customer, client):
    response = client.post(URL, {"customer_id": "NL1234567", "channel": "phone"}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_client_without_the_score_scope_gets_403(customer, read_only_api_client):
    response = read_only_api_client.post(URL, {"customer_id": "NL1234567", "channel": "phone"}, format="json")
    assert response.status_code == 403


def test_an_unknown_customer_is_404(churn_champion, api_client):
    response = api_client.post(URL, {"customer_id": "nobody", "channel": "phone"}, format="json")
    assert response.status_code == 404


def test_bad_input_lists_the_fields(db, api_client):
    response = api_client.post(URL, {"channel": "fax", "limit": -1}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"customer_id", "channel", "limit"}


def test_without_a_trained_model_the_api_answers_422(customer, api_client):
    from ml.registry import champions

    champions.clear()
    response = api_client.post(URL, {"customer_id": "NL1234567", "channel": "phone"}, format="json")
    assert response.status_code == 422
    assert "train_models" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("recommended", "greedy", "needed"),
    [("korting-10", "korting-10", False), ("", "", True), ("", "korting-10", False), ("gift-router", "", False)],
    ids=["recommended", "none-worth-its-cost", "held-back-by-exploration-or-control", "explored-an-offer"],
)
def test_no_offer_needed_only_when_making_no_offer_is_worth_most(recommended, greedy, needed):
    decision = Decision(recommended_offer_code=recommended, greedy_offer_code=greedy)

    assert decision.no_offer_needed is needed


def test_the_recommended_offer_is_listed_even_when_it_ranks_below_the_limit(customer):
    offers = [{"code": code, "title": {"nl": code, "en": code}} for code in ("a", "b", "c", "d", "e")]
    decision = Decision(customer=customer, offers=offers, recommended_offer_code="e", greedy_offer_code="e",
                        churn_probability=0.3, risk_band="medium", reasons=[],
                        model_versions={"churn": "churn-v1"})  # fmt: skip

    body = recommendation_json(decision, language="en", limit=3)

    assert [offer["code"] for offer in body["offers"]] == ["a", "b", "c", "e"]
    assert [offer["code"] for offer in recommendation_json(decision, language="en", limit=0)["offers"]] == list("abcde")


def test_a_retry_with_the_same_idempotency_key_returns_the_first_advice_and_stores_no_second(
    churn_champion, customer, api_client
):
    body = {"customer_id": "NL1234567", "channel": "api"}
    first = api_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    again = api_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    other_channel = api_client.post(URL, {**body, "channel": "phone"}, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    other_reason = api_client.post(URL, {**body, "reason": "verhuizing"}, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    in_english = api_client.post(URL, {**body, "language": "en"}, format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    without_key = api_client.post(URL, body, format="json")

    assert (first.status_code, again.status_code, other_channel.status_code) == (201, 201, 409)
    # The reason is stored with the advice; the language and the number of offers shown only present it.
    assert (other_reason.status_code, in_english.status_code) == (409, 201)
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert without_key.json()["id"] != first.json()["id"]
    assert Decision.objects.count() == 2


def test_an_empty_idempotency_key_is_refused_not_taken_for_none(churn_champion, customer, api_client):
    body = {"customer_id": "NL1234567", "channel": "api"}

    response = api_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="")

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]["fields"]
    assert not Decision.objects.exists()


def test_a_customer_id_sent_as_a_whole_number_is_read_as_its_digits_and_one_with_a_fraction_is_refused(
    churn_champion, customer, api_client
):
    CustomerFactory(external_id="124")

    refused = api_client.post(URL, {"customer_id": 124.5, "channel": "phone"}, format="json")
    taken = api_client.post(URL, {"customer_id": 124, "channel": "phone"}, format="json")

    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"customer_id": ["must be text (a JSON string), not a number"]}
    assert taken.status_code == 201, taken.content
    assert taken.json()["customer_id"] == "124"


def test_an_empty_optional_idempotency_key_is_told_not_to_be_empty_rather_than_required(customer, api_client):
    body = {"customer_id": "NL1234567", "channel": "api"}

    response = api_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY=" ")

    assert response.json()["error"]["fields"]["Idempotency-Key"] == [
        "must not be empty when sent: send a unique key of 1 to 80 printable characters per action, or leave the "
        "header out"
    ]


def test_a_missing_scope_is_named(customer, read_only_api_client):
    response = read_only_api_client.post(URL, {"customer_id": "NL1234567", "channel": "phone"}, format="json")

    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": "This API client lacks the scope this operation needs: score.",
    }
