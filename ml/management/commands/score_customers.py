from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from ml.registry import NoChampion, champions
from ml.schema import SchemaMismatch
from ml.scoring import CHUNK_ROWS, ScoringSummary, score_chunks, write_scores
from retention.mapping import MappingError, mapping_load, read_mapped_chunks
from retention.selectors.catalog import new_customer_fees


class Command(BaseCommand):
    help = (
        "Score every row of a CRM file with the champion churn model, whether or not the customers were imported. "
        "Writes external_id,churn_probability (one row per input row; empty where a row could not be read)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--mapping", type=Path, required=True)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, file: Path, mapping: Path, out: Path, no_progress: bool, **options):
        file, mapping, out = Path(file), Path(mapping), Path(out)
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        if out.exists() and out.resolve() == file.resolve():
            raise CommandError(f"--out {out} is the file being scored: name another file")
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
