"""How the rows a model is measured on are held out from those it is trained on."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.services import churn_training_set
from ml.training import holdout_split
from tests.factories import CustomerFactory, RenewalResultFactory

ONE_DAY = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_rows_of_one_moment_are_split_at_random_with_both_outcomes_on_each_side():
    labels = np.array([0, 1] * 100)

    train, holdout, how = holdout_split(pd.Series([ONE_DAY] * 200), labels, seed=3)

    assert how == "random" and len(holdout) == 40
    assert set(labels[holdout]) == set(labels[train]) == {0, 1}
    assert sorted([*train, *holdout]) == list(range(200))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_customer_with_several_rows_is_held_out_whole_or_not_at_all(seed):
    # 150 customers, each with two renewal results exported on one day: one holdout of rows would have most of the
    # held-out customers in training too.
    owners = np.repeat(np.arange(150), 2)
    labels = np.tile([0, 1], 150)

    train, holdout, how = holdout_split(pd.Series([ONE_DAY] * 300, index=owners), labels, seed=seed)

    assert how == "random"
    assert not set(owners[train]) & set(owners[holdout])
    assert 50 <= len(holdout) <= 70 and set(labels[holdout]) == {0, 1}


def test_the_churn_training_set_names_the_customer_of_each_row(db):
    twice, once = CustomerFactory(), CustomerFactory()
    RenewalResultFactory(customer=twice, result="renewed", date=dt.date(2024, 3, 1))
    RenewalResultFactory(customer=twice, result="churned", date=dt.date(2025, 3, 1))
    RenewalResultFactory(customer=once, result="churned", date=dt.date(2025, 4, 1))

    _, labels, times = churn_training_set()

    assert times.index.tolist() == [twice.pk, twice.pk, once.pk]
    assert labels.tolist() == [0, 1, 1]
