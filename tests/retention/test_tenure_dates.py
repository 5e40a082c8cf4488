"""A tenure in months, as a CRM sends it, becomes a signup date that reads back as the same whole months."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from ml.reasons import calendar_months
from retention.records import MAX_TENURE_MONTHS, signup_from_tenure

DAYS = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


@given(today=DAYS, months=st.integers(min_value=0, max_value=MAX_TENURE_MONTHS))
def test_whole_months_sent_are_the_whole_calendar_months_the_card_shows(today, months):
    assert calendar_months(signup_from_tenure(months, today), today) == months


@given(today=DAYS, months=st.floats(min_value=0, max_value=MAX_TENURE_MONTHS, exclude_max=True))
def test_a_fraction_of_a_month_never_adds_a_whole_month(today, months):
    assert calendar_months(signup_from_tenure(months, today), today) == int(months)


def test_a_day_that_the_month_back_lacks_is_that_months_last_day():
    assert signup_from_tenure(1, dt.date(2026, 3, 31)) == dt.date(2026, 2, 28)
    assert signup_from_tenure(12, dt.date(2028, 2, 29)) == dt.date(2027, 2, 28)
    assert signup_from_tenure(48, dt.date(2028, 2, 29)) == dt.date(2024, 2, 29)
