"""Reasons in plain words: the strongest groups of a customer's contributions, never a gap in our own records."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from ml.reasons import calendar_months, phrase, top_reasons
from ml.schema import FeatureSchema


def test_a_price_gap_nobody_knows_is_no_reason_but_no_nps_answer_is():
    contributions = pd.Series(
        {"new_customer_fee": -0.4, "price_gap_vs_new": -0.3, "nps_last": 0.5, "nps_trend": 0.1, "complaints_90d": 0.2}
    )
    features = pd.Series(
        {"new_customer_fee": math.nan, "price_gap_vs_new": None, "nps_last": None, "nps_trend": None,
         "complaints_90d": 1.0}
    )  # fmt: skip

    reasons = top_reasons(contributions, features)

    assert [reason["code"] for reason in reasons] == ["nps", "complaints"]
    assert reasons[0]["text"]["en"] == "No NPS answer on record"


def test_a_known_price_gap_is_a_reason():
    contributions = pd.Series({"new_customer_fee": 0.1, "price_gap_vs_new": 0.6})
    features = pd.Series({"new_customer_fee": 45.0, "price_gap_vs_new": 12.0})

    (reason,) = top_reasons(contributions, features)

    assert reason["text"]["en"] == "Pays €12.00 a month more than a new customer for the same bundle"


def test_a_crm_attribute_without_a_value_is_no_reason():
    contributions = pd.Series({"attr:plan_type": 0.7, "tenure_months": 0.2})
    features = pd.Series({"attr:plan_type": None, "tenure_months": 30.0})

    assert [reason["code"] for reason in top_reasons(contributions, features)] == ["tenure"]


def test_an_attribute_value_the_model_read_as_unknown_is_no_reason():
    """A column the model learned as numbers now holding text, and a level it never saw with no "(other)" to fold
    into: both reach the model as gaps, so naming "usage_gb: high" would give a reason the model never weighed."""
    schema = FeatureSchema(numeric=("attr:usage_gb", "tenure_months"), categorical={"attr:plan": ("basic", "plus")})
    contributions = pd.Series({"attr:usage_gb": -0.1, "attr:plan": 0.4, "tenure_months": 0.2})
    features = pd.Series({"attr:usage_gb": "high", "attr:plan": "ultra", "tenure_months": 30.0})

    unread = schema.unreadable(features)
    reasons = top_reasons(contributions, features, unread=unread)

    assert unread == ["attr:usage_gb", "attr:plan"]
    assert [reason["code"] for reason in reasons] == ["tenure"]


@pytest.mark.parametrize(
    ("value", "unread"),
    [("12.5", False), (12.5, False), ("", False), (None, False), ("1e300", True), ("veel", True), (math.inf, True)],
)
def test_a_number_the_model_cannot_read_is_told_apart_from_a_gap_and_a_number(value, unread):
    schema = FeatureSchema(numeric=("attr:usage_gb",))

    assert schema.unreadable({"attr:usage_gb": value}) == (["attr:usage_gb"] if unread else [])


def test_a_level_never_seen_folds_into_other_where_the_model_knows_it_and_is_then_read():
    schema = FeatureSchema(numeric=(), categorical={"attr:plan": ("basic", "(other)")})

    assert schema.unreadable({"attr:plan": "ultra"}) == []


def test_tenure_is_told_in_the_calendar_months_the_records_give_when_known():
    contributions = pd.Series({"tenure_months": 0.3})

    def text(months: float, **facts) -> str:
        return top_reasons(contributions, pd.Series({"tenure_months": months}), facts=facts)[0]["text"]["en"]

    # Two years to the day are 23.98 months of average length; the card counts 24 calendar months.
    assert text(730 / 30.4375, tenure_months=24) == "Customer for 2 years"
    # 26 November to 25 November a year on: 11.96 months of average length, 11 calendar months.
    assert text(364 / 30.4375, tenure_months=11) == "Customer for only 11 months"
    assert text(23.6) == "Customer for only 23 months"
    assert text(1.5) == "Customer for only 1 month"


@pytest.mark.parametrize(
    ("since", "today", "months"),
    [((2024, 11, 25), (2026, 11, 25), 24), ((2025, 11, 26), (2026, 11, 25), 11), ((2025, 12, 3), (2026, 1, 1), 0),
     ((2024, 1, 31), (2024, 2, 29), 0), ((2024, 1, 31), (2024, 3, 1), 1)],
)  # fmt: skip
def test_calendar_months_count_whole_months_completed(since, today, months):
    assert calendar_months(dt.date(*since), dt.date(*today)) == months


@pytest.mark.parametrize(
    ("days", "nl"),
    [
        (0, "Contract loopt vandaag af"),
        (1, "Contract loopt morgen af"),
        (165, "Contract loopt af over 165 dagen"),
        (-1, "Contract liep gisteren af"),
        (-12, "Contract liep 12 dagen geleden af"),
    ],
)
def test_the_contracts_end_is_told_in_calendar_days(days, nl):
    assert phrase("contract_end", {"days_to_contract_end": days})["nl"] == nl
