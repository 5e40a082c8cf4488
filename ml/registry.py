"""The model registry: every trained version with its artifact, schema and metrics; one champion per kind.

Artifacts live under settings.MODEL_DIR and are loaded once per process; the
cache asks the database which version is champion and swaps when it changes.
A champion that cannot be loaded is an error: raised where nothing serves yet, and where a model already serves,
logged on every request while that model keeps answering calls in progress (each decision names the version
that made it, and /health/ fails for a missing or damaged file). Never a silent fallback.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ml.artifacts import ArtifactError
from ml.churn import ChurnModel
from ml.models import ModelPromotion, ModelVersion, TrainingJob
from ml.response import ResponseModel
from ml.schema import SchemaMismatch
from ml.verdicts import Phrase, is_phrase, phrase, render

logger = logging.getLogger(__name__)


class NoChampion(LookupError):
    """No model of this kind has been promoted yet."""


class ChampionUnavailable(NoChampion):
    """The champion's files cannot be loaded, nor those of any champion before it: nothing of this kind can serve
    until its files are restored, a loadable version is rolled back to, or a new one is trained."""


def artifact_path(version: ModelVersion) -> Path:
    return Path(settings.MODEL_DIR) / version.artifact_dir


@transaction.atomic
def model_version_register(
    *,
    kind: str,
    model: ChurnModel,
    metrics: dict,
    training_window: dict,
    training_rows: int,
    training_distribution: dict | None = None,
    training_job: TrainingJob | None = None,
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
        training_distribution=training_distribution or {},
        training_job=training_job,
    )
    version.full_clean()
    version.save()
    return version


def model_version_load(version: ModelVersion) -> ChurnModel:
    """Load and verify an artifact: checksums, format and the schema recorded in the registry. A file the process
    may not read (another user's umask) is an ArtifactError like a missing one: the model cannot serve either way."""
    if version.files_removed_at is not None:  # removed on purpose: say so, not "missing or corrupt"
        removed_on = timezone.localtime(version.files_removed_at)
        raise ArtifactError(f"{version.label}: its files were removed by prune_model_files on {removed_on:%Y-%m-%d}")
    try:
        return _loaded_and_checked(version)
    except OSError as error:
        raise ArtifactError(f"{version.label}: its files cannot be read: {error}") from error


def _loaded_and_checked(version: ModelVersion) -> ChurnModel:
    if version.kind == ModelVersion.Kind.ACCEPTANCE:
        recorded = version.feature_schema or {}
        order = [name for name, _ in recorded.get("categorical", [])]
        model = ResponseModel.load(artifact_path(version), expected_sha256=version.artifact_sha256, column_order=order)
    else:
        model = ChurnModel.load(artifact_path(version), expected_sha256=version.artifact_sha256)
    if model.schema.to_json() != version.feature_schema:
        raise SchemaMismatch(f"{version.label}: the artifact's feature schema differs from the registry's")
    return model


@transaction.atomic
def model_version_promote(
    *,
    version: ModelVersion,
    by: str,
    reason: Phrase | str,
    decided_by: AbstractBaseUser | None = None,
    training_job: TrainingJob | None = None,
) -> ModelVersion:
    """Make `version` the champion of its kind, retiring the previous one. Refuses an artifact that fails to load.

    `reason` is a phrase of ml.verdicts, stored as English text and as the phrase for pages in other languages, or
    text someone typed, stored as it is."""
    model_version_load(version)
    ModelVersion.objects.select_for_update().filter(kind=version.kind, status=ModelVersion.Status.CHAMPION).exclude(
        pk=version.pk
    ).update(status=ModelVersion.Status.RETIRED)
    version.status = ModelVersion.Status.CHAMPION
    version.status_reason = render(reason)
    version.promoted_by = by
    version.promoted_at = timezone.now()
    version.save(update_fields=["status", "status_reason", "promoted_by", "promoted_at"])
    _record_decision(version, True, reason, decided_by, training_job)
    return version


@transaction.atomic
def model_version_reject(
    *,
    version: ModelVersion,
    reason: Phrase | str,
    decided_by: AbstractBaseUser | None = None,
    training_job: TrainingJob | None = None,
) -> ModelVersion:
    """Keep a trained version out of service, recording why (a phrase of ml.verdicts, or text)."""
    version.status = ModelVersion.Status.REJECTED
    version.status_reason = render(reason)
    version.save(update_fields=["status", "status_reason"])
    _record_decision(version, False, reason, decided_by, training_job)
    return version


def _record_decision(
    version: ModelVersion,
    promoted: bool,
    reason: Phrase | str,
    decided_by: AbstractBaseUser | None,
    training_job: TrainingJob | None,
) -> ModelPromotion:
    return ModelPromotion.objects.create(
        model_version=version,
        promoted=promoted,
        reason=render(reason),
        reason_phrase=reason if is_phrase(reason) else {},
        decided_by=decided_by,
        training_job=training_job,
    )


def champion_of(kind: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.CHAMPION).first()


@transaction.atomic
def challenger_decide(
    *,
    challenger: ModelVersion,
    compared_with: ModelVersion | None,
    promote: bool,
    reason: Phrase | str,
    by: str,
    training_job: TrainingJob | None = None,
) -> ModelVersion:
    """Promote or reject a challenger judged against `compared_with`, in one transaction.

    The champion is read again under a lock: when it is no longer the one the challenger was
    compared with (another retrain, a promotion or a rollback got there first), the challenger
    is kept out, so two retrains running side by side can never both promote.
    """
    current = (
        ModelVersion.objects.select_for_update()
        .filter(kind=challenger.kind, status=ModelVersion.Status.CHAMPION)
        .first()
    )
    expected_pk = compared_with.pk if compared_with else None
    if (current.pk if current else None) != expected_pk:
        was = compared_with.label if compared_with else phrase("no_champion")
        now = current.label if current else phrase("no_champion")
        reason = phrase("champion_changed", was=was, now=now, verdict=reason)
        promote = False
    if promote:
        return model_version_promote(version=challenger, by=by, reason=reason, training_job=training_job)
    return model_version_reject(version=challenger, reason=reason, training_job=training_job)


class NothingToRestore(LookupError):
    """No earlier version of this kind can be restored."""


@transaction.atomic
def model_version_rollback(
    *,
    kind: str,
    by: str,
    reason: str | Phrase,
    to_version: int | None = None,
    decided_by: AbstractBaseUser | None = None,
) -> ModelVersion:
    """Restore a version that served before as champion: `to_version`, or by default the champion before the
    current one (see `previous_champion`).

    Raises NothingToRestore when there is no such version, when it never served (a rollback restores a
    champion, it does not promote a candidate), or when it is the champion already.
    """
    current = ModelVersion.objects.select_for_update().filter(kind=kind, status=ModelVersion.Status.CHAMPION).first()
    target = _rollback_target(kind, current, to_version)
    return model_version_promote(
        version=target, by=by, reason=_rollback_reason(current, target, reason), decided_by=decided_by
    )


def _rollback_reason(current: ModelVersion | None, target: ModelVersion, reason: str | Phrase) -> Phrase:
    if current is None:
        return phrase("rolled_back_without_champion", target=target.label, reason=reason)
    if target.version > current.version:
        # A later version that served before, restored by number: going back in time, not in versions.
        return phrase("rolled_back_to_later", target=target.label, current=current.label, reason=reason)
    return phrase("rolled_back", current=current.label, target=target.label, reason=reason)


def _rollback_target(kind: str, current: ModelVersion | None, to_version: int | None) -> ModelVersion:
    if to_version is None:
        previous = previous_champion(kind)
        if previous is None:
            raise NothingToRestore(f"no earlier {kind} champion to roll back to")
        return previous
    target = ModelVersion.objects.filter(kind=kind, version=to_version).first()
    if target is None:
        raise NothingToRestore(f"there is no {kind} model version {to_version}")
    if current is not None and target.pk == current.pk:
        raise NothingToRestore(f"{target.label} is the champion already")
    if target.promoted_at is None:
        raise NothingToRestore(
            f"{target.label} never served as champion (it is {target.status}): a rollback restores an earlier "
            "champion; a candidate or rejected version is promoted on the models page"
        )
    return target


def previous_champion(kind: str) -> ModelVersion | None:
    """The champion that served before the current one, as a rollback undoes it.

    A rollback undoes the current champion's promotion: rolling back twice goes back two champions (or finds
    none), it does not toggle between the last two. See `champion_line`.
    """
    line = champion_line(kind)
    current = next((version for version in line if version.status == ModelVersion.Status.CHAMPION), None)
    if current is None:  # none serving (or one promoted without a trace): the last one that served
        return line[-1] if line else None
    position = line.index(current)
    return line[position - 1] if position else None


def champion_line(kind: str) -> list[ModelVersion]:
    """The champions of `kind` still to roll back through, oldest first: each promotion adds its version, and a
    promotion of a version already in the line (a rollback) returns to it, dropping those after it."""
    line: list[ModelVersion] = []
    for version in _promotions_in_order(kind):
        if version in line:
            del line[line.index(version) + 1 :]
        else:
            line.append(version)
    return line


def served_versions(kind: str) -> list[ModelVersion]:
    """Every version of `kind` that served as champion, the one that served last first: what `rollback_model
    --to-version` can restore, rolled back from or not."""
    served: dict[int, ModelVersion] = {}
    for version in reversed(_promotions_in_order(kind)):
        served.setdefault(version.pk, version)
    return list(served.values())


def _promotions_in_order(kind: str) -> list[ModelVersion]:
    """The version of every promotion of `kind`, in the order they happened.

    A version promoted without a recorded decision (a fixture, or data loaded by hand) counts as promoted once,
    at its promotion time.
    """
    versions = {version.pk: version for version in ModelVersion.objects.filter(kind=kind, promoted_at__isnull=False)}
    recorded = ModelPromotion.objects.filter(model_version_id__in=list(versions), promoted=True)
    # (when, which promotion, version number) per promotion: the same instant falls back on the order stored.
    events = [
        (at, pk, versions[version_id].version, version_id)
        for version_id, at, pk in recorded.values_list("model_version_id", "created_at", "pk")
    ]
    with_records = {version_id for *_, version_id in events}
    events += [
        (version.promoted_at, 0, version.version, pk) for pk, version in versions.items() if pk not in with_records
    ]
    return [versions[version_id] for *_, version_id in sorted(events)]


@dataclass(frozen=True)
class LoadedModel:
    version: ModelVersion
    model: ChurnModel


def earlier_loadable_champion(champion: ModelVersion) -> LoadedModel | None:
    """The last champion before `champion` (newest first, as rollbacks go back) whose files load, loaded; None when
    none does. It stands in for a champion whose files cannot be loaded."""
    for version in reversed(champion_line(champion.kind)):
        if version.pk == champion.pk:
            continue
        try:
            return LoadedModel(version=version, model=model_version_load(version))
        except (ArtifactError, SchemaMismatch):
            continue
    return None


# A champion whose files failed to load is tried again after this long, not on every request: reading and hashing
# its files, and every earlier champion's when none stands in, took each request a lock and tens of milliseconds.
RELOAD_FAILED_AFTER_SECONDS = 60


@dataclass(frozen=True)
class _FailedLoad:
    champion_pk: int
    at: float  # time.monotonic()
    error: Exception


class ChampionCache:
    """Per-process cache of loaded champions. A champion that cannot be loaded leaves the model already serving in
    place; a process that serves none yet (just started) serves the last earlier champion that loads, so a damaged
    file does not stop every advice after the next deploy. Either is logged as an error on every request, the load
    is tried again after RELOAD_FAILED_AFTER_SECONDS, and `/health/` and the models page name the damaged files."""

    def __init__(self) -> None:
        self._loaded: dict[str, LoadedModel] = {}
        self._failed: dict[str, _FailedLoad] = {}
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
        failed = self._failed.get(kind)
        if failed and failed.champion_pk == champion.pk and time.monotonic() - failed.at < RELOAD_FAILED_AFTER_SECONDS:
            return _serving_instead(champion, current, failed.error)
        with self._lock:
            try:
                loaded = LoadedModel(version=champion, model=model_version_load(champion))
            except (ArtifactError, SchemaMismatch) as error:
                self._failed[kind] = _FailedLoad(champion_pk=champion.pk, at=time.monotonic(), error=error)
                if current is None and (current := earlier_loadable_champion(champion)) is not None:
                    self._loaded[kind] = current
                return _serving_instead(champion, current, error)
            self._failed.pop(kind, None)
            self._loaded[kind] = loaded
            return loaded

    def clear(self) -> None:
        self._loaded.clear()
        self._failed.clear()


def _serving_instead(champion: ModelVersion, current: LoadedModel | None, error: Exception) -> LoadedModel:
    """`current` in place of a champion that cannot be loaded, said in the log; none at all is said to the caller."""
    if current is None:
        raise ChampionUnavailable(
            f"the {champion.kind} champion {champion.label} cannot be loaded ({error}), nor any champion before it: "
            "restore its files, roll back to a version whose files load, or train a new model"
        ) from error
    logger.error("serving %s: champion %s cannot be loaded: %s", current.version.label, champion.label, error)
    return current


champions = ChampionCache()
