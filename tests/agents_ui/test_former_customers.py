"""A customer who left (their latest renewal result says they churned, with no contract since): advice and scores
are for customers who might still be kept, so none is made for them, while their history still teaches the models.

Fixtures from tests/agents_ui/conftest.py: a fixed churn model, a catalog and customer C-1001."""

import csv
import datetime as dt
import io

import pytest
from django.conf import settings
from django.utils import timezone

from retention.models import Contract, Customer, Decision, ScoringJob
from retention.selectors.api import customer_count, customer_pages
from retention.selectors.history import labelled_history_frames
from retention.services.scoring_jobs import scoring_job_create, scoring_job_run
from tests.conftest import api_client_with
from tests.factories import ContractFactory, CustomerFactory, RenewalResultFactory

pytestmark = pytest.mark.django_db

LEFT_ON = timezone.localdate() - dt.timedelta(days=40)


def left(customer: Customer) -> Customer:
    """The customer's contract ended the day they left, as the CRM reported."""
    customer.contracts.update(status=Contract.Status.ENDED, end_date=LEFT_ON)
    RenewalResultFactory(customer=customer, result="churned", date=LEFT_ON)
    return customer


def test_only_a_customer_whose_latest_result_is_a_departure_with_no_contract_since_is_former(customer):
    stayed = CustomerFactory(external_id="STAYED")
    RenewalResultFactory(customer=stayed, result="renewed", date=LEFT_ON)
    came_back = left(CustomerFactory(external_id="BACK"))
    ContractFactory(customer=came_back, start_date=LEFT_ON + dt.timedelta(days=10), end_date=None)
    left(customer)

    former = {c.external_id: c.left_on for c in Customer.objects.former()}

    assert former == {"C-1001": LEFT_ON}
    assert set(Customer.objects.still_customers().values_list("external_id", flat=True)) == {"STAYED", "BACK"}


def test_the_panel_makes_no_advice_and_says_when_they_left(logged_in, agent, customer, catalog, churn_model):
    left(customer)

    response = logged_in(agent).get("/panel/?customer=C-1001")

    assert response.status_code == 200
    assert "Geen advies: oud-klant" in response.text
    assert "Jan de Vries" in response.text
    assert "Kans dat de klant vertrekt" not in response.text and "loyal-10" not in response.text
    assert not Decision.objects.exists()


def test_the_api_refuses_advice_naming_the_day_they_left(customer, catalog, churn_model):
    left(customer)
    client, _ = api_client_with(["read", "score"])

    response = client.post("/api/v1/recommendations/", {"customer_id": "C-1001", "channel": "phone"}, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["refusals"] == ["former_customer"]
    assert f"left on {LEFT_ON.isoformat()}" in error["message"]
    assert not Decision.objects.exists()


def test_a_contract_they_came_back_on_makes_them_a_customer_again(customer, catalog, churn_model):
    left(customer)
    ContractFactory(customer=customer, start_date=timezone.localdate(), end_date=None, monthly_fee_cents=5_500)
    client, _ = api_client_with(["read", "score"])

    response = client.post("/api/v1/recommendations/", {"customer_id": "C-1001", "channel": "phone"}, format="json")

    assert response.status_code == 201, response.content


def test_no_score_is_made_for_them_on_request_or_in_a_whole_base_job(customer, churn_model):
    current = CustomerFactory(external_id="C-2002")
    left(customer)
    client, _ = api_client_with(["read", "score"])

    response = client.post("/api/v1/scores/", {"customer_ids": ["C-2002", "C-1001"]}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["refusals"] == ["former_customer"]
    assert response.json()["error"]["fields"] == {"customer_ids": ["C-1001"]}
    assert customer_count() == 1
    assert [c.external_id for page in customer_pages(size=10) for c in page] == [current.external_id]


def test_a_scoring_job_counts_them_apart_and_leaves_their_row_empty(customer, churn_model):
    CustomerFactory(external_id="C-2002")
    left(customer)
    _, api_client = api_client_with(["read", "score"])
    job = scoring_job_create(api_client=api_client, customer_ids=["C-1001", "nobody", "C-2002"])

    job = scoring_job_run(job_id=job.pk)

    assert job.status == ScoringJob.Status.DONE, job.error
    assert (job.scored, job.unknown, job.objecting, job.former) == (1, 1, 0, 1)
    rows = list(csv.reader(io.StringIO(job_result_text(job))))
    assert rows[1] == ["C-1001", "", ""] and rows[3][0] == "C-2002" and rows[3][1] != ""


def test_their_departure_still_teaches_the_churn_model(customer):
    left(customer)

    customers, _, _, labels = labelled_history_frames()

    assert len(customers) == 1 and list(labels) == [1]


def job_result_text(job: ScoringJob) -> str:
    return (settings.DATA_DIR / job.result_file).read_text(encoding="utf-8")
