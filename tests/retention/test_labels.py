"""How a file's label relates to the results already recorded for its customer."""

import datetime as dt

import pytest

from retention.labels import LABEL_REPEAT_DAYS, label_already_recorded, label_contradiction
from retention.records import RenewalRecord

DAY = dt.date(2026, 6, 1)


def days(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


@pytest.mark.parametrize(
    ("recorded", "contradicts"),
    [
        ([], False),
        ([(DAY, "churned")], False),
        ([(DAY, "renewed")], True),
        ([(days(-1), "renewed")], False),
    ],
)
def test_only_the_other_result_on_the_same_day_contradicts_a_label(recorded, contradicts):
    assert bool(label_contradiction(RenewalRecord("churned", DAY), recorded)) is contradicts


@pytest.mark.parametrize(
    ("recorded", "known"),
    [
        ([], False),
        ([(DAY, "churned")], True),
        ([(days(-30), "churned")], True),
        ([(days(30), "churned")], True),  # a later file imported first
        ([(days(-LABEL_REPEAT_DAYS + 1), "churned")], True),
        ([(days(-LABEL_REPEAT_DAYS), "churned")], False),  # the next renewal
        ([(days(-30), "renewed")], False),
        ([(days(-60), "churned"), (days(-30), "renewed")], False),  # came back, then left again
        ([(days(-60), "renewed"), (days(-30), "churned")], True),
    ],
)
def test_a_label_is_already_recorded_when_the_same_result_stands_near_it_with_nothing_else_between(recorded, known):
    assert label_already_recorded(RenewalRecord("churned", DAY), recorded) is known
