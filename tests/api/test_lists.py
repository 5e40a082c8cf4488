import datetime as dt

import pytest
from django.utils import timezone

from ml.models import ModelVersion, TrainingJob
from ml.verdicts import kind_phrase, phrase, render
from retention.models import Decision, DecisionAction, Offer
from tests.api.factories import DecisionActionFactory, DecisionFactory
from tests.conftest import api_client_with
from tests.factories import AgentProfileFactory, ContractFactory, OfferFactory, UserFactory

DECISIONS = "/api/v1/decisions/"
OFFERS = "/api/v1/offers/"
MODELS = "/api/v1/models/"


def model_version(number: int, **fields) -> ModelVersion:
    return ModelVersion.objects.create(
        kind="churn", version=number, artifact_dir=f"churn-v{number}", artifact_sha256="0" * 64, feature_schema={},
        metrics={"auc": 0.7}, training_window={"from": "2024-01-01", "to": "2024-12-31"}, **fields,
    )  # fmt: skip


@pytest.fixture
def many_rows(db, agent):
    """60 of each kind of row, more than the biggest page tested."""
    for number in range(60):
        decision = DecisionFactory(agent=agent)
        DecisionActionFactory(decision=decision, agent=agent)
        DecisionActionFactory(decision=decision, kind="declined", override_reason="customer_request")
        OfferFactory(code=f"offer-{number:02d}")
        ContractFactory(monthly_fee_cents=4_000 + number)
        model_version(number + 1)


# Two queries authenticate (find the client, note its use), the rest read the page.
@pytest.mark.parametrize(
    ("url", "queries"), [(DECISIONS, 3), (OFFERS, 5), (MODELS, 3)], ids=["decisions", "offers", "models"]
)
@pytest.mark.parametrize("page_size", [5, 50])
def test_a_list_page_costs_the_same_queries_whatever_its_size(
    many_rows, api_client, django_assert_num_queries, url, queries, page_size
):
    with django_assert_num_queries(queries):
        response = api_client.get(url, {"page_size": page_size})
    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size


def test_paging_through_decisions_sees_each_once_newest_first(many_rows, api_client):
    seen, url = [], f"{DECISIONS}?page_size=25"
    while url:
        page = api_client.get(url).json()
        seen += [d["created_at"] + d["id"] for d in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 60
    assert seen == sorted(seen, reverse=True)


@pytest.fixture
def decision_log(db, agent, lead):
    other = AgentProfileFactory(user=UserFactory(username="agent2")).user
    plain = DecisionFactory(agent=agent, recommended_offer_code="gift-router")
    accepted = DecisionFactory(agent=agent)
    DecisionActionFactory(decision=accepted, agent=agent)
    DecisionActionFactory(decision=accepted, kind="accepted", agent=agent)
    overridden = DecisionFactory(agent=other)
    DecisionActionFactory(decision=overridden, offer_code="gift-router", override_reason="better_fit", agent=other)
    DecisionActionFactory(decision=overridden, kind="declined", offer_code="gift-router", agent=other)
    return {"plain": plain, "accepted": accepted, "overridden": overridden}


def listed(api_client, **filters) -> set[str]:
    response = api_client.get(DECISIONS, filters)
    assert response.status_code == 200, response.content
    return {d["id"] for d in response.json()["results"]}


def ids(decision_log, *names) -> set[str]:
    return {str(decision_log[name].pk) for name in names}


def test_decisions_filter_by_agent(decision_log, api_client):
    assert listed(api_client, agent="agent") == ids(decision_log, "plain", "accepted")


def test_a_client_bound_to_a_team_lists_only_its_teams_decisions_and_its_own(db, agent, other_team):
    bound, record = api_client_with(["read"], name="crm-utrecht")
    record.teams.set([agent.agent_profile.team])
    rotterdam_agent = AgentProfileFactory(user=UserFactory(username="r-agent"), team=other_team).user
    own_team = DecisionFactory(agent=agent, team=agent.agent_profile.team)
    DecisionFactory(agent=rotterdam_agent, team=other_team)
    asked_itself = DecisionFactory(api_client=record)
    DecisionFactory()  # asked by another client without an agent

    assert listed(bound) == {str(own_team.pk), str(asked_itself.pk)}


def test_advice_another_client_asked_without_an_agent_is_listed_for_the_team_its_acceptance_was_charged_to(
    db, agent, other_team
):
    bound, record = api_client_with(["read"], name="crm-utrecht")
    record.teams.set([agent.agent_profile.team])
    charged_here = DecisionFactory()  # asked by another client without an agent
    DecisionActionFactory(decision=charged_here, kind="accepted", offer_code="korting-10", agent=agent, cost_cents=900)
    rotterdam_agent = AgentProfileFactory(user=UserFactory(username="r-agent"), team=other_team).user
    DecisionActionFactory(decision=DecisionFactory(), kind="accepted", offer_code="korting-10", agent=rotterdam_agent)

    [row] = bound.get(DECISIONS).json()["results"]

    assert (row["id"], row["team"], row["charged_team"]) == (str(charged_here.pk), None, agent.agent_profile.team.name)


def test_decisions_filter_by_the_latest_outcome(decision_log, api_client):
    assert listed(api_client, outcome="accepted") == ids(decision_log, "accepted")
    assert listed(api_client, outcome="declined") == ids(decision_log, "overridden")
    assert listed(api_client, outcome="none") == ids(decision_log, "plain")
    assert listed(api_client, outcome="presented") == set()


def test_decisions_filter_by_offer_and_override(decision_log, api_client):
    assert listed(api_client, offer="gift-router") == ids(decision_log, "overridden")
    assert listed(api_client, recommended_offer="gift-router") == ids(decision_log, "plain")
    assert listed(api_client, override="true") == ids(decision_log, "overridden")
    assert listed(api_client, override="false") == ids(decision_log, "plain", "accepted")


def test_decisions_filter_by_days(decision_log, api_client):
    today = timezone.localdate()
    assert len(listed(api_client, date_from=today.isoformat(), date_to=today.isoformat())) == 3
    assert listed(api_client, date_to=(today - dt.timedelta(days=1)).isoformat()) == set()


@pytest.mark.parametrize("url", [DECISIONS, OFFERS, MODELS])
def test_a_filter_given_twice_is_refused_not_half_applied(db, api_client, url):
    response = api_client.get(f"{url}?page_size=5&page_size=6")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"page_size": ["given more than once; give one value"]}
    assert api_client.get(f"{DECISIONS}?agent=agent&agent=agent2").json()["error"]["fields"] == {
        "agent": ["given more than once; give one value"]
    }


def test_the_first_and_last_days_a_date_can_hold_bound_nothing(decision_log, api_client):
    # A CRM writes 9999-12-31 for "open-ended"; neither day has a moment beyond it to compare with.
    assert len(listed(api_client, date_from="0001-01-01", date_to="9999-12-31")) == 3


def test_a_decision_shows_its_latest_action_and_override(decision_log, api_client):
    decisions = {d["id"]: d for d in api_client.get(DECISIONS).json()["results"]}
    overridden = decisions[str(decision_log["overridden"].pk)]
    assert (overridden["agent"], overridden["outcome"], overridden["outcome_offer"]) == (
        "agent2",
        "declined",
        "gift-router",
    )
    assert overridden["override_reason"] == "better_fit"
    plain = decisions[str(decision_log["plain"].pk)]
    assert (plain["outcome"], plain["outcome_offer"], plain["override_reason"]) == (None, None, None)
    assert plain["model_version"] == "churn-v1" and plain["customer_id"]
    assert plain["response_model_version"] is None


def test_a_decision_names_the_offer_response_model_that_ranked_its_offers(decision_log, api_client):
    decision = decision_log["plain"]
    Decision.objects.filter(pk=decision.pk).update(
        model_versions={**decision.model_versions, "acceptance": "acceptance-v3"}
    )

    [shown] = [d for d in api_client.get(DECISIONS).json()["results"] if d["id"] == str(decision.pk)]

    assert shown["response_model_version"] == "acceptance-v3"


def test_a_decision_shows_what_off_policy_estimates_read(db, api_client):
    explored = DecisionFactory(
        explored=True, greedy_offer_code="", propensity=0.0125, renewal_fee_cents=4500, recommended_offer_code="gift"
    )
    control = DecisionFactory(control_group=True, greedy_offer_code="korting-10", recommended_offer_code="")

    decisions = {d["id"]: d for d in api_client.get(DECISIONS).json()["results"]}

    shown = decisions[str(explored.pk)]
    assert (shown["explored"], shown["greedy_offer"], shown["propensity"], shown["renewal_fee_cents"]) == (
        True,
        None,
        0.0125,
        4500,
    )
    shown = decisions[str(control.pk)]
    assert (shown["control_group"], shown["greedy_offer"], shown["recommended_offer"]) == (True, "korting-10", None)
    assert shown["renewal_fee_cents"] is None


def test_a_decision_shows_its_best_tariff_advice_and_no_fee_as_null(db, api_client):
    advice = {"code": "internet", "name": "Internet", "monthly_fee_cents": 4250, "yearly_saving_cents": 9000}
    advised = DecisionFactory(best_tariff=advice, renewal_fee_cents=5000)
    unpriced = DecisionFactory(best_tariff=None, renewal_fee_cents=0)  # stored as 0 when no fee was known

    decisions = {d["id"]: d for d in api_client.get(DECISIONS).json()["results"]}

    # Advice stored before the two fees were given reads them as unknown.
    assert decisions[str(advised.pk)]["best_tariff"] == {**advice, "current_fee_cents": None,
                                                         "fee_after_contract_end_cents": None}  # fmt: skip
    assert (decisions[str(unpriced.pk)]["best_tariff"], decisions[str(unpriced.pk)]["renewal_fee_cents"]) == (
        None,
        None,
    )


def test_a_decision_shows_the_offer_that_stands_accepted_and_its_cost(decision_log, api_client):
    corrected = DecisionFactory(agent=decision_log["accepted"].agent)
    DecisionActionFactory(decision=corrected, kind="accepted", cost_cents=3_300)
    DecisionActionFactory(decision=corrected, kind="declined")

    decisions = {d["id"]: d for d in api_client.get(DECISIONS).json()["results"]}
    accepted = decisions[str(decision_log["accepted"].pk)]
    action = decision_log["accepted"].actions.get(kind="accepted")

    assert (accepted["accepted_offer"], accepted["accepted_cost_cents"]) == (action.offer_code, action.cost_cents)
    assert (decisions[str(corrected.pk)]["accepted_offer"], decisions[str(corrected.pk)]["accepted_cost_cents"]) == (
        None,
        0,
    )


def test_a_bad_filter_is_400(db, api_client):
    response = api_client.get(DECISIONS, {"outcome": "maybe", "date_from": "2025-02-01", "date_to": "2025-01-01"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"outcome"}


@pytest.mark.parametrize(("url", "misspelt"), [(DECISIONS, "created_after"), (OFFERS, "lang"), (MODELS, "state")])
def test_a_filter_the_list_does_not_have_is_refused_naming_it_not_ignored(db, api_client, url, misspelt):
    response = api_client.get(url, {misspelt: "x", "page_size": "5"})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [misspelt]
    assert "is not a field of the" in response.json()["error"]["fields"][misspelt][0]
    assert api_client.get(url, {"page_size": "5"}).status_code == 200


def test_offers_cost_what_they_cost_a_customer_paying_the_median_fee(db, api_client):
    OfferFactory(code="korting-10", discount_percent=10, duration_months=12, fixed_cost_cents=0)
    for fee in (3_000, 5_000, 9_000):
        ContractFactory(monthly_fee_cents=fee)
    ContractFactory(monthly_fee_cents=100_000, status="ended")
    offer = api_client.get(OFFERS).json()["results"][0]
    assert (offer["typical_monthly_fee_cents"], offer["cost_cents"]) == (5_000, 6_000)
    assert set(offer) >= {"code", "title", "kind", "terms", "cost_cents", "authority_level", "active"}


def test_without_contracts_offers_cost_the_documented_typical_fee(db, api_client):
    OfferFactory(code="korting-10", discount_percent=10, duration_months=1)
    assert api_client.get(OFFERS).json()["results"][0]["cost_cents"] == 500


def test_offers_say_whether_they_can_be_made_today(db, api_client):
    OfferFactory(code="a-current")
    OfferFactory(code="b-switched-off", is_active=False)
    OfferFactory(code="c-ended", active_until=timezone.localdate() - dt.timedelta(days=1))
    offers = api_client.get(OFFERS, {"language": "en"}).json()["results"]
    assert [(o["code"], o["active"]) for o in offers] == [
        ("a-current", True),
        ("b-switched-off", False),
        ("c-ended", False),
    ]
    assert offers[0]["title"] == "Offer a-current"
    assert [o["code"] for o in api_client.get(OFFERS, {"active": "true"}).json()["results"]] == ["a-current"]
    assert Offer.objects.count() == 3


def test_models_list_their_metrics_and_status(db, api_client):
    model_version(1, status="retired")
    model_version(2, status="champion", promoted_at=timezone.now())
    models = api_client.get(MODELS).json()["results"]
    assert [(m["label"], m["status"]) for m in models] == [("churn-v2", "champion"), ("churn-v1", "retired")]
    assert models[0]["metrics"] == {"auc": 0.7} and models[0]["promoted_at"]
    assert [m["version"] for m in api_client.get(MODELS, {"status": "retired"}).json()["results"]] == [1]


def test_training_jobs_say_what_each_retrain_decided_or_why_it_failed(db, api_client):
    refusal = phrase("too_few_labels", kind=kind_phrase("acceptance"), labels=12, minimum=200)
    done = TrainingJob.objects.create(
        kinds=["churn", "acceptance"], trigger="outcomes", status="succeeded",
        results={
            "churn": {"outcome": "promoted", "version": 2, "reason": "challenger AUC 0.74", "reason_phrase": {}},
            "acceptance": {"outcome": "refused", "version": None, "reason": render(refusal), "reason_phrase": refusal},
        },
    )  # fmt: skip
    failed = TrainingJob.objects.create(
        kinds=["acceptance"], trigger="nightly", status="failed", error="SchemaMismatch"
    )

    jobs = api_client.get("/api/v1/training-jobs/").json()["results"]

    assert [(job["id"], job["status"], job["error"]) for job in jobs] == [
        (failed.pk, "failed", "SchemaMismatch"), (done.pk, "succeeded", "")
    ]  # fmt: skip
    assert jobs[1]["results"]["acceptance"] == {
        "outcome": "refused", "version": None,
        "reason": "offer-response model: 12 labelled outcomes; a retrain needs at least 200 (RETRAIN_MIN_LABELS)",
    }  # fmt: skip
    assert [job["id"] for job in api_client.get("/api/v1/training-jobs/", {"status": "failed"}).json()["results"]] == [
        failed.pk
    ]
    assert api_client.get("/api/v1/training-jobs/", {"status": "bogus"}).status_code == 400


def test_reading_lists_needs_the_read_scope(db):
    from tests.conftest import api_client_with

    client, _ = api_client_with(["score"])
    assert client.get(DECISIONS).status_code == 403
    assert DecisionAction.objects.count() == 0


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "2.5", "²", "٥"])
def test_a_page_size_that_is_no_whole_number_from_1_is_refused(db, api_client, page_size):
    response = api_client.get(DECISIONS, {"page_size": page_size})

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["page_size"] == ["a whole number from 1 to 500"]


def test_a_page_size_over_the_largest_is_capped(many_rows, api_client):
    assert len(api_client.get(DECISIONS, {"page_size": 10_000}).json()["results"]) <= 500


def test_a_method_an_operation_lacks_is_405_whatever_its_address_holds(api_client):
    for path in ("/api/v1/decisions/?agent=0", "/api/v1/offers/?x=1", "/api/v1/models/"):
        response = api_client.put(path, {}, format="json")
        assert response.status_code == 405, (path, response.content)


def test_a_customer_who_objected_to_profiling_is_listed_without_their_score(db, api_client):
    kept = DecisionFactory(churn_probability=0.42, risk_band="medium")
    objecting = DecisionFactory(churn_probability=0.81, risk_band="high")
    objecting.customer.objects_to_profiling = True
    objecting.customer.save()

    listed = {row["id"]: row for row in api_client.get("/api/v1/decisions/").json()["results"]}

    assert (listed[str(kept.pk)]["churn_probability"], listed[str(kept.pk)]["risk_band"]) == (0.42, "medium")
    assert (listed[str(objecting.pk)]["churn_probability"], listed[str(objecting.pk)]["risk_band"]) == (None, None)


def test_a_day_filter_that_does_not_exist_is_refused_as_such(db, api_client):
    response = api_client.get(DECISIONS, {"date_from": "2025-02-30", "date_to": "2025/03/01"})

    assert response.json()["error"]["fields"] == {
        "date_from": ["the date 2025-02-30 does not exist: February 2025 has 28 days"],
        "date_to": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."],
    }
