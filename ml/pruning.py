"""Removing the files of model versions that can no longer serve nor be rolled back to.

Every retrain adds a folder of a few MB under MODEL_DIR; without pruning the disk fills for ever. A version's
folder is removable when it is not the champion, not one of the last champions of its kind's champion line (what
"Roll back" and `rollback_model` go back through), and older than a given number of days (a candidate a team lead
may still promote, and the version a running retrain has just registered, are younger). Its registry row stays,
with `files_removed_at` set, so its metrics and decisions remain and a promotion or rollback to it is refused
saying why. Folders no version names (a registration that crashed between writing its files and saving its row)
are only removed when asked for, and only when as old.

`model_files_prunable` only reads (a dry run shows it); `model_files_prune` is the only writer of
`files_removed_at`.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.models import ModelVersion, TrainingJob
from ml.registry import artifact_path, champion_line, served_versions

# What "Roll back" can still restore after a run of bad retrains; and a month for a candidate to be looked at.
DEFAULT_KEEP_CHAMPIONS = 5
DEFAULT_OLDER_THAN_DAYS = 30


class PruningRefused(RuntimeError):
    """Pruning now could remove files a running retrain is about to read."""


@dataclass(frozen=True)
class PrunableFolder:
    """A folder under MODEL_DIR that may go: a version's (`version` set) or one no version names."""

    name: str
    size_bytes: int
    version: ModelVersion | None = None

    @property
    def label(self) -> str:
        return self.version.label if self.version else f"unknown folder {self.name}"


@dataclass(frozen=True)
class PruningPlan:
    versions: list[PrunableFolder]
    unknown: list[PrunableFolder]


@dataclass(frozen=True)
class PruningDone:
    removed: list[PrunableFolder]
    unknown_left: list[PrunableFolder]


# --- reads ---------------------------------------------------------------------------------------


def model_files_prunable(*, keep_champions: int, older_than_days: int, now: dt.datetime | None = None) -> PruningPlan:
    """What a prune with these limits would remove. `keep_champions` counts the serving champion (at least 1)."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=older_than_days)
    with_files = ModelVersion.objects.filter(files_removed_at__isnull=True)
    candidates = with_files.filter(created_at__lt=cutoff).exclude(pk__in=_versions_kept(keep_champions))
    # A folder two versions name (data loaded by hand) goes only when neither of them keeps its files.
    in_use = set(with_files.exclude(pk__in=candidates).values_list("artifact_dir", flat=True))
    versions = [
        PrunableFolder(name=version.artifact_dir, size_bytes=_size(artifact_path(version)), version=version)
        for version in candidates.order_by("kind", "version")
        if version.artifact_dir not in in_use and _is_own_folder(version.artifact_dir)
    ]
    return PruningPlan(versions=versions, unknown=_unknown_folders(cutoff))


def _versions_kept(keep_champions: int) -> set[int]:
    """Primary keys of every champion, and per kind of the last `keep_champions` versions of its champion line (what
    "Roll back" goes back through) and the `keep_champions` that served last (what `rollback_model --to-version`
    restores, a version rolled back from included)."""
    kept = set(ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).values_list("pk", flat=True))
    for kind in ModelVersion.Kind.values:
        kept.update(version.pk for version in champion_line(kind)[-keep_champions:])
        kept.update(version.pk for version in served_versions(kind)[:keep_champions])
    return kept


def _is_own_folder(name: str) -> bool:
    """A real folder directly under MODEL_DIR: never MODEL_DIR itself (an empty name), a path leading elsewhere,
    or a link (its target may be anything)."""
    folder = Path(settings.MODEL_DIR) / name
    return (
        bool(name)
        and Path(name).name == name
        and name not in {".", ".."}
        and folder.is_dir()
        and not folder.is_symlink()
    )


def _unknown_folders(cutoff: dt.datetime) -> list[PrunableFolder]:
    """Folders under MODEL_DIR that no version names, last written before `cutoff`: one written since may belong to
    a registration in progress, whose row is saved only once its files are."""
    named = set(ModelVersion.objects.values_list("artifact_dir", flat=True))
    return [
        PrunableFolder(name=folder.name, size_bytes=_size(folder))
        for folder in sorted(Path(settings.MODEL_DIR).iterdir())
        if folder.name not in named and _is_own_folder(folder.name) and _last_written(folder) < cutoff
    ]


def _last_written(folder: Path) -> dt.datetime:
    newest = max([folder.stat().st_mtime, *(path.stat().st_mtime for path in folder.rglob("*"))])
    return dt.datetime.fromtimestamp(newest, tz=dt.UTC)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


# --- writes --------------------------------------------------------------------------------------


def model_files_prune(
    *,
    keep_champions: int,
    older_than_days: int,
    remove_unknown: bool = False,
    now: dt.datetime | None = None,
) -> PruningDone:
    """Remove the folders `model_files_prunable` names (unknown ones only with `remove_unknown`), recording the
    removal on each version.

    Refuses while a retrain runs: it may be reading an earlier champion's files to judge its challenger against.
    A version promoted or pruned since the plan was read is left alone. A folder that cannot be removed raises,
    its version left unmarked, so that the next run tries again.
    """
    _refuse_while_training()
    moment = now or timezone.now()
    plan = model_files_prunable(keep_champions=keep_champions, older_than_days=older_than_days, now=moment)
    removed = [folder for folder in plan.versions if _version_files_remove(folder, moment)]
    if not remove_unknown:
        return PruningDone(removed=removed, unknown_left=plan.unknown)
    for folder in plan.unknown:
        shutil.rmtree(Path(settings.MODEL_DIR) / folder.name)
    return PruningDone(removed=removed + plan.unknown, unknown_left=[])


def _refuse_while_training() -> None:
    running = TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING).first()
    if running is not None:
        raise PruningRefused(
            f"training job {running.pk} is running: prune once it has finished (a job whose worker died is "
            "marked failed by the stale-job sweep)"
        )


@transaction.atomic
def _version_files_remove(folder: PrunableFolder, moment: dt.datetime) -> bool:
    """Mark the version pruned and remove its folder, in one transaction; False when it changed since the plan."""
    marked = (
        ModelVersion.objects.filter(
            pk=folder.version.pk, files_removed_at__isnull=True, promoted_at=folder.version.promoted_at
        )
        .exclude(status=ModelVersion.Status.CHAMPION)
        .update(files_removed_at=moment)
    )
    if marked:
        shutil.rmtree(Path(settings.MODEL_DIR) / folder.name)
    return bool(marked)
