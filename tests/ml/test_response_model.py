"""The offer-response model on a synthetic log whose truth is known.

The log: customers with a known chance to leave (the churn probability the model is given),
a price-sensitive half among them, and one of no offer, a 20% discount or a gift, drawn at
random as exploration would. The discount removes 60% of the leave chance of price-sensitive
customers and nothing for the others; the gift removes nothing for anyone.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.artifacts import MANIFEST, ArtifactError, file_sha256
from ml.models import ModelVersion
from ml.policy import CustomerContext, OfferSpec, StayEstimates, stay_probability
from ml.registry import model_version_load, model_version_register
from ml.response import (
    EPSILON,
    MIN_ROWS_PER_KIND,
    ResponseModel,
    blend,
    removed_share,
    response_model_fit,
    response_model_train,
    response_training_set,
    stay_estimates,
)

FEE_CENTS = 5_000
DISCOUNT = OfferSpec(
    code="korting-20", kind="discount", title={}, authority_level=1, prior_uplift=0.1,
    discount_percent=Decimal(20), duration_months=12,
)  # fmt: skip
GIFT = OfferSpec(code="speaker", kind="gift", title={}, authority_level=1, prior_uplift=0.05, fixed_cost_cents=3_000)
OFFERS = [DISCOUNT, GIFT]
KINDS = {"": "", DISCOUNT.code: DISCOUNT.kind, GIFT.code: GIFT.kind}
OFFERS_JSON = [{"code": offer.code, "kind": offer.kind, "cost_cents": offer.cost_cents(FEE_CENTS)} for offer in OFFERS]
REMOVED_BY_DISCOUNT = 0.6  # for price-sensitive customers; nothing for the others
ROWS = 6_000
LEARNED_ONLY = 1e-9  # a prior strength so small that the estimates are the model's alone


def synthetic_log(*, seed: int = 0, rows: int = ROWS, scramble_offers: bool = False) -> pd.DataFrame:
    """The outcome log as `logged_outcomes` gives it; `scramble_offers` cuts the tie between offer and outcome."""
    rng = np.random.default_rng(seed)
    price_sensitive = rng.random(rows) < 0.5
    complaints = rng.poisson(0.8, rows)
    tenure = rng.uniform(3, 120, rows)
    leave = 1 / (1 + np.exp(-(-1.2 + 0.8 * price_sensitive + 0.35 * complaints - 0.005 * tenure)))
    codes = rng.choice(["", DISCOUNT.code, GIFT.code], size=rows)
    removed = np.where((codes == DISCOUNT.code) & price_sensitive, REMOVED_BY_DISCOUNT, 0.0)
    stayed = rng.random(rows) >= leave * (1 - removed)
    if scramble_offers:
        codes = rng.permutation(codes)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pd.DataFrame(
        {
            "features": [
                {"price_sensitive": float(p), "complaints_90d": float(c), "tenure_months": float(t)}
                for p, c, t in zip(price_sensitive, complaints, tenure, strict=True)
            ],
            "churn_probability": leave,
            "treatment_kind": [KINDS[code] for code in codes],
            "treatment_code": codes,
            "offers": [OFFERS_JSON] * rows,
            "renewal_fee_cents": FEE_CENTS,
            "stayed": stayed,
            "as_of": [start + dt.timedelta(days=int(day)) for day in rng.integers(0, 360, rows)],
        }
    )


def true_population_share(log: pd.DataFrame) -> float:
    """The share of the whole log's leave chance the discount would remove if everyone got it."""
    leave = log["churn_probability"].to_numpy()
    sensitive = np.array([features["price_sensitive"] == 1.0 for features in log["features"]])
    return float((leave * sensitive * REMOVED_BY_DISCOUNT).sum() / leave.sum())


def customers_of(log: pd.DataFrame) -> tuple[pd.DataFrame, list[CustomerContext]]:
    customers = pd.DataFrame(list(log["features"]))
    contexts = [
        CustomerContext(
            segment="consumer",
            value_tier="medium",
            products=frozenset({"internet"}),
            tenure_months=features["tenure_months"],
            monthly_fee_cents=FEE_CENTS,
            churn_probability=float(probability),
        )
        for features, probability in zip(log["features"], log["churn_probability"], strict=True)
    ]
    return customers, contexts


def estimates_for(model: ResponseModel, log: pd.DataFrame, evidence: dict, prior_strength: float):
    customers, contexts = customers_of(log)
    return stay_estimates(
        model=model,
        evidence=evidence,
        customers=customers,
        contexts=contexts,
        fees_cents=[FEE_CENTS] * len(contexts),
        offers=OFFERS,
        prior_strength=prior_strength,
    )


def learned_share(model: ResponseModel, log: pd.DataFrame, code: str, evidence: dict, *, group=None) -> float:
    """The share of the leave chance the model says `code` removes, over the log's customers (or one group)."""
    return share_removed(learned_estimates(model, log, evidence), log, code, group=group)


def learned_estimates(model: ResponseModel, log: pd.DataFrame, evidence: dict) -> list[StayEstimates]:
    """The model's own estimates for the log's customers: scored once where several shares are read from them, as
    scoring is the costly part on a large log."""
    return estimates_for(model, log, evidence, LEARNED_ONLY)


def share_removed(estimates: list[StayEstimates], log: pd.DataFrame, code: str, *, group=None) -> float:
    if group is not None:
        estimates = [e for e, f in zip(estimates, log["features"], strict=True) if f["price_sensitive"] == group]
    leave_without = sum(1 - estimate.without_offer for estimate in estimates)
    leave_with = sum(1 - estimate.with_offer[code] for estimate in estimates)
    return 1 - leave_with / leave_without


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return synthetic_log()


@pytest.fixture(scope="module")
def fitted(log):
    return response_model_fit(*response_training_set(log), seed=0)


@pytest.fixture(scope="module")
def learned(log, fitted) -> list[StayEstimates]:
    """The fitted model's own estimates for the log's customers, which no test changes."""
    return learned_estimates(fitted.model, log, fitted.metrics["evidence"])


# --- what the model learns -------------------------------------------------------------------


def test_the_model_learns_that_the_discount_keeps_customers_and_the_gift_does_not(log, learned):
    discount = share_removed(learned, log, DISCOUNT.code)
    gift = share_removed(learned, log, GIFT.code)

    assert true_population_share(log) == pytest.approx(0.37, abs=0.03)
    assert discount == pytest.approx(true_population_share(log), abs=0.12)
    assert abs(gift) <= 0.1


def test_the_same_check_fails_for_a_model_that_could_not_see_the_offers():
    """The tolerances above are not so wide that a model blind to the offer columns would pass them."""
    scrambled = synthetic_log(scramble_offers=True)
    result = response_model_fit(*response_training_set(scrambled), seed=0)

    discount = learned_share(result.model, scrambled, DISCOUNT.code, result.metrics["evidence"])

    assert abs(discount - true_population_share(scrambled)) > 0.12


def test_the_model_learns_for_whom_the_discount_works(log, learned):
    sensitive = share_removed(learned, log, DISCOUNT.code, group=1.0)
    others = share_removed(learned, log, DISCOUNT.code, group=0.0)

    assert sensitive > others + 0.15
    assert sensitive == pytest.approx(REMOVED_BY_DISCOUNT, abs=0.2)


def with_yes_no_group(log: pd.DataFrame) -> pd.DataFrame:
    """The log with the price-sensitive group sent as a CRM's yes/no attribute instead of a number."""
    features = [{**row, "price_sensitive": "ja" if row["price_sensitive"] == 1.0 else "nee"} for row in log["features"]]
    return log.assign(features=features)


def test_the_model_learns_for_whom_an_offer_works_from_a_yes_no_attribute_too(log, tmp_path):
    yes_no = with_yes_no_group(log)
    fitted = response_model_fit(*response_training_set(yes_no), seed=0)
    estimates = learned_estimates(fitted.model, yes_no, fitted.metrics["evidence"])
    in_group = [features["price_sensitive"] == 1.0 for features in log["features"]]

    def share(group: bool) -> float:
        chosen = [estimate for estimate, member in zip(estimates, in_group, strict=True) if member == group]
        return 1 - sum(1 - e.with_offer[DISCOUNT.code] for e in chosen) / sum(1 - e.without_offer for e in chosen)

    assert fitted.model.categorical == {"price_sensitive": ("ja", "nee")}
    assert share(True) > share(False) + 0.15
    assert share(True) == pytest.approx(REMOVED_BY_DISCOUNT, abs=0.2)
    # Stored and loaded back, it reads the attribute the same way.
    loaded = ResponseModel.load(tmp_path / "yes-no", expected_sha256=fitted.model.save(tmp_path / "yes-no"))
    features, _, _ = response_training_set(yes_no)
    np.testing.assert_array_equal(loaded.predict_proba(features), fitted.model.predict_proba(features))


def test_who_an_offer_works_for_is_believed_more_as_evidence_grows(log, learned):
    larger = synthetic_log(rows=4 * ROWS, seed=1)
    more = response_model_fit(*response_training_set(larger), seed=0)

    def gap(estimates):
        return share_removed(estimates, log, DISCOUNT.code, group=1.0) - share_removed(
            estimates, log, DISCOUNT.code, group=0.0
        )

    # Both models are read on the same customers (the smaller log's, which the larger model never saw): the gaps
    # then differ only by what each model learned, and scoring 6,000 customers costs a quarter of 24,000.
    assert gap(learned_estimates(more.model, log, more.metrics["evidence"])) > gap(learned) + 0.05


def test_treatments_score_as_rows_that_repeat_the_customer_with_the_offer_columns_filled_in(log, fitted):
    customers, contexts = customers_of(log.head(40))
    churn = np.array([context.churn_probability for context in contexts])
    kinds = np.array([["none", "discount", "gift", "upgrade"]] * len(contexts))
    cost_shares = np.random.default_rng(0).uniform(0, 0.3, kinds.shape)
    grid = customers.loc[np.repeat(customers.index, kinds.shape[1])].reset_index(drop=True)
    grid["churn_probability"] = np.repeat(churn, kinds.shape[1])
    grid["offer_kind"] = kinds.ravel()
    grid["offer_cost_share"] = cost_shares.ravel()

    by_rows = fitted.model.predict_proba(grid).reshape(kinds.shape)

    np.testing.assert_array_equal(fitted.model.predict_treatments(customers, churn, kinds, cost_shares), by_rows)
    assert "offer_cost_share" in fitted.model.numeric and len(fitted.model.boosters) >= 2


def test_the_evidence_per_kind_is_what_the_log_holds(log, fitted):
    logged = pd.Series([kind or "none" for kind in log["treatment_kind"]]).value_counts().to_dict()

    assert fitted.metrics["evidence"] == logged
    assert fitted.metrics["holdout"] == "time"
    assert fitted.rows == ROWS


def rarely_logged_gifts(log) -> tuple[pd.DataFrame, np.ndarray]:
    """The training set with all but MIN_ROWS_PER_KIND - 1 of its gifts left out."""
    features, labels, _ = response_training_set(log)
    kept = features["offer_kind"] != "gift"
    kept.iloc[np.flatnonzero(~kept.to_numpy())[: MIN_ROWS_PER_KIND - 1]] = True
    return features[kept].reset_index(drop=True), labels[kept.to_numpy()]


def log_odds_shift(model: ResponseModel, rows: pd.DataFrame) -> np.ndarray:
    """How far the model moves each row's log-odds of leaving from the same customer's without an offer."""
    leave = model.predict_proba(rows)
    without = model.predict_proba(rows.assign(offer_kind="none", offer_cost_share=0.0))
    return np.log(leave / (1 - leave)) - np.log(without / (1 - without))


def test_a_kind_logged_too_rarely_only_shifts_everyones_odds_alike(log):
    features, labels = rarely_logged_gifts(log)

    model = response_model_train(features, labels, seed=0)

    shift = log_odds_shift(model, features[features["offer_kind"] == "gift"])
    assert set(model.boosters) == {"none", "discount", "gift"}
    np.testing.assert_allclose(shift, shift[0], atol=1e-5)
    by_discount = log_odds_shift(model, features[features["offer_kind"] == "discount"])
    assert np.ptp(by_discount) > 0.1, "a well-logged kind learns for whom it works"


def test_a_kind_without_a_model_of_its_own_keeps_its_prior_whatever_its_count(log):
    model = response_model_train(*rarely_logged_gifts(log), seed=0)
    del model.boosters["gift"]  # as in a model stored before rare kinds had one
    counted = {"none": 10**9, "discount": 10**9, "gift": MIN_ROWS_PER_KIND - 1}

    estimates = estimates_for(model, log.iloc[:50], evidence=counted, prior_strength=1.0)

    for estimate in estimates:
        assert estimate.evidence[GIFT.code] == 0
        expected = stay_probability(1 - estimate.without_offer, GIFT.prior_uplift)
        assert estimate.with_offer[GIFT.code] == pytest.approx(expected, abs=1e-9)


def log_with_a_miscalibrated_churn_model(*, seed: int = 2, gifts: int = 60) -> pd.DataFrame:
    """The synthetic log, but the churn probability the model is given is too flat (its log-odds
    halved), and the gift, which does nothing, was made to few customers, mostly risky ones."""
    log = synthetic_log(seed=seed)
    leave = log["churn_probability"].to_numpy()
    flattened = 1 / (1 + np.exp(-0.5 * np.log(leave / (1 - leave))))
    rng = np.random.default_rng(seed)
    risky_first = np.argsort(-(leave + rng.uniform(0, 0.3, len(log))))
    gift_rows = risky_first[:gifts]
    codes = np.where(log["treatment_code"] == GIFT.code, "", log["treatment_code"]).astype(object)
    codes[gift_rows] = GIFT.code
    return log.assign(
        churn_probability=flattened,
        treatment_code=codes,
        treatment_kind=[KINDS[code] for code in codes],
    )


def test_an_offer_kind_learns_its_effect_from_the_no_offer_baseline_not_a_baseline_of_its_own():
    """A churn model that misjudges risk is corrected once, by the no-offer model, for every kind:
    a gift that does nothing, logged for few risky customers, shows no effect however risky they are."""
    log = log_with_a_miscalibrated_churn_model()
    model = response_model_train(*response_training_set(log)[:2], seed=0)
    gifted = log[log["treatment_code"] == GIFT.code]

    estimates = estimates_for(model, gifted, {"none": 10**9, "discount": 10**9, "gift": 10**9}, LEARNED_ONLY)

    shares = np.array([1 - (1 - e.with_offer[GIFT.code]) / (1 - e.without_offer) for e in estimates])
    assert np.abs(shares).mean() <= 0.1
    assert np.ptp(shares) <= 0.2


# --- the blend with the catalog priors -----------------------------------------------------


def test_without_evidence_the_estimates_are_the_catalog_priors(log, fitted):
    sample = log.iloc[:50]
    _, contexts = customers_of(sample)

    estimates = estimates_for(fitted.model, sample, evidence={}, prior_strength=200.0)

    for estimate, context in zip(estimates, contexts, strict=True):
        prior = StayEstimates.from_priors(context, OFFERS)
        assert estimate.without_offer == pytest.approx(prior.without_offer, abs=1e-12)
        for code, stay in prior.with_offer.items():
            assert estimate.with_offer[code] == pytest.approx(stay, abs=1e-12)


def test_a_well_tried_kind_follows_the_log_while_an_untried_one_keeps_its_prior(log, fitted):
    sample = log.iloc[:50]
    _, contexts = customers_of(sample)
    evidence = {"discount": 10**9}  # neither "none" nor "gift" has any

    estimates = estimates_for(fitted.model, sample, evidence=evidence, prior_strength=200.0)
    learned = estimates_for(fitted.model, sample, evidence=fitted.metrics["evidence"], prior_strength=LEARNED_ONLY)

    for estimate, context, alone in zip(estimates, contexts, learned, strict=True):
        leave = context.churn_probability  # the baseline is the prior's: no evidence for "none"
        assert estimate.with_offer[GIFT.code] == pytest.approx(stay_probability(leave, GIFT.prior_uplift))
        share = removed_share(leave_without=1 - alone.without_offer, leave_with=1 - alone.with_offer[DISCOUNT.code])
        assert estimate.with_offer[DISCOUNT.code] == pytest.approx(stay_probability(leave, share), abs=1e-6)


def test_blend_weighs_the_learned_chance_by_its_evidence_against_the_priors_pseudo_count():
    assert blend(prior=0.1, learned=0.5, evidence=0, prior_strength=200) == 0.1
    assert blend(prior=0.1, learned=0.5, evidence=200, prior_strength=200) == pytest.approx(0.3)
    assert blend(prior=0.1, learned=0.5, evidence=600, prior_strength=200) == pytest.approx(0.4)
    assert blend(prior=0.1, learned=0.5, evidence=10**9, prior_strength=200) == pytest.approx(0.5, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    prior=st.floats(-1, 1),
    learned=st.floats(-1, 1),
    evidence=st.integers(0, 10**6),
    more=st.integers(1, 10**6),
    strength=st.floats(1, 1_000),
)
def test_more_evidence_never_moves_the_blend_away_from_the_learned_chance(prior, learned, evidence, more, strength):
    fewer = blend(prior=prior, learned=learned, evidence=evidence, prior_strength=strength)
    larger = blend(prior=prior, learned=learned, evidence=evidence + more, prior_strength=strength)

    assert min(prior, learned) - 1e-12 <= fewer <= max(prior, learned) + 1e-12
    assert abs(larger - learned) <= abs(fewer - learned) + 1e-12


@settings(max_examples=200, deadline=None)
@given(leave_without=st.floats(0, 1), leave_with=st.floats(0, 1))
def test_removed_share_stays_between_minus_one_and_one(leave_without, leave_with):
    share = removed_share(leave_without=leave_without, leave_with=leave_with)

    assert -1.0 <= share <= 1.0
    if leave_without <= EPSILON:
        assert share == 0.0
    elif leave_with <= 2 * leave_without:
        assert share == pytest.approx(1 - leave_with / leave_without)
    else:
        assert share == -1.0
    if leave_without > EPSILON and leave_with <= leave_without:
        assert share >= 0.0


def test_removed_share_at_its_edges():
    assert removed_share(leave_without=0.4, leave_with=0.0) == 1.0
    assert removed_share(leave_without=0.4, leave_with=0.4) == 0.0
    assert removed_share(leave_without=0.4, leave_with=0.9) == -1.0
    assert removed_share(leave_without=EPSILON / 2, leave_with=0.5) == 0.0


# --- artifacts -------------------------------------------------------------------------------


@pytest.fixture
def saved(fitted, tmp_path) -> tuple[Path, str]:
    folder = tmp_path / "response"
    return folder, fitted.model.save(folder)


def test_a_saved_model_loads_back_with_identical_predictions(fitted, log, saved):
    folder, digest = saved
    features, _, _ = response_training_set(log)

    loaded = ResponseModel.load(folder, expected_sha256=digest)

    assert loaded.schema == fitted.model.schema
    assert set(loaded.boosters) == {"none", "discount", "gift"}
    np.testing.assert_array_equal(loaded.predict_proba(features), fitted.model.predict_proba(features))
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.pickle"))


def test_a_model_stored_before_offers_started_from_the_no_offer_baseline_loads_and_predicts_as_trained(
    fitted, log, tmp_path
):
    """Its offer kinds were fitted on the churn model's odds: read as such, not stacked on "none"."""
    features, _, _ = response_training_set(log)
    gifts = features[features["offer_kind"] == "gift"]
    older = replace(fitted.model, offers_from_baseline=False)
    digest = older.save(tmp_path / "older")

    loaded = ResponseModel.load(tmp_path / "older", expected_sha256=digest)

    assert json.loads((tmp_path / "older" / MANIFEST).read_text())["format"] == "offer-response-1"
    assert not loaded.offers_from_baseline
    np.testing.assert_array_equal(loaded.predict_proba(features), older.predict_proba(features))
    assert_gift_reads_no_offer_model(loaded, gifts, expected=False)
    assert_gift_reads_no_offer_model(fitted.model, gifts, expected=True)


def assert_gift_reads_no_offer_model(model: ResponseModel, gifts: pd.DataFrame, *, expected: bool) -> None:
    without_none = replace(model, boosters={k: b for k, b in model.boosters.items() if k != "none"})
    same = np.array_equal(model.predict_proba(gifts), without_none.predict_proba(gifts))
    assert same is not expected


def add_a_byte(folder: Path) -> None:
    booster = folder / "kind-discount.ubj"
    booster.write_bytes(booster.read_bytes() + b"\0")


def remove_a_booster(folder: Path) -> None:
    (folder / "kind-gift.ubj").unlink()


def shift_a_centre(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["centre"][0] += 1.0
    (folder / MANIFEST).write_text(json.dumps(manifest))


def change_the_format(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["format"] = "offer-response-0"
    (folder / MANIFEST).write_text(json.dumps(manifest))


def break_the_json(folder: Path) -> None:
    (folder / MANIFEST).write_text('{"format": ')


def remove_the_manifest(folder: Path) -> None:
    (folder / MANIFEST).unlink()


@pytest.mark.parametrize(
    ("tamper", "checks_digest", "message"),
    [
        (add_a_byte, False, "missing or corrupt"),
        (remove_a_booster, False, "missing or corrupt"),
        (shift_a_centre, True, "does not match the checksum"),
        (change_the_format, False, "has format 'offer-response-0'"),
        (break_the_json, False, "not valid JSON"),
        (remove_the_manifest, False, "no model manifest"),
    ],
)
def test_a_tampered_artifact_is_refused(saved, tamper, checks_digest, message):
    folder, digest = saved
    tamper(folder)

    with pytest.raises(ArtifactError, match=message):
        ResponseModel.load(folder, expected_sha256=digest if checks_digest else None)


# --- the training set from the outcome log -------------------------------------------------


def test_the_training_set_carries_each_decisions_treatment_and_its_cost_share(log):
    features, labels, times = response_training_set(log.iloc[:6])

    for row, (_, logged) in zip(features.itertuples(index=False), log.iloc[:6].iterrows(), strict=True):
        if logged["treatment_code"] == DISCOUNT.code:
            assert (row.offer_kind, row.offer_cost_share) == ("discount", pytest.approx(0.2))
        elif logged["treatment_code"] == GIFT.code:
            assert (row.offer_kind, row.offer_cost_share) == ("gift", pytest.approx(3_000 / (FEE_CENTS * 12)))
        else:
            assert (row.offer_kind, row.offer_cost_share) == ("none", 0.0)
        assert row.churn_probability == logged["churn_probability"]
    assert list(labels) == [int(not stayed) for stayed in log["stayed"].iloc[:6]]
    assert list(times) == list(log["as_of"].iloc[:6])


def test_a_log_missing_columns_is_refused_naming_them(log):
    with pytest.raises(ValueError, match="lacks the columns offers, stayed"):
        response_training_set(log.drop(columns=["stayed", "offers"]))


def test_fitting_without_the_offer_column_is_refused(log):
    features, labels, times = response_training_set(log)

    with pytest.raises(ValueError, match="'offer_kind'"):
        response_model_fit(features.drop(columns=["offer_kind"]), labels, times)


def with_two_attributes_out_of_alphabetical_order(log: pd.DataFrame) -> pd.DataFrame:
    """The log with a CRM's attributes whose column order is not their names' alphabetical order."""
    features = [
        {
            **row,
            "zone": "noord" if index % 3 else "zuid",
            "abonnement": "ja" if row["price_sensitive"] == 1.0 else "nee",
        }
        for index, row in enumerate(log["features"])
    ]
    return log.assign(features=features)


def test_categorical_columns_keep_their_order_when_stored_and_loaded(log, tmp_path):
    attributes = with_two_attributes_out_of_alphabetical_order(log)
    fitted = response_model_fit(*response_training_set(attributes), seed=0)
    assert list(fitted.model.categorical) == ["zone", "abonnement"]
    features, _, _ = response_training_set(attributes)

    loaded = ResponseModel.load(tmp_path / "m", expected_sha256=fitted.model.save(tmp_path / "m"))

    assert loaded.schema.to_json() == fitted.model.schema.to_json()
    np.testing.assert_array_equal(loaded.predict_proba(features), fitted.model.predict_proba(features))


def test_an_artifact_that_stored_its_categorical_columns_sorted_loads_in_the_registrys_order(log, tmp_path):
    attributes = with_two_attributes_out_of_alphabetical_order(log)
    fitted = response_model_fit(*response_training_set(attributes), seed=0)
    fitted.model.save(tmp_path / "m")
    manifest_path = tmp_path / "m" / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["categorical"] = dict(manifest["categorical"])  # as artifacts were written before: keys sorted
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    features, _, _ = response_training_set(attributes)

    unordered = ResponseModel.load(tmp_path / "m")
    loaded = ResponseModel.load(tmp_path / "m", column_order=["zone", "abonnement"])

    assert list(unordered.categorical) == ["abonnement", "zone"]  # what the registry then refused as a mismatch
    assert loaded.schema.to_json() == fitted.model.schema.to_json()
    np.testing.assert_array_equal(loaded.predict_proba(features), fitted.model.predict_proba(features))


def test_the_registry_loads_such_an_artifact_it_holds_so_a_retrain_can_judge_it(log, db, settings, tmp_path):
    settings.MODEL_DIR = str(tmp_path)
    attributes = with_two_attributes_out_of_alphabetical_order(log)
    fitted = response_model_fit(*response_training_set(attributes), seed=0)
    version = model_version_register(
        kind=ModelVersion.Kind.ACCEPTANCE, model=fitted.model, metrics=fitted.metrics,
        training_window=fitted.window, training_rows=fitted.rows,
    )  # fmt: skip
    manifest_path = tmp_path / version.artifact_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["categorical"] = dict(manifest["categorical"])
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    ModelVersion.objects.filter(pk=version.pk).update(artifact_sha256=file_sha256(manifest_path))
    version.refresh_from_db()

    loaded = model_version_load(version)

    features, _, _ = response_training_set(attributes)
    np.testing.assert_array_equal(loaded.predict_proba(features), fitted.model.predict_proba(features))
