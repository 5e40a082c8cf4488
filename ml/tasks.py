"""Celery tasks of the learning loop: thin doors that take ids (JSON only) and call ml.jobs.

Every task is idempotent: a job that is no longer queued is left alone, and the nightly and
"enough new labels" requests do nothing while a job is queued or running.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.db import OperationalError, close_old_connections

from ml.jobs import retrain_if_due, retrain_nightly, training_job_run, training_jobs_sweep

# Two kinds, each fitted twice with a time-boxed search: minutes on large data; an hour means it is stuck.
RETRAIN_TIME_LIMIT = 3600
RETRAIN_SOFT_TIME_LIMIT = RETRAIN_TIME_LIMIT - 60
# The requests and the sweep are a few queries; the soft limit is set too, as the global default is longer.
SHORT = {"time_limit": 120, "soft_time_limit": 90}
# A busy database (a locked SQLite file, a dropped connection) is worth another try; anything else is a bug.
RETRY = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(
    name="ml.retrain_models",
    bind=True,
    time_limit=RETRAIN_TIME_LIMIT,
    soft_time_limit=RETRAIN_SOFT_TIME_LIMIT,
    **RETRY,
)
def retrain_models_task(self, job_id: int) -> str:
    return training_job_run(job_id=job_id, worker=self.request.hostname or "worker").status


@shared_task(name="ml.retrain_nightly", **SHORT, **RETRY)
def retrain_nightly_task() -> int | None:
    job = retrain_nightly()
    return job.pk if job else None


@shared_task(name="ml.retrain_if_due", **SHORT, **RETRY)
def retrain_if_due_task() -> int | None:
    job = retrain_if_due()
    return job.pk if job else None


@shared_task(name="ml.training_jobs_sweep", **SHORT, **RETRY)
def training_jobs_sweep_task() -> list[int]:
    return training_jobs_sweep()


@worker_ready.connect
def sweep_when_a_worker_starts(sender, **kwargs) -> None:
    """A starting worker runs nothing yet: jobs still marked running under its name died with its last run."""
    try:
        training_jobs_sweep(worker=sender.hostname)
    finally:
        close_old_connections()
