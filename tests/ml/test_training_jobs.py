"""The learning loop's jobs: progress, refusal, judgement against the champion, the lock, failure and the sweep."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import re
import signal
import socket
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from config.celery import app
from ml import services
from ml.artifacts import ArtifactError
from ml.jobs import (
    STOPPED_WITH_CTRL_C,
    TrainingBusy,
    TrainingJobNotQueued,
    command_jobs_sweep,
    command_worker_name,
    labels_since_last_job,
    retrain_check_enqueue,
    retrain_if_due,
    training_job_cancel,
    training_job_request,
    training_job_run,
    training_jobs_sweep,
)
from ml.models import ModelPromotion, ModelVersion, TrainingJob
from ml.registry import champions
from ml.selectors import training_job_silent_since
from ml.services import RetrainPolicy, Trainer, churn_training_set, model_retrain
from ml.tasks import (
    retrain_if_due_task,
    retrain_models_task,
    retrain_nightly_task,
    sweep_when_a_worker_starts,
    training_jobs_sweep_task,
)
from ml.training import STAGES, Comparison, churn_model_fit, promotion_verdict
from ml.verdicts import english_number, kind_phrase, phrase, render
from retention.records import RenewalRecord
from retention.services.customers import customers_upsert
from retention.services.renewals import RenewalReport, renewal_results_record
from tests.api.factories import DecisionFactory
from tests.builders import fitted_once, labelled_records, store_labelled_base
from tests.factories import CustomerFactory, RenewalResultFactory, UserFactory

# Judges nothing but a change of champion: every challenger clears these bars.
LENIENT = RetrainPolicy(min_labels=100, auc_tolerance=1.0, max_ece=1.0)
STRICT_CALIBRATION = RetrainPolicy(min_labels=100, auc_tolerance=1.0, max_ece=0.0)


def churn_job(**values) -> TrainingJob:
    return training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["churn"], enqueue=False, **values)


def run(job: TrainingJob, policy: RetrainPolicy = LENIENT, **kwargs) -> TrainingJob:
    return training_job_run(job_id=job.pk, worker="celery@test", policy=policy, **kwargs)


def champion() -> ModelVersion:
    return ModelVersion.objects.get(kind="churn", status=ModelVersion.Status.CHAMPION)


@pytest.fixture(scope="module")
def fits_made() -> dict:
    return {}


@pytest.fixture(autouse=True)
def each_fit_made_once(fits_made, monkeypatch):
    """Every kind's fit, made once per module for the same rows and seed and replayed after that.

    A fit is deterministic for its rows and seed, and most of these tests retrain on the same labelled
    base: each would spend half a second fitting the same model again. The retrain around the fit (reading
    the training set, judging against the champion, registering, promoting) still runs in full each time.
    """
    for kind, trainer in list(services.TRAINERS.items()):
        monkeypatch.setitem(
            services.TRAINERS, kind, dataclasses.replace(trainer, fit=fitted_once(trainer.fit, fits_made))
        )


@pytest.fixture
def labelled_base(db):
    store_labelled_base()
    champions.clear()
    yield
    champions.clear()


@pytest.fixture
def fresh_labels(churn_champion):
    """The champion, and as many new labelled customers again since it was trained."""
    store_labelled_base(seed=1)
    return churn_champion


def fit_on_shuffled_labels(features, labels, times, *, seed, progress):
    """A real model, fitted on labels shuffled away from the features: it has learned nothing."""
    shuffled = np.random.default_rng(seed).permutation(labels)
    return churn_model_fit(features, shuffled, times, seed=seed, progress=progress)


# --- progress and the first model ----------------------------------------------------------------------------


def test_a_job_reports_each_stage_with_rising_percent_and_ends_succeeded(labelled_base):
    reports = []
    job = run(churn_job(), on_progress=lambda kind, stage, percent: reports.append((kind, stage, percent)))
    assert job.status == TrainingJob.Status.SUCCEEDED
    assert (job.percent, job.stage, job.error) == (100, "done", "")
    stages = [stage for _, stage, _ in reports]
    assert stages[0] == "training_set" and stages[-1] == "done"
    assert {"training", "refitting", "comparing", "deciding"} <= set(stages) <= set(STAGES)
    percents = [percent for _, _, percent in reports]
    assert percents == sorted(percents) and percents[-1] == 100
    assert job.started_at <= job.heartbeat_at <= job.finished_at


def test_the_first_model_of_a_kind_is_promoted_and_linked_to_its_job(labelled_base):
    job = run(churn_job(), policy=STRICT_CALIBRATION)
    version = job.versions.get()
    assert version.status == ModelVersion.Status.CHAMPION
    assert job.results["churn"]["outcome"] == "promoted"
    promotion = ModelPromotion.objects.get(model_version=version)
    assert promotion.training_job == job
    assert promotion.reason.startswith("first model of its kind (AUC ")


def test_the_training_distribution_is_stored_with_the_version(labelled_base):
    version = run(churn_job()).versions.get()
    numeric = version.training_distribution["numeric"]["monthly_fee"]
    assert len(numeric["shares"]) == len(numeric["edges"]) + 2
    assert sum(numeric["shares"]) == pytest.approx(1.0)
    assert version.training_distribution["rows"] == version.training_rows


# --- refusal -------------------------------------------------------------------------------------------------


def test_a_retrain_with_too_few_labels_refuses_clearly_and_trains_nothing(db):
    store_labelled_base(n=60)
    job = run(churn_job(), policy=RetrainPolicy(min_labels=200, auc_tolerance=0.005, max_ece=0.05))
    assert job.status == TrainingJob.Status.REFUSED
    assert job.error == "churn model: 60 labelled outcomes; a retrain needs at least 200 (RETRAIN_MIN_LABELS)"
    assert not ModelVersion.objects.exists()


def test_labels_all_of_one_outcome_refuse_too(db):
    records = labelled_records(n=120)
    for record in records:
        record.renewals = [RenewalRecord(result="renewed", date=record.renewals[0].date)]
    customers_upsert(records=records, source="simulation")
    job = run(churn_job())
    assert job.status == TrainingJob.Status.REFUSED
    assert job.error.startswith("churn model: too few labelled outcomes to train: 120 rows, 0 churned; need at least")


def test_a_kind_asked_for_twice_is_trained_once(db):
    job = training_job_request(trigger=TrainingJob.Trigger.COMMAND, kinds=["acceptance", "churn", "acceptance"])

    assert job.kinds == ["acceptance", "churn"]


def test_one_kind_refused_does_not_refuse_the_other(labelled_base):
    job = training_job_request(trigger=TrainingJob.Trigger.NIGHTLY, enqueue=False)
    assert job.kinds == ["churn", "acceptance"]
    job = run(job)
    assert job.status == TrainingJob.Status.SUCCEEDED
    assert job.results["churn"]["outcome"] == "promoted"
    assert job.results["acceptance"] == {
        "outcome": "refused",
        "version": None,
        "reason": "offer-response model: 0 labelled outcomes; a retrain needs at least 100 (RETRAIN_MIN_LABELS)",
        "reason_phrase": phrase("too_few_labels", kind=kind_phrase("acceptance"), labels=0, minimum=100),
    }


def test_the_offer_response_model_is_retrained_from_the_labelled_decision_log(db):
    """The same loop trains the second kind: logged decisions labelled by later renewal results."""
    rng = np.random.default_rng(0)
    for _ in range(120):
        customer = CustomerFactory()
        fee = float(rng.uniform(30, 90))
        DecisionFactory(
            customer=customer,
            policy_version=0,
            as_of=timezone.now() - dt.timedelta(days=int(rng.integers(20, 200))),
            # Categorical columns out of alphabetical order, as the feature rows have them.
            features={
                "monthly_fee": fee,
                "complaints_90d": float(rng.poisson(1.0)),
                "segment": "consumer",
                "value_tier": str(rng.choice(["low", "high"])),
                "region": str(rng.choice(["Noord", "Zuid"])),
            },
            churn_probability=float(rng.uniform(0.1, 0.6)),
            renewal_fee_cents=round(fee * 100),
        )
        left = rng.random() < 0.2 + fee / 200
        RenewalResultFactory(customer=customer, result="churned" if left else "renewed", date=timezone.localdate())
    job = training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["acceptance"], enqueue=False)
    job = run(job)
    assert job.status == TrainingJob.Status.SUCCEEDED, job.error
    version = job.versions.get()
    assert (version.kind, version.status, version.training_rows) == ("acceptance", "champion", 120)
    assert "monthly_fee" in version.training_distribution["numeric"]
    again = run(training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["acceptance"], enqueue=False))
    comparison = again.versions.get().metrics["comparison"]
    assert comparison["champion_auc"] is not None and comparison["rows"] == 24  # the same fifth, both models


# --- judgement against the champion --------------------------------------------------------------------------


def test_a_challenger_that_is_not_worse_and_calibrated_is_promoted_with_its_figures(fresh_labels):
    job = run(churn_job())
    challenger = job.versions.get()
    assert challenger.status == ModelVersion.Status.CHAMPION
    fresh_labels.refresh_from_db()
    assert fresh_labels.status == ModelVersion.Status.RETIRED
    comparison = challenger.metrics["comparison"]
    reason = ModelPromotion.objects.get(model_version=challenger).reason
    assert reason.startswith(
        f"challenger AUC {comparison['challenger_auc']:.3f} vs champion {comparison['champion_auc']:.3f} "
        f"on {comparison['rows']} holdout rows; ECE {comparison['challenger_ece']:.3f} ≤ 1: promoted ("
    )


def test_a_challenger_worse_than_the_champion_is_kept_out_with_the_reason(fresh_labels, monkeypatch):
    monkeypatch.setitem(services.TRAINERS, "churn", Trainer(churn_training_set, fit_on_shuffled_labels))
    policy = RetrainPolicy(min_labels=100, auc_tolerance=0.005, max_ece=1.0)
    job = run(churn_job(), policy=policy)
    challenger = job.versions.get()
    assert challenger.status == ModelVersion.Status.REJECTED
    assert champion() == fresh_labels
    comparison = challenger.metrics["comparison"]
    assert comparison["challenger_auc"] < comparison["champion_auc"] - 0.005
    decision = ModelPromotion.objects.get(model_version=challenger)
    assert not decision.promoted
    assert "(more than 0.005 below)" in decision.reason
    assert "kept the champion, challenger worse (" in decision.reason
    assert job.results["churn"] == {
        "outcome": "kept out",
        "version": 2,
        "reason": decision.reason,
        "reason_phrase": decision.reason_phrase,
    }
    assert render(decision.reason_phrase) == decision.reason


def fit_off_by_a_quarter(features, labels, times, *, seed, progress):
    """A real model whose chances to leave, where it is judged, are a quarter higher than what happens."""
    result = churn_model_fit(features, labels, times, seed=seed, progress=progress)
    result.holdout_probabilities = np.clip(result.holdout_probabilities + 0.25, 0.0, 0.99)
    return result


def test_a_badly_calibrated_challenger_is_kept_out(fresh_labels, monkeypatch):
    monkeypatch.setitem(services.TRAINERS, "churn", Trainer(churn_training_set, fit_off_by_a_quarter))

    job = run(churn_job(), policy=RetrainPolicy(min_labels=100, auc_tolerance=1.0, max_ece=0.05))

    challenger = job.versions.get()
    assert challenger.status == ModelVersion.Status.REJECTED
    assert champion() == fresh_labels
    assert "> 0.05, beyond the " in challenger.status_reason
    assert "kept the champion, challenger not calibrated (" in challenger.status_reason


def test_a_challenger_over_the_calibration_bar_is_judged_on_what_chance_leaves_and_the_champions_ece(fresh_labels):
    job = run(churn_job(), policy=STRICT_CALIBRATION)

    challenger = job.versions.get()
    comparison = challenger.metrics["comparison"]
    within = comparison["challenger_ece"] <= min(comparison["challenger_chance_ece"], comparison["champion_ece"])
    assert comparison["challenger_ece"] > 0 and 0 < comparison["challenger_chance_ece"] < 0.2
    assert (challenger.status == ModelVersion.Status.CHAMPION) is within
    reason = ModelPromotion.objects.get(model_version=challenger).reason
    assert f"an exactly calibrated model reaches by chance on {comparison['rows']} rows and " in reason


def test_a_champion_that_may_have_learned_the_holdout_is_judged_by_its_own_holdout_figures(fresh_labels):
    comparison = run(churn_job()).versions.get().metrics["comparison"]
    holdout = fresh_labels.training_rows * 2 // 5  # a fifth of twice the champion's rows
    assert comparison["rows"] == holdout
    assert comparison["basis"].startswith("whole holdout; the champion was trained on data up to ")
    assert (
        f"so it may have seen {holdout} of these rows; the champion is judged instead by its own holdout "
        in (comparison["basis"])
    )
    assert comparison["basis"].endswith(f"from its training ({fresh_labels.metrics['rows']} rows)")
    assert (comparison["champion_auc"], comparison["champion_ece"]) == (
        fresh_labels.metrics["roc_auc"],
        fresh_labels.metrics["ece"],
    )


def test_retraining_on_what_the_champion_learned_from_finds_the_same_model_not_a_worse_one(churn_champion):
    # Scored on rows it was trained on, the champion used to beat its identical twin by two points of AUC.
    job = run(churn_job(), policy=RetrainPolicy(min_labels=100, auc_tolerance=0.0, max_ece=1.0))

    challenger = job.versions.get()
    comparison = challenger.metrics["comparison"]
    assert comparison["challenger_auc"] == pytest.approx(comparison["champion_auc"])
    assert challenger.status == ModelVersion.Status.CHAMPION


def test_a_champion_without_holdout_figures_is_scored_on_the_holdout_rows_it_may_have_seen(fresh_labels):
    ModelVersion.objects.filter(pk=fresh_labels.pk).update(metrics={})

    comparison = run(churn_job()).versions.get().metrics["comparison"]

    holdout = fresh_labels.training_rows * 2 // 5
    assert comparison["basis"].endswith(f"so it may have seen {holdout} of these rows")
    assert comparison["champion_auc"] != fresh_labels.metrics["roc_auc"]


AFTER_WINDOW = phrase("basis_rows_after_window", until="2026-10-01")


@pytest.mark.parametrize(
    ("challenger_auc", "challenger_ece", "promoted", "ending"),
    [
        (
            0.781,
            0.021,
            True,
            "ECE 0.021 ≤ 0.05: promoted (holdout rows after the champion's training window (to 2026-10-01))",
        ),
        (
            0.772,
            0.021,
            True,
            "ECE 0.021 ≤ 0.05: promoted (holdout rows after the champion's training window (to 2026-10-01))",
        ),
        (0.770, 0.021, False, "(more than 0.005 below); ECE 0.021 ≤ 0.05: kept the champion, challenger worse"),
        (0.781, 0.060, False, "ECE 0.06 > 0.05: kept the champion, challenger not calibrated"),
        (
            0.781,
            0.062,
            True,
            "ECE 0.062 > 0.05, within the 0.064 an exactly calibrated model reaches by chance on 812 rows and at most "
            "the champion's 0.066: promoted",
        ),
        (
            0.781,
            0.063,
            False,
            "ECE 0.063 > 0.05, within the 0.064 an exactly calibrated model reaches by chance on 812 rows and above "
            "the champion's 0.06: kept the champion, challenger not calibrated",
        ),
        (
            0.781,
            0.070,
            False,
            "ECE 0.07 > 0.05, beyond the 0.064 an exactly calibrated model reaches by chance on 812 rows and above "
            "the champion's 0.066: kept the champion, challenger not calibrated",
        ),
    ],
)
def test_the_verdict_states_the_figures_either_way(challenger_auc, challenger_ece, promoted, ending):
    chance = 0.064 if challenger_ece > 0.06 else None  # resampled where a case needs it
    champion_ece = {0.062: 0.066, 0.063: 0.060, 0.070: 0.066}.get(challenger_ece, 0.03)
    comparison = Comparison(
        rows=812, challenger_auc=challenger_auc, challenger_ece=challenger_ece, basis="", basis_phrase=AFTER_WINDOW,
        champion_auc=0.776, champion_ece=champion_ece, challenger_chance_ece=chance,
    )  # fmt: skip
    verdict, reason = promotion_verdict(comparison, auc_tolerance=0.005, max_ece=0.05)
    reason = render(reason)
    assert verdict is promoted
    assert reason.startswith(f"challenger AUC {english_number(challenger_auc)} vs champion 0.776 on 812 holdout rows")
    assert ending in reason


# --- the lock ------------------------------------------------------------------------------------------------


def test_a_second_request_while_one_is_queued_is_refused(db):
    first = churn_job()
    with pytest.raises(TrainingBusy, match=f"training job {first.pk} is queued already"):
        churn_job()


def test_a_job_cannot_start_while_another_runs(labelled_base):
    running = churn_job()
    TrainingJob.objects.filter(pk=running.pk).update(status=TrainingJob.Status.RUNNING, heartbeat_at=timezone.now())
    # As if two requests had raced past the check: the constraint still allows one queued beside one running.
    second = TrainingJob.objects.create(kinds=["churn"], trigger=TrainingJob.Trigger.NIGHTLY)
    job = run(second)
    assert job.status == TrainingJob.Status.REFUSED
    assert job.error == f"training job {running.pk} is running"
    assert not ModelVersion.objects.exists()


def test_two_retrains_side_by_side_promote_at_most_one_challenger(fresh_labels, monkeypatch):
    """While the first challenger trains, a second retrain runs start to end and promotes: the first then
    finds the champion it was compared with gone, and is kept out."""
    interleaved = []
    churn_fit = services.TRAINERS["churn"].fit  # churn_model_fit, made once per module (each_fit_made_once)

    def fit_while_another_retrain_finishes(features, labels, times, *, seed, progress):
        result = churn_fit(features, labels, times, seed=seed, progress=progress)
        if not interleaved:  # only the first fit: the other retrain's own fit runs undisturbed
            interleaved.append(None)
            interleaved[0] = model_retrain(kind="churn", by="other worker", policy=LENIENT)
        return result

    monkeypatch.setitem(services.TRAINERS, "churn", Trainer(churn_training_set, fit_while_another_retrain_finishes))
    first = model_retrain(kind="churn", by="first worker", policy=LENIENT)
    (second,) = interleaved
    assert second.status == ModelVersion.Status.CHAMPION
    assert first.status == ModelVersion.Status.REJECTED
    assert first.status_reason.startswith(
        "the champion changed while this model trained (churn-v1, now churn-v2): kept out; judged: challenger AUC"
    )
    assert ModelPromotion.objects.filter(promoted=True, model_version__in=[first, second]).count() == 1
    assert champion() == second


# --- cancelling a queued job --------------------------------------------------------------------------------


def test_a_cancelled_queued_job_names_who_and_when_and_frees_the_queue(db):
    job = churn_job()
    training_job_cancel(job=job, by=UserFactory(username="lead"))
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED
    assert job.error == f"cancelled by lead at {job.finished_at:%Y-%m-%d %H:%M:%S} UTC before a worker picked it up"
    assert churn_job().status == TrainingJob.Status.QUEUED  # no longer "training job N is queued already"


def test_a_job_a_worker_picked_up_meanwhile_is_not_cancelled(db):
    job = churn_job()
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.RUNNING, worker="celery@a")
    # `job` still says queued, as the page that showed the Cancel button did: the service reads it again.
    with pytest.raises(TrainingJobNotQueued, match=f"training job {job.pk} is running, no longer queued"):
        training_job_cancel(job=job, by=UserFactory(username="lead"))
    job.refresh_from_db()
    assert (job.status, job.error, job.finished_at) == (TrainingJob.Status.RUNNING, "", None)


def test_a_worker_that_receives_a_cancelled_job_leaves_it_alone(db):
    job = churn_job()
    training_job_cancel(job=job, by=UserFactory(username="lead"))
    assert run(job).status == TrainingJob.Status.CANCELLED
    assert not ModelVersion.objects.exists()


# --- failures, the sweep and idempotency ---------------------------------------------------------------------


def test_a_failing_retrain_marks_the_job_failed_and_leaves_the_champion(fresh_labels, monkeypatch):
    def broken_fit(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setitem(services.TRAINERS, "churn", Trainer(churn_training_set, broken_fit))
    job = churn_job()
    with pytest.raises(RuntimeError):
        run(job)
    job.refresh_from_db()
    assert (job.status, job.error) == (TrainingJob.Status.FAILED, "RuntimeError: out of memory")
    assert champion() == fresh_labels
    assert ModelVersion.objects.count() == 1


def test_ctrl_c_on_train_models_stops_the_job_as_cancelled_and_leaves_the_champion(fresh_labels, monkeypatch):
    def interrupted_fit(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setitem(services.TRAINERS, "churn", Trainer(churn_training_set, interrupted_fit))
    with pytest.raises(CommandError, match=r"^interrupted: stopped with Ctrl-C .* not registered or promoted$"):
        call_command("train_models", kind=["churn"], stdout=io.StringIO(), stderr=io.StringIO())

    job = TrainingJob.objects.latest("created_at")
    assert (job.status, job.error) == (TrainingJob.Status.CANCELLED, STOPPED_WITH_CTRL_C)
    assert champion() == fresh_labels and ModelVersion.objects.count() == 1


def test_ctrl_c_in_the_second_kind_says_the_first_was_finished_as_it_was(fresh_labels, monkeypatch):
    def interrupted_training_set():
        raise KeyboardInterrupt

    monkeypatch.setitem(
        services.TRAINERS, "acceptance", Trainer(interrupted_training_set, services.TRAINERS["acceptance"].fit)
    )
    with pytest.raises(CommandError, match=r"finished before: churn \((promoted|kept out)\)$"):
        call_command("train_models", stdout=io.StringIO(), stderr=io.StringIO())

    job = TrainingJob.objects.latest("created_at")
    assert job.status == TrainingJob.Status.CANCELLED and list(job.results) == ["churn"]
    assert ModelVersion.objects.filter(kind="churn").count() == 2


def test_sigterm_on_train_models_stops_the_job_as_ctrl_c_does(fresh_labels, monkeypatch):
    def terminated_fit(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill -TERM` or a service manager stopping the command

    # Before the command took SIGTERM, the test process would have ended on it: this handler only notes it.
    noted = []
    previous = signal.signal(signal.SIGTERM, lambda *_: noted.append("SIGTERM"))
    try:
        monkeypatch.setitem(services.TRAINERS, "churn", Trainer(churn_training_set, terminated_fit))
        with pytest.raises(CommandError, match=r"^interrupted: stopped with Ctrl-C or SIGTERM .* not registered"):
            call_command("train_models", kind=["churn"], stdout=io.StringIO(), stderr=io.StringIO())
        assert noted == []  # the command took the signal
    finally:
        signal.signal(signal.SIGTERM, previous)

    job = TrainingJob.objects.latest("created_at")
    assert (job.status, job.error) == (TrainingJob.Status.CANCELLED, STOPPED_WITH_CTRL_C)
    assert champion() == fresh_labels and ModelVersion.objects.count() == 1


def test_a_model_that_cannot_be_loaded_fails_train_models_in_one_line_and_fails_its_job(fresh_labels, monkeypatch):
    # Raised from the trainer rather than from a damaged champion: a champion that cannot be loaded may be set
    # aside by the retrain, and the command must say any ArtifactError that escapes in one line all the same.
    def unloadable_training_set():
        raise ArtifactError("/data/models/churn-v1/manifest.json does not match the checksum in the registry")

    monkeypatch.setitem(services.TRAINERS, "churn", Trainer(unloadable_training_set, churn_model_fit))
    with pytest.raises(CommandError) as failed:
        call_command("train_models", kind=["churn"], stdout=io.StringIO(), stderr=io.StringIO())

    job = TrainingJob.objects.latest("created_at")
    assert str(failed.value) == (
        f"training job {job.pk} failed retraining churn: "
        "/data/models/churn-v1/manifest.json does not match the checksum in the registry"
    )
    assert job.status == TrainingJob.Status.FAILED
    assert job.error == "ArtifactError: /data/models/churn-v1/manifest.json does not match the checksum in the registry"
    assert champion() == fresh_labels


def test_a_models_folder_that_cannot_be_written_fails_train_models_in_one_line_and_fails_its_job(
    labelled_base, settings, tmp_path
):
    # A file where the folder should be: refused whoever runs the test (root may write in any folder).
    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_DIR.write_text("not a folder")

    with pytest.raises(CommandError) as failed:
        call_command("train_models", kind=["churn"], stdout=io.StringIO(), stderr=io.StringIO())

    job = TrainingJob.objects.get()
    assert re.fullmatch(
        rf"training job {job.pk} failed retraining churn: Not a directory: {settings.MODEL_DIR}/churn-v1-\d+",
        str(failed.value),
    )
    assert job.status == TrainingJob.Status.FAILED
    assert job.error.startswith("NotADirectoryError: [Errno 20] Not a directory: ")
    assert not ModelVersion.objects.exists()


def test_running_a_finished_job_again_changes_nothing(labelled_base):
    job = run(churn_job())
    again = run(job)
    assert again.status == TrainingJob.Status.SUCCEEDED
    assert ModelVersion.objects.count() == 1


def test_the_sweep_fails_silent_and_long_queued_jobs_and_leaves_live_ones(db, settings):
    settings.RETRAIN_STALE_MINUTES = 5
    now = timezone.now()
    silent = TrainingJob.objects.create(
        kinds=["churn"],
        trigger="nightly",
        status="running",
        worker="celery@a",
        heartbeat_at=now - dt.timedelta(minutes=6),
    )
    live = TrainingJob.objects.create(
        kinds=["churn"], trigger="nightly", status="succeeded", finished_at=now - dt.timedelta(minutes=60)
    )
    queued = TrainingJob.objects.create(kinds=["churn"], trigger="manual")
    TrainingJob.objects.filter(pk=queued.pk).update(created_at=now - dt.timedelta(hours=7))
    assert training_jobs_sweep(now=now) == sorted([silent.pk, queued.pk])
    silent.refresh_from_db()
    assert silent.status == TrainingJob.Status.FAILED
    assert silent.error.startswith("the worker (celery@a) stopped: no heartbeat since ")
    queued.refresh_from_db()
    assert (queued.status, queued.error) == ("failed", "no worker picked the job up within 6 hours")
    live.refresh_from_db()
    assert live.status == TrainingJob.Status.SUCCEEDED


@pytest.mark.parametrize(
    ("heartbeat_minutes_ago", "started_minutes_ago"),
    [(6, 30), (4, 30), (None, 6), (None, 4), (None, None), (5.5, 1)],
)
def test_the_models_page_calls_a_job_silent_exactly_when_the_sweep_would_fail_it(
    db, settings, heartbeat_minutes_ago, started_minutes_ago
):
    """The page reads and may not write, so it tests the job in Python; the sweep tests it in SQL."""
    settings.RETRAIN_STALE_MINUTES = 5
    now = timezone.now()

    def ago(minutes):
        return None if minutes is None else now - dt.timedelta(minutes=minutes)

    job = TrainingJob.objects.create(
        kinds=["churn"], trigger="nightly", status="running", worker="celery@a",
        heartbeat_at=ago(heartbeat_minutes_ago), started_at=ago(started_minutes_ago),
    )  # fmt: skip

    read_as_silent = training_job_silent_since(job=job, now=now) is not None

    assert read_as_silent is (job.pk in training_jobs_sweep(now=now))


def test_a_job_with_a_recent_heartbeat_is_left_running(db):
    job = TrainingJob.objects.create(
        kinds=["churn"], trigger="nightly", status="running", worker="celery@a", heartbeat_at=timezone.now()
    )
    assert training_jobs_sweep() == []
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING


# The handler closes the worker's database connections, as it runs outside any transaction.
@pytest.mark.django_db(transaction=True)
def test_a_starting_worker_fails_the_jobs_it_was_running_before():
    own = TrainingJob.objects.create(
        kinds=["churn"], trigger="nightly", status="running", worker="celery@a", heartbeat_at=timezone.now()
    )
    sweep_when_a_worker_starts(sender=SimpleNamespace(hostname="celery@a"))
    own.refresh_from_db()
    assert (own.status, own.error) == ("failed", "the worker (celery@a) was restarted while the job ran")


# The handler closes the worker's database connections, as it runs outside any transaction.
@pytest.mark.django_db(transaction=True)
def test_another_workers_running_job_survives_a_worker_start():
    other = TrainingJob.objects.create(
        kinds=["churn"], trigger="nightly", status="running", worker="celery@b", heartbeat_at=timezone.now()
    )
    sweep_when_a_worker_starts(sender=SimpleNamespace(hostname="celery@a"))
    other.refresh_from_db()
    assert other.status == TrainingJob.Status.RUNNING


# --- triggers and tasks --------------------------------------------------------------------------------------


def test_a_retrain_is_queued_once_enough_labels_came_in_since_the_last_job(db, settings):
    settings.RETRAIN_AFTER_OUTCOMES = 3
    customers = [CustomerFactory(external_id=f"L-{n}") for n in range(3)]
    report = [RenewalReport(customer_id=c.external_id, result="renewed", date=timezone.localdate()) for c in customers]
    renewal_results_record(reports=report[:2])
    assert labels_since_last_job() == 2
    assert retrain_if_due() is None
    renewal_results_record(reports=report[2:])
    job = retrain_if_due()
    assert (job.trigger, job.status) == (TrainingJob.Trigger.OUTCOMES, TrainingJob.Status.QUEUED)
    assert labels_since_last_job() == 0
    assert retrain_if_due() is None


def test_a_job_cancelled_or_refused_before_training_does_not_put_off_the_retrain_its_labels_call_for(db, settings):
    settings.RETRAIN_AFTER_OUTCOMES = 3
    reports = [
        RenewalReport(customer_id=CustomerFactory(external_id=f"L-{n}").external_id, result="renewed",
                      date=timezone.localdate())
        for n in range(3)
    ]  # fmt: skip
    renewal_results_record(reports=reports[:2])
    cancelled = training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["churn"])
    training_job_cancel(job=cancelled, by=UserFactory(username="lead"))
    TrainingJob.objects.create(kinds=["churn"], trigger="nightly", status=TrainingJob.Status.REFUSED)

    assert labels_since_last_job() == 2
    renewal_results_record(reports=reports[2:])
    assert retrain_if_due().trigger == TrainingJob.Trigger.OUTCOMES


def test_recording_new_renewal_results_asks_the_worker_once_they_commit(db, django_capture_on_commit_callbacks):
    CustomerFactory(external_id="L-1")
    report = RenewalReport(customer_id="L-1", result="churned", date=timezone.localdate())
    with django_capture_on_commit_callbacks() as callbacks:
        renewal_results_record(reports=[report])
    assert callbacks == [retrain_check_enqueue]
    with django_capture_on_commit_callbacks() as callbacks:
        renewal_results_record(reports=[report])
    assert callbacks == []


def test_a_requested_job_is_enqueued_on_commit_and_run_by_the_task(labelled_base, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["churn"])
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SUCCEEDED
    assert job.worker  # the eager task's host name
    assert retrain_models_task.delay(job.pk).get() == "succeeded"  # again: a no-op
    assert ModelVersion.objects.count() == 1


def test_the_tasks_are_time_limited_retried_and_scheduled():
    for task in (retrain_models_task, retrain_nightly_task, retrain_if_due_task, training_jobs_sweep_task):
        # Celery refuses to send a task whose soft limit (or the global default) exceeds its hard limit.
        assert task.time_limit > task.soft_time_limit > 0, task.name
    assert retrain_models_task.max_retries == 5 and retrain_models_task.retry_backoff
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled == {
        "ml.retrain_nightly", "ml.training_jobs_sweep", "retention.scoring_jobs_expire",
        "retention.former_customers_expire", "retention.accesses_expire",
    }  # fmt: skip
    app.loader.import_default_modules()  # what a worker does on starting: every app's tasks module is read
    assert scheduled <= set(app.tasks)


def test_an_unknown_kind_is_refused(db):
    with pytest.raises(Exception, match="no trainer for fraud"):
        training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["fraud"])


# --- the train_models command --------------------------------------------------------------------------------


def test_train_models_runs_a_job_with_a_progress_bar_and_keeps_its_output_line(labelled_base):
    out, err = io.StringIO(), io.StringIO()
    call_command("train_models", kind=["churn"], seed=0, stdout=out, stderr=err)
    job = TrainingJob.objects.get()
    assert (job.trigger, job.status) == (TrainingJob.Trigger.COMMAND, TrainingJob.Status.SUCCEEDED)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("churn-v1 (champion) trained on 240 labelled outcomes in ")
    assert "; holdout (time, 48 rows): ROC AUC " in lines[0]
    assert lines[1].startswith("  promoted: first model of its kind")
    assert "100%" in err.getvalue() and "churn: done" in err.getvalue()

    quiet = io.StringIO()
    call_command("train_models", kind=["churn"], seed=0, no_progress=True, stdout=io.StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""


def test_train_models_refuses_clearly_with_too_few_labels(db, settings):
    settings.RETRAIN_MIN_LABELS = 200
    store_labelled_base(n=60)
    with pytest.raises(CommandError, match="churn model: 60 labelled outcomes; a retrain needs at least 200"):
        call_command("train_models", kind=["churn"], stdout=io.StringIO(), stderr=io.StringIO())


def test_an_unknown_kind_is_refused_listing_the_kinds_as_typed():
    with pytest.raises(CommandError, match=r"invalid choice: 'bogus' \(choose from 'churn', 'acceptance'\)$"):
        call_command("train_models", "--kind", "bogus", stdout=io.StringIO(), stderr=io.StringIO())


def test_train_models_refuses_while_a_job_is_running(db):
    busy = churn_job()
    with pytest.raises(CommandError, match=f"training job {busy.pk} is queued already"):
        call_command("train_models", stdout=io.StringIO(), stderr=io.StringIO())


def running_job(worker: str) -> TrainingJob:
    job = churn_job()
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.RUNNING, worker=worker, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    return job


def test_train_models_refuses_while_a_live_job_runs_and_says_where_and_until_when(db):
    busy = running_job("celery@elsewhere")

    with pytest.raises(CommandError) as refused:
        call_command("train_models", stdout=io.StringIO(), stderr=io.StringIO())

    assert f"training job {busy.pk} is running already (0% done) on celery@elsewhere" in str(refused.value)
    assert "marked failed after 5 minutes without a heartbeat" in str(refused.value)


@pytest.mark.parametrize(
    ("on_this_host", "process_alive", "failed"), [(True, False, True), (False, False, False), (True, True, False)]
)
def test_only_a_job_of_a_train_models_gone_from_this_host_is_failed(db, on_this_host, process_alive, failed):
    host = socket.gethostname()
    job = running_job(command_worker_name(host=host if on_this_host else "another-host", pid=4242))

    swept = command_jobs_sweep(host=host, process_alive=lambda pid: process_alive)

    job.refresh_from_db()
    assert swept == ([job.pk] if failed else [])
    if failed:
        assert (job.status, job.error) == ("failed", f"its process ({job.worker}) stopped")
    else:
        assert job.status == TrainingJob.Status.RUNNING


def test_train_models_clears_a_killed_runs_job_and_then_trains(labelled_base):
    killed = running_job(command_worker_name(host=socket.gethostname(), pid=999_999_999))

    call_command("train_models", kind=["churn"], seed=0, stdout=io.StringIO(), stderr=io.StringIO())

    assert TrainingJob.objects.get(pk=killed.pk).status == TrainingJob.Status.FAILED
    assert TrainingJob.objects.latest("pk").status == TrainingJob.Status.SUCCEEDED


def test_the_retrain_policy_comes_from_settings(settings):
    settings.RETRAIN_MIN_LABELS, settings.RETRAIN_AUC_TOLERANCE, settings.RETRAIN_MAX_ECE = 300, 0.01, 0.04
    assert dataclasses.astuple(RetrainPolicy.from_settings()) == (300, 0.01, 0.04)
