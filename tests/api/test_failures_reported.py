"""Failures a client must be told the truth about. A broker that cannot be reached after a write is committed: the
write's answer stays true, and a job the broker would not take is failed at once, saying why, instead of waiting
queued for good. An error nothing handled: under the API, the JSON shape a CRM parses."""

import datetime as dt

import pytest
from kombu.exceptions import OperationalError

from ml.jobs import training_job_request
from ml.models import TrainingJob
from ml.tasks import retrain_if_due_task, retrain_models_task
from retention.models import RenewalResult, ScoringJob
from retention.tasks import scoring_job_run_task
from tests.factories import ContractFactory, CustomerFactory, TariffFactory


@pytest.fixture
def broker_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    for task in (scoring_job_run_task, retrain_models_task, retrain_if_due_task):
        monkeypatch.setattr(task, "delay", refuse)


@pytest.mark.django_db(transaction=True)  # committed as in production, so the hand-over runs before the answer
def test_a_scoring_job_the_broker_would_not_take_is_answered_failed_not_left_queued(
    churn_champion, api_client, broker_down
):
    TariffFactory()
    ContractFactory(customer=CustomerFactory(external_id="S-1"))

    created = api_client.post("/api/v1/scoring-jobs/", {"customer_ids": ["S-1"]}, format="json")

    assert created.status_code == 202, created.content
    body = created.json()
    assert body["status"] == "failed" and "task broker could not be reached" in body["error"]
    assert ScoringJob.objects.get().status == ScoringJob.Status.FAILED


def test_renewal_results_are_answered_as_stored_when_the_retrain_check_cannot_be_queued(
    api_client, broker_down, django_capture_on_commit_callbacks
):
    CustomerFactory(external_id="R-1", signup_date=dt.date(2015, 3, 1))

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/renewals/", {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"}, format="json"
        )

    assert response.status_code == 201 and RenewalResult.objects.count() == 1


def test_a_training_job_the_broker_would_not_take_fails_and_frees_the_queue(
    db, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["churn"])

    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED and "task broker could not be reached" in job.error
    assert not TrainingJob.objects.filter(status__in=TrainingJob.ACTIVE).exists()


def test_an_unhandled_failure_under_the_api_is_answered_in_its_json_shape(db, monkeypatch):
    from retention.api import views_catalog
    from tests.conftest import api_client_with

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(views_catalog.OfferListView, "get", fail)
    client, _ = api_client_with(["read"])
    client.raise_request_exception = False

    response = client.get("/api/v1/offers/")

    assert response.status_code == 500 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "server_error"
    assert "Whether a write was stored is not known" in response.json()["error"]["message"]


def test_an_unhandled_failure_on_a_page_keeps_the_page_and_says_it_may_not_be_saved(client, monkeypatch):
    from agents_ui.login import GuardedLoginView

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(GuardedLoginView, "get", fail)
    client.raise_request_exception = False

    response = client.get("/login/")

    assert response.status_code == 500 and "Misschien is dit niet opgeslagen" in response.text


@pytest.fixture
def cache_down(monkeypatch):
    from django.core.cache import cache

    def refuse(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6398. Connection refused.")

    for operation in ("add", "incr", "touch", "delete", "get", "set", "get_many", "set_many"):
        monkeypatch.setattr(cache, operation, refuse)


def test_without_its_cache_the_api_and_sign_in_let_requests_through_uncounted(db, cache_down, caplog):
    from django.test import Client

    from tests.conftest import api_client_with
    from tests.factories import UserFactory

    crm, _ = api_client_with(["read"])
    user = UserFactory(username="sanne")
    user.set_password("a-long-password-1")
    user.save()

    listed = crm.get("/api/v1/offers/")
    signed_in = Client().post("/login/", {"username": "sanne", "password": "a-long-password-1"})

    assert listed.status_code == 200
    assert signed_in.status_code == 302
    assert "let through uncounted" in caplog.text
