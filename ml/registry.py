"""The model registry: every trained version with its artifact, schema and metrics; one champion per kind.

Artifacts live under settings.MODEL_DIR and are loaded once per process; the
cache asks the database which version is champion and swaps when it changes.
A champion that cannot be loaded is an error, never a silent fallback.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ml.churn import ArtifactError, ChurnModel
from ml.models import ModelPromotion, ModelVersion
from ml.schema import SchemaMismatch

logger = logging.getLogger(__name__)


class NoChampion(LookupError):
    """No model of this kind has been promoted yet."""


def _artifact_path(version: ModelVersion) -> Path:
    return Path(settings.MODEL_DIR) / version.artifact_dir


@transaction.atomic
def model_version_register(
    *, kind: str, model: ChurnModel, metrics: dict, training_window: dict, training_rows: int
) -> ModelVersion:
    """Store a trained model as a new candidate version."""
    number = (ModelVersion.objects.select_for_update().filter(kind=kind).aggregate(top=Max("version"))["top"] or 0) + 1
    folder = f"{kind}-v{number}-{timezone.now():%Y%m%d%H%M%S}"
    target = Path(settings.MODEL_DIR) / folder
    if target.exists():
        shutil.rmtree(target)
    digest = model.save(target)
    version = ModelVersion(
        kind=kind,
        version=number,
        artifact_dir=folder,
        artifact_sha256=digest,
        feature_schema=model.schema.to_json(),
        metrics=metrics,
        training_window=training_window,
        training_rows=training_rows,
    )
    version.full_clean()
    version.save()
    return version


def model_version_load(version: ModelVersion) -> ChurnModel:
    """Load and verify an artifact: checksums, format and the schema recorded in the registry."""
    model = ChurnModel.load(_artifact_path(version), expected_sha256=version.artifact_sha256)
    if model.schema.to_json() != version.feature_schema:
        raise SchemaMismatch(f"{version.label}: the artifact's feature schema differs from the registry's")
    return model


@transaction.atomic
def model_version_promote(*, version: ModelVersion, by: str, reason: str) -> ModelVersion:
    """Make `version` the champion of its kind, retiring the previous one. Refuses an artifact that fails to load."""
    model_version_load(version)
    ModelVersion.objects.select_for_update().filter(kind=version.kind, status=ModelVersion.Status.CHAMPION).exclude(
        pk=version.pk
    ).update(status=ModelVersion.Status.RETIRED)
    version.status = ModelVersion.Status.CHAMPION
    version.status_reason = reason
    version.promoted_by = by
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "status_reason", "promoted_by", "promoted_at"])
    ModelPromotion.objects.create(model_version=version, promoted=True, reason=reason)
    return version


@dataclass(frozen=True)
class LoadedModel:
    version: ModelVersion
    model: ChurnModel


class ChampionCache:
    """Per-process cache of loaded champions; a failed load keeps the model already serving."""

    def __init__(self) -> None:
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, kind: str) -> LoadedModel:
        champion = ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.CHAMPION).first()
        current = self._loaded.get(kind)
        if champion is None:
            if current is not None:
                return current
            raise NoChampion(f"no {kind} model has been trained and promoted yet: run `manage.py train_models`")
        if current is not None and current.version.pk == champion.pk:
            return current
        with self._lock:
            try:
                loaded = LoadedModel(version=champion, model=model_version_load(champion))
            except (ArtifactError, SchemaMismatch) as error:
                if current is None:
                    raise
                logger.error(
                    "keeping %s: champion %s cannot be loaded: %s", current.version.label, champion.label, error
                )
                return current
            self._loaded[kind] = loaded
            return loaded

    def clear(self) -> None:
        self._loaded.clear()


champions = ChampionCache()
