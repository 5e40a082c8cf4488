from __future__ import annotations

import contextlib
import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from ml.artifacts import ArtifactError
from ml.features import ATTRIBUTE_PREFIX
from ml.registry import LoadedModel, NoChampion, champions
from ml.schema import SchemaMismatch
from ml.scoring import (
    CHUNK_ROWS,
    ScoringSummary,
    features_from_file,
    features_missing_from_file,
    never_from_a_file,
    score_chunks,
    write_scores,
)
from retention.management import arguments
from retention.management.interrupts import partial_beside, stopped_in_one_line
from retention.mapping import (
    MappedChunk,
    MappedColumns,
    Mapping,
    MappingError,
    RowError,
    mapping_load,
    read_mapped_chunks,
)
from retention.selectors.catalog import new_customer_fees
from retention.selectors.erased_ids import erased_external_ids
from retention.selectors.history import profiling_objector_external_ids

# Rows that could not be read named with their reason on stderr; the count says how many there are in all.
REASONS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Score every row of a CRM file with the champion churn model, whether or not the customers were imported. "
        "Writes external_id,churn_probability (one row per input row; empty where a row could not be read or its "
        "customer objected to profiling or was erased at their request). "
        "Refuses a file that does not provide every feature the model uses, unless --allow-missing-features."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--mapping", type=Path, required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")
        parser.add_argument(
            "--allow-missing-features",
            action="store_true",
            help="Score even when the mapped file does not provide some of the model's features (named in a "
            "warning): every row is scored without them, and the scores mean less.",
        )

    def handle(
        self,
        *args,
        file: Path,
        mapping: Path,
        out: Path,
        no_progress: bool,
        allow_missing_features: bool,
        **options,
    ):
        file, mapping, out = Path(file), Path(mapping), Path(out)
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        _check_out(out, file, mapping)
        started = time.perf_counter()
        scores = _ScoresFile(out)
        # Ctrl-C or SIGTERM leaves --out as it was: the hidden file is removed on the way out.
        with stopped_in_one_line(f"--out {out} keeps its previous contents"):
            try:
                parsed = mapping_load(mapping)
                model = champions.get("churn")
                # Opened before the file is read, so a folder that cannot be written in is said at once.
                scores.open()
                # One clock for both steps: the file is read as of the local day (TIME_ZONE, as the API, the
                # labels and import_customers count it) of the moment the features are computed at.
                now = timezone.now()
                scoring = parsed.features_only(
                    objecting_ids=profiling_objector_external_ids(),
                    erased_among=erased_external_ids,
                )
                chunks = read_mapped_chunks(file, scoring, as_of=timezone.localdate(now), chunk_rows=CHUNK_ROWS)
                # The first chunk tells which columns the mapping takes as attributes ("*" takes them from the
                # header): the features are checked on it before anything is written.
                first = next(chunks, None)
                watch = _FileWatch(numeric_columns=())
                if first is not None:
                    self._check_features(model, parsed, first, mapping=mapping, allowed=allow_missing_features)
                    watch = _FileWatch(numeric_columns=_numeric_attribute_columns(model, first.good))
                    chunks = itertools.chain([first], chunks)
                summary = ScoringSummary()
                progress = tqdm(unit=" rows", disable=no_progress, file=sys.stderr, mininterval=1.0)
                with progress:
                    scored = score_chunks(
                        watch.watched(chunks), model=model.model, as_of=now, new_customer_fees=new_customer_fees()
                    )
                    write_scores(scored, scores, summary, on_progress=progress.update)
                if summary.scored:
                    self._check_numbers(model, watch, allowed=allow_missing_features)
                scores.complete()
            except (MappingError, NoChampion, ArtifactError, SchemaMismatch, OSError) as error:
                raise CommandError(str(error)) from error
            finally:
                scores.discard()
        self._report(summary, watch, file, out, model.version.label, time.perf_counter() - started)

    def _check_features(
        self, model: LoadedModel, parsed: Mapping, first: MappedChunk, *, mapping: Path, allowed: bool
    ) -> None:
        """Refuse (or with `allowed`, warn of) a file that leaves some of the model's features without values:
        the model would score every row as if those were unknown, and nothing would say so."""
        missing = features_missing_from_file(model.model.schema, features_from_file(parsed, first.good.attributes))
        if missing:
            self._refuse_or_warn(model, missing, how=_how_to_provide(missing, mapping), allowed=allowed)

    def _check_numbers(self, model: LoadedModel, watch: _FileWatch, *, allowed: bool) -> None:
        """Refuse (or with `allowed`, warn of) a column the model reads as a number that holds none in any row
        scored ("n/a" throughout): every row would be scored as if the feature were unknown, as if the column
        were missing. Known only once every row is read; the scores are not yet in --out's place."""
        if not watch.without_numbers:
            return
        named = [
            f"{ATTRIBUTE_PREFIX}{column} (column {column} holds {_no_number(example)})"
            for column, example in watch.without_numbers.items()
        ]
        how = f"Put numbers in {'that column' if len(named) == 1 else 'those columns'} of the file"
        self._refuse_or_warn(model, named, how=how, allowed=allowed)

    def _refuse_or_warn(self, model: LoadedModel, missing: list[str], *, how: str, allowed: bool) -> None:
        """`missing` names the features the file does not provide, each with why where it is not plain."""
        total = len(model.model.schema.names)
        what = f"{len(missing)} of the {total} features {model.version.label} uses: {', '.join(missing)}"
        if allowed:
            self.stderr.write(f"warning: the mapped file does not provide {what}; every row is scored without them")
            return
        raise CommandError(
            f"the mapped file does not provide {what}. {how}, or pass --allow-missing-features to score without them"
        )

    def _report(
        self, summary: ScoringSummary, watch: _FileWatch, file: Path, out: Path, label: str, seconds: float
    ) -> None:
        if summary.unscored_lines:
            self.stderr.write(
                arguments.rows_left_out(
                    summary.unscored_lines,
                    why="could not be read",
                    then=("has no score", "have no score"),
                    shown=REASONS_SHOWN,
                )
            )
            for error in watch.unreadable:
                self.stderr.write(f"{file.name}: {error}")
        if summary.withheld_lines:
            self.stderr.write(
                arguments.rows_left_out(
                    summary.withheld_lines,
                    why=(
                        "is of a customer who objected to profiling or was erased at their request",
                        "are of customers who objected to profiling or were erased at their request",
                    ),
                    then=("has no score", "have no score"),
                    shown=REASONS_SHOWN,
                )
            )
            for error in watch.withheld:
                self.stderr.write(f"{file.name}: {error}")
        self.stdout.write(
            f"scored {summary.scored} of {summary.rows} rows with {label} in {seconds:.1f} s "
            f"({summary.rows / max(seconds, 1e-9):,.0f} rows/s) -> {out}"
        )


class _FileWatch:
    """What the chunks of a file show on their way to scoring: the first rows that could not be read and the first
    left out at their customer's wish, with their reasons, and which of the model's numeric columns have not yet
    held a number in a row scored."""

    def __init__(self, *, numeric_columns: Iterable[str]) -> None:
        self.unreadable: list[RowError] = []
        self.withheld: list[RowError] = []
        # column -> a value it held (None: only empty cells so far), until a number comes
        self.without_numbers: dict[str, object] = dict.fromkeys(numeric_columns)

    def watched(self, chunks: Iterable[MappedChunk]) -> Iterator[MappedChunk]:
        for chunk in chunks:
            self._note_left_out(chunk)
            self._note_numbers(chunk.good)
            yield chunk

    def _note_left_out(self, chunk: MappedChunk) -> None:
        wished = chunk.withheld_rows()
        _note_first(self.unreadable, chunk, ~chunk.good_rows() & ~wished)
        _note_first(self.withheld, chunk, wished)

    def _note_numbers(self, good: MappedColumns) -> None:
        for column in list(self.without_numbers):
            held = _held_values(good, column)
            # As the model's input reads the column: whatever pandas takes for a number is one.
            if pd.to_numeric(pd.Series(held, dtype=object), errors="coerce").notna().any():
                del self.without_numbers[column]
            elif self.without_numbers[column] is None:
                self.without_numbers[column] = next((value for value in held if value is not None), None)


def _note_first(errors: list[RowError], chunk: MappedChunk, rows: np.ndarray) -> None:
    """Add the chunk's `rows` to `errors` until it holds REASONS_SHOWN."""
    for row in np.flatnonzero(rows)[: REASONS_SHOWN - len(errors)]:
        errors.append(RowError(chunk.lines[row], chunk.external_ids[row], chunk.problems[row]))


def _held_values(good: MappedColumns, column: str) -> np.ndarray:
    """The distinct values the rows hold in an attribute column."""
    coded = good.attributes[column]
    return coded.values[np.unique(coded.codes)]


def _numeric_attribute_columns(model: LoadedModel, good: MappedColumns) -> list[str]:
    """The file's attribute columns that the model reads as numbers."""
    numeric = set(model.model.schema.numeric)
    return [column for column in good.attributes if ATTRIBUTE_PREFIX + column in numeric]


def _no_number(example: object) -> str:
    if example is None:
        return "no value in any row"
    return f"no number in any row, only text such as {example!r}"


class _ScoresFile:
    """The hidden file beside --out that the scores are written to, put in --out's place once every row is
    scored, so a failure leaves the previous scores as they were, never half a file.

    Whatever keeps it from being written (a folder one may not write in, a full disk) is said of --out:
    the hidden name means nothing to whoever ran the command.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.partial = partial_beside(out)
        self.handle: IO[str] | None = None

    def open(self) -> None:
        try:
            self.handle = self.partial.open("w", newline="", encoding="utf-8")
        except OSError as error:
            raise self._cannot_write(error) from error

    def write(self, text: str) -> int:
        try:
            return self.handle.write(text)
        except OSError as error:
            raise self._cannot_write(error) from error

    def complete(self) -> None:
        """Put the scores in --out's place."""
        try:
            self.handle.close()
            self.partial.replace(self.out)
        except OSError as error:
            raise self._cannot_write(error) from error

    def discard(self) -> None:
        """Remove what is left of an unfinished file (nothing after `complete`), if this opened one: what was
        in its place before (a folder of that name) is not ours to remove."""
        if self.handle is None:
            return
        # The scores are thrown away: a failure to flush the last of them changes nothing.
        with contextlib.suppress(OSError):
            self.handle.close()
        self.partial.unlink(missing_ok=True)

    def _cannot_write(self, error: OSError) -> CommandError:
        return CommandError(f"cannot write --out {self.out}: {error.strerror or error}")


def _check_out(out: Path, file: Path, mapping: Path) -> None:
    """--out is checked before the file is read: scoring a large file takes minutes. It never replaces what the
    run reads, the file or its mapping."""
    if out.exists() and out.resolve() == file.resolve():
        raise CommandError(f"--out {out} is the file being scored: name another file")
    if out.exists() and out.resolve() == mapping.resolve():
        raise CommandError(f"--out {out} is the mapping: name another file")
    if problem := arguments.output_file_problem(out):
        raise CommandError(f"--out: {problem}")


def _how_to_provide(missing: list[str], mapping: Path) -> str:
    history = never_from_a_file(missing)
    if not history:
        return f"Map them in {mapping}"
    if len(history) == len(missing):
        return (
            f"No file gives {', '.join(history)}: they come from customers' history in the database, so score "
            "this file with a model trained on data like it"
        )
    return f"Map the others in {mapping} ({', '.join(history)} come from customers' history, never from a file)"
