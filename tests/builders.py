"""Small labelled customer bases for tests, stored through the same service as real imports."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.utils import timezone

from ml.models import ModelVersion
from retention.records import ContractRecord, CustomerRecord, EventRecord, RenewalRecord
from retention.services.customers import customers_upsert


def labelled_records(n: int = 240, *, seed: int = 0) -> list[CustomerRecord]:
    """Customers whose complaints and price make leaving likelier, renewed or churned in the last year."""
    rng = np.random.default_rng(seed)
    today = timezone.localdate()
    records = []
    for number in range(n):
        renewal = today - dt.timedelta(days=int(rng.integers(10, 360)))
        complaints = int(rng.poisson(1.0))
        fee_cents = int(rng.integers(3_000, 9_000))
        risk = 0.08 + 0.22 * complaints + (fee_cents - 3_000) / 30_000
        churned = rng.random() < min(risk, 0.9)
        records.append(
            CustomerRecord(
                external_id=f"T{seed}-{number:05d}",
                display_name=f"Klant {number}",
                signup_date=renewal - dt.timedelta(days=int(rng.integers(100, 3_000))),
                products=["internet", "tv"],
                attributes={"plan_speed": int(rng.choice([100, 500, 1000]))},
                contracts=[
                    ContractRecord(
                        monthly_fee_cents=fee_cents,
                        bundle="internet_tv",
                        contract_type="1 jaar",
                        start_date=renewal - dt.timedelta(days=365),
                        end_date=renewal,
                    )
                ],
                events=[
                    EventRecord(
                        kind="complaint",
                        occurred_at=timezone.make_aware(
                            dt.datetime.combine(renewal - dt.timedelta(days=int(rng.integers(1, 80))), dt.time(12))
                        ),
                    )
                    for _ in range(complaints)
                ],
                renewals=[RenewalRecord(result="churned" if churned else "renewed", date=renewal)],
            )
        )
    return records


def store_labelled_base(n: int = 240, *, seed: int = 0) -> None:
    customers_upsert(records=labelled_records(n, seed=seed), source="simulation")


def session_champion(trained_churn_artifact: dict):
    """The churn model trained once per session, registered as champion from its own copy of the artifact."""
    return ModelVersion.objects.create(
        **{**trained_churn_artifact, "artifact_dir": own_artifact_copy(trained_churn_artifact["artifact_dir"])},
        status=ModelVersion.Status.CHAMPION,
        promoted_by="test",
        promoted_at=timezone.now(),
    )


def own_artifact_copy(artifact_dir: str) -> str:
    """A copy of a model folder under a new name: a test may break or replace its copy's files, and a
    registration in the same second as another would otherwise reuse (and overwrite) its folder."""
    own_folder = f"test-copy-{uuid.uuid4().hex}"
    shutil.copytree(Path(settings.MODEL_DIR) / artifact_dir, Path(settings.MODEL_DIR) / own_folder)
    return own_folder


def fitted_once(fit: Callable, fits_made: dict) -> Callable:
    """`fit` (a model kind's: features, labels, times, *, seed, progress), made once for the same rows and seed
    and replayed from `fits_made` after that, with the progress it reported.

    A fit is deterministic for its rows and seed: tests that retrain on the same labelled base would each
    spend half a second fitting the same model again. Each caller gets its own copy of the result.
    """
    # Imported here: the xdist controller loads this module through the conftest and runs no test.
    import joblib

    def fit_or_replay(features, labels, times, *, seed=0, progress=None):
        progress = progress or (lambda stage, percent: None)
        key = (fit.__module__, fit.__qualname__, joblib.hash((features, np.asarray(labels), times, seed)))
        if key not in fits_made:
            reported = []

            def recorded(stage, percent):
                reported.append((stage, percent))
                progress(stage, percent)

            result = fit(features, labels, times, seed=seed, progress=recorded)
            fits_made[key] = (copy.deepcopy(result), reported)
            return result
        result, reported = fits_made[key]
        for stage, percent in reported:
            progress(stage, percent)
        return copy.deepcopy(result)

    return fit_or_replay
