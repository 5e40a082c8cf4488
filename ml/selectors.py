"""Reads of the learning loop for the models page: versions with their decisions, training jobs, and drift."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from ml.artifacts import artifact_problem
from ml.drift import FeatureDrift, feature_drift
from ml.models import ModelPromotion, ModelVersion, TrainingJob
from ml.registry import artifact_path, champion_of, earlier_loadable_champion
from retention.models import Decision

DRIFT_DAYS = 30
# The newest decisions stand for the recent population; beyond this many the PSI hardly moves.
DRIFT_MAX_ROWS = 20_000
RECENT_JOBS = 8


def model_versions_by_kind() -> dict[str, list[ModelVersion]]:
    """Every version, newest first, grouped by kind (every kind present, even without versions),
    each with its promotion decisions (newest first, with who decided)."""
    decisions = Prefetch("promotions", queryset=ModelPromotion.objects.select_related("decided_by", "training_job"))
    versions = ModelVersion.objects.prefetch_related(decisions).order_by("kind", "-version")
    grouped: dict[str, list[ModelVersion]] = {kind: [] for kind in ModelVersion.Kind.values}
    for version in versions:
        grouped.setdefault(version.kind, []).append(version)
    return grouped


def champion_problems() -> dict[str, str]:
    """Per model kind, what is wrong with its champion's files ("" when nothing), or that none is trained yet."""
    problems = {}
    for kind in ModelVersion.Kind.values:
        champion = champion_of(kind)
        if champion is None:
            problems[kind] = NOT_TRAINED
            continue
        problem = version_files_problem(champion)
        problems[kind] = f"failing: {champion.label}: {problem}" if problem else ""
    return problems


def version_files_problem(version: ModelVersion) -> str:
    """What is wrong with a version's files ("" when nothing), naming them within the models folder: the health
    probe needs no sign-in, so it tells no path on the server. The files are read and checked, not loaded."""
    folder = artifact_path(version)
    return artifact_problem(folder, expected_sha256=version.artifact_sha256).replace(str(folder), version.artifact_dir)


def stand_in_for(champion: ModelVersion) -> ModelVersion | None:
    """The earlier champion that serves while `champion`'s files cannot be loaded, picked as `ml.registry.
    ChampionCache` picks it, by loading it (a process that served `champion` before its files broke keeps it)."""
    stand_in = earlier_loadable_champion(champion)
    return stand_in.version if stand_in is not None else None


# What a kind without a champion reports: not a failure (a new deployment has none until its first training).
NOT_TRAINED = "none trained yet"


def model_version_get(*, kind: str, version: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, version=version).first()


def training_jobs_recent(*, limit: int = RECENT_JOBS) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.select_related("requested_by").order_by("-created_at", "-pk")[:limit]


def training_job_active() -> TrainingJob | None:
    """The running job, else the queued one."""
    active = TrainingJob.objects.filter(status__in=TrainingJob.ACTIVE)
    return active.filter(status=TrainingJob.Status.RUNNING).first() or active.first()


def training_job_silent_since(*, job: TrainingJob, now: dt.datetime | None = None) -> dt.datetime | None:
    """The last sign of life of a running job that has given none for RETRAIN_STALE_MINUTES (its worker is most
    likely gone), else None. The same test as training_jobs_sweep's, for a page that reads and may not fail it:
    without beat running, nothing sweeps until a worker starts."""
    if job.status != TrainingJob.Status.RUNNING:
        return None
    last = job.heartbeat_at or job.started_at
    stale = (now or timezone.now()) - dt.timedelta(minutes=settings.RETRAIN_STALE_MINUTES)
    return last if last is not None and last < stale else None


@dataclass(frozen=True)
class DriftReport:
    version: ModelVersion
    since: dt.datetime
    rows: int
    features: list[FeatureDrift]

    @property
    def warnings(self) -> list[FeatureDrift]:
        return [feature for feature in self.features if feature.warning]


def model_drift(*, version: ModelVersion, now: dt.datetime | None = None, days: int = DRIFT_DAYS) -> DriftReport:
    """PSI per feature between the version's training rows and the customers scored in the last `days` days.

    The recent rows are the feature values stored with each decision (the newest DRIFT_MAX_ROWS);
    batch scores keep no features, so they do not count.
    """
    since = (now or timezone.now()) - dt.timedelta(days=days)
    recent = _recent_features(since)
    features = feature_drift(version.training_distribution, recent) if len(recent) else []
    return DriftReport(version=version, since=since, rows=len(recent), features=features)


def _recent_features(since: dt.datetime) -> pd.DataFrame:
    rows = (
        Decision.objects.filter(created_at__gte=since)
        .order_by("-created_at")
        .values_list("features", "churn_probability")[:DRIFT_MAX_ROWS]
    )
    # The offer-response model also sees the churn probability the decision was made with.
    return pd.DataFrame([{**features, "churn_probability": probability} for features, probability in rows])
