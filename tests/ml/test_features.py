import pandas as pd

from ml.features import build_features, empty_contracts, empty_events

NOW = pd.Timestamp("2026-11-01", tz="UTC")


def frames(as_of=NOW):
    rows = pd.DataFrame(
        {
            "key": ["a"],
            "as_of": [as_of],
            "segment": ["consumer"],
            "value_tier": ["low"],
            "region": ["Utrecht"],
            "signup_date": [pd.Timestamp("2020-11-01")],
            "products": [["tv", "internet"]],
            "attr:speed": [500],
        }
    )
    contracts = pd.DataFrame(
        {
            "key": ["a", "a"],
            "bundle": ["internet_tv", "internet_tv"],
            "contract_type": ["1 jaar", "2 jaar"],
            "monthly_fee": [50.0, 60.0],
            "start_date": [pd.Timestamp("2025-01-01"), pd.Timestamp("2026-12-01")],
            "end_date": [pd.Timestamp("2026-12-01"), pd.Timestamp("2028-12-01")],
            "discount": [5.0, 0.0],
            "discount_end": [pd.Timestamp("2026-11-20"), None],
        }
    )
    return rows, contracts


def event(kind, days_before_now, value=None):
    return {"key": "a", "kind": kind, "occurred_at": NOW - pd.Timedelta(days=days_before_now), "value": value}


def test_later_events_never_reach_an_earlier_as_of_row():
    rows, contracts = frames(as_of=NOW - pd.Timedelta(days=60))
    events = pd.DataFrame([event("complaint", 90), event("complaint", 10), event("outage", 5), event("nps", 1, 2)])
    features = build_features(rows, contracts, events, {"internet_tv": 45.0}).iloc[0]
    assert features["complaints_90d"] == 1
    assert features["outages_365d"] == 0
    assert pd.isna(features["nps_last"])


def test_the_same_customer_as_of_now_sees_those_events():
    rows, contracts = frames()
    events = pd.DataFrame([event("complaint", 90), event("complaint", 10), event("outage", 5), event("nps", 1, 2)])
    features = build_features(rows, contracts, events, {"internet_tv": 45.0}).iloc[0]
    assert features["complaints_90d"] == 2
    assert features["complaints_30d"] == 1
    assert features["outages_30d"] == 1
    assert features["nps_last"] == 2


def test_the_contract_in_force_at_the_as_of_date_is_used_not_a_later_one():
    rows, contracts = frames()
    features = build_features(rows, contracts, empty_events(), {"internet_tv": 45.0}).iloc[0]
    assert features["contract_type"] == "1 jaar"
    assert features["days_to_contract_end"] == 30
    assert features["monthly_fee"] == 45.0  # 50 less the running 5 euro discount
    assert features["discount_ends_in_days"] == 19


def test_price_gap_compares_what_is_paid_with_the_new_customer_price():
    rows, contracts = frames(as_of=NOW + pd.Timedelta(days=25))  # discount has ended by then
    features = build_features(rows, contracts, empty_events(), {"internet_tv": 45.0}).iloc[0]
    assert features["price_gap_vs_new"] == 5.0
    assert features["discount_monthly"] == 0.0


def test_nps_trend_is_the_change_against_the_previous_answer():
    rows, contracts = frames()
    events = pd.DataFrame([event("nps", 200, 9), event("nps", 20, 4)])
    features = build_features(rows, contracts, events, {}).iloc[0]
    assert features["nps_last"] == 4
    assert features["nps_trend"] == -5


def test_tenure_products_and_attributes_are_features():
    rows, _contracts = frames()
    features = build_features(rows, empty_contracts(), empty_events(), {}).iloc[0]
    assert round(features["tenure_months"]) == 72
    assert features["products"] == "internet+tv"
    assert features["n_products"] == 2
    assert features["attr:speed"] == 500
    assert pd.isna(features["monthly_fee"])


def test_no_protected_attribute_can_become_a_feature():
    rows, contracts = frames()
    features = build_features(rows, contracts, empty_events(), {})
    assert not {"gender", "age", "SeniorCitizen"} & set(features.columns)
    assert all(not name.startswith("protected") for name in features.columns)


def test_rows_keep_their_order_when_several_as_of_dates_share_a_customer():
    rows, contracts = frames()
    rows = pd.concat([rows, rows.assign(as_of=pd.Timestamp("2024-06-01", tz="UTC"))], ignore_index=True)
    events = pd.DataFrame([event("complaint", 10)])
    features = build_features(rows, contracts, events, {})
    assert list(features["complaints_30d"]) == [1, 0]
    assert features.loc[0, "contract_type"] == "1 jaar"
    assert pd.isna(features.loc[1, "contract_type"])  # no contract had started by then
