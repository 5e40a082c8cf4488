"""A customer who objected to profiling for offers: no score, no advice, no offer from earlier advice, no training.

Fixtures from tests/agents_ui/conftest.py: a fixed churn model, a catalog and customer C-1001 (internet + TV at
€55 a month, where a new customer pays €45)."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from agents_ui.review.selectors import open_escalations
from agents_ui.views import _problems
from ml.services import acceptance_training_set
from retention.models import Customer, Decision
from retention.selectors.api import customer_count, customer_pages
from retention.selectors.customer_data import customer_data_export
from retention.selectors.history import labelled_history_frames
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import days_ago, stored_decision
from tests.conftest import api_client_with
from tests.factories import CustomerFactory, RenewalResultFactory

pytestmark = pytest.mark.django_db

BULK = "/api/v1/customers/bulk/"


def objecting(customer) -> Customer:
    customer.objects_to_profiling = True
    customer.save()
    return customer


def stored_objection(external_id: str) -> bool:
    return Customer.objects.get(external_id=external_id).objects_to_profiling


def test_the_crm_records_an_objection_and_only_an_explicit_no_lifts_it(db):
    client, _ = api_client_with(["read", "write_customers"])

    def send(**fields):
        return client.post(BULK, {"customers": [{"external_id": "NL555", **fields}]}, format="json")

    assert send(objects_to_profiling=True).status_code == 200
    assert stored_objection("NL555")
    assert send(display_name="Els").status_code == 200  # a source that knows nothing of objections
    assert send(objects_to_profiling=None).status_code == 200
    assert stored_objection("NL555")
    assert client.get("/api/v1/customers/NL555/").json()["objects_to_profiling"] is True

    refused = send(objects_to_profiling="yes")
    assert refused.status_code == 400 and "must be true or false" in json.dumps(refused.json())
    assert stored_objection("NL555")

    assert send(objects_to_profiling=False).status_code == 200
    assert not stored_objection("NL555")
    assert client.get("/api/v1/customers/NL555/").json()["objects_to_profiling"] is False


def test_the_panel_makes_no_advice_and_shows_the_best_tariff(logged_in, agent, customer, catalog, churn_model):
    objecting(customer)

    response = logged_in(agent).get("/panel/?customer=C-1001")

    assert response.status_code == 200
    assert "Geen advies: bezwaar tegen profilering" in response.text
    assert "Jan de Vries" in response.text
    assert 'id="tariff-heading"' in response.text
    assert "120,00 per jaar" in response.text  # €55 against €45 a month
    assert "Kans dat de klant vertrekt" not in response.text and "loyal-10" not in response.text
    assert not Decision.objects.exists()


def test_the_panel_does_not_reopen_advice_made_before_the_objection(logged_in, agent, customer, catalog, churn_model):
    client = logged_in(agent)
    assert "Kans dat de klant vertrekt" in client.get("/panel/?customer=C-1001").text
    objecting(customer)

    again = client.get("/panel/?customer=C-1001")

    assert "Geen advies: bezwaar tegen profilering" in again.text
    assert "Kans dat de klant vertrekt" not in again.text
    assert Decision.objects.count() == 1


def test_the_api_refuses_advice_naming_the_objection_and_gives_the_best_tariff(customer, catalog, churn_model):
    objecting(customer)
    client, _ = api_client_with(["read", "score"])

    response = client.post("/api/v1/recommendations/", {"customer_id": "C-1001", "channel": "phone"}, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["refusals"] == ["profiling_objection"]
    assert error["best_tariff"]["code"] == "internet_tv" and error["best_tariff"]["yearly_saving_cents"] == 12_000
    assert not Decision.objects.exists()


def test_no_score_is_made_for_them_on_request_or_in_a_whole_base_job(customer, churn_model):
    other = CustomerFactory(external_id="C-2002")
    objecting(customer)
    client, _ = api_client_with(["read", "score"])

    response = client.post("/api/v1/scores/", {"customer_ids": ["C-2002", "C-1001"]}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["refusals"] == ["profiling_objection"]
    assert response.json()["error"]["fields"] == {"customer_ids": ["C-1001"]}
    assert customer_count() == 1
    assert [c.external_id for page in customer_pages(size=10) for c in page] == [other.external_id]


def test_no_offer_from_earlier_advice_is_made_but_their_answer_is_still_logged(customer, agent):
    decision = stored_decision(customer=customer, agent=agent)
    decision_action_record(decision=decision, agent=agent, kind="presented", offer_code="loyal-10")
    objecting(customer)

    with pytest.raises(ValidationError) as refused:
        decision_action_record(decision=decision, agent=agent, kind="presented", offer_code="speed-up")
    decision_action_record(decision=decision, agent=agent, kind="declined", offer_code="loyal-10")

    assert refused.value.error_dict["offer_code"][0].code == "profiling_objection"
    assert list(decision.actions.values_list("kind", flat=True)) == ["presented", "declined"]


def test_an_offer_from_earlier_advice_is_refused_and_the_panel_shows_the_customer_as_they_now_are(
    logged_in, agent, customer, catalog
):
    decision = stored_decision(customer=customer, agent=agent)
    objecting(customer)

    response = logged_in(agent).post(
        f"/panel/decisions/{decision.pk}/actions/",
        {"kind": "presented", "offer_code": "loyal-10"},
        HTTP_HX_REQUEST="true",
    )

    assert response.headers["HX-Redirect"] == "/panel/?customer=C-1001"
    assert "loyal-10" not in response.text
    assert not decision.actions.exists()


def test_the_refusal_in_the_agents_language_names_the_objection(customer, agent):
    decision = stored_decision(customer=customer, agent=agent)
    objecting(customer)
    with pytest.raises(ValidationError) as refused:
        decision_action_record(decision=decision, agent=agent, kind="presented", offer_code="loyal-10")

    with translation.override("nl"):
        (problem,) = _problems(refused.value, decision)

    assert problem.startswith("Deze klant heeft bezwaar gemaakt tegen profilering voor aanbiedingen: doe deze")


def test_they_train_no_model(customer, agent):
    other = CustomerFactory(external_id="C-2002")
    for someone in (customer, other):
        stored_decision(
            customer=someone, agent=agent, as_of=days_ago(60), features={"tenure_months": 30}, renewal_fee_cents=5_500
        )
        RenewalResultFactory(customer=someone)  # 30 days ago: after the advice
    assert len(labelled_history_frames()[3]) == 2
    assert len(acceptance_training_set()[1]) == 2
    objecting(customer)

    rows, _, _, labels = labelled_history_frames()
    _, outcomes, _ = acceptance_training_set()

    assert list(rows["key"]) == [other.pk] and len(labels) == 1
    assert len(outcomes) == 1


def test_the_export_says_they_objected_and_that_they_may(customer):
    objecting(customer)

    export = customer_data_export(customer=customer)

    assert export["customer"]["objects_to_profiling"] is True
    assert "bezwaar" in export["how_advice_is_made"]["nl"] and "object" in export["how_advice_is_made"]["en"]


def test_an_answer_is_logged_only_for_an_offer_presented_before_the_objection(customer, agent):
    decision = stored_decision(customer=customer, agent=agent)
    decision_action_record(decision=decision, agent=agent, kind="presented", offer_code="loyal-10")
    objecting(customer)

    for kind, code in (("accepted", "speed-up"), ("declined", "speed-up"), ("thinking", "speed-up")):
        with pytest.raises(ValidationError) as refused:
            decision_action_record(
                decision=decision, agent=agent, kind=kind, offer_code=code, override_reason="customer_request"
            )
        assert refused.value.error_dict["offer_code"][0].code == "profiling_objection"
    decision_action_record(decision=decision, agent=agent, kind="accepted", offer_code="loyal-10")

    assert list(decision.actions.values_list("kind", flat=True)) == ["presented", "accepted"]


def test_earlier_advice_opened_by_its_address_shows_the_objection_not_the_advice(logged_in, agent, customer, catalog):
    decision = stored_decision(customer=customer, agent=agent)
    objecting(customer)

    page = logged_in(agent).get(f"/panel/?customer=C-1001&decision={decision.pk}")

    assert "Geen advies: bezwaar tegen profilering" in page.text
    assert "Kans dat de klant vertrekt" not in page.text and "loyal-10" not in page.text


def test_a_panel_watching_earlier_advice_is_sent_to_the_customer_as_they_now_are(logged_in, agent, customer):
    decision = stored_decision(customer=customer, agent=agent)
    client = logged_in(agent)
    assert client.get(f"/panel/decisions/{decision.pk}/?shown=0").status_code == 204
    objecting(customer)

    response = client.get(f"/panel/decisions/{decision.pk}/?shown=0")

    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/panel/?customer=C-1001"


def test_the_api_no_longer_gives_their_latest_risk(customer, agent):
    client, _ = api_client_with(["read"])
    stored_decision(customer=customer)
    assert client.get("/api/v1/customers/C-1001/").json()["latest_risk"]["risk_band"] == "high"
    objecting(customer)

    assert client.get("/api/v1/customers/C-1001/").json()["latest_risk"] is None


def test_an_escalation_on_their_advice_waits_for_nobody(customer, agent, lead):
    decision = stored_decision(customer=customer, agent=agent)
    decision_action_record(decision=decision, agent=agent, kind="escalated", offer_code="half-price")
    assert [e.offer_code for e in open_escalations(team_ids=None, now=timezone.now())] == ["half-price"]
    objecting(customer)

    assert open_escalations(team_ids=None, now=timezone.now()) == []


def test_a_write_refuses_parameters_in_its_address_and_stores_nothing(db):
    client, _ = api_client_with(["read", "write_customers"])

    response = client.post(
        BULK + "?dry_run=1", {"customers": [{"external_id": "NL555", "objects_to_profiling": True}]}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "dry_run": ["this operation takes no parameters in its address; send its fields in the body"]
    }
    assert not Customer.objects.exists()


def test_scores_name_unknown_ids_and_objecting_ones_in_one_refusal(customer, churn_model):
    objecting(customer)
    client, _ = api_client_with(["read", "score"])

    error = client.post("/api/v1/scores/", {"customer_ids": ["C-1001", "NOPE"]}, format="json").json()["error"]

    assert error["message"] == "1 unknown customer id(s); 1 customer(s) objected to profiling and are not scored"
    assert error["fields"] == {"customer_ids": ["NOPE", "C-1001"]} and error["refusals"] == ["profiling_objection"]


def test_a_write_refuses_even_a_format_in_its_address(db):
    client, _ = api_client_with(["read", "write_customers"])

    response = client.post(BULK + "?format=api", {"customers": [{"external_id": "NL556"}]}, format="json")

    assert response.status_code == 400 and not Customer.objects.exists()


def test_the_panel_logs_their_answer_to_an_offer_presented_before_the_objection(logged_in, agent, customer, catalog):
    decision = stored_decision(customer=customer, agent=agent)
    decision_action_record(decision=decision, agent=agent, kind="presented", offer_code="loyal-10")
    objecting(customer)
    client = logged_in(agent)

    page = client.get("/panel/?customer=C-1001").text
    answers = page[page.index('id="answers-heading"') :]
    assert "Loyaliteitskorting 10%" in answers and 'aria-label="Geaccepteerd: Loyaliteitskorting 10%"' in answers
    response = client.post(
        f"/panel/decisions/{decision.pk}/actions/", {"kind": "accepted", "offer_code": "loyal-10"}, follow=True
    )

    assert "Geen advies: bezwaar tegen profilering" in response.text and "Vastgelegd: Geaccepteerd." in response.text
    assert 'aria-label="Geaccepteerd: Loyaliteitskorting 10%"' not in response.text
    # A slip is taken back while the call lasts, and the answer can be logged again.
    assert 'aria-label="Terugdraaien: per vergissing vastgelegd: Loyaliteitskorting 10%"' in response.text
    undone = client.post(
        f"/panel/decisions/{decision.pk}/actions/", {"kind": "undone", "offer_code": "loyal-10"}, follow=True
    )

    assert "Vastgelegd: Acceptatie teruggedraaid." in undone.text
    assert 'aria-label="Geaccepteerd: Loyaliteitskorting 10%"' in undone.text
    assert list(decision.actions.values_list("kind", flat=True)) == ["presented", "accepted", "undone"]
