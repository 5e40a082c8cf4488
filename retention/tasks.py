"""Celery tasks of the retention domain: thin doors that take ids and call a service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from retention.services.access_log import accesses_expire
from retention.services.erasure import former_customers_expire
from retention.services.scoring_jobs import scoring_job_run, scoring_jobs_expire

# A job of a million customers takes minutes; an hour means something is stuck.
SCORING_JOB_TIME_LIMIT = 3600
SCORING_JOB_SOFT_TIME_LIMIT = SCORING_JOB_TIME_LIMIT - 60


@shared_task(
    name="retention.scoring_job_run",
    # A busy database (a locked SQLite file, a dropped connection) is worth another try; anything else is a bug.
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
    time_limit=SCORING_JOB_TIME_LIMIT,
    soft_time_limit=SCORING_JOB_SOFT_TIME_LIMIT,
)
def scoring_job_run_task(job_id: str) -> None:
    scoring_job_run(job_id=job_id)


@shared_task(name="retention.scoring_jobs_expire")
def scoring_jobs_expire_task() -> int:
    return scoring_jobs_expire()


@shared_task(name="retention.former_customers_expire")
def former_customers_expire_task() -> int:
    """Erase the former customers past FORMER_CUSTOMER_DAYS; nothing while it is 0."""
    if not settings.FORMER_CUSTOMER_DAYS:
        return 0
    return len(former_customers_expire(days=settings.FORMER_CUSTOMER_DAYS))


@shared_task(name="retention.accesses_expire")
def accesses_expire_task() -> int:
    return accesses_expire()
