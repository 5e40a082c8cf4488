from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

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
from retention.mapping import MappedChunk, Mapping, MappingError, mapping_load, read_mapped_chunks
from retention.selectors.catalog import new_customer_fees


class Command(BaseCommand):
    help = (
        "Score every row of a CRM file with the champion churn model, whether or not the customers were imported. "
        "Writes external_id,churn_probability (one row per input row; empty where a row could not be read). "
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
        _check_out(out, file)
        started = time.perf_counter()
        # Scores are written beside --out and put in its place only once every row is scored, so a failure
        # leaves the previous scores as they were, never half a file.
        partial = out.with_name(f".{out.name}.partial")
        try:
            parsed = mapping_load(mapping)
            model = champions.get("churn")
            # One clock for both steps: the file is read as of the day (UTC, as import_customers reads it)
            # of the moment the features are computed at.
            now = timezone.now()
            chunks = read_mapped_chunks(file, parsed.features_only(), as_of=now.date(), chunk_rows=CHUNK_ROWS)
            # The first chunk tells which columns the mapping takes as attributes ("*" takes them from the
            # header): the features are checked on it before anything is written.
            first = next(chunks, None)
            if first is not None:
                self._check_features(model, parsed, first, mapping=mapping, allowed=allow_missing_features)
                chunks = itertools.chain([first], chunks)
            summary = ScoringSummary()
            progress = tqdm(unit=" rows", disable=no_progress, file=sys.stderr, mininterval=1.0)
            with partial.open("w", newline="", encoding="utf-8") as handle, progress:
                scored = score_chunks(chunks, model=model.model, as_of=now, new_customer_fees=new_customer_fees())
                write_scores(scored, handle, summary, on_progress=progress.update)
            partial.replace(out)
        except (MappingError, NoChampion, SchemaMismatch, OSError) as error:
            raise CommandError(str(error)) from error
        finally:
            partial.unlink(missing_ok=True)
        self._report(summary, out, model.version.label, time.perf_counter() - started)

    def _check_features(
        self, model: LoadedModel, parsed: Mapping, first: MappedChunk, *, mapping: Path, allowed: bool
    ) -> None:
        """Refuse (or with `allowed`, warn of) a file that leaves some of the model's features without values:
        the model would score every row as if those were unknown, and nothing would say so."""
        schema = model.model.schema
        missing = features_missing_from_file(schema, features_from_file(parsed, first.good.attributes))
        if not missing:
            return
        label, total = model.version.label, len(schema.names)
        what = f"{len(missing)} of the {total} features {label} uses: {', '.join(missing)}"
        if allowed:
            self.stderr.write(f"warning: the mapped file does not provide {what}; every row is scored without them")
            return
        raise CommandError(
            f"the mapped file does not provide {what}. {_how_to_provide(missing, mapping)}, "
            "or pass --allow-missing-features to score without them"
        )

    def _report(self, summary: ScoringSummary, out: Path, label: str, seconds: float) -> None:
        if summary.unscored_lines:
            shown = ", ".join(map(str, summary.unscored_lines[:20]))
            more = " …" if len(summary.unscored_lines) > 20 else ""
            self.stderr.write(
                f"{len(summary.unscored_lines)} rows could not be read and have no score: lines {shown}{more}"
            )
        self.stdout.write(
            f"scored {summary.scored} of {summary.rows} rows with {label} in {seconds:.1f} s "
            f"({summary.rows / max(seconds, 1e-9):,.0f} rows/s) -> {out}"
        )


def _check_out(out: Path, file: Path) -> None:
    """--out is checked before the file is read: scoring a large file takes minutes."""
    if out.is_dir():
        raise CommandError(f"--out {out} is a directory: name a file")
    if not out.parent.is_dir():
        raise CommandError(f"--out {out}: the folder {out.parent} does not exist")
    if out.exists() and out.resolve() == file.resolve():
        raise CommandError(f"--out {out} is the file being scored: name another file")


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
