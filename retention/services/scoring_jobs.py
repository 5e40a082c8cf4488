"""Churn scores for many customers at once: now, with the champion model, one feature build per batch.

`customers_score` answers the synchronous scores API (up to a thousand customers); a ScoringJob does
the same for any number in a Celery task, batch by batch, and leaves a CSV file under DATA_DIR.
Scores are not decisions: nothing is added to the decision log.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.celery import sent_to_worker
from ml.features import build_features
from ml.policy import PolicySettings
from ml.registry import LoadedModel, champions
from retention.models import ApiClient, Customer, ScoringJob
from retention.selectors.api import (
    chunked,
    customer_count,
    customer_pages,
    customers_by_external_id,
    not_to_score,
)
from retention.selectors.catalog import new_customer_fees, policy_current
from retention.selectors.history import customer_history_frames

SCORING_BATCH = 2_000
JOBS_FOLDER = "scoring-jobs"
CSV_HEADER = ["external_id", "churn_probability", "risk_band"]


@dataclass(frozen=True)
class CustomerScore:
    customer_id: str  # external id
    churn_probability: float
    risk_band: str


@dataclass(frozen=True)
class Scorer:
    """The champion, the policy's risk bands and today's tariffs, fixed for one request or one job."""

    champion: LoadedModel
    policy_version: int
    policy: PolicySettings
    fees: dict[str, float]

    @classmethod
    def now(cls) -> Scorer:
        """Raises ml.registry.NoChampion while no churn model has been promoted."""
        policy_version, policy = policy_current()
        return cls(
            champion=champions.get("churn"), policy_version=policy_version, policy=policy, fees=new_customer_fees()
        )

    @property
    def model_version(self) -> str:
        return self.champion.version.label

    def score(self, customers: Sequence[Customer], *, as_of: dt.datetime) -> list[CustomerScore]:
        """One feature build and one prediction for all of `customers`, in their order."""
        if not customers:
            return []
        features = build_features(*customer_history_frames(customers=customers, as_of=as_of), self.fees)
        probabilities = self.champion.model.predict_proba(features)
        return [
            CustomerScore(customer.external_id, float(p), self.policy.risk_band(float(p)))
            for customer, p in zip(customers, probabilities, strict=True)
        ]


def customers_score(*, customers: Sequence[Customer], as_of: dt.datetime) -> tuple[Scorer, list[CustomerScore]]:
    scorer = Scorer.now()
    return scorer, scorer.score(customers, as_of=as_of)


# --- jobs -----------------------------------------------------------------------------------------------------


def scoring_job_create(*, api_client: ApiClient, customer_ids: list[str] | None) -> ScoringJob:
    """Queue a job scoring these customers (every customer when None); the task starts once this commits.

    Raises NoChampion at once rather than queueing a job that can only fail.
    """
    if customer_ids is not None and not customer_ids:
        raise ValidationError({"customer_ids": "name at least one customer, or leave it out to score every customer"})
    champions.get("churn")
    job = ScoringJob(
        api_client=api_client,
        customer_ids=customer_ids,
        total=len(customer_ids) if customer_ids is not None else customer_count(),
    )
    job.full_clean()
    with transaction.atomic():
        job.save()
        transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: ScoringJob) -> None:
    """Hand the job to a worker; one the broker would not take is failed at once, saying why: left queued, it
    would never run, never expire, and its CRM would wait for it."""
    from retention.tasks import scoring_job_run_task  # the tasks module imports this one

    if problem := sent_to_worker(lambda: scoring_job_run_task.delay(str(job.pk)), what=f"scoring job {job.pk}"):
        _update(job, status=ScoringJob.Status.FAILED, error=problem, finished_at=timezone.now())


def scoring_job_run(*, job_id: str) -> ScoringJob:
    """Score the job's customers into its CSV file. A finished job is left alone; a failed one starts over."""
    job = ScoringJob.objects.get(pk=job_id)
    if job.status == ScoringJob.Status.DONE:
        return job
    total = customer_count() if job.customer_ids is None else job.total  # customers may have come since
    _update(
        job,
        status=ScoringJob.Status.RUNNING,
        started_at=timezone.now(),
        total=total,
        scored=0,
        unknown=0,
        objecting=0,
        former=0,
        error="",
    )
    try:
        scorer = Scorer.now()
        _update(job, model_version=scorer.model_version)
        relative = _write_result(job, scorer)
    except Exception as error:
        _update(
            job, status=ScoringJob.Status.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
        raise
    _update(job, status=ScoringJob.Status.DONE, result_file=relative, finished_at=timezone.now())
    return job


def scoring_jobs_expire(*, now: dt.datetime | None = None) -> int:
    """Remove the jobs that finished more than SCORING_JOB_DAYS ago, their result files with them; how many went.

    Their requests and results hold customers' external ids and scores, kept no longer than a CRM needs them.
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.SCORING_JOB_DAYS)
    expired = ScoringJob.objects.filter(
        status__in=[ScoringJob.Status.DONE, ScoringJob.Status.FAILED], finished_at__lt=cutoff
    )
    for job in expired.only("pk"):
        for path in _result_files(job):
            path.unlink(missing_ok=True)
    return expired.delete()[0]


def scoring_jobs_forget(*, external_id: str) -> int:
    """Blank a customer's rows in every stored job's request and result file, for their erasure. Each row keeps
    its place, so a result still has one row per requested id; returns how many result rows were blanked."""
    blanked = 0
    for job in ScoringJob.objects.only("pk", "customer_ids", "result_file"):
        if job.customer_ids and external_id in job.customer_ids:
            kept = ["" if requested == external_id else requested for requested in job.customer_ids]
            ScoringJob.objects.filter(pk=job.pk).update(customer_ids=kept)
        path = scoring_job_result_path(job)
        if path is not None and path.is_file():
            blanked += _rows_blanked(path, external_id)
    return blanked


def _rows_blanked(path: Path, external_id: str) -> int:
    """Rewrite the result beside itself with the customer's rows emptied, then put it in place."""
    rewritten, blanked = path.with_name(path.name + ".erasing"), 0
    with path.open(newline="", encoding="utf-8") as source, rewritten.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        for row in csv.reader(source):
            if row and row[0] == external_id:
                row, blanked = [""] * len(row), blanked + 1
            writer.writerow(row)
    if blanked:
        os.replace(rewritten, path)
    else:
        rewritten.unlink()
    return blanked


def _result_files(job: ScoringJob) -> tuple[Path, Path]:
    """Where a job's result is written to (beside its final name) and put when complete."""
    folder = Path(settings.DATA_DIR) / JOBS_FOLDER
    return folder / f"{job.pk}.csv", folder / f"{job.pk}.csv.partial"


def scoring_job_result_path(job: ScoringJob) -> Path | None:
    return Path(settings.DATA_DIR) / job.result_file if job.result_file else None


def _update(job: ScoringJob, **values) -> None:
    for name, value in values.items():
        setattr(job, name, value)
    ScoringJob.objects.filter(pk=job.pk).update(**values)


def _write_result(job: ScoringJob, scorer: Scorer) -> str:
    """Write the CSV beside its final name and move it there when complete: a reader never sees half a file."""
    final, partial = _result_files(job)
    final.parent.mkdir(parents=True, exist_ok=True)
    as_of = timezone.now()
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for rows, left_out in _scored_batches(job, scorer, as_of):
            writer.writerows(rows)
            scored = sum(1 for row in rows if row[1] != "")
            _update(
                job,
                scored=job.scored + scored,
                unknown=job.unknown + len(rows) - scored - left_out.objecting - left_out.former,
                objecting=job.objecting + left_out.objecting,
                former=job.former + left_out.former,
            )
    os.replace(partial, final)
    return str(final.relative_to(settings.DATA_DIR))


@dataclass(frozen=True)
class _LeftOut:
    """Requested ids of a batch left unscored although their customer is stored."""

    objecting: int = 0  # objected to profiling
    former: int = 0  # left (see CustomerQuerySet.former)


def _scored_batches(job: ScoringJob, scorer: Scorer, as_of: dt.datetime) -> Iterator[tuple[list[list[str]], _LeftOut]]:
    """CSV rows batch by batch, each with what of it was left out: requested ids in their order (unknown ones, those
    who objected to profiling and former customers with empty scores), or every customer who may be scored."""
    if job.customer_ids is None:
        for page in customer_pages(size=SCORING_BATCH):
            yield [_row(score) for score in scorer.score(page, as_of=as_of)], _LeftOut()
        return
    for ids in chunked(job.customer_ids, SCORING_BATCH):
        found = customers_by_external_id(external_ids=ids)
        objecting, former = not_to_score(customers=found)
        scorable = [customer for i, customer in found.items() if i not in objecting and i not in former]
        scores = {s.customer_id: s for s in scorer.score(scorable, as_of=as_of)}
        left_out = _LeftOut(objecting=sum(i in objecting for i in ids), former=sum(i in former for i in ids))
        yield [_row(scores[i]) if i in scores else [i, "", ""] for i in ids], left_out


def _row(score: CustomerScore) -> list[str]:
    return [score.customer_id, f"{score.churn_probability:.6f}", score.risk_band]
