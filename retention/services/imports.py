"""Importing a CRM file: check every row first, then store the good ones in batches.

Two streaming passes over the file keep memory bounded whatever its size: the first converts and
checks each row (and remembers the ids it has seen, to catch duplicates), the second converts again
and hands the rows that passed to `customers_upsert`. A file with bad rows is refused whole unless
the caller asks to skip them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from itertools import islice
from pathlib import Path

from django.db import reset_queries

from retention.mapping import Mapping, MappingError, RowError, read_numbered_rows
from retention.models import RenewalResult
from retention.records import CustomerRecord
from retention.services.customers import customers_upsert, record_errors

# Measured on a million rows: larger batches gain little, as the work per row dominates, while each batch
# is one transaction that holds SQLite's write lock against the agents' panel.
IMPORT_BATCH_SIZE = 2000

ErrorHandler = Callable[[RowError], None]
ProgressHandler = Callable[[int], None]


class ImportRefused(ValueError):
    """The file has bad rows and skipping them was not asked for; nothing was written."""

    def __init__(self, path: str | Path, bad_rows: int) -> None:
        self.bad_rows = bad_rows
        super().__init__(f"{path}: {bad_rows} bad row(s); nothing was imported (fix them, or skip them)")


@dataclass
class FileCheck:
    rows: int = 0
    bad_lines: set[int] = field(default_factory=set)  # where each bad row starts; the header is line 1


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    labelled: int = 0
    seconds: float = 0.0


def customers_file_check(
    *,
    path: str | Path,
    mapping: Mapping,
    as_of: date,
    on_error: ErrorHandler | None = None,
    on_progress: ProgressHandler | None = None,
) -> FileCheck:
    """Read the whole file without writing: count its rows and report each bad one to `on_error`.

    A row is bad when it cannot be converted, when the record would be refused by `customers_upsert`,
    or when its id already appeared on an earlier row of the file.
    """
    check = FileCheck()
    seen_ids: set[str] = set()
    for line, item in read_numbered_rows(path, mapping, as_of=as_of):
        check.rows += 1
        error = item if isinstance(item, RowError) else _record_problem(item, line, seen_ids)
        if error is not None:
            check.bad_lines.add(line)
            if on_error:
                on_error(error)
        if on_progress:
            on_progress(1)
    return check


def customers_file_import(
    *,
    path: str | Path,
    mapping: Mapping,
    as_of: date,
    skip_invalid: bool = False,
    batch_size: int = IMPORT_BATCH_SIZE,
    on_error: ErrorHandler | None = None,
) -> ImportSummary:
    """Check the file, then store it: `customers_file_check` followed by `customers_file_store`."""
    started = time.monotonic()
    check = customers_file_check(path=path, mapping=mapping, as_of=as_of, on_error=on_error)
    summary = customers_file_store(
        path=path, mapping=mapping, as_of=as_of, check=check, skip_invalid=skip_invalid, batch_size=batch_size
    )
    summary.seconds = time.monotonic() - started
    return summary


def customers_file_store(
    *,
    path: str | Path,
    mapping: Mapping,
    as_of: date,
    check: FileCheck,
    skip_invalid: bool = False,
    batch_size: int = IMPORT_BATCH_SIZE,
    on_progress: ProgressHandler | None = None,
) -> ImportSummary:
    """Create or update the customers of a checked file by external id, with their label when mapped.

    Raises ImportRefused, before writing anything, when `check` found a bad row and `skip_invalid` is
    false; otherwise the bad rows are left out. Each batch is stored in its own transaction.
    Importing the same file with the same `as_of` twice leaves the database as after the first time.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    if check.bad_lines and not skip_invalid:
        raise ImportRefused(path, len(check.bad_lines))
    started = time.monotonic()
    summary = ImportSummary(rows=check.rows, skipped=len(check.bad_lines))
    for batch in _batches(_good_records(path, mapping, as_of, check.bad_lines), batch_size):
        stored = customers_upsert(records=batch, source=RenewalResult.Source.IMPORT, batch_size=batch_size)
        summary.created += stored.created
        summary.updated += stored.updated
        summary.unchanged += stored.unchanged
        summary.labelled += sum(1 for record in batch if record.renewals)
        # With DEBUG on, Django keeps the text of every query; over a long import that is most of the memory.
        reset_queries()
        if on_progress:
            on_progress(len(batch))
    summary.seconds = time.monotonic() - started
    return summary


def _record_problem(record: CustomerRecord, line: int, seen_ids: set[str]) -> RowError | None:
    if record.external_id in seen_ids:
        return RowError(line, record.external_id, "duplicate id: an earlier row has it too")
    seen_ids.add(record.external_id)
    errors = record_errors(record)
    if errors:
        message = "; ".join(f"{name}: {', '.join(problems)}" for name, problems in errors.items())
        return RowError(line, record.external_id, message)
    return None


def _good_records(path: str | Path, mapping: Mapping, as_of: date, bad_lines: set[int]) -> Iterator[CustomerRecord]:
    for line, item in read_numbered_rows(path, mapping, as_of=as_of):
        if line in bad_lines:
            continue
        if isinstance(item, RowError):
            raise MappingError(f"{path} changed while it was imported: {item}")
        yield item


def _batches(records: Iterator[CustomerRecord], size: int) -> Iterator[list[CustomerRecord]]:
    while batch := list(islice(records, size)):
        yield batch
