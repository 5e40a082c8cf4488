"""Training jobs: the learning loop's writes. Request a retrain, run it with progress, finish or fail it,
cancel one no worker has picked up, and sweep up jobs whose worker died.

A job is requested (queued), claimed by one worker (running), and ends succeeded, failed or
refused. At most one job is queued and one runs (a database constraint): a second claim is
refused, and the promotion step re-checks the champion inside its transaction, so two retrains
can never both promote. A running job beats a heartbeat; one whose heartbeat stops, or that is
still marked running when its worker starts again, is failed by the sweep. A dead job never
changes the champion: promotion is one transaction at the very end of a kind's retrain.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from config.celery import sent_to_worker
from ml.models import ModelVersion, TrainingJob
from ml.services import TRAINERS, RetrainPolicy, TooFewLabels, model_retrain
from ml.training import progress_slice
from retention.models import RenewalResult

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
# A queued job no worker has picked up in this long lost its message (a wiped broker folder, say).
QUEUED_TOO_LONG = dt.timedelta(hours=6)
# Called with (kind, stage, percent of the whole job) after each step is recorded.
JobProgress = Callable[[str, str, int], None]


class TrainingBusy(Exception):
    """A training job is queued or running already."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        super().__init__(f"training job {job.pk} is {job.status} already ({job.percent}% done)")


class TrainingJobNotQueued(Exception):
    """The job left the queue before it could be cancelled: a worker picked it up, or it ended."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        super().__init__(f"training job {job.pk} is {job.status}, no longer queued")


def trainable_kinds() -> list[str]:
    # Plain strings: TRAINERS is keyed by ModelVersion.Kind members, whose repr (which argparse shows
    # when it lists an option's choices) is ModelVersion.Kind.CHURN, not 'churn'.
    return [str(kind) for kind in TRAINERS]


# --- requests -------------------------------------------------------------------------------------------------


def training_job_request(
    *,
    trigger: str,
    kinds: list[str] | None = None,
    requested_by: AbstractBaseUser | None = None,
    seed: int = 0,
    enqueue: bool = True,
) -> TrainingJob:
    """Queue a retrain of `kinds` (every trainable kind by default); the worker gets it once this commits.

    Raises TrainingBusy while another job is queued or running (one silent past RETRAIN_STALE_MINUTES is failed
    first), ValidationError for an unknown kind.
    With enqueue=False the caller runs the job itself (the train_models command does).
    """
    kinds = list(dict.fromkeys(kinds)) if kinds else trainable_kinds()  # a kind asked for twice is trained once
    if unknown := sorted(set(kinds) - set(TRAINERS)):
        raise ValidationError({"kinds": f"no trainer for {', '.join(unknown)}; known: {', '.join(TRAINERS)}"})
    # A job whose worker stopped is failed first: without beat nothing else would, and it would refuse every retrain
    # as one under way.
    training_jobs_sweep()
    job = TrainingJob(kinds=kinds, trigger=trigger, requested_by=requested_by, seed=seed, stage="queued")
    job.full_clean(validate_constraints=False)  # the one-active-job constraint is checked below, with the job named
    with transaction.atomic():
        if active := TrainingJob.objects.filter(status__in=TrainingJob.ACTIVE).first():
            raise TrainingBusy(active)
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError as error:  # another request got in between the check and the save
            raise TrainingBusy(TrainingJob.objects.filter(status__in=TrainingJob.ACTIVE).first() or job) from error
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job))
    return job


def training_job_cancel(*, job: TrainingJob, by: AbstractBaseUser) -> TrainingJob:
    """Cancel a job that is still queued, naming who cancelled it and when, so the next retrain may be requested.

    Without a worker a queued job would otherwise block every retrain until the sweep fails it hours later.
    Raises TrainingJobNotQueued once the job is no longer queued: a running job is not stopped from here, as
    its worker would go on training regardless.
    """
    now = timezone.now()
    with transaction.atomic():
        # Re-read under the lock: the page showed the job queued, but a worker may have claimed it since.
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.status != TrainingJob.Status.QUEUED:
            raise TrainingJobNotQueued(job)
        error = f"cancelled by {by.get_username()} at {now:%Y-%m-%d %H:%M:%S} UTC before a worker picked it up"
        _update(job, status=TrainingJob.Status.CANCELLED, error=error, finished_at=now)
    return job


def _enqueue(job: TrainingJob) -> None:
    """Hand the job to a worker; a job the broker would not take is failed at once, saying why, so it does not
    hold the one place of an active job until the sweep gives up on it hours later."""
    from ml.tasks import retrain_models_task  # the tasks module imports this one

    if problem := sent_to_worker(lambda: retrain_models_task.delay(job.pk), what=f"training job {job.pk}"):
        _update(job, status=TrainingJob.Status.FAILED, error=problem, finished_at=timezone.now())


def labels_since_last_job() -> int:
    """Renewal results stored since the newest training job that trains or will train was requested (all of them
    before any). A job that never reached a worker (cancelled, or refused as another ran) trained on nothing, so
    it does not put off the retrain its labels call for."""
    will_train_or_did = Q(status__in=TrainingJob.ACTIVE) | Q(started_at__isnull=False)
    last = TrainingJob.objects.filter(will_train_or_did).order_by("-created_at", "-pk").first()
    results = RenewalResult.objects.all()
    if last is not None:
        results = results.filter(created_at__gt=last.created_at)
    return results.count()


def retrain_if_due() -> TrainingJob | None:
    """Queue a retrain when RETRAIN_AFTER_OUTCOMES new labels have come in since the last job."""
    if labels_since_last_job() < settings.RETRAIN_AFTER_OUTCOMES:
        return None
    return _request_unless_busy(TrainingJob.Trigger.OUTCOMES)


def retrain_nightly() -> TrainingJob | None:
    return _request_unless_busy(TrainingJob.Trigger.NIGHTLY)


def _request_unless_busy(trigger: str) -> TrainingJob | None:
    try:
        return training_job_request(trigger=trigger)
    except TrainingBusy as busy:
        logger.info("no %s retrain: %s", trigger, busy)
        return None


def retrain_check_enqueue() -> None:
    """Ask the worker whether enough new labels have come in (called once renewal results are committed)."""
    from ml.tasks import retrain_if_due_task

    # Not handed over, the labels wait for the nightly retrain, which counts them too.
    sent_to_worker(retrain_if_due_task.delay, what="the check for a retrain after new labels")


# --- running --------------------------------------------------------------------------------------------------


STOPPED_WITH_CTRL_C = (
    "stopped with Ctrl-C or SIGTERM before it finished: the kind in training was not registered or promoted"
)


def training_job_run(
    *, job_id: int, worker: str, on_progress: JobProgress | None = None, policy: RetrainPolicy | None = None
) -> TrainingJob:
    """Run a queued job to its end. A job that is not queued (finished, or taken by another worker) is
    returned untouched, so running the same job twice is harmless."""
    job = TrainingJob.objects.get(pk=job_id)
    if job.status != TrainingJob.Status.QUEUED:
        return job
    job = training_job_start(job=job, worker=worker)
    if job.status != TrainingJob.Status.RUNNING:
        return job
    with Heartbeat(job.pk):
        try:
            results = _retrain_kinds(job, on_progress, policy)
        except KeyboardInterrupt:
            # Someone stopped it on purpose: no failure to look into. A kind is registered only at the end of its
            # training; the kinds finished before stay as `results` says.
            _update(job, status=TrainingJob.Status.CANCELLED, error=_stopped(job), finished_at=timezone.now())
            raise
        except BaseException as error:  # a time limit too: the job must not stay "running"
            training_job_fail(job=job, error=f"{type(error).__name__}: {error}")
            raise
    return training_job_finish(job=job, results=results)


def _stopped(job: TrainingJob) -> str:
    finished = [f"{kind} ({result['outcome']})" for kind, result in (job.results or {}).items()]
    return STOPPED_WITH_CTRL_C + (f"; finished before: {', '.join(finished)}" if finished else "")


def training_job_start(*, job: TrainingJob, worker: str) -> TrainingJob:
    """Claim a queued job for `worker`. Refused when another job is running (the constraint says so)."""
    now = timezone.now()
    values = {"status": TrainingJob.Status.RUNNING, "worker": worker[:200], "started_at": now, "heartbeat_at": now}
    try:
        with transaction.atomic():
            TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.QUEUED).update(**values)
    except IntegrityError:
        running = TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING).exclude(pk=job.pk).first()
        other = f"training job {running.pk}" if running else "another training job"
        _update(job, status=TrainingJob.Status.REFUSED, error=f"{other} is running", finished_at=now)
    job.refresh_from_db()
    return job


def _retrain_kinds(job: TrainingJob, on_progress: JobProgress | None, policy: RetrainPolicy | None) -> dict:
    results = {}
    share = 100 / len(job.kinds)
    for number, kind in enumerate(job.kinds):
        start, end = round(number * share), round((number + 1) * share)
        report = progress_slice(_job_reporter(job, kind, on_progress), start, end)
        try:
            version = model_retrain(
                kind=kind,
                by=f"training job {job.pk} ({job.trigger})",
                seed=job.seed,
                policy=policy,
                training_job=job,
                progress=report,
            )
        except TooFewLabels as refusal:
            results[kind] = {
                "outcome": "refused",
                "version": None,
                "reason": str(refusal),
                "reason_phrase": refusal.reason,
            }
        else:
            results[kind] = _decision(version)
        _update(job, results=results)
        report("done", 100)
    return results


def _decision(version: ModelVersion) -> dict:
    outcome = "promoted" if version.status == ModelVersion.Status.CHAMPION else "kept out"
    decision = version.promotions.first()
    return {
        "outcome": outcome,
        "version": version.version,
        "reason": version.status_reason,
        "reason_phrase": decision.reason_phrase if decision else {},
    }


def _job_reporter(job: TrainingJob, kind: str, on_progress: JobProgress | None) -> Callable[[str, int], None]:
    def report(stage: str, percent: int) -> None:
        training_job_progress(job=job, kind=kind, stage=stage, percent=percent)
        if on_progress is not None:
            on_progress(kind, stage, percent)

    return report


def training_job_progress(*, job: TrainingJob, kind: str, stage: str, percent: int) -> None:
    """Record the stage and how far the job is; each report is a heartbeat too."""
    _update(job, stage=stage, stage_kind=kind, percent=min(max(percent, 0), 100), heartbeat_at=timezone.now())


def training_job_finish(*, job: TrainingJob, results: dict) -> TrainingJob:
    """Succeeded when any kind was trained; refused when every kind was refused (too few labels)."""
    refused = [result["reason"] for result in results.values() if result["outcome"] == "refused"]
    status = TrainingJob.Status.REFUSED if len(refused) == len(results) else TrainingJob.Status.SUCCEEDED
    error = "; ".join(refused) if status == TrainingJob.Status.REFUSED else ""
    _update(job, status=status, error=error, results=results, percent=100, stage="done", finished_at=timezone.now())
    return job


def training_job_fail(*, job: TrainingJob, error: str) -> None:
    _update(job, status=TrainingJob.Status.FAILED, error=error, finished_at=timezone.now())


def _update(job: TrainingJob, **values) -> None:
    for name, value in values.items():
        setattr(job, name, value)
    TrainingJob.objects.filter(pk=job.pk).update(**values)


class Heartbeat:
    """Marks a running job alive every HEARTBEAT_SECONDS from a thread, even while one long fit reports nothing."""

    def __init__(self, job_id: int, every: float = HEARTBEAT_SECONDS) -> None:
        self.job_id = job_id
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                self._beat()
        finally:
            connection.close()  # this thread's own connection

    def _beat(self) -> None:
        try:
            TrainingJob.objects.filter(pk=self.job_id, status=TrainingJob.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )
        except DatabaseError as error:  # a busy database: the next beat tries again, well within the stale limit
            logger.warning("heartbeat of training job %s missed: %s", self.job_id, error)


# --- the sweep ------------------------------------------------------------------------------------------------


def training_jobs_sweep(*, worker: str | None = None, now: dt.datetime | None = None) -> list[int]:
    """Fail jobs whose worker is gone: running without a heartbeat for RETRAIN_STALE_MINUTES, running
    under `worker` (a worker that is starting cannot be running anything yet), or queued for too long.
    Returns the ids of the jobs failed."""
    now = now or timezone.now()
    stale = now - dt.timedelta(minutes=settings.RETRAIN_STALE_MINUTES)
    running = TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING)
    silent = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    reasons = {job.pk: _silence(job) for job in running.filter(silent)}
    if worker:
        reasons.update({job.pk: _restarted(job) for job in running.filter(worker=worker)})
    for job in TrainingJob.objects.filter(status=TrainingJob.Status.QUEUED, created_at__lt=now - QUEUED_TOO_LONG):
        reasons[job.pk] = f"no worker picked the job up within {QUEUED_TOO_LONG.total_seconds() / 3600:g} hours"
    for pk, reason in reasons.items():
        # Only a job still in the state it was found in: one that finished meanwhile keeps its result.
        TrainingJob.objects.filter(pk=pk, status__in=TrainingJob.ACTIVE).update(
            status=TrainingJob.Status.FAILED, error=reason, finished_at=now
        )
    return sorted(reasons)


COMMAND_WORKER_PREFIX = "train_models on "
COMMAND_WORKER = re.compile(rf"^{re.escape(COMMAND_WORKER_PREFIX)}(?P<host>.+) \(pid (?P<pid>\d+)\)$")


def command_worker_name(*, host: str, pid: int) -> str:
    """How a job run by the `train_models` command names its worker: the host and the process."""
    return f"{COMMAND_WORKER_PREFIX}{host} (pid {pid})"


def command_jobs_sweep(*, host: str, process_alive: Callable[[int], bool]) -> list[int]:
    """Fail the running jobs of `train_models` commands on this host whose process is gone (killed, or its terminal
    closed): the command may run where no worker sweeps, and its next run would otherwise wait for a job that never
    ends. Returns the ids of the jobs failed."""
    gone = []
    for job in TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING, worker__startswith=COMMAND_WORKER_PREFIX):
        match = COMMAND_WORKER.match(job.worker)
        if match and match["host"] == host and not process_alive(int(match["pid"])):
            updated = TrainingJob.objects.filter(pk=job.pk, status=TrainingJob.Status.RUNNING).update(
                status=TrainingJob.Status.FAILED,
                error=f"its process ({job.worker}) stopped",
                finished_at=timezone.now(),
            )
            gone += [job.pk] * updated
    return gone


def _silence(job: TrainingJob) -> str:
    last = job.heartbeat_at or job.started_at
    return f"the worker ({job.worker or 'unknown'}) stopped: no heartbeat since {last:%Y-%m-%d %H:%M:%S} UTC"


def _restarted(job: TrainingJob) -> str:
    return f"the worker ({job.worker}) was restarted while the job ran"
