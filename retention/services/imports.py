"""Importing a CRM file: check every row first, then store the good ones in batches.

Two streaming passes over the file keep memory bounded whatever its size: the first converts and
checks each row (and remembers the ids it has seen, to catch duplicates), the second converts again
and hands the rows that passed to `customers_upsert`. A file with bad rows is refused whole unless
the caller asks to skip them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import islice
from pathlib import Path

from django.db import DatabaseError, reset_queries

from retention.labels import label_already_recorded, label_contradiction
from retention.mapping import Mapping, MappingError, RowError, read_numbered_rows
from retention.models import RenewalResult
from retention.records import CustomerRecord
from retention.selectors.history import stored_renewal_results
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


class ImportInterrupted(RuntimeError):
    """The database refused a batch: the batches before it are stored, the rest of the file is not."""

    def __init__(self, path: str | Path, stored_rows: int, error: DatabaseError) -> None:
        self.stored_rows = stored_rows
        super().__init__(
            f"{path}: the database refused a batch after {stored_rows} row(s) were stored ({error}). "
            "The rows stored stay; importing the file again is safe, as they come out unchanged."
        )


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
    labelled: int = 0  # rows with a label
    labels_known: int = 0  # of those, labels already recorded (see retention.labels), not stored again
    erased: list[str] = field(default_factory=list)  # ids of customers erased at their request, not stored again
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
    when its id already appeared on an earlier row of the file, or when its label contradicts the result
    recorded for that customer on that day. Bad rows are reported in file order, a batch at a time.
    """
    check = FileCheck()
    seen_ids: set[str] = set()
    errors: list[RowError] = []
    labelled: list[tuple[int, CustomerRecord]] = []
    for line, item in read_numbered_rows(path, mapping, as_of=as_of):
        check.rows += 1
        error = item if isinstance(item, RowError) else _record_problem(item, line, seen_ids)
        if error is not None:
            errors.append(error)
        elif item.renewals:
            labelled.append((line, item))
        if len(labelled) >= IMPORT_BATCH_SIZE:
            _report(check, errors + _label_contradictions(labelled), on_error)
            errors, labelled = [], []
        if on_progress:
            on_progress(1)
    _report(check, errors + _label_contradictions(labelled), on_error)
    return check


def _label_contradictions(labelled: list[tuple[int, CustomerRecord]]) -> list[RowError]:
    recorded = stored_renewal_results([record.external_id for _, record in labelled])
    problems = []
    for line, record in labelled:
        for label in record.renewals:
            if problem := label_contradiction(label, recorded.get(record.external_id, [])):
                problems.append(RowError(line, record.external_id, problem))
    return problems


def _report(check: FileCheck, errors: list[RowError], on_error: ErrorHandler | None) -> None:
    for error in sorted(errors, key=lambda error: error.line):
        check.bad_lines.add(error.line)
        if on_error:
            on_error(error)


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
    false; otherwise the bad rows are left out. Each batch is stored in its own transaction; when the
    database refuses one (locked, full, gone), ImportInterrupted says how many rows were stored before it.
    Importing the same file with the same `as_of` twice leaves the database as after the first time.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    if check.bad_lines and not skip_invalid:
        raise ImportRefused(path, len(check.bad_lines))
    started = time.monotonic()
    summary = ImportSummary(rows=check.rows, skipped=len(check.bad_lines))
    for batch in _batches(_good_records(path, mapping, as_of, check.bad_lines), batch_size):
        try:
            _store_batch(batch, summary)
        except DatabaseError as error:
            raise ImportInterrupted(path, summary.created + summary.updated + summary.unchanged, error) from error
        # With DEBUG on, Django keeps the text of every query; over a long import that is most of the memory.
        reset_queries()
        if on_progress:
            on_progress(len(batch))
    summary.seconds = time.monotonic() - started
    return summary


def _store_batch(batch: list[CustomerRecord], summary: ImportSummary) -> None:
    labelled = [record.external_id for record in batch if record.renewals]
    batch, known = _without_recorded_labels(batch)
    stored = customers_upsert(records=batch, source=RenewalResult.Source.IMPORT, batch_size=len(batch))
    summary.created += stored.created
    summary.updated += stored.updated
    summary.unchanged += stored.unchanged
    summary.erased += stored.erased
    # A label counts where it was kept: not on the row of a customer erased at their request.
    erased = set(stored.erased)
    summary.labelled += sum(1 for external_id in labelled if external_id not in erased)
    summary.labels_known += known


def _without_recorded_labels(batch: list[CustomerRecord]) -> tuple[list[CustomerRecord], int]:
    """The batch with each label already recorded for its customer left out, and how many rows had one."""
    recorded = stored_renewal_results([record.external_id for record in batch if record.renewals])
    kept, known = [], 0
    for record in batch:
        history = recorded.get(record.external_id, [])
        new = [label for label in record.renewals if not label_already_recorded(label, history)]
        known += len(new) < len(record.renewals)
        kept.append(record if len(new) == len(record.renewals) else replace(record, renewals=new))
    return kept, known


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
