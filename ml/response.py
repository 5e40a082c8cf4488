"""The offer-response model: for each candidate offer and for no offer, the chance this customer stays.

It learns from logged decisions: the customer's features as the churn model saw them,
the churn model's probability, and what was offered (its kind and its cost as a share
of a year's fee, with "none" for no offer). The no-offer model corrects the churn
model's odds; each offer kind's model then learns only how that offer moves the
corrected odds, and for whom. To score a customer it is asked once per candidate,
with only the offer columns changed, so every offer and "no offer" are compared on
the same customer from the same baseline.

The learned chance is blended with the catalog's prior by the amount of evidence:
an offer kind seen n times in the log weighs n / (n + prior_strength), so a new
offer starts from its prior and a well-tried one from what it did.

Pure pandas, numpy and XGBoost; the model (positive class: the customer left) is stored
as XGBoost boosters and a JSON manifest, which the registry stores and loads like the
churn model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.artifacts import MANIFEST, LinearWeights, file_sha256, load_booster, manifest_read
from ml.churn import check_training_data
from ml.policy import CustomerContext, OfferSpec, StayEstimates, stay_probability
from ml.schema import ColumnTable, FeatureSchema, codes_of, numbers_of
from ml.training import Progress, TrainingResult, measured_fit, no_progress

NO_OFFER_KIND = "none"
OFFER_KIND_COLUMN = "offer_kind"
OFFER_COST_COLUMN = "offer_cost_share"
CHURN_COLUMN = "churn_probability"
TREATMENT_COLUMNS = (OFFER_KIND_COLUMN, OFFER_COST_COLUMN)


def treatment_columns(kind: str, cost_cents: int, monthly_fee_cents: int) -> dict[str, object]:
    """The offer as the model sees it: its kind and what it costs as a share of a year's fee."""
    yearly = monthly_fee_cents * 12
    return {OFFER_KIND_COLUMN: kind, OFFER_COST_COLUMN: cost_cents / yearly if yearly > 0 else 0.0}


def response_training_set(log: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """Rows, labels (1 = left) and decision times from the labelled outcome log.

    Expects the columns of `retention.selectors.outcome_log.logged_outcomes`: features
    (dict), churn_probability, treatment_kind, treatment_code, offers (list), renewal_fee_cents,
    stayed and as_of.
    """
    missing = {"features", "churn_probability", "treatment_kind", "treatment_code", "offers", "stayed", "as_of"}
    missing -= set(log.columns)
    if missing:
        raise ValueError(f"the outcome log lacks the columns {', '.join(sorted(missing))}")
    customers = pd.DataFrame(list(log["features"]), index=log.index)
    customers[CHURN_COLUMN] = log["churn_probability"].astype(float)
    treatments = pd.DataFrame(
        [_logged_treatment(row) for row in log.itertuples(index=False)], index=log.index, columns=TREATMENT_COLUMNS
    )
    features = pd.concat([customers, treatments], axis=1).reset_index(drop=True)
    labels = (~log["stayed"].astype(bool)).astype(int).to_numpy()
    return features, labels, pd.Series(list(log["as_of"]))


def _logged_treatment(row) -> tuple[str, float]:
    fee = row.renewal_fee_cents or 0
    if not row.treatment_code:
        return NO_OFFER_KIND, 0.0
    cost = next((offer["cost_cents"] for offer in row.offers if offer["code"] == row.treatment_code), 0)
    columns = treatment_columns(row.treatment_kind, cost, int(fee))
    return columns[OFFER_KIND_COLUMN], columns[OFFER_COST_COLUMN]


def _categorical_columns(stored: list | dict, column_order: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    if isinstance(stored, list):
        return {name: tuple(levels) for name, levels in stored}
    if column_order is not None and set(stored) <= set(column_order):
        return {name: tuple(stored[name]) for name in column_order if name in stored}
    return {name: tuple(levels) for name, levels in stored.items()}


def response_model_fit(
    features: pd.DataFrame,
    labels: np.ndarray,
    times: pd.Series,
    *,
    seed: int = 0,
    progress: Progress = no_progress,
) -> TrainingResult:
    """Measure on a holdout (by time where the log spans time), then refit on every logged outcome.

    The metrics carry the evidence per offer kind, which the blend with the catalog priors needs.
    """
    if OFFER_KIND_COLUMN not in features.columns or CHURN_COLUMN not in features.columns:
        raise ValueError(f"the response model needs the {OFFER_KIND_COLUMN!r} and {CHURN_COLUMN!r} columns")
    result = measured_fit(
        features,
        labels,
        times,
        train=lambda rows, outcomes: response_model_train(rows, outcomes, seed=seed),
        refit=lambda trial: response_model_train(features, np.asarray(labels, dtype=int), seed=seed),
        seed=seed,
        progress=progress,
    )
    result.metrics["evidence"] = evidence_by_kind(features)
    return result


# One linear model for no offer on top of the churn model's log-odds, and one per offer kind on top of
# that: the offset carries who is likely to leave, each kind's weights only how that kind shifts the
# odds and for whom. Linear and L2-regularised because the signal (a few points of leave chance) is
# small against the noise of stay-or-leave outcomes; trees spend such data on the baseline instead of
# on the offer.
LINEAR_PARAMS = {
    "booster": "gblinear",
    "objective": "binary:logistic",
    "updater": "coord_descent",
    "feature_selector": "cyclic",
    "eta": 0.5,
    "lambda": 1.0,
    "alpha": 0.0,
}
LINEAR_ROUNDS = 60
# XGBoost scales a linear model's L2 penalty by the rows' total weight, so a fixed `lambda` shrinks the
# weights by the same factor however much evidence there is. Dividing it by the rows instead makes the
# penalty worth this many rows: who an offer works for is believed in step with the evidence for it.
SHRINKAGE_ROWS = 300.0
# A categorical column with more levels (a postcode, a free-text field) says too little per level to learn from.
MAX_LEVELS = 12
# Below this many logged outcomes a kind's model learns one shift of the odds for everyone, not for whom.
MIN_ROWS_PER_KIND = 30
EPSILON = 1e-4
# Format 2: an offer kind's model starts from the no-offer model's margin. Format 1 (stored before)
# started every kind from the churn model's; it still loads and predicts as it was trained.
FORMAT = "offer-response-2"
FORMAT_FROM_CHURN_ODDS = "offer-response-1"


@dataclass
class ResponseModel:
    """P(leave | customer, no offer) = sigmoid(logit(churn probability) + linear_none(customer)) and
    P(leave | customer, offer kind) = sigmoid(that no-offer log-odds + linear_kind(customer)).

    Every logged kind has a model; one logged fewer than MIN_ROWS_PER_KIND times shifts every
    customer's odds alike. A kind never logged (or without a model in an older artifact) keeps the
    no-offer odds: its effect then comes from the catalog prior alone, through the evidence blend.
    An artifact of FORMAT_FROM_CHURN_ODDS starts every kind, "none" too, from the churn model's odds.
    """

    numeric: tuple[str, ...]
    centre: tuple[float, ...]  # of the numeric columns, then of each categorical level's indicator
    scale: tuple[float, ...]
    boosters: dict[str, xgb.Booster]
    # Categorical columns, each read as one indicator per level: a yes/no or a contract type can say for whom an
    # offer works as well as a number can.
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Whether an offer kind's margin starts from the no-offer model's (True) or the churn model's.
    offers_from_baseline: bool = True
    _linear_weights: dict[str, LinearWeights] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def schema(self) -> FeatureSchema:
        """The customer columns the model reads, besides the churn probability and the offer columns."""
        return FeatureSchema(numeric=self.numeric, categorical=self.categorical)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(leave) for each row, given its churn probability and offer columns."""
        kinds = features[OFFER_KIND_COLUMN].astype(str).to_numpy()
        return self._leave(self._values(features), churn_log_odds(features), kinds)

    def predict_treatments(
        self, customers: pd.DataFrame, churn_probabilities: np.ndarray, kinds: np.ndarray, cost_shares: np.ndarray
    ) -> np.ndarray:
        """P(leave) of each customer (a row of `customers`) under each treatment, as `predict_proba` gives it
        for rows that repeat the customer with the offer columns filled in.

        `kinds` and `cost_shares` have a row per customer and a column per treatment; so has the result.
        The customer's columns are read once, not once per treatment: on one recommendation, a frame
        of the repeated rows cost more than the prediction.
        """
        width = kinds.shape[1]
        values = np.repeat(self._values(customers), width, axis=0)
        if OFFER_COST_COLUMN in self.numeric:
            values[:, self.numeric.index(OFFER_COST_COLUMN)] = cost_shares.ravel()
        offset = np.repeat(_log_odds(churn_probabilities), width)
        return self._leave(values, offset, kinds.ravel()).reshape(kinds.shape)

    def _leave(self, values: np.ndarray, offset: np.ndarray, kinds: np.ndarray) -> np.ndarray:
        """Each kind's margin is worked out from its booster's own weights exactly as XGBoost's linear
        predictor does (see `LinearWeights`), which spares a DMatrix per kind."""
        standardised = self._standardised(values) if self.boosters else values
        start = self._baseline(standardised, offset) if self.offers_from_baseline else offset
        margin = start.copy()
        for kind, booster in self.boosters.items():
            rows = kinds == kind
            already_the_baseline = kind == NO_OFFER_KIND and self.offers_from_baseline
            if rows.any() and not already_the_baseline:
                margin[rows] = self._weights(kind, booster).margin(standardised[rows], start[rows])
        return 1.0 / (1.0 + np.exp(-margin))

    def _baseline(self, standardised: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """The no-offer log-odds of leaving: the churn model's, corrected by the no-offer model where
        there is one."""
        booster = self.boosters.get(NO_OFFER_KIND)
        if booster is None:
            return offset
        return self._weights(NO_OFFER_KIND, booster).margin(standardised, offset)

    def _weights(self, kind: str, booster: xgb.Booster) -> LinearWeights:
        cached = self._linear_weights.get(kind)
        if cached is None or cached.booster is not booster:
            cached = LinearWeights.of(booster)
            self._linear_weights[kind] = cached
        return cached

    def _values(self, features: pd.DataFrame) -> np.ndarray:
        """The numeric columns the model reads, as they are (a column `features` lacks is all gaps), then an
        indicator (1 or 0) for each level of each categorical column."""
        table = ColumnTable.of(features)
        columns = [numbers_of(features, name, table) for name in self.numeric]
        for name, levels in self.categorical.items():
            codes = codes_of(features, name, levels, table)
            columns += [(codes == position).astype(float) for position in range(len(levels))]
        return np.column_stack(columns) if columns else np.empty((len(features), 0))

    def _standardised(self, values: np.ndarray) -> np.ndarray:
        return np.nan_to_num((values - np.array(self.centre)) / np.array(self.scale), nan=0.0)

    def save(self, folder: Path) -> str:
        """Write each kind's linear booster in XGBoost's format and a JSON manifest; returns its sha256."""
        folder.mkdir(parents=True, exist_ok=False)
        files = {}
        for kind, booster in sorted(self.boosters.items()):
            name = f"kind-{kind}.ubj"
            booster.save_model(str(folder / name))
            files[name] = {"kind": kind, "sha256": file_sha256(folder / name)}
        manifest = {
            "format": FORMAT if self.offers_from_baseline else FORMAT_FROM_CHURN_ODDS,
            "numeric": list(self.numeric),
            # Pairs, in the model's column order: a JSON object's keys are written sorted, which lost that order.
            "categorical": [[name, list(levels)] for name, levels in self.categorical.items()],
            "centre": list(self.centre),
            "scale": list(self.scale),
            "files": files,
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        return file_sha256(folder / MANIFEST)

    @classmethod
    def load(
        cls, folder: Path, *, expected_sha256: str | None = None, column_order: Sequence[str] | None = None
    ) -> ResponseModel:
        """Read an artifact. `column_order` (the registry's record of the schema) restores the order of the
        categorical columns of an artifact that stored them as a JSON object, whose keys were written sorted."""
        manifest = manifest_read(folder, expected_sha256=expected_sha256, formats=(FORMAT, FORMAT_FROM_CHURN_ODDS))
        return cls(
            offers_from_baseline=manifest["format"] == FORMAT,
            numeric=tuple(manifest["numeric"]),
            # Models stored before categorical columns were read have none.
            categorical=_categorical_columns(manifest.get("categorical", []), column_order),
            centre=tuple(manifest["centre"]),
            scale=tuple(manifest["scale"]),
            boosters={
                entry["kind"]: load_booster(folder, name, entry["sha256"])
                for name, entry in sorted(manifest["files"].items())
            },
        )


def churn_log_odds(features: pd.DataFrame) -> np.ndarray:
    return _log_odds(features[CHURN_COLUMN].to_numpy(dtype=float))


def _log_odds(probabilities: np.ndarray) -> np.ndarray:
    probability = np.clip(np.asarray(probabilities, dtype=float), EPSILON, 1 - EPSILON)
    return np.log(probability / (1 - probability))


def response_model_train(features: pd.DataFrame, labels: np.ndarray, *, seed: int = 0) -> ResponseModel:
    """Fit the no-offer model on the churn model's odds, then one linear model per logged offer kind on the
    no-offer odds."""
    check_training_data(features, labels)
    labels = np.asarray(labels, dtype=int)
    inferred = FeatureSchema.infer(features.drop(columns=[CHURN_COLUMN, OFFER_KIND_COLUMN]))
    categorical = {name: levels for name, levels in inferred.categorical.items() if len(levels) <= MAX_LEVELS}
    model = ResponseModel(numeric=inferred.numeric, categorical=categorical, centre=(), scale=(), boosters={})
    values = model._values(features)
    model.centre = tuple(pd.DataFrame(values).mean().fillna(0.0))
    model.scale = tuple(pd.DataFrame(values).std().replace(0.0, 1.0).fillna(1.0))
    offset = churn_log_odds(features)
    kinds = features[OFFER_KIND_COLUMN].astype(str).to_numpy()
    standardised = model._standardised(values)
    # No offer first: the offer kinds then start from its corrected baseline, so each learns only
    # how its offer moves a customer's odds, and its penalty pulls that move toward none, not toward
    # a baseline of its own fitted on the few customers it was made to.
    ordered = sorted(set(kinds), key=lambda kind: (kind != NO_OFFER_KIND, kind))
    for kind in ordered:
        rows = kinds == kind
        start = offset[rows] if kind == NO_OFFER_KIND else model._baseline(standardised[rows], offset[rows])
        model.boosters[kind] = _kind_model(standardised[rows], labels[rows], start, seed=seed)
    return model


def _kind_model(standardised: np.ndarray, labels: np.ndarray, start: np.ndarray, *, seed: int) -> xgb.Booster:
    if len(labels) < MIN_ROWS_PER_KIND:
        # Too few to say for whom the kind works: its model learns only how its customers'
        # leaving compares with their odds, the same shift for everyone.
        standardised = np.zeros_like(standardised)
    data = xgb.DMatrix(standardised, label=labels, base_margin=start, nthread=1)
    params = {**LINEAR_PARAMS, "seed": seed, "nthread": 1, "lambda": SHRINKAGE_ROWS / len(labels)}
    return xgb.train(params, data, num_boost_round=LINEAR_ROUNDS)


def evidence_by_kind(features: pd.DataFrame) -> dict[str, int]:
    """How many logged outcomes each offer kind (and "none") has."""
    return {str(kind): int(count) for kind, count in features[OFFER_KIND_COLUMN].value_counts().items()}


def stay_estimates(
    *,
    model: ResponseModel,
    evidence: Mapping[str, int],
    customers: pd.DataFrame,
    contexts: Sequence[CustomerContext],
    fees_cents: Sequence[int],
    offers: Sequence[OfferSpec],
    prior_strength: float,
) -> list[StayEstimates]:
    """Blended P(stay) without an offer and with every offer, for each customer in one prediction.

    `customers` holds the churn features of each customer (one row each, in the order of
    `contexts`); `fees_cents` the monthly fee the offers are priced on.
    """
    offers = list(offers or [])
    evidence = learned_evidence(model, evidence)
    kinds, cost_shares = _treatments(fees_cents, offers)
    churn = np.array([context.churn_probability for context in contexts], dtype=float)
    # Rows are matched by position, so the customers' own frame serves as it is: a copy with a fresh
    # index would read every column anew, which on one recommendation costs more than the prediction.
    learned_stay = 1.0 - model.predict_treatments(customers, churn, kinds, cost_shares)
    return [
        _blended(customer, offers, learned, evidence, prior_strength)
        for customer, learned in zip(contexts, learned_stay, strict=True)
    ]


def learned_evidence(model: ResponseModel, evidence: Mapping[str, int]) -> dict[str, int]:
    """The evidence behind each kind's learned chance: a kind without a model of its own (one stored
    before rarely logged kinds had one) has none, whatever its count, since its learned chance is only
    the churn model's and says nothing of what the offer does."""
    return {kind: count for kind, count in evidence.items() if kind in model.boosters}


def _treatments(fees_cents: Sequence[int], offers: Sequence[OfferSpec]) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, no offer then each offer: their kinds and their costs as a share of the customer's fee."""
    kinds, costs = [], []
    for fee in fees_cents:
        kinds.append([NO_OFFER_KIND])
        costs.append([0.0])
        for offer in offers:
            columns = treatment_columns(offer.kind, offer.cost_cents(fee), fee)
            kinds[-1].append(columns[OFFER_KIND_COLUMN])
            costs[-1].append(columns[OFFER_COST_COLUMN])
    width = len(offers) + 1
    return np.array(kinds, dtype=object).reshape(-1, width).astype(str), np.array(costs, dtype=float).reshape(-1, width)


def _blended(
    customer: CustomerContext,
    offers: Sequence[OfferSpec],
    learned_stay: np.ndarray,
    evidence: Mapping[str, int],
    prior_strength: float,
) -> StayEstimates:
    """Blend the baseline and each offer's effect separately, so that a well-learned baseline and a
    barely-tried offer still compare on one footing: the offer's share of the leave chance it removes."""
    leave_without = blend(
        prior=customer.churn_probability,
        learned=1.0 - float(learned_stay[0]),
        evidence=evidence.get(NO_OFFER_KIND, 0),
        prior_strength=prior_strength,
    )
    with_offer = {}
    for offer, stay in zip(offers, learned_stay[1:], strict=True):
        share = blend(
            prior=offer.prior_uplift,
            learned=removed_share(leave_without=1.0 - float(learned_stay[0]), leave_with=1.0 - float(stay)),
            evidence=evidence.get(offer.kind, 0),
            prior_strength=prior_strength,
        )
        with_offer[offer.code] = stay_probability(leave_without, share)
    return StayEstimates(
        without_offer=1.0 - leave_without,
        with_offer=with_offer,
        evidence={offer.code: evidence.get(offer.kind, 0) for offer in offers},
    )


def removed_share(*, leave_without: float, leave_with: float) -> float:
    """The share of the leave chance an offer removes (negative when it adds to it), bounded to [-1, 1]."""
    if leave_without <= EPSILON:
        return 0.0
    return float(np.clip(1.0 - leave_with / leave_without, -1.0, 1.0))


def blend(*, prior: float, learned: float, evidence: int, prior_strength: float) -> float:
    """The learned chance weighted by its evidence against the prior's pseudo-count."""
    weight = evidence / (evidence + prior_strength)
    return weight * learned + (1.0 - weight) * prior
