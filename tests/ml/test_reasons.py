"""Reasons in plain words: the strongest groups of a customer's contributions, never a gap in our own records."""

from __future__ import annotations

import math

import pandas as pd

from ml.reasons import top_reasons


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


def test_tenure_counts_whole_calendar_months_as_the_customer_card_does():
    two_years_to_the_day = 730 / 30.4375  # the feature counts months of average length: 23.98

    def text(months: float) -> str:
        return top_reasons(pd.Series({"tenure_months": 0.3}), pd.Series({"tenure_months": months}))[0]["text"]["en"]

    assert text(two_years_to_the_day) == "Customer for 2 years"
    assert text(23.6) == "Customer for only 23 months"
    assert text(0.2) == "Customer for only 0 months"
