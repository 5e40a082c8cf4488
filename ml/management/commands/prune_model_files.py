from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand, CommandError

from ml.pruning import (
    DEFAULT_KEEP_CHAMPIONS,
    DEFAULT_OLDER_THAN_DAYS,
    PrunableFolder,
    PruningRefused,
    model_files_prunable,
    model_files_prune,
)
from retention.management import arguments
from retention.management.interrupts import stopped_in_one_line

# A century: further back than any model here, and short of the dates Python can count back to.
MAX_DAYS = 36_500
MEGABYTE = 1024 * 1024


def days(text: str) -> int:
    """1 or more: a version registered today may belong to a retrain still deciding about it."""
    value = arguments.positive_int(text)
    if value > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_DAYS:,} days")
    return value


class Command(BaseCommand):
    help = (
        "Remove the model files of versions that can no longer serve nor be rolled back to: not the champion's, "
        "not those of the last --keep-champions champions of each kind (what a rollback can restore), not those "
        "of versions registered in the last --older-than-days days. Their registry records stay, marked as "
        "pruned. Refused while a retrain runs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--keep-champions",
            type=arguments.positive_int,
            default=DEFAULT_KEEP_CHAMPIONS,
            metavar="N",
            help=f"Champions of each kind whose files stay, the serving one included "
            f"(default {DEFAULT_KEEP_CHAMPIONS}).",
        )
        parser.add_argument(
            "--older-than-days",
            type=days,
            default=DEFAULT_OLDER_THAN_DAYS,
            metavar="D",
            help=f"Only versions (and unknown folders) older than this (default {DEFAULT_OLDER_THAN_DAYS}).",
        )
        parser.add_argument(
            "--remove-unknown",
            action="store_true",
            help="Also remove folders in the models folder that no version names (left by a crashed registration).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be removed.")

    def handle(self, *args, keep_champions: int, older_than_days: int, remove_unknown: bool, dry_run: bool, **options):
        limits = {"keep_champions": keep_champions, "older_than_days": older_than_days}
        if dry_run:
            plan = model_files_prunable(**limits)
            self._report("would remove", plan.versions + (plan.unknown if remove_unknown else []))
            self._report_unknown_left([] if remove_unknown else plan.unknown)
            return
        try:
            with stopped_in_one_line(STOPPED):
                done = model_files_prune(**limits, remove_unknown=remove_unknown)
        except PruningRefused as refusal:
            raise CommandError(str(refusal)) from refusal
        self._report("removed", done.removed)
        self._report_unknown_left(done.unknown_left)

    def _report(self, done: str, folders: list[PrunableFolder]) -> None:
        for folder in folders:
            self.stdout.write(f"{done} {folder.label}: {_megabytes(folder.size_bytes)}")
        total = sum(folder.size_bytes for folder in folders)
        self.stdout.write(f"{done} {len(folders)} folder(s), {_megabytes(total)} in all")

    def _report_unknown_left(self, folders: list[PrunableFolder]) -> None:
        for folder in folders:
            self.stdout.write(f"left {folder.label}: {_megabytes(folder.size_bytes)} (no version names it)")
        if folders:
            self.stdout.write("folders no version names are removed only with --remove-unknown")


# What an interrupted run leaves: each removal marks its version in the transaction that deletes its folder.
STOPPED = "each version whose files were removed so far is marked so; the next run removes the rest"


def _megabytes(size_bytes: int) -> str:
    return f"{size_bytes / MEGABYTE:,.1f} MB"
