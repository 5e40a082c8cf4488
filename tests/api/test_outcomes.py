import uuid

import pytest

from retention.models import DecisionAction
from retention.services import outcomes
from tests.api.factories import OFFERS, DecisionFactory
from tests.concurrency import ReadTogether, run_at_once
from tests.conftest import api_client_with
from tests.factories import AgentProfileFactory, TeamFactory, UserFactory

URL = "/api/v1/outcomes/"


@pytest.fixture
def decision(db):
    return DecisionFactory()


def post(client, body: dict, key: str | None = "key-1"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(URL, body, format="json", **headers)


def reason_for(decision, offer_code: str) -> dict:
    """What accepting this offer without having made it needs: a reason, unless it is the recommended one."""
    return {} if offer_code == decision.recommended_offer_code else {"override_reason": "customer_request"}


def accepted(decision, **fields) -> dict:
    return {"recommendation_id": str(decision.pk), "offer_code": "korting-10", "result": "accepted", **fields}


def test_an_outcome_is_appended_to_the_recommendations_log(decision, api_client, agent):
    response = post(api_client, accepted(decision, agent="agent"))
    assert response.status_code == 201, response.content
    body = response.json()
    action = DecisionAction.objects.get()
    assert body["id"] == action.pk
    assert (body["result"], body["offer_code"], body["agent"], body["cost_cents"]) == (
        "accepted",
        "korting-10",
        "agent",
        3300,
    )
    assert action.api_client is not None and action.agent == agent


@pytest.mark.parametrize("administrator", ["admin role", "superuser"])
def test_an_administrator_is_not_named_as_the_agent_of_an_outcome(decision, api_client, administrator):
    user = UserFactory(username="admin", is_superuser=administrator == "superuser")
    AgentProfileFactory(user=user, role="admin" if administrator == "admin role" else "agent", authority_level=3)

    response = post(api_client, accepted(decision, agent="admin"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["agent"] == ["'admin' is an administrator: name the agent on the call"]
    assert not DecisionAction.objects.exists()


def test_only_the_deciding_agent_or_their_teams_lead_logs_an_outcome_on_the_advice(db, api_client, agent, lead, team):
    decision = DecisionFactory(agent=agent, team=team)
    colleague = AgentProfileFactory(user=UserFactory(username="colleague"), team=team).user
    stranger = AgentProfileFactory(user=UserFactory(username="r-agent"), team=TeamFactory(name="Team Zwolle")).user

    refused = [post(api_client, accepted(decision, agent=u.username), key=u.username) for u in (colleague, stranger)]
    by_lead = post(api_client, accepted(decision, agent="lead"), key="lead")

    assert [r.status_code for r in refused] == [403, 403]
    assert "may not log what happened on advice given to another agent" in refused[0].json()["error"]["message"]
    assert by_lead.status_code == 201
    assert list(DecisionAction.objects.values_list("agent__username", flat=True)) == ["lead"]


def test_advice_asked_without_an_agent_is_answered_by_any_agent(db, api_client, agent):
    response = post(api_client, accepted(DecisionFactory(agent=None, team=None), agent="agent"))
    assert response.status_code == 201


def test_an_offer_made_is_logged_and_then_accepted_without_repeating_its_reason(decision, api_client):
    other = next(o["code"] for o in decision.offers if o["code"] != decision.recommended_offer_code)
    made = {"recommendation_id": str(decision.pk), "offer_code": other, "result": "presented"}

    without_reason = post(api_client, made, key="p0")
    presented = post(api_client, {**made, "override_reason": "better_fit"}, key="p1")
    answered = post(api_client, {**made, "result": "accepted"}, key="p2")

    assert without_reason.status_code == 422
    assert (presented.status_code, answered.status_code) == (201, 201)
    assert list(DecisionAction.objects.values_list("kind", "override_reason")) == [
        ("presented", "better_fit"),
        ("accepted", ""),
    ]


def test_a_refusal_about_the_result_is_reported_under_result(decision, api_client):
    code = decision.recommended_offer_code
    assert post(api_client, accepted(decision, offer_code=code), key="a").status_code == 201

    no_action = post(
        api_client, {"recommendation_id": str(decision.pk), "offer_code": None, "result": "no_action"}, key="b"
    )

    assert no_action.status_code == 422
    assert list(no_action.json()["error"]["fields"]) == ["result"]


def test_an_outcome_for_another_offer_than_the_recommended_one_carries_its_override_reason(decision, api_client):
    other = next(offer["code"] for offer in decision.offers if offer["code"] != decision.recommended_offer_code)

    response = post(api_client, accepted(decision, offer_code=other, override_reason="customer_request"))

    assert response.status_code == 201, response.content
    assert response.json()["override_reason"] == "customer_request"
    assert DecisionAction.objects.get().override_reason == "customer_request"


def test_an_unknown_override_reason_is_refused(decision, api_client):
    response = post(api_client, accepted(decision, override_reason="because"))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["override_reason"] == [
        '"because" is not a valid choice; use one of: customer_request, better_fit, already_has, service_issue, other.'
    ]
    assert not DecisionAction.objects.exists()


def test_a_second_offer_accepted_on_one_recommendation_is_refused_until_the_first_is_corrected(decision, api_client):
    first, second = [offer["code"] for offer in decision.offers if offer["within_authority"]][:2]
    assert (
        post(api_client, accepted(decision, offer_code=first, **reason_for(decision, first)), key="a").status_code
        == 201
    )

    refused = post(api_client, accepted(decision, offer_code=second, **reason_for(decision, second)), key="b")
    corrected = post(api_client, {**accepted(decision, offer_code=first), "result": "declined"}, key="c")
    again = post(api_client, accepted(decision, offer_code=second, **reason_for(decision, second)), key="d")

    assert refused.status_code == 422
    assert "is already accepted on this decision" in refused.json()["error"]["fields"]["offer_code"][0]
    assert (corrected.status_code, again.status_code) == (201, 201)


def test_an_acceptance_logged_by_mistake_is_undone_and_only_a_standing_one(decision, api_client):
    nothing_yet = post(api_client, {**accepted(decision), "result": "undone"}, key="a")
    assert post(api_client, accepted(decision), key="b").status_code == 201

    undone = post(api_client, {**accepted(decision), "result": "undone"}, key="c")

    assert nothing_yet.status_code == 422
    assert "nothing_to_undo" in str(nothing_yet.json()["error"])
    assert undone.status_code == 201 and undone.json()["result"] == "undone"
    assert undone.json()["cost_cents"] == 0
    assert list(decision.actions.values_list("kind", flat=True)) == ["accepted", "undone"]


def test_an_offer_the_customer_accepted_on_another_recommendation_is_422_there(decision, api_client):
    earlier = DecisionFactory(customer=decision.customer)
    assert post(api_client, accepted(decision), key="a").status_code == 201

    refused = post(api_client, accepted(earlier), key="b")

    assert refused.status_code == 422
    assert "'korting-10' was accepted by this customer within the last 14 days" in str(
        refused.json()["error"]["fields"]["offer_code"]
    )
    assert not earlier.actions.exists()


def test_a_client_bound_to_a_team_answers_only_for_that_teams_agents_and_advice(db, agent, other_team):
    bound, record = api_client_with(["write_outcomes"], name="crm-rotterdam")
    record.teams.set([other_team])
    utrecht = DecisionFactory(agent=agent, team=agent.agent_profile.team)
    rotterdam_agent = AgentProfileFactory(user=UserFactory(username="r-agent"), team=other_team).user
    rotterdam = DecisionFactory(agent=rotterdam_agent, team=other_team)

    other_teams_advice = post(bound, accepted(utrecht), key="a")
    other_teams_agent = post(bound, accepted(rotterdam, agent="agent"), key="b")
    own = post(bound, accepted(rotterdam, agent="r-agent"), key="c")

    assert (other_teams_advice.status_code, other_teams_agent.status_code, own.status_code) == (403, 403, 201)
    assert "does not speak for the team of recommendation" in other_teams_advice.json()["error"]["message"]
    assert list(DecisionAction.objects.values_list("decision_id", flat=True)) == [rotterdam.pk]


def test_an_outcome_replayed_ten_times_leaves_one_row_and_the_first_answer(decision, api_client):
    first = post(api_client, accepted(decision))
    replays = [post(api_client, accepted(decision)) for _ in range(10)]
    assert DecisionAction.objects.count() == 1
    assert {(r.status_code, r.content) for r in replays} == {(first.status_code, first.content)}
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in replays)
    assert "Idempotent-Replayed" not in first.headers


def test_the_same_key_with_another_body_is_409(decision, api_client):
    post(api_client, accepted(decision))
    response = post(api_client, accepted(decision, result="declined"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert DecisionAction.objects.count() == 1


def test_the_same_key_for_another_agent_is_409(decision, api_client, agent, lead):
    post(api_client, accepted(decision, agent="agent"))
    assert post(api_client, accepted(decision, agent="lead")).status_code == 409


def test_two_clients_may_use_the_same_key(decision, api_client):
    other, _ = api_client_with(["write_outcomes"], name="second-crm")
    post(api_client, accepted(decision))
    assert post(other, accepted(decision, result="declined")).status_code == 201
    assert DecisionAction.objects.count() == 2


def test_no_offer_is_sent_as_null(decision, api_client):
    response = post(api_client, {"recommendation_id": str(decision.pk), "offer_code": None, "result": "no_action"})
    assert response.status_code == 201
    assert response.json()["offer_code"] is None


def test_an_outcome_needs_an_idempotency_key(decision, api_client):
    missing = post(api_client, accepted(decision), key=None)
    too_long = post(api_client, accepted(decision), key="k" * 81)

    assert (missing.status_code, too_long.status_code) == (400, 400)
    assert missing.json()["error"]["fields"]["Idempotency-Key"][0].startswith("this header is required: a unique key")
    assert too_long.json()["error"]["fields"]["Idempotency-Key"] == [
        "send a unique key of 1 to 80 printable characters"
    ]


def test_an_offer_the_recommendation_never_ranked_is_422_with_the_field(decision, api_client):
    response = post(api_client, accepted(decision, offer_code="free-phone"))
    assert response.status_code == 422
    assert "offer_code" in response.json()["error"]["fields"]
    assert not DecisionAction.objects.exists()


def test_an_offer_left_out_as_declined_lately_is_refused_as_such_not_as_unknown(decision, api_client):
    earlier = DecisionFactory(customer=decision.customer)
    declined = {"recommendation_id": str(earlier.pk), "offer_code": "korting-10", "result": "declined"}
    assert post(api_client, {**declined, **reason_for(earlier, "korting-10")}, key="a").status_code == 201
    # The newer advice was ranked without it, as the contact policy asks.
    later = DecisionFactory(customer=decision.customer, offers=[o for o in OFFERS if o["code"] != "korting-10"])

    refused = post(api_client, {**accepted(later), "result": "presented", "override_reason": "customer_request"})
    unknown = post(api_client, {**accepted(later), "offer_code": "free-phone"}, key="b")

    assert refused.status_code == 422
    assert refused.json()["error"]["refusals"] == ["declined_recently"]
    assert unknown.json()["error"]["refusals"] == ["unknown_offer"]


def test_an_accepted_outcome_without_an_offer_is_422(decision, api_client):
    assert post(api_client, accepted(decision, offer_code=None)).status_code == 422


def test_an_unknown_recommendation_is_404(db, api_client):
    body = {"recommendation_id": str(uuid.uuid4()), "offer_code": None, "result": "no_action"}
    assert post(api_client, body).status_code == 404


def test_an_unknown_result_is_400(decision, api_client):
    response = post(api_client, accepted(decision, result="maybe"))
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"result"}


def test_writing_outcomes_needs_its_scope(decision, read_only_api_client):
    assert post(read_only_api_client, accepted(decision)).status_code == 403


def answer(decision, result: str, offer_code: str = "gift-router", **fields) -> dict:
    return {"recommendation_id": str(decision.pk), "offer_code": offer_code, "result": result, **fields}


@pytest.mark.parametrize("result", ["declined", "thinking"])
def test_an_answer_to_an_offer_nobody_made_overrides_the_advice_and_needs_its_reason(decision, api_client, result):
    # gift-router was never presented and is not the recommendation: logging the customer's answer says the
    # agent made it, and that is an override like making it.
    refused = post(api_client, answer(decision, result), key="a")
    with_reason = post(api_client, answer(decision, result, override_reason="customer_request"), key="b")

    assert refused.status_code == 422
    assert refused.json()["error"]["fields"]["override_reason"] == [
        "offering something other than the recommendation needs a reason"
    ]
    assert refused.json()["error"]["refusals"] == ["override_reason_needed"]
    assert with_reason.status_code == 201
    assert list(decision.actions.values_list("kind", "override_reason")) == [(result, "customer_request")]


def test_an_answer_to_an_offer_made_needs_no_reason_again(decision, api_client):
    made = post(api_client, answer(decision, "presented", override_reason="better_fit"), key="a")
    thinking = post(api_client, answer(decision, "thinking"), key="b")
    declined = post(api_client, answer(decision, "declined"), key="c")

    assert [made.status_code, thinking.status_code, declined.status_code] == [201, 201, 201]


def test_an_answer_to_an_offer_above_the_loggers_authority_that_nobody_made_is_refused(db, api_client, agent):
    dear = {**OFFERS[0], "code": "korting-40", "cost_cents": 20_000, "authority_level": 3, "within_authority": False}
    decision = DecisionFactory(agent=agent, team=agent.agent_profile.team, offers=[*OFFERS, dear])

    response = post(api_client, answer(decision, "declined", "korting-40", agent="agent", override_reason="other"))

    assert response.status_code == 422
    assert not decision.actions.exists()


@pytest.mark.parametrize("result", ["thinking", "escalated"])
def test_an_offer_standing_accepted_is_not_thought_over_or_escalated_but_may_be_declined(decision, api_client, result):
    assert post(api_client, accepted(decision), key="a").status_code == 201

    refused = post(api_client, answer(decision, result, "korting-10"), key="b")
    corrected = post(api_client, answer(decision, "declined", "korting-10"), key="c")

    assert refused.status_code == 422
    assert "'korting-10' is already accepted on this decision" in str(refused.json()["error"]["fields"]["result"])
    assert refused.json()["error"]["refusals"] == ["offer_stands_accepted"]
    assert corrected.status_code == 201
    assert list(decision.actions.values_list("kind", flat=True)) == ["accepted", "declined"]


def test_a_recommendation_id_sent_as_a_number_is_refused_as_invalid_not_looked_up(decision, api_client):
    response = post(api_client, {"recommendation_id": 12345, "offer_code": "korting-10", "result": "accepted"})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["recommendation_id"] == ["Must be a valid UUID."]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("second", "answers"), [("no_action", ["replayed", "stored"]), ("escalated", ["conflict", "stored"])]
)
def test_one_idempotency_key_sent_twice_at_the_same_moment_stores_once_and_answers_the_second_as_a_replay(
    postgresql, monkeypatch, second, answers
):
    decision = DecisionFactory()
    _, record = api_client_with(["write_outcomes"])
    monkeypatch.setattr(outcomes, "_stored_under", ReadTogether().after(outcomes._stored_under))

    def send(result: str):
        def request() -> str:
            try:
                recorded = outcomes.outcome_record(
                    decision=decision, result=result, offer_code="", agent=None, api_client=record, idempotency_key="k"
                )
            except outcomes.IdempotencyConflict:
                return "conflict"
            return "replayed" if recorded.replayed else "stored"

        return request

    assert sorted(run_at_once(send("no_action"), send(second))) == answers
    assert DecisionAction.objects.count() == 1


def test_an_empty_idempotency_key_is_told_not_to_be_empty(decision, api_client):
    response = post(api_client, accepted(decision), key="")

    assert response.json()["error"]["fields"]["Idempotency-Key"][0].startswith(
        "this header is required and must not be empty: send a unique key"
    )


def test_an_offer_code_or_agent_sent_as_a_number_is_refused_as_not_text(decision, api_client):
    response = post(api_client, accepted(decision, offer_code=10.5, agent=True))

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "offer_code": ["must be text (a JSON string), not a number"],
        "agent": ["must be text (a JSON string), not true or false"],
    }
    assert not DecisionAction.objects.exists()
