"""The ECE a calibrated model reaches by chance, which the promotion gate allows beside its fixed bar."""

import numpy as np

from ml.metrics import CHANCE_ECE_QUANTILE, chance_calibration_error, expected_calibration_error


def risks(rows: int, seed: int = 0) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).beta(2, 8, rows), 0.01, 0.99)


def test_the_chance_error_shrinks_as_the_rows_grow():
    few, many = chance_calibration_error(risks(200)), chance_calibration_error(risks(5_000))

    assert few > 0.05, "on 200 rows an exactly calibrated model often misses a 5-point bar"
    assert many < few / 3


def test_an_exactly_calibrated_model_stays_under_it_about_as_often_as_the_quantile_says():
    probabilities = risks(300, seed=1)
    bound = chance_calibration_error(probabilities, seed=2)
    outcomes = np.random.default_rng(3).random((400, len(probabilities))) < probabilities

    under = np.mean([expected_calibration_error(drawn, probabilities) <= bound for drawn in outcomes])

    assert abs(under - CHANCE_ECE_QUANTILE) < 0.04


def test_a_model_a_tenth_off_is_beyond_it():
    probabilities = risks(1_000, seed=4)
    outcomes = np.random.default_rng(5).random(len(probabilities)) < probabilities

    assert expected_calibration_error(outcomes, np.clip(probabilities + 0.1, 0, 1)) > chance_calibration_error(
        probabilities + 0.1
    )


def test_the_same_seed_gives_the_same_bound():
    assert chance_calibration_error(risks(150), seed=7) == chance_calibration_error(risks(150), seed=7)
