import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ml.registry import champions
from retention.models import Decision, ScoringJob
from tests.conftest import api_client_with
from tests.factories import ContractFactory, CustomerFactory, TariffFactory

SCORES = "/api/v1/scores/"
JOBS = "/api/v1/scoring-jobs/"


@pytest.fixture
def customers(db):
    TariffFactory()
    customers = [CustomerFactory(external_id=f"S-{n}") for n in range(6)]
    for customer in customers:
        ContractFactory(customer=customer)
    return customers


def test_scores_come_in_the_order_asked_with_the_champions_version(churn_champion, customers, api_client):
    response = api_client.post(SCORES, {"customer_ids": ["S-3", "S-1", "S-3"]}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model_version"] == "churn-v1"
    assert [s["customer_id"] for s in body["scores"]] == ["S-3", "S-1"]
    assert all(0 < s["churn_probability"] < 1 and s["risk_band"] in {"low", "medium", "high"} for s in body["scores"])
    assert not Decision.objects.exists()


def test_scoring_more_customers_reads_the_database_no_more_often(churn_champion, customers, api_client):
    def queries(ids):
        with CaptureQueriesContext(connection) as captured:
            assert api_client.post(SCORES, {"customer_ids": ids}, format="json").status_code == 200
        return len(captured)

    queries(["S-0"])  # the client's first request also notes when it was used, which the next do not
    assert queries(["S-0"]) == queries([c.external_id for c in customers])


def test_unknown_ids_are_listed_in_the_error(churn_champion, customers, api_client):
    response = api_client.post(SCORES, {"customer_ids": ["S-1", "nobody", "ghost"]}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"customer_ids": ["nobody", "ghost"]}


def test_more_than_a_thousand_ids_is_413(db, api_client):
    response = api_client.post(SCORES, {"customer_ids": [f"S-{n}" for n in range(1_001)]}, format="json")
    assert response.status_code == 413


def test_scores_without_a_trained_model_are_422(customers, api_client):
    champions.clear()
    response = api_client.post(SCORES, {"customer_ids": ["S-1"]}, format="json")
    assert response.status_code == 422
    assert "train_models" in response.json()["error"]["message"]


def test_a_scoring_job_writes_a_csv_with_a_row_per_requested_id(
    churn_champion, customers, api_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = api_client.post(JOBS, {"customer_ids": ["S-2", "nobody", "S-0"]}, format="json")
    assert created.status_code == 202, created.content
    job = api_client.get(created.headers["Location"]).json()
    assert (job["status"], job["total"], job["scored"], job["unknown"], job["progress"]) == ("done", 3, 2, 1, 1.0)
    assert job["model_version"] == "churn-v1"
    result = api_client.get(job["result"])
    assert result.status_code == 200
    assert result["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(result.streaming_content).decode())))
    assert rows[0] == ["external_id", "churn_probability", "risk_band"]
    assert [row[0] for row in rows[1:]] == ["S-2", "nobody", "S-0"]
    assert rows[2][1:] == ["", ""] and 0 < float(rows[1][1]) < 1


def test_a_job_without_ids_scores_every_customer(
    churn_champion, customers, api_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = api_client.post(JOBS, {}, format="json")
    job = api_client.get(created.headers["Location"]).json()
    assert (job["status"], job["scored"], job["total"]) == ("done", 6, 6)


def test_a_queued_job_reports_its_progress_and_has_no_result_yet(churn_champion, customers, api_client):
    created = api_client.post(JOBS, {"customer_ids": ["S-1"]}, format="json").json()  # never committed: stays queued
    assert (created["status"], created["progress"], created["result"]) == ("queued", 0.0, None)
    assert api_client.get(f"{JOBS}{created['id']}/result.csv").status_code == 404
    assert ScoringJob.objects.get().customer_ids == ["S-1"]


def test_another_clients_job_is_not_found(churn_champion, customers, api_client):
    created = api_client.post(JOBS, {"customer_ids": ["S-1"]}, format="json").json()
    other, _ = api_client_with(["score"], name="other-crm")
    assert other.get(f"{JOBS}{created['id']}/").status_code == 404


def test_a_job_is_refused_at_once_without_a_trained_model(customers, api_client):
    champions.clear()
    assert api_client.post(JOBS, {"customer_ids": ["S-1"]}, format="json").status_code == 422
    assert not ScoringJob.objects.exists()


def test_a_job_whose_model_is_gone_when_it_runs_is_marked_failed(churn_champion, customers, api_client):
    from ml.registry import NoChampion
    from retention.tasks import scoring_job_run_task

    created = api_client.post(JOBS, {"customer_ids": ["S-1"]}, format="json").json()
    churn_champion.delete()
    champions.clear()
    with pytest.raises(NoChampion):
        scoring_job_run_task(created["id"])
    job = api_client.get(f"{JOBS}{created['id']}/").json()
    assert job["status"] == "failed" and job["error"].startswith("NoChampion")


def test_ids_that_are_not_text_are_400_by_position(db, api_client):
    response = api_client.post(SCORES, {"customer_ids": ["S-1", 7.5, "", "x" * 101, 7]}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]["customer_ids"]) == {"1", "2", "3"}  # 7 is read as "7"


def test_a_body_over_the_size_limit_is_413(db, api_client):
    body = {"customer_ids": ["S-1"], "padding": "x" * 1_000_000}
    assert api_client.post("/api/v1/recommendations/", body, format="json").status_code == 413


def test_jobs_finished_longer_ago_than_the_keeping_days_are_removed_with_their_files(
    churn_champion, customers, api_client, django_capture_on_commit_callbacks, settings
):
    from retention.services.scoring_jobs import scoring_job_result_path
    from retention.tasks import scoring_jobs_expire_task

    settings.SCORING_JOB_DAYS = 30
    with django_capture_on_commit_callbacks(execute=True):
        old = api_client.post(JOBS, {"customer_ids": ["S-1"]}, format="json")
        recent = api_client.post(JOBS, {"customer_ids": ["S-2"]}, format="json")
    queued = ScoringJob.objects.create(api_client=ScoringJob.objects.get(pk=old.json()["id"]).api_client)
    ScoringJob.objects.filter(pk=old.json()["id"]).update(finished_at=timezone.now() - dt.timedelta(days=31))
    ScoringJob.objects.filter(pk=queued.pk).update(created_at=timezone.now() - dt.timedelta(days=90))
    old_file = scoring_job_result_path(ScoringJob.objects.get(pk=old.json()["id"]))
    assert old_file.exists()

    assert scoring_jobs_expire_task() == 1

    assert not old_file.exists()
    assert api_client.get(old.headers["Location"]).status_code == 404
    assert api_client.get(recent.headers["Location"]).json()["status"] == "done"
    assert ScoringJob.objects.filter(pk=queued.pk).exists(), "a job not finished is never removed"


def test_a_scoring_job_counts_customers_who_objected_apart_from_unknown_ids(
    churn_champion, customers, api_client, django_capture_on_commit_callbacks
):
    customers[1].objects_to_profiling = True
    customers[1].save()
    with django_capture_on_commit_callbacks(execute=True):
        created = api_client.post(JOBS, {"customer_ids": ["S-2", "nobody", "S-1", "S-0"]}, format="json")
    job = api_client.get(created.headers["Location"]).json()

    assert (job["total"], job["scored"], job["unknown"], job["objecting"]) == (4, 2, 1, 1)
    rows = list(csv.reader(io.StringIO(b"".join(api_client.get(job["result"]).streaming_content).decode())))
    assert rows[3] == ["S-1", "", ""]


def test_an_id_sent_as_a_number_is_told_to_be_text_not_an_id_of_the_wrong_length(db, api_client):
    response = api_client.post(SCORES, {"customer_ids": [124.5, "", True]}, format="json")

    assert response.json()["error"]["fields"]["customer_ids"] == {
        "0": ["must be text (a JSON string), not a number"],
        "1": ["must be an external id of 1 to 100 characters"],
        "2": ["must be text (a JSON string), not true or false"],
    }
