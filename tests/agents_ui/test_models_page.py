"""The models page: who may see it, what it shows, live job progress, and the Retrain, Cancel, Promote and Roll back
buttons."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from agents_ui.labels import feature_label
from ml.drift import distribution_summary
from ml.jobs import STOPPED_WITH_CTRL_C
from ml.models import ModelPromotion, ModelVersion, TrainingJob
from ml.registry import champions, model_version_reject
from ml.services import churn_model_retrain
from ml.verdicts import kind_phrase, phrase, render
from retention.models import AgentProfile
from tests.api.factories import DecisionFactory
from tests.builders import store_labelled_base
from tests.conftest import PASSWORD
from tests.factories import AgentProfileFactory, UserFactory

PAGE = "/review/models/"
ARTIFACT_FIELDS = ("artifact_sha256", "feature_schema", "metrics", "training_window", "training_rows")


@pytest.fixture(scope="module")
def trained_artifact(django_db_setup, django_db_blocker) -> dict:
    """One real churn model for the module; its rows are rolled back, its artifact is copied aside."""
    with django_db_blocker.unblock(), transaction.atomic():
        store_labelled_base()
        version = churn_model_retrain(by="test")
        fields = {name: getattr(version, name) for name in ARTIFACT_FIELDS}
        folder = version.artifact_dir
        transaction.set_rollback(True)
    champions.clear()
    own_folder = f"models-page-{uuid.uuid4().hex}"
    shutil.copytree(Path(settings.MODEL_DIR) / folder, Path(settings.MODEL_DIR) / own_folder)
    return {**fields, "artifact_dir": own_folder}


@pytest.fixture
def register(trained_artifact, db):
    def make(version: int, status: str, **values) -> ModelVersion:
        served = status in ("champion", "retired")
        promoted = (
            {"promoted_at": timezone.now() - dt.timedelta(days=40 - version), "promoted_by": "test"} if served else {}
        )
        return ModelVersion.objects.create(
            kind="churn", version=version, status=status, **trained_artifact, **promoted, **values
        )

    yield make
    champions.clear()


@pytest.fixture
def versions(register):
    """v1 served before, v2 serves now (with a training distribution), v3 is a challenger kept out."""
    first = register(1, "retired")
    summary = distribution_summary(
        pd.DataFrame({"monthly_fee": [40.0, 50.0, 60.0, 70.0] * 25, "segment": ["consumer"] * 100}),
        numeric=["monthly_fee"],
        categorical=["segment"],
    )
    second = register(2, "champion", training_distribution=summary)
    ModelPromotion.objects.create(model_version=second, promoted=True, reason="challenger AUC 0.731 vs champion 0.702")
    third = register(3, "rejected", status_reason="ECE 0.071 > 0.05: kept the champion, challenger not calibrated")
    ModelPromotion.objects.create(model_version=third, promoted=False, reason=third.status_reason)
    return {1: first, 2: second, 3: third}


@pytest.fixture
def admin(db):
    return AgentProfileFactory(user=UserFactory(username="admin"), team=None, role=AgentProfile.Role.ADMIN).user


def logged_in(user, **client_options) -> Client:
    client = Client(**client_options)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def english(user) -> Client:
    AgentProfile.objects.filter(user=user).update(language="en")
    return logged_in(user)


def champion_version() -> int:
    return ModelVersion.objects.get(kind="churn", status="champion").version


def queued_job(*, minutes_ago: float = 0) -> TrainingJob:
    job = TrainingJob.objects.create(kinds=["churn"], trigger="manual", stage="queued")
    TrainingJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return job


def confirmation_of(page: str) -> str:
    """The "Promote anyway" box alone, apart from the versions table that shows the same reasons."""
    start = page.index('<section id="promote-confirm"')
    return page[start : page.index("</section>", start)]


# --- access --------------------------------------------------------------------------------------------------


def test_an_agent_gets_403_and_no_model_data(agent, versions):
    response = logged_in(agent).get(PAGE)
    assert response.status_code == 403
    assert b"churn-v2" not in response.content


def test_a_user_without_a_profile_gets_403(outsider):
    assert logged_in(outsider).get(PAGE).status_code == 403


def test_an_anonymous_visitor_is_sent_to_log_in(db):
    response = Client().get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("persona", ["lead", "admin"])
def test_team_leads_and_administrators_see_the_page(persona, request, versions):
    assert logged_in(request.getfixturevalue(persona)).get(PAGE).status_code == 200


def test_the_buttons_are_refused_to_an_agent_and_change_nothing(agent, versions):
    client = logged_in(agent)
    assert client.post(reverse("review-models-retrain")).status_code == 403
    assert client.post(reverse("review-models-rollback", args=["churn"])).status_code == 403
    assert client.post(reverse("review-models-promote", args=["churn", 3])).status_code == 403
    assert not TrainingJob.objects.exists()
    assert champion_version() == 2


# --- what the page shows -------------------------------------------------------------------------------------


def test_the_page_lists_versions_with_status_metrics_and_reasons(lead, versions):
    page = english(lead).get(PAGE).content.decode()
    for text in ("churn-v1", "churn-v2", "churn-v3", "Champion", "Retired", "Rejected", "Serving: churn-v2."):
        assert text in page
    assert f"{versions[2].metrics['roc_auc']:.3f}" in page
    assert "ECE 0.071 &gt; 0.05: kept the champion, challenger not calibrated" in page
    assert "Roll back to churn-v1" in page
    assert "Promote churn-v3" in page
    assert "Promote churn-v1" not in page and "Promote churn-v2" not in page
    assert "No version trained yet." in page  # the offer-response model


def damaged_copy(trained_artifact) -> str:
    """A copy of the module's artifact with one booster file broken, so only the versions pointing at it are."""
    folder = f"{trained_artifact['artifact_dir']}-damaged-{uuid.uuid4().hex[:8]}"
    shutil.copytree(Path(settings.MODEL_DIR) / trained_artifact["artifact_dir"], Path(settings.MODEL_DIR) / folder)
    (Path(settings.MODEL_DIR) / folder / "booster-0.ubj").write_bytes(b"broken")
    return folder


def test_a_champion_whose_files_are_damaged_is_marked_with_the_version_serving_meanwhile(
    lead, register, trained_artifact
):
    register(1, "retired")
    second = register(2, "champion")
    ModelVersion.objects.filter(pk=second.pk).update(artifact_dir=damaged_copy(trained_artifact))

    page = english(lead).get(PAGE).content.decode()

    assert "The files of churn-v2 cannot be loaded:" in page
    assert "booster-0.ubj is missing or corrupt" in page and str(settings.MODEL_DIR) not in page
    assert "any other serves churn-v1, the last earlier version whose files are sound" in page


def test_with_no_sound_earlier_version_the_page_says_no_advice_comes_from_the_model(lead, register, trained_artifact):
    broken = damaged_copy(trained_artifact)
    for version, status in ((1, "retired"), (2, "champion")):
        ModelVersion.objects.filter(pk=register(version, status).pk).update(artifact_dir=broken)

    page = logged_in(lead).get(PAGE).content.decode()

    assert "De bestanden van churn-v2 kunnen niet worden geladen:" in page
    assert "Ook van geen eerdere versie zijn de bestanden in orde" in page


def test_a_champion_with_sound_files_is_not_marked(lead, versions):
    assert "cannot be loaded" not in english(lead).get(PAGE).content.decode()


def test_the_page_shows_drift_with_a_warning_above_the_threshold(lead, versions):
    for fee in (40.0, 50.0, 60.0, 70.0):
        DecisionFactory(features={"monthly_fee": fee, "segment": "business"})
    page = english(lead).get(PAGE).content.decode()
    assert "Drift: 1 feature above 0.2" in page
    assert "the 4 pieces of advice made since" in page
    assert "Shifted" in page and "Stable" in page
    assert 'Segment <span class="muted">segment</span>' in page  # in words, and by the code analysts know


def test_features_are_named_in_the_leads_language_and_a_crm_field_by_its_own_name():
    with translation.override("nl"):
        assert feature_label("complaints_90d") == "Klachten, laatste 90 dagen"
        assert feature_label("attr:plan_type") == "CRM-veld plan_type"
        assert feature_label("something_new") == "something_new"


def test_the_page_is_in_dutch_for_a_dutch_lead(lead, versions):
    page = logged_in(lead).get(PAGE).content.decode()
    assert "Nu opnieuw trainen" in page
    assert "Terugdraaien naar churn-v1" in page


def test_a_dutch_lead_reads_why_a_version_was_kept_out_in_dutch_with_decimal_commas(lead, register):
    register(1, "champion")
    verdict = phrase(
        "judged",
        figures=phrase("figures_below", challenger_auc=0.7104, champion_auc=0.7342, rows=666, tolerance=0.005),
        calibration=phrase("ece_within_bar", ece=0.025, max_ece=0.05),
        outcome=phrase("kept_worse"),
        basis=phrase("basis_rows_after_window", until="2026-11-01"),
    )
    model_version_reject(version=register(2, "candidate"), reason=verdict)

    page = logged_in(lead).get(PAGE).content.decode()

    assert (
        "uitdager AUC 0,71 tegenover kampioen 0,734 op 666 toetsrijen (meer dan 0,005 lager); ECE 0,025 ≤ 0,05: "
        "kampioen behouden, uitdager slechter (toetsrijen na de trainingsperiode van de kampioen (tot 2026-11-01))"
    ) in page
    assert "kept the champion" not in page
    assert "kept the champion, challenger worse" in english(lead).get(PAGE).content.decode()


def test_a_refused_retrain_says_why_in_the_leads_language_once(lead, versions):
    refusal = phrase("too_few_labels", kind=kind_phrase("acceptance"), labels=12, minimum=200)
    TrainingJob.objects.create(
        kinds=["acceptance"],
        trigger=TrainingJob.Trigger.MANUAL,
        status=TrainingJob.Status.REFUSED,
        error=render(refusal),
        results={
            "acceptance": {"outcome": "refused", "version": None, "reason": render(refusal), "reason_phrase": refusal}
        },
    )

    page = logged_in(lead).get(PAGE).content.decode()

    assert "aanbodresponsmodel: 12 bekende uitkomsten; een hertraining heeft er minstens 200 nodig" in page
    assert "labelled outcomes" not in page


def test_without_a_running_job_the_page_does_not_poll(lead, versions):
    page = english(lead).get(PAGE).content.decode()
    assert 'hx-trigger="every 2s"' not in page
    assert "No retrain is running." in page


def test_a_running_job_shows_a_live_progress_bar(lead, versions):
    job = TrainingJob.objects.create(
        kinds=["churn"], trigger="nightly", status="running", stage="training", stage_kind="churn", percent=42
    )
    page = english(lead).get(PAGE).content.decode()
    assert f'hx-get="/review/models/?watching={job.pk}" hx-trigger="every 2s"' in page
    assert '<progress id="model-job-progress" max="100" value="42">' in page
    assert "Churn model: training the challenger" in page
    assert "disabled>Retrain now" in page


def test_the_poll_returns_only_the_jobs_fragment_while_the_job_runs(lead, versions):
    job = TrainingJob.objects.create(kinds=["churn"], trigger="manual", status="running", stage="comparing", percent=80)
    response = english(lead).get(PAGE, {"watching": job.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section id="model-jobs"')
    assert 'value="80"' in fragment and "churn-v2" not in fragment


def test_the_poll_reloads_the_page_once_the_watched_job_has_ended(lead, versions):
    job = TrainingJob.objects.create(kinds=["churn"], trigger="manual", status="succeeded", percent=100)
    response = english(lead).get(PAGE, {"watching": job.pk}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Refresh"] == "true"


def test_a_job_queued_for_more_than_two_minutes_says_no_worker_may_be_running_and_how_to_start_one(lead, versions):
    assert "perhaps none is running" not in english(lead).get(PAGE).content.decode()
    job = queued_job(minutes_ago=1)
    assert "perhaps none is running" not in english(lead).get(PAGE).content.decode()
    TrainingJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(minutes=3))

    page = english(lead).get(PAGE).content.decode()

    assert "No worker has picked this job up in more than 2 minutes: perhaps none is running." in page
    assert "<code>make run</code> starts one" in page
    assert "<code>.venv/bin/python -m celery -A config worker</code>" in page
    assert f"Cancel job {job.pk}</button>" in page


def test_the_no_worker_hint_reaches_the_polled_fragment_too(lead, versions):
    job = queued_job(minutes_ago=3)
    response = english(lead).get(PAGE, {"watching": job.pk}, HTTP_HX_REQUEST="true")
    assert "perhaps none is running" in response.content.decode()


def silent_running_job(*, minutes_silent: float) -> TrainingJob:
    """A job a worker was running, whose heartbeats stopped `minutes_silent` ago (its worker killed)."""
    last_beat = timezone.now() - dt.timedelta(minutes=minutes_silent)
    return TrainingJob.objects.create(
        kinds=["churn"], trigger="manual", status="running", stage="training", stage_kind="churn", percent=5,
        worker="celery@gone", started_at=last_beat, heartbeat_at=last_beat,
    )  # fmt: skip


def test_a_running_job_silent_past_the_stale_limit_reads_as_stalled_without_being_failed(lead, versions, settings):
    settings.RETRAIN_STALE_MINUTES = 5
    job = silent_running_job(minutes_silent=6)
    since = timezone.localtime(job.heartbeat_at).strftime("%d-%m-%Y %H:%M")

    dutch = logged_in(lead).get(PAGE).content.decode()
    page = english(lead).get(PAGE).content.decode()

    assert f"No sign of life since {since}: the worker may have stopped." in page
    assert "disabled>Retrain now" not in page  # the button that clears it is offered
    assert f"Geen teken van leven sinds {since}: de worker is mogelijk gestopt." in dutch
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING  # a page read writes nothing


def test_a_running_job_that_beat_within_the_stale_limit_reads_as_running(lead, versions, settings):
    settings.RETRAIN_STALE_MINUTES = 5
    silent_running_job(minutes_silent=4)

    page = english(lead).get(PAGE).content.decode()

    assert "No sign of life" not in page
    assert "disabled>Retrain now" in page


# --- the buttons ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["lead", "admin"])
def test_a_queued_job_can_be_cancelled_which_frees_the_queue_for_a_retrain(persona, request, versions):
    user = request.getfixturevalue(persona)
    job = queued_job()
    client = english(user)
    assert f'action="{reverse("review-models-cancel-job", args=[job.pk])}"' in client.get(PAGE).content.decode()

    response = client.post(reverse("review-models-cancel-job", args=[job.pk]))

    assert response.status_code == 302 and response["Location"] == PAGE
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED
    assert job.error.startswith(f"cancelled by {persona} at ")
    page = client.get(PAGE).content.decode()
    assert f"Job {job.pk} cancelled; a retrain can be requested again." in page
    assert '<span class="status status-grey">Cancelled</span>' in page
    assert "Cancelled before a worker picked it up: nothing was trained." in page
    assert job.error not in page  # the record's English line stays in the admin
    assert client.post(reverse("review-models-retrain")).status_code == 302


def test_a_job_stopped_with_ctrl_c_reads_as_stopped_not_as_cancelled_before_it_started(lead, versions):
    job = queued_job()
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.CANCELLED, started_at=timezone.now(), finished_at=timezone.now(),
        error=STOPPED_WITH_CTRL_C,
    )  # fmt: skip

    page = english(lead).get(PAGE).content.decode()

    assert (
        "Stopped before it finished (Ctrl-C or SIGTERM on train_models): "
        "the kind in training was not registered or promoted." in page
    )
    assert "Cancelled before a worker picked it up" not in page


def test_a_running_job_has_no_cancel_button_and_cancelling_it_is_refused(lead, versions):
    job = TrainingJob.objects.create(kinds=["churn"], trigger="manual", status="running", stage="training")
    client = english(lead)
    assert "Cancel job" not in client.get(PAGE).content.decode()

    response = client.post(reverse("review-models-cancel-job", args=[job.pk]))

    assert response.status_code == 409
    assert f"Job {job.pk} was not cancelled: it is Running now." in response.content.decode()
    job.refresh_from_db()
    assert (job.status, job.error) == (TrainingJob.Status.RUNNING, "")


def test_cancelling_is_refused_to_an_agent_and_an_unknown_job_is_404(agent, lead, versions):
    job = queued_job()
    assert logged_in(agent).post(reverse("review-models-cancel-job", args=[job.pk])).status_code == 403
    assert TrainingJob.objects.get().status == TrainingJob.Status.QUEUED
    assert english(lead).post(reverse("review-models-cancel-job", args=[job.pk + 1])).status_code == 404


def test_retrain_now_queues_a_job_for_the_worker_once_committed(lead, versions, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as enqueued:
        response = english(lead).post(reverse("review-models-retrain"))
    assert response.status_code == 302 and response["Location"] == PAGE
    job = TrainingJob.objects.get()
    assert (job.trigger, job.status, job.requested_by) == ("manual", "queued", lead)
    assert len(enqueued) == 1


def test_retrain_now_while_a_job_runs_is_refused_with_the_reason(lead, versions):
    running = TrainingJob.objects.create(kinds=["churn"], trigger="nightly", status="running")
    response = english(lead).post(reverse("review-models-retrain"))
    assert response.status_code == 409
    assert f"A retrain is already under way (job {running.pk}, Running)." in response.content.decode()
    assert TrainingJob.objects.count() == 1


def test_retrain_now_fails_a_job_whose_worker_stopped_and_queues_a_new_one(lead, versions, settings):
    settings.RETRAIN_STALE_MINUTES = 5
    stalled = silent_running_job(minutes_silent=6)

    response = english(lead).post(reverse("review-models-retrain"))

    assert response.status_code == 302
    stalled.refresh_from_db()
    assert stalled.status == TrainingJob.Status.FAILED
    assert stalled.error.startswith("the worker (celery@gone) stopped: no heartbeat since ")
    assert TrainingJob.objects.latest("pk").status == TrainingJob.Status.QUEUED


def test_promote_makes_a_candidate_champion_with_who_and_why_in_one_click(lead, versions, register):
    candidate = register(4, "candidate")
    response = english(lead).post(reverse("review-models-promote", args=["churn", 4]), {"reason": "fresher data"})
    assert response.status_code == 302
    assert champion_version() == 4
    decision = ModelPromotion.objects.filter(model_version=candidate, promoted=True).get()
    assert decision.decided_by == lead
    assert decision.reason == "promoted on the models page by lead: fresher data"


def test_promoting_a_rejected_version_first_says_why_it_was_kept_out_and_changes_nothing(lead, versions):
    response = english(lead).post(reverse("review-models-promote", args=["churn", 3]), {"reason": "fresher data"})

    assert response.status_code == 200
    assert champion_version() == 2
    assert not ModelPromotion.objects.filter(model_version=versions[3], promoted=True).exists()
    box = confirmation_of(response.content.decode())
    assert "Promote churn-v3, which the retrain rules kept out?" in box
    assert "Why it was kept out:</strong> ECE 0.071 &gt; 0.05: kept the champion, challenger not calibrated" in box
    assert '<input type="hidden" name="confirm" value="1">' in box
    assert 'name="reason" maxlength="300" size="40" value="fresher data"' in box
    assert "Promote anyway</button>" in box


def test_promote_anyway_makes_a_rejected_version_champion_on_the_second_post(lead, versions):
    client, url = english(lead), reverse("review-models-promote", args=["churn", 3])
    assert client.post(url, {"reason": "fresher data"}).status_code == 200
    assert champion_version() == 2

    response = client.post(url, {"reason": "fresher data", "confirm": "1"})

    assert response.status_code == 302
    assert champion_version() == 3
    decision = ModelPromotion.objects.filter(model_version=versions[3], promoted=True).get()
    assert (decision.decided_by, decision.reason) == (lead, "promoted on the models page by lead: fresher data")


def test_the_confirmation_names_the_latest_verdict_in_the_leads_language(lead, register):
    register(1, "champion")
    rejected = register(2, "candidate")
    model_version_reject(version=rejected, reason="an older verdict")
    model_version_reject(
        version=rejected,
        reason=phrase(
            "judged",
            figures=phrase("figures_below", challenger_auc=0.7104, champion_auc=0.7342, rows=666, tolerance=0.005),
            calibration=phrase("ece_within_bar", ece=0.025, max_ece=0.05),
            outcome=phrase("kept_worse"),
            basis=phrase("basis_no_champion"),
        ),
    )

    response = logged_in(lead).post(reverse("review-models-promote", args=["churn", 2]))

    box = confirmation_of(response.content.decode())
    assert "uitdager AUC 0,71 tegenover kampioen 0,734 op 666 toetsrijen" in box
    assert "an older verdict" not in box
    assert champion_version() == 1


def test_promoting_a_version_that_serves_or_served_is_refused(lead, versions):
    response = english(lead).post(reverse("review-models-promote", args=["churn", 1]))
    assert response.status_code == 409
    assert "Only a candidate or a rejected version can be promoted." in response.content.decode()
    assert champion_version() == 2


def test_promoting_an_unknown_version_is_404(lead, versions):
    assert english(lead).post(reverse("review-models-promote", args=["churn", 99])).status_code == 404


def test_a_reason_that_is_too_long_is_refused_and_changes_nothing(lead, versions):
    response = english(lead).post(reverse("review-models-promote", args=["churn", 3]), {"reason": "x" * 301})
    assert response.status_code == 400
    assert champion_version() == 2


def test_roll_back_restores_the_previous_champion(lead, versions):
    client = english(lead)
    response = client.post(
        reverse("review-models-rollback", args=["churn"]), {"reason": "too many high risks", "confirm": "1"}
    )
    assert response.status_code == 302
    assert champion_version() == 1
    decision = ModelPromotion.objects.filter(model_version=versions[1]).get()
    assert decision.decided_by == lead
    assert decision.reason == "rolled back from churn-v2 to churn-v1: on the models page by lead: too many high risks"
    follow = client.get(PAGE).content.decode()
    assert "Rolled back: churn-v1 is the champion again." in follow
    AgentProfile.objects.filter(user=lead).update(language="nl")
    dutch = client.get(PAGE).content.decode()
    assert "teruggedraaid van churn-v2 naar churn-v1: op de modellenpagina door lead: too many high risks" in dutch


def test_roll_back_restores_the_version_the_page_named_or_nothing_when_that_changed(lead, versions):
    client = english(lead)
    page = client.get(PAGE).content.decode()
    assert '<input type="hidden" name="to_version" value="1">' in page
    # another tab: v3 now serves, v2 before it
    client.post(reverse("review-models-promote", args=["churn", 3]), {"confirm": "1"})

    stale = client.post(reverse("review-models-rollback", args=["churn"]), {"to_version": "1", "confirm": "1"})

    assert stale.status_code == 409
    assert "The models changed since this page was shown" in stale.content.decode()
    assert champion_version() == 3
    rollback = {"to_version": "2", "confirm": "1"}
    assert client.post(reverse("review-models-rollback", args=["churn"]), rollback).status_code == 302
    assert champion_version() == 2


def test_a_roll_back_not_confirmed_changes_nothing_and_says_why(lead, versions):
    response = english(lead).post(reverse("review-models-rollback", args=["churn"]), {"to_version": "1"})

    assert response.status_code == 400
    assert "Tick that every team&#x27;s advice changes to confirm the rollback." in response.content.decode()
    assert champion_version() == 2
    assert 'name="confirm" value="1" required' in response.content.decode()


def test_a_version_a_rollback_restored_reads_as_restored_not_promoted(lead, versions):
    client = english(lead)
    client.post(reverse("review-models-rollback", args=["churn"]), {"to_version": "1", "confirm": "1"})

    page = client.get(PAGE).content.decode()

    assert "Restored by a rollback" in page


def test_roll_back_with_nothing_earlier_is_refused(lead, register):
    register(1, "champion")
    response = english(lead).post(reverse("review-models-rollback", args=["churn"]), {"confirm": "1"})
    assert response.status_code == 409
    assert "There is no earlier version to roll back to." in response.content.decode()
    assert champion_version() == 1


def test_an_unknown_kind_is_404(lead, versions):
    assert english(lead).post(reverse("review-models-rollback", args=["fraud"])).status_code == 404


def test_the_buttons_need_a_post_with_a_csrf_token(lead, versions):
    assert english(lead).get(reverse("review-models-rollback", args=["churn"])).status_code == 405
    AgentProfile.objects.filter(user=lead).update(language="en")
    strict = logged_in(lead, enforce_csrf_checks=True)
    assert strict.post(reverse("review-models-rollback", args=["churn"])).status_code == 403
    assert champion_version() == 2


def test_a_champion_without_a_training_distribution_says_why_there_is_no_drift(lead, register):
    register(1, "champion")
    page = english(lead).get(PAGE).content.decode()
    assert "Drift: this version was trained before training distributions were kept" in page
