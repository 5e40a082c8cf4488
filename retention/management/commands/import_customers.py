"""`manage.py import_customers FILE.csv --mapping MAPPING.yaml`: load a CRM export into the customer tables."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from django.utils import timezone
from tqdm import tqdm

from retention.management import arguments
from retention.management.interrupts import sigterm_as_interrupt
from retention.mapping import Mapping, MappingError, RowError, mapping_load
from retention.services.imports import (
    IMPORT_BATCH_SIZE,
    FileCheck,
    ImportInterrupted,
    ImportRefused,
    ImportSummary,
    customers_file_check,
    customers_file_store,
)

READ_CHUNK_BYTES = 1 << 20
# Tenure counts back from --as-of, a century at most; an earlier date is a typo (0026 for 2026).
EARLIEST_AS_OF = date(1970, 1, 1)
# The ids of customers erased at their request named in the summary; the count says how many more.
ERASED_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Import customers from a CSV file with a column mapping (see fixtures/mappings/). "
        "A file with bad rows is refused whole, each bad row listed, unless --skip-invalid is given. "
        "Customers are matched by id, so importing a file again updates them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV file; comma, semicolon or tab separated, UTF-8")
        parser.add_argument("--mapping", required=True, help="YAML file mapping the file's columns")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="import the good rows and list the bad ones instead of refusing"
        )
        parser.add_argument(
            "--as-of",
            type=arguments.iso_date,
            default=None,
            help="the date the file describes, YYYY-MM-DD (default: today in TIME_ZONE, as the API counts days); "
            "tenure counts back from it and labels are recorded on it, so give the same date when importing the same "
            "file again",
        )
        parser.add_argument(
            "--batch-size",
            type=arguments.positive_int,
            default=IMPORT_BATCH_SIZE,
            help="customers stored per transaction",
        )

    def handle(self, *args, file: str, mapping: str, skip_invalid: bool, as_of: date | None, batch_size: int, **_):
        started = time.monotonic()
        path = _readable_file(file)
        loaded = _load_mapping(mapping)
        today = timezone.localdate()  # the day the API and the labels count in, so every door agrees on "today"
        if as_of is not None and as_of > today:
            # Labels are recorded on this date, and a renewal result from the future would label every decision.
            raise CommandError(f"--as-of {as_of} lies in the future (today is {today}, {settings.TIME_ZONE})")
        if as_of is not None and as_of < EARLIEST_AS_OF:
            raise CommandError(f"--as-of {as_of} is before {EARLIEST_AS_OF}: no CRM export describes that time")
        as_of = as_of or today
        stored = _StoredCount()
        try:
            with sigterm_as_interrupt():
                check = self._check(path, loaded, as_of)
                summary = self._store(path, loaded, as_of, check, skip_invalid, batch_size, stored)
        except KeyboardInterrupt:
            raise CommandError(_interrupted(path, as_of, stored.customers)) from None
        except ImportRefused as refused:
            raise CommandError(
                f"{path}: refused, {refused.bad_rows} bad row(s) listed above; nothing was imported. "
                "Fix them, or import the rest with --skip-invalid."
            ) from None
        except (MappingError, ImportInterrupted) as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        if summary.skipped and summary.skipped == summary.rows:
            # Exit 0 would tell a script the file is in, when not one of its customers is.
            raise CommandError(
                f"{path}: nothing was imported: all {summary.rows} row(s) are bad, listed above. Fix them and "
                "import the file again."
            )
        self.stdout.write(_summary_line(summary, seconds=time.monotonic() - started))
        if summary.erased:
            self.stdout.write(_erased_line(summary.erased))

    def _check(self, path: Path, mapping: Mapping, as_of: date) -> FileCheck:
        stream = _BarStream(self.stderr)
        with tqdm(total=_count_data_lines(path), desc="checking", unit=" rows", file=stream, disable=None) as bar:

            def report(error: RowError) -> None:
                tqdm.write(f"{path.name}: {error}", file=stream)

            return customers_file_check(
                path=path, mapping=mapping, as_of=as_of, on_error=report, on_progress=bar.update
            )

    def _store(
        self,
        path: Path,
        mapping: Mapping,
        as_of: date,
        check: FileCheck,
        skip_invalid: bool,
        batch_size: int,
        stored: _StoredCount,
    ) -> ImportSummary:
        good_rows = check.rows - len(check.bad_lines)
        stream = _BarStream(self.stderr)
        # The delay keeps an empty bar from flashing up when the file is refused.
        with tqdm(total=good_rows, desc="importing", unit=" rows", file=stream, disable=None, delay=0.5) as bar:

            def batch_stored(customers: int) -> None:
                stored.customers += customers
                bar.update(customers)

            return customers_file_store(
                path=path,
                mapping=mapping,
                as_of=as_of,
                check=check,
                skip_invalid=skip_invalid,
                batch_size=batch_size,
                on_progress=batch_stored,
            )


@dataclass
class _StoredCount:
    """Customers stored so far. A batch is counted once committed; one interrupted in between (a moment's
    window) is stored but not counted, so the count may fall one batch short, never over."""

    customers: int = 0


def _interrupted(path: Path, as_of: date, stored: int) -> str:
    if not stored:
        return f"{path}: interrupted before any customer was stored; nothing was imported."
    # Customers are matched by id and labels by day, so the stored rows come out unchanged the second time.
    return (
        f"{path}: interrupted after {stored} customer(s) were stored; the rest of the file was not. Importing "
        f"the same file again with --as-of {as_of} completes it without storing anything twice."
    )


class _BarStream:
    """Lets a progress bar redraw its line on the command's stderr, which otherwise ends every write with a newline."""

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, style_func=_unstyled, ending="")

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return self.out.isatty()


def _unstyled(text: str) -> str:
    # Django colours everything on a terminal's stderr as an error; a progress bar is not one.
    return text


def _readable_file(name: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
    return path


def _load_mapping(name: str) -> Mapping:
    try:
        return mapping_load(name)
    except MappingError as error:
        raise CommandError(str(error)) from None


def _count_data_lines(path: Path) -> int:
    """Lines after the header, for the progress bars; a quoted value spanning lines makes it an estimate."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def _summary_line(summary: ImportSummary, *, seconds: float) -> str:
    known = f" ({summary.labels_known} already recorded, not stored again)" if summary.labels_known else ""
    erased = f", {len(summary.erased)} left out as erased" if summary.erased else ""
    return (
        f"{summary.rows} rows read: {summary.created} created, {summary.updated} updated, "
        f"{summary.unchanged} unchanged, {summary.skipped} skipped{erased}, {summary.labelled} labelled{known}, "
        f"in {seconds:.1f} s"
    )


def _erased_line(erased: list[str]) -> str:
    """The customers erased at their request whose rows were left out, named so the CRM can stop sending them."""
    shown = ", ".join(erased[:ERASED_SHOWN]) + (" …" if len(erased) > ERASED_SHOWN else "")
    return (
        f"{len(erased)} customers erased at their request were left out, not stored again: {shown} "
        "(allow_customer_again lets one back)"
    )
