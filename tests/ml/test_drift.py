"""Population stability per feature: known distributions give known values; the selector reads recent decisions."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from django.utils import timezone
from scipy.stats import norm

from ml.drift import (
    PSI_FLOOR,
    WARNING_PSI,
    FeatureDrift,
    distribution_summary,
    feature_drift,
    population_stability,
)
from ml.selectors import model_drift
from retention.models import Decision
from tests.api.factories import DecisionFactory


def test_identical_distributions_have_no_drift():
    assert population_stability([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_follows_its_formula_on_a_known_shift():
    expected, actual = [0.25] * 4, [0.1, 0.2, 0.3, 0.4]
    by_hand = sum((a - e) * math.log(a / e) for e, a in zip(expected, actual, strict=True))
    assert population_stability(expected, actual) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.2282, abs=1e-4)


def test_an_empty_bin_is_floored_instead_of_infinite():
    psi = population_stability([0.5, 0.5, 0.0], [0.5, 0.4, 0.1])
    assert psi == pytest.approx(-0.1 * math.log(0.8) + (0.1 - PSI_FLOOR) * math.log(0.1 / PSI_FLOOR))


def test_bins_must_match():
    with pytest.raises(ValueError, match="3 training bins but 2 recent bins"):
        population_stability([0.2, 0.3, 0.5], [0.5, 0.5])


def normal_sample(mean: float, n: int = 50_000, seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"fee": np.random.default_rng(seed).normal(mean, 1.0, n)})


def test_a_numeric_feature_from_the_same_distribution_is_stable():
    summary = distribution_summary(normal_sample(0.0), numeric=["fee"], categorical=[])
    (drift,) = feature_drift(summary, normal_sample(0.0, seed=1))
    assert drift.psi < 0.01 and not drift.warning


def test_a_shift_of_one_standard_deviation_matches_the_psi_of_the_true_distributions():
    summary = distribution_summary(normal_sample(0.0), numeric=["fee"], categorical=[])
    edges = summary["numeric"]["fee"]["edges"]
    assert len(edges) == 9  # training deciles
    bounds = [-np.inf, *edges, np.inf]
    true_training = np.diff(norm.cdf(bounds))
    true_shifted = np.diff(norm.cdf(bounds, loc=1.0))
    (drift,) = feature_drift(summary, normal_sample(1.0, seed=1))
    assert drift.psi == pytest.approx(population_stability(true_training, true_shifted), abs=0.03)
    assert drift.psi > 0.9 and drift.warning


def test_missing_values_are_a_bin_of_their_own():
    training = pd.DataFrame({"nps": [1.0, 2.0, 3.0, 4.0] * 25})
    summary = distribution_summary(training, numeric=["nps"], categorical=[])
    assert summary["numeric"]["nps"]["shares"][-1] == 0.0
    recent = pd.DataFrame({"nps": [1.0, 2.0, 3.0, 4.0, None, None, None, None]})
    (drift,) = feature_drift(summary, recent)
    assert drift.psi > WARNING_PSI


def test_a_categorical_feature_compares_the_share_of_each_level():
    summary = distribution_summary(pd.DataFrame({"region": ["noord", "zuid"] * 50}), numeric=[], categorical=["region"])
    assert summary["categorical"]["region"] == {"noord": 0.5, "zuid": 0.5}
    (drift,) = feature_drift(summary, pd.DataFrame({"region": ["noord"] * 10}))
    assert drift.psi == pytest.approx(population_stability([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]))


def test_levels_training_never_saw_count_as_a_shift():
    summary = distribution_summary(pd.DataFrame({"region": ["noord", "zuid"] * 50}), numeric=[], categorical=["region"])
    (drift,) = feature_drift(summary, pd.DataFrame({"region": ["noord", "zuid", "oost", "west"]}))
    assert drift.psi == pytest.approx(population_stability([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]))


def test_features_the_recent_rows_lack_are_left_out_and_the_largest_drift_comes_first():
    training = pd.DataFrame({"fee": np.linspace(0, 1, 100), "age": np.linspace(0, 1, 100), "plan": ["a", "b"] * 50})
    summary = distribution_summary(training, numeric=["fee", "age"], categorical=["plan"])
    recent = pd.DataFrame({"fee": np.linspace(0, 1, 10), "plan": ["a"] * 10})
    drifts = feature_drift(summary, recent)
    assert [drift.feature for drift in drifts] == ["plan", "fee"]
    assert drifts[0].rows == 10


def test_the_warning_is_above_the_threshold():
    assert FeatureDrift("fee", 0.21, 100).warning
    assert not FeatureDrift("fee", 0.2, 100).warning


# --- the selector --------------------------------------------------------------------------------------------


@pytest.fixture
def version_trained_on_fees(churn_champion):
    training = pd.DataFrame({"monthly_fee": np.linspace(30, 90, 200), "segment": ["consumer"] * 200})
    churn_champion.training_distribution = distribution_summary(
        training, numeric=["monthly_fee"], categorical=["segment"]
    )
    return churn_champion


def test_drift_compares_the_decisions_of_the_last_30_days_with_the_training_rows(version_trained_on_fees):
    for fee in np.linspace(30, 90, 20):
        DecisionFactory(features={"monthly_fee": float(fee), "segment": "business"})
    old = DecisionFactory(features={"monthly_fee": 500.0, "segment": "consumer"})
    Decision.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=31))
    report = model_drift(version=version_trained_on_fees)
    assert report.rows == 20
    by_feature = {drift.feature: drift for drift in report.features}
    assert by_feature["monthly_fee"].psi < 0.1
    assert by_feature["segment"].warning
    assert report.warnings == [by_feature["segment"]]


def test_no_recent_decisions_means_no_drift_figures(version_trained_on_fees):
    report = model_drift(version=version_trained_on_fees)
    assert (report.rows, report.features) == (0, [])
