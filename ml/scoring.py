"""Scoring a CRM file in bounded memory: records in chunks, one feature path, probabilities out."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ml.churn import ChurnModel
from ml.features import build_features
from retention.records import CustomerRecord, records_to_frames

CHUNK_ROWS = 50_000


@dataclass
class ScoringSummary:
    rows: int = 0
    scored: int = 0
    unscored_lines: list[int] = field(default_factory=list)


def score_stream(
    items: Iterable[object],
    *,
    model: ChurnModel,
    as_of: dt.datetime,
    new_customer_fees: dict[str, float],
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[tuple[str, float | None, object]]:
    """(external id, probability or None, the item) for every item in order.

    Items are CustomerRecords or row errors (anything with `external_id`); an error
    row keeps its place with no probability, so the output has one row per input row.
    """
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= chunk_rows:
            yield from _score_chunk(chunk, model, as_of, new_customer_fees)
            chunk = []
    if chunk:
        yield from _score_chunk(chunk, model, as_of, new_customer_fees)


def _score_chunk(chunk, model, as_of, fees):
    records = [item for item in chunk if isinstance(item, CustomerRecord)]
    probabilities = iter(())
    if records:
        features = build_features(*records_to_frames(records, as_of=as_of), fees)
        probabilities = iter(model.predict_proba(features))
    for item in chunk:
        if isinstance(item, CustomerRecord):
            yield item.external_id, float(next(probabilities)), item
        else:
            yield item.external_id, None, item


def write_scores(rows: Iterable[tuple[str, float | None, object]], out, summary: ScoringSummary) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["external_id", "churn_probability"])
    for external_id, probability, item in rows:
        summary.rows += 1
        if probability is None:
            summary.unscored_lines.append(getattr(item, "line", summary.rows + 1))
            writer.writerow([external_id, ""])
        else:
            summary.scored += 1
            writer.writerow([external_id, f"{probability:.6f}"])
