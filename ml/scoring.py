"""Scoring a CRM file in bounded memory: mapped columns in chunks, one feature path, probabilities out."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from ml.churn import ChurnModel
from ml.features import ATTRIBUTE_PREFIX, build_features
from ml.schema import FeatureSchema
from retention.mapping import MappedChunk
from retention.mapping import Mapping as ColumnMapping
from retention.mapping_frames import mapped_frames

# Rows scored together: enough that pandas and XGBoost spend their time on whole columns, few enough
# that a chunk's cells, frames and features stay within a couple of hundred megabytes.
CHUNK_ROWS = 50_000


# The core features a file can give, each with the mapping fields that give it (any one of them). A file's only
# contract is the one its monthly fee makes, so what describes the contract needs the fee mapped too. Every other
# core feature (events, discounts, a contract's start, the bundle and what it costs a new customer) comes from
# the database's history of a customer: no file gives it, and scoring a file reads it as "none" or unknown.
FILE_FEATURE_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "tenure_months": (("tenure_months",), ("signup_date",)),
    "segment": (("segment",),),
    "value_tier": (("value_tier",),),
    "region": (("region",),),
    "products": (("products",),),
    "n_products": (("products",),),
    "monthly_fee": (("monthly_fee",),),
    "contract_type": (("monthly_fee", "contract_type"),),
    "days_to_contract_end": (("monthly_fee", "contract_end"),),
}


def features_from_file(mapping: ColumnMapping, attribute_columns: Iterable[str]) -> set[str]:
    """The feature names a file read with `mapping` gives values to; `attribute_columns` are the columns
    the mapping takes as attributes from that file's header."""
    mapped = set(mapping.fields)
    core = {
        feature
        for feature, alternatives in FILE_FEATURE_FIELDS.items()
        if any(mapped.issuperset(fields) for fields in alternatives)
    }
    return core | {ATTRIBUTE_PREFIX + column for column in attribute_columns}


def features_missing_from_file(schema: FeatureSchema, provided: set[str]) -> list[str]:
    """The model's features, in its own order, that the file does not give."""
    return [name for name in schema.names if name not in provided]


def never_from_a_file(features: Iterable[str]) -> list[str]:
    """Those of `features` that no mapping can give: they come from a customer's history in the database."""
    return [name for name in features if name not in FILE_FEATURE_FIELDS and not name.startswith(ATTRIBUTE_PREFIX)]


@dataclass
class ScoringSummary:
    rows: int = 0
    scored: int = 0
    unscored_lines: list[int] = field(default_factory=list)  # rows that could not be read
    # Rows read but left unscored because their customer objected to profiling or was erased at their request.
    withheld_lines: list[int] = field(default_factory=list)


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
        wished = chunk.withheld_rows()
        summary.unscored_lines += np.asarray(chunk.lines)[~good & ~wished].tolist()
        summary.withheld_lines += np.asarray(chunk.lines)[wished].tolist()
        if on_progress:
            on_progress(len(chunk))


def _probability_cells(good: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    cells = np.full(len(good), "", dtype=object)
    cells[good] = [f"{probability:.6f}" for probability in probabilities.tolist()]
    return cells
