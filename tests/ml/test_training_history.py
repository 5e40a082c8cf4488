import datetime as dt

from django.utils import timezone

from ml.features import build_features
from retention.selectors.catalog import new_customer_fees
from retention.selectors.history import customer_history_frames, customer_rows, labelled_history_frames
from tests.factories import (
    ContractFactory,
    CustomerFactory,
    RenewalResultFactory,
    ServiceEventFactory,
    TariffFactory,
)


def test_training_rows_see_only_what_was_known_at_the_renewal_date(db):
    TariffFactory(code="internet_tv", monthly_fee_cents=4_500)
    customer = CustomerFactory(attributes={"router": "oud"})
    today = timezone.localdate()
    renewal = today - dt.timedelta(days=100)
    ContractFactory(
        customer=customer, start_date=renewal - dt.timedelta(days=365), end_date=renewal, monthly_fee_cents=6_000
    )
    ContractFactory(
        customer=customer, start_date=renewal, end_date=renewal + dt.timedelta(days=365), monthly_fee_cents=4_000
    )
    RenewalResultFactory(customer=customer, date=renewal, result="renewed")
    before = timezone.make_aware(dt.datetime.combine(renewal - dt.timedelta(days=20), dt.time(10)))
    ServiceEventFactory(customer=customer, kind="complaint", occurred_at=before)
    for days_after in (5, 30, 60):
        after = timezone.make_aware(dt.datetime.combine(renewal + dt.timedelta(days=days_after), dt.time(10)))
        ServiceEventFactory(customer=customer, kind="outage", occurred_at=after)

    rows, contracts, events, labels = labelled_history_frames()
    at_renewal = build_features(rows, contracts, events, new_customer_fees()).iloc[0]
    now = build_features(
        *customer_history_frames(customers=[customer], as_of=timezone.now()), new_customer_fees()
    ).iloc[0]

    assert list(labels) == [0]
    assert at_renewal["complaints_30d"] == 1
    assert at_renewal["outages_365d"] == 0
    assert at_renewal["monthly_fee"] == 60.0
    assert at_renewal["attr:router"] == "oud"
    assert now["outages_365d"] == 3
    assert now["monthly_fee"] == 40.0


def test_the_attributes_come_in_the_order_of_their_names_whatever_order_they_were_stored_in(db):
    # PostgreSQL's JSON keeps keys in an order of its own, SQLite in the order sent: features must not follow either.
    first = CustomerFactory(attributes={"zebra": 1, "Partner": "Yes", "alpha": 2})
    second = CustomerFactory(attributes={"alpha": 3, "middle": "x"})

    rows = customer_rows([first, second], [timezone.now()] * 2)

    assert [c for c in rows.columns if c.startswith("attr:")] == [
        "attr:Partner",
        "attr:alpha",
        "attr:middle",
        "attr:zebra",
    ]
