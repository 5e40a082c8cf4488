"""The fast paths of one recommendation give what the general ones give, value for value.

`build_features` takes a row-by-row path for a few rows; the offer-response model works out its
linear margins from the boosters' stored weights instead of asking XGBoost through a DMatrix.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

import ml.features
import ml.schema
from ml.artifacts import ArtifactError, LinearWeights
from ml.features import build_features, empty_contracts, empty_events
from ml.response import ResponseModel
from ml.schema import OTHER_LEVEL, FeatureSchema, _category_codes

NOW = pd.Timestamp("2026-11-01 09:30", tz="UTC")
KINDS = ["complaint", "outage", "contact", "payment_problem", "competitor_offer", "nps", "other"]
FEES = {"internet": 40.0, "internet_tv": 55.0, "alles_in_1": 80.0}


def varied_frames(seed: int, customers: int = 12) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Customers with and without contracts, events, attributes and dates, several rows sharing a customer."""
    rng = np.random.default_rng(seed)

    def pick(options: list):
        return options[int(rng.integers(len(options)))]

    keys = [f"c{number}" for number in range(customers)]
    row_keys = [*keys, keys[0], keys[1]]
    as_of = [NOW - pd.Timedelta(days=int(days)) for days in rng.integers(0, 400, len(row_keys))]
    rows = pd.DataFrame(
        {
            "key": row_keys,
            "as_of": as_of,
            "segment": [pick(["consumer", "business", "", None]) for _ in row_keys],
            "value_tier": [pick(["low", "high", np.nan]) for _ in row_keys],
            "region": [pick(["Utrecht", "Zeeland"]) for _ in row_keys],
            "signup_date": [
                None if rng.random() < 0.15 else (NOW - pd.Timedelta(days=int(d))).date()
                for d in rng.integers(30, 4000, len(row_keys))
            ],
            "products": [
                pick([None, np.nan, "tv+Internet", "mobile, fixed", ["tv", "internet"], []]) for _ in row_keys
            ],
            "attr:speed": [pick([100.0, 500.0, np.nan]) for _ in row_keys],
            "attr:package": [pick(["gold", "silver", None]) for _ in row_keys],
        }
    )
    contract_rows = []
    for key in keys[2:]:  # the first two customers have no contract at all
        for _ in range(int(rng.integers(1, 4))):
            start = None if rng.random() < 0.1 else NOW - pd.Timedelta(days=int(rng.integers(-60, 900)))
            contract_rows.append(
                {
                    "key": key,
                    "bundle": pick(["internet", "internet_tv", "alles_in_1", "unknown_bundle", None]),
                    "contract_type": pick(["1 jaar", "2 jaar", None]),
                    "monthly_fee": pick([45.5, 60.0, np.nan, "52,5", "n/a"]),
                    "start_date": start,
                    "end_date": None if rng.random() < 0.2 else NOW + pd.Timedelta(days=int(rng.integers(-90, 700))),
                    "discount": pick([0.0, 5.0, np.nan]),
                    "discount_end": None
                    if rng.random() < 0.4
                    else NOW + pd.Timedelta(days=int(rng.integers(-30, 200))),
                }
            )
    if seed % 2:  # calendar dates, as the database gives them, rather than instants
        for row in contract_rows:
            for column in ("start_date", "end_date", "discount_end"):
                row[column] = None if row[column] is None else row[column].date()
    tied = dict(contract_rows[-1], contract_type="tied, listed last")  # same start as the one before it
    contract_rows.append(tied)
    event_rows = [
        {
            "key": pick(keys[1:]),  # the first customer has no events
            "kind": rng.choice(KINDS),
            "occurred_at": pd.NaT if rng.random() < 0.03 else NOW - pd.Timedelta(hours=int(rng.integers(-500, 9000))),
            "value": pick([np.nan, 3.0, 7.0, 9.0]),
        }
        for _ in range(150)
    ]
    return rows, pd.DataFrame(contract_rows), pd.DataFrame(event_rows)


def general_path(rows, contracts, events, monkeypatch) -> pd.DataFrame:
    with monkeypatch.context() as patched:
        patched.setattr(ml.features, "FEW_ROWS", -1)
        return build_features(rows, contracts, events, FEES)


def fast_path(rows, contracts, events) -> pd.DataFrame:
    assert len(rows) <= ml.features.FEW_ROWS
    return build_features(rows, contracts, events, FEES)


def assert_the_paths_agree(rows, contracts, events, monkeypatch) -> None:
    pd.testing.assert_frame_equal(
        fast_path(rows, contracts, events), general_path(rows, contracts, events, monkeypatch), check_exact=True
    )


@pytest.mark.parametrize("seed", range(12))
def test_the_few_rows_path_equals_the_general_path_on_varied_customers(seed, monkeypatch):
    rows, contracts, events = varied_frames(seed)
    general = general_path(rows, contracts, events, monkeypatch)

    pd.testing.assert_frame_equal(fast_path(rows, contracts, events), general, check_exact=True)
    # And one row at a time, as a recommendation asks: each as the general path gives it among all the rows,
    # which is what it gives the row alone (checked on the first and the last row; each alone costs as much as all).
    for number in range(len(rows)):
        among_all = general.iloc[[number]].reset_index(drop=True)
        pd.testing.assert_frame_equal(fast_path(rows.iloc[[number]], contracts, events), among_all, check_exact=True)
    for number in (0, len(rows) - 1):
        assert_the_paths_agree(rows.iloc[[number]], contracts, events, monkeypatch)


def test_the_few_rows_path_equals_the_general_path_without_contracts_or_events(monkeypatch):
    rows, _, _ = varied_frames(0)
    for contracts, events in [(empty_contracts(), empty_events()), (pd.DataFrame(), pd.DataFrame())]:
        assert_the_paths_agree(rows, contracts, events, monkeypatch)


def test_the_few_rows_path_picks_the_later_listed_of_two_contracts_that_started_together(monkeypatch):
    rows, contracts, events = varied_frames(3)
    key = contracts["key"].iloc[-1]
    one = rows[rows["key"] == key].assign(as_of=NOW + pd.Timedelta(days=365))

    features = fast_path(one, contracts, events)

    assert features["contract_type"].iloc[0] == "tied, listed last"
    pd.testing.assert_frame_equal(features, general_path(one, contracts, events, monkeypatch), check_exact=True)


def test_calendar_dates_count_as_the_parse_counts_them():
    dates = pd.Series([dt.date(1900, 2, 28), None, dt.date(1970, 1, 1), dt.date(2026, 11, 23), dt.date(2199, 12, 31)])
    parsed = pd.to_datetime(dates, utc=True, errors="coerce").array.as_unit("ns").asi8

    np.testing.assert_array_equal(ml.features._instants(dates), parsed)


def test_a_column_with_instants_among_its_dates_is_parsed_whole():
    # datetime is a subclass of date: taking one for a calendar date would drop its time of day.
    mixed = pd.Series([dt.date(2026, 1, 1), dt.datetime(2026, 3, 1, 10, 30, tzinfo=dt.UTC), None])
    parsed = pd.to_datetime(mixed, utc=True, errors="coerce").array.as_unit("ns").asi8

    np.testing.assert_array_equal(ml.features._instants(mixed), parsed)
    assert parsed[1] % (86_400 * 10**9) != 0


def test_the_few_rows_path_serves_rows_of_the_size_a_recommendation_has():
    assert ml.features.FEW_ROWS >= 1


# --- the offer-response model's linear margins -----------------------------------------------


def linear_booster(seed: int, columns: int = 7) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(400, columns))
    labels = (rng.random(400) < 1 / (1 + np.exp(-values[:, 0]))).astype(int)
    data = xgb.DMatrix(values, label=labels, base_margin=rng.normal(size=400), nthread=1)
    params = {"booster": "gblinear", "objective": "binary:logistic", "updater": "coord_descent", "nthread": 1}
    return xgb.train(params, data, num_boost_round=20)


@pytest.mark.parametrize("seed", range(5))
def test_the_stored_weights_give_the_boosters_own_margins_to_the_last_bit(seed):
    booster = linear_booster(seed)
    rng = np.random.default_rng(100 + seed)
    values = rng.normal(scale=rng.uniform(0.1, 50), size=(300, 7))
    values[rng.random(values.shape) < 0.1] = 0.0
    base_margin = rng.normal(scale=3, size=300)

    expected = booster.predict(xgb.DMatrix(values, base_margin=base_margin, nthread=1), output_margin=True)

    np.testing.assert_array_equal(LinearWeights.of(booster).margin(values, base_margin), expected.astype(float))


@pytest.mark.parametrize("seed", range(5))
def test_without_base_margins_the_stored_weights_give_the_boosters_margins_and_contributions_to_the_last_bit(seed):
    rng = np.random.default_rng(200 + seed)
    values = rng.normal(size=(400, 5))
    labels = (rng.random(400) < 0.2 + 0.5 * (values[:, 1] > 0)).astype(int)
    params = {"booster": "gblinear", "objective": "binary:logistic", "updater": "coord_descent", "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(values, label=labels, nthread=1), num_boost_round=30)
    unseen = rng.normal(scale=rng.uniform(0.1, 20), size=(200, 5))
    data = xgb.DMatrix(unseen, nthread=1)
    weights = LinearWeights.of(booster)

    np.testing.assert_array_equal(weights.margin(unseen), booster.predict(data, output_margin=True).astype(float))
    np.testing.assert_array_equal(
        weights.contributions(unseen), booster.predict(data, pred_contribs=True)[:, :-1].astype(float)
    )


def test_a_booster_that_is_not_linear_is_refused():
    data = xgb.DMatrix(np.random.default_rng(0).normal(size=(50, 3)), label=np.arange(50) % 2)
    trees = xgb.train({"objective": "binary:logistic"}, data, num_boost_round=2)

    with pytest.raises(ArtifactError, match="not a single-output linear model"):
        LinearWeights.of(trees)


def test_a_value_too_large_for_the_model_is_refused():
    weights = LinearWeights.of(linear_booster(0))

    with pytest.raises(ValueError, match="too large"):
        weights.margin(np.full((1, 7), 1e300), np.zeros(1))


# --- the schema's encoding -------------------------------------------------------------------


def encoded_frame_by_frame(schema: FeatureSchema, features: pd.DataFrame) -> pd.DataFrame:
    """The encoding as a reindexed frame and a to_numeric per column give it: what `encode` must equal."""
    features = features.reindex(columns=features.columns.union(schema.names, sort=False))
    encoded = {name: pd.to_numeric(features[name], errors="coerce").astype(float) for name in schema.numeric}
    for name, levels in schema.categorical.items():
        encoded[name] = pd.Categorical.from_codes(_category_codes(features[name], levels), categories=list(levels))
    return pd.DataFrame(encoded, index=features.index)[schema.names]


@pytest.mark.parametrize("seed", range(6))
def test_encode_gives_what_a_reindexed_frame_gives(seed):
    rows, contracts, events = varied_frames(seed)
    features = build_features(rows, contracts, events, FEES)
    features["flag"] = np.arange(len(features)) % 2 == 0
    features["count"] = pd.array([1, None] * (len(features) // 2), dtype="Int64")
    inferred = FeatureSchema.infer(varied_training_features())
    schema = FeatureSchema(
        numeric=(*inferred.numeric, "flag", "count", "attr:absent_number"),
        categorical={**inferred.categorical, "attr:absent_level": ("a", "b", OTHER_LEVEL)},
    )
    shuffled = features.sample(frac=1.0, random_state=seed)

    pd.testing.assert_frame_equal(schema.encode(shuffled), encoded_frame_by_frame(schema, shuffled), check_exact=True)


def varied_training_features() -> pd.DataFrame:
    return pd.concat([build_features(*varied_frames(seed, customers=40), FEES) for seed in range(3)], ignore_index=True)


CATEGORY_VALUES = st.sampled_from(
    ["a", "b", "(other)", "A", " a", "1", "", None, np.nan, pd.NA, pd.NaT, 1, 1.0, 2.5, True, False, np.float64("nan")]
)


@given(
    values=st.lists(CATEGORY_VALUES, min_size=0, max_size=16),
    levels=st.sampled_from([("a", "b"), ("1", "a", "(other)"), ("(other)",), ("1.0", "True", "b")]),
)
@settings(max_examples=300, deadline=None)
def test_the_few_values_lookup_gives_the_codes_factorize_gives(values, levels):
    column = pd.Series(values, dtype=object)
    few = ml.schema._category_codes(column, levels)
    original = ml.schema.FEW_VALUES
    try:
        ml.schema.FEW_VALUES = -1
        factorized = ml.schema._category_codes(column, levels)
    finally:
        ml.schema.FEW_VALUES = original

    np.testing.assert_array_equal(few, factorized)


# --- reading a few rows' columns at once -----------------------------------------------------

TEXT_OR_NUMBER = st.sampled_from(["a", "b", "1", "1,5", " 2.0 ", "", None, np.nan, pd.NA, 1, 1.0, 2.5, True, "(other)"])
FINITE_OR_NOT = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def few_rows(draw) -> pd.DataFrame:
    """A frame of up to FEW_ROWS rows with columns of every numpy kind a feature frame may hold."""
    rows = draw(st.integers(0, ml.schema.FEW_ROWS))

    def column(values):
        return draw(st.lists(values, min_size=rows, max_size=rows))

    frame = pd.DataFrame(
        {
            "floats": np.array(column(FINITE_OR_NOT), dtype=float),
            "float32s": np.array(column(st.floats(width=32, allow_nan=True)), dtype=np.float32),
            "ints": np.array(column(st.integers(-(2**63), 2**63 - 1)), dtype=np.int64),
            "bools": np.array(column(st.booleans()), dtype=bool),
            "mixed": pd.Series(column(TEXT_OR_NUMBER), dtype=object),
            "instants": pd.Series(pd.to_datetime(column(st.integers(0, 2**32)), unit="s")),
        }
    )
    return frame.sample(frac=1.0, axis=1, random_state=draw(st.integers(0, 9)))


SCHEMA_OVER_EVERY_KIND = FeatureSchema(
    numeric=("floats", "float32s", "ints", "bools", "mixed", "instants", "attr:absent_number"),
    categorical={
        "mixed": ("1", "a", OTHER_LEVEL),
        "floats": ("1.0", "nan"),
        "bools": ("False", "True"),
        "instants": ("a",),
        "attr:absent_level": ("a", "b"),
    },
)


@given(frame=few_rows())
@settings(max_examples=200, deadline=None)
def test_a_few_rows_read_at_once_encode_as_read_column_by_column(frame):
    numbers = SCHEMA_OVER_EVERY_KIND.numeric
    response = ResponseModel(numeric=numbers, centre=(0.0,) * len(numbers), scale=(1.0,) * len(numbers), boosters={})
    at_once = SCHEMA_OVER_EVERY_KIND.values(frame), response._values(frame)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(ml.schema, "FEW_ROWS", -1)
        by_column = SCHEMA_OVER_EVERY_KIND.values(frame), response._values(frame)

    assert ml.schema.ColumnTable.of(frame) is not None
    np.testing.assert_array_equal(at_once[0], by_column[0])
    np.testing.assert_array_equal(at_once[1], by_column[1])


def test_a_frame_the_table_cannot_serve_is_read_column_by_column():
    nullable = pd.DataFrame({"count": pd.array([1, None], dtype="Int64")})
    repeated = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    many = pd.DataFrame({"a": np.arange(ml.schema.FEW_ROWS + 1, dtype=float)})

    assert [ml.schema.ColumnTable.of(frame) for frame in (nullable, repeated, many)] == [None, None, None]
    np.testing.assert_array_equal(FeatureSchema(numeric=("count",), categorical={}).values(nullable), [[1.0], [np.nan]])
