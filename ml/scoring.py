"""Scoring a CRM file in bounded memory: mapped columns in chunks, one feature path, probabilities out."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from ml.churn import ChurnModel
from ml.features import build_features
from retention.mapping import MappedChunk
from retention.mapping_frames import mapped_frames

# Rows scored together: enough that pandas and XGBoost spend their time on whole columns, few enough
# that a chunk's cells, frames and features stay within a couple of hundred megabytes.
CHUNK_ROWS = 50_000


@dataclass
class ScoringSummary:
    rows: int = 0
    scored: int = 0
    unscored_lines: list[int] = field(default_factory=list)


@dataclass
class ScoredChunk:
    chunk: MappedChunk
    probabilities: np.ndarray  # one per good row of the chunk, in row order


def score_chunks(
    chunks: Iterable[MappedChunk],
    *,
    model: ChurnModel,
    as_of: dt.datetime,
    new_customer_fees: Mapping[str, float],
) -> Iterator[ScoredChunk]:
    """Each chunk with the churn probabilities of its good rows; rows with a problem get none."""
    for chunk in chunks:
        probabilities = chunk_probabilities(chunk, model=model, as_of=as_of, new_customer_fees=new_customer_fees)
        yield ScoredChunk(chunk, probabilities)


def chunk_probabilities(
    chunk: MappedChunk, *, model: ChurnModel, as_of: dt.datetime, new_customer_fees: Mapping[str, float]
) -> np.ndarray:
    """The churn probability of each good row of the chunk, in row order."""
    if not len(chunk.good):
        return np.empty(0)
    return model.predict_proba(build_features(*mapped_frames(chunk.good, as_of=as_of), new_customer_fees))


def write_scores(
    scored: Iterable[ScoredChunk],
    out,
    summary: ScoringSummary,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """`external_id,churn_probability` per row in input order; the probability is empty for a row with a problem."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["external_id", "churn_probability"])
    for item in scored:
        chunk, good = item.chunk, item.chunk.good_rows()
        writer.writerows(zip(chunk.external_ids, _probability_cells(good, item.probabilities), strict=True))
        summary.rows += len(chunk)
        summary.scored += len(item.probabilities)
        summary.unscored_lines += np.asarray(chunk.lines)[~good].tolist()
        if on_progress:
            on_progress(len(chunk))


def _probability_cells(good: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    cells = np.full(len(good), "", dtype=object)
    cells[good] = [f"{probability:.6f}" for probability in probabilities.tolist()]
    return cells
