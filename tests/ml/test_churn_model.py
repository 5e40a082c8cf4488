import json

import numpy as np
import pandas as pd
import pytest

from ml.churn import ArtifactError, ChurnModel, check_training_data, churn_model_train
from ml.metrics import classification_metrics, expected_calibration_error, lift_at
from ml.schema import OTHER_LEVEL, FeatureSchema, SchemaMismatch


def synthetic(n=600, seed=1):
    rng = np.random.default_rng(seed)
    complaints = rng.poisson(1.0, n).astype(float)
    contract = rng.choice(["maand", "1 jaar", "2 jaar"], n)
    logit = -2 + 0.9 * complaints + np.where(contract == "maand", 1.2, 0) + rng.normal(0, 0.5, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame(
        {
            "complaints_90d": complaints,
            "contract_type": contract,
            "constant": 1.0,
            "attr:customer_number": [f"X{i}" for i in range(n)],
            "attr:speed": rng.choice(["100", "500", "1000"], n),
        }
    )
    return features, labels


@pytest.fixture(scope="module")
def trained():
    features, labels = synthetic()
    return churn_model_train(features, labels, seed=0), features, labels


def test_the_model_ranks_risky_customers_above_safe_ones(trained):
    model, _, _ = trained
    test_features, test_labels = synthetic(seed=7)
    assert classification_metrics(test_labels, model.predict_proba(test_features))["roc_auc"] > 0.7


def test_probabilities_are_calibrated_on_unseen_data(trained):
    model, _, _ = trained
    test_features, test_labels = synthetic(n=2000, seed=8)
    assert expected_calibration_error(test_labels, model.predict_proba(test_features)) < 0.08


def test_constant_and_identifier_columns_are_left_out(trained):
    model, _, _ = trained
    assert "constant" not in model.schema.names
    assert "attr:customer_number" not in model.schema.names
    assert "attr:speed" in model.schema.numeric


def test_contributions_name_every_feature(trained):
    model, features, _ = trained
    contributions = model.contributions(features.head(3))
    assert list(contributions.columns) == model.schema.names
    assert contributions.loc[:, "complaints_90d"].abs().sum() > 0


def test_unseen_category_levels_do_not_break_scoring(trained):
    model, features, _ = trained
    odd = features.head(2).assign(contract_type=["nooit gezien", None])
    assert np.isfinite(model.predict_proba(odd)).all()


def test_a_saved_model_loads_and_predicts_the_same(tmp_path, trained):
    model, features, _ = trained
    digest = model.save(tmp_path / "m")
    loaded = ChurnModel.load(tmp_path / "m", expected_sha256=digest)
    assert np.allclose(loaded.predict_proba(features), model.predict_proba(features))
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_a_corrupt_booster_file_is_refused(tmp_path, trained):
    model, _, _ = trained
    digest = model.save(tmp_path / "m")
    (tmp_path / "m" / "booster-0.ubj").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="corrupt"):
        ChurnModel.load(tmp_path / "m", expected_sha256=digest)


def test_an_edited_manifest_is_refused(tmp_path, trained):
    model, _, _ = trained
    digest = model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["schema"]["numeric"].append("extra")
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="checksum"):
        ChurnModel.load(tmp_path / "m", expected_sha256=digest)


def test_data_missing_a_schema_column_is_refused(trained):
    model, features, _ = trained
    with pytest.raises(SchemaMismatch, match="complaints_90d"):
        model.predict_proba(features.drop(columns=["complaints_90d"]))


def test_too_few_or_one_sided_labels_are_refused_clearly():
    features, labels = synthetic(n=40)
    with pytest.raises(ValueError, match="too few labelled outcomes"):
        check_training_data(features, labels)
    features, labels = synthetic(n=200)
    with pytest.raises(ValueError, match="of each outcome"):
        check_training_data(features, np.zeros(200, dtype=int))


def test_rare_levels_fold_into_one_other_level():
    column = pd.Series(["a"] * 10 + ["b"] * 10 + ["rare"] * 2)
    schema = FeatureSchema.infer(pd.DataFrame({"plan": column}))
    assert schema.categorical["plan"] == ("a", "b", OTHER_LEVEL)
    encoded = schema.encode(pd.DataFrame({"plan": ["rare", "a", "new"]}))
    assert list(encoded["plan"].astype(str)) == [OTHER_LEVEL, "a", OTHER_LEVEL]


def test_numbers_with_a_decimal_comma_are_numeric():
    schema = FeatureSchema.infer(pd.DataFrame({"spend": ["12,50", "3,10", "7"] * 5}))
    assert schema.numeric == ("spend",)


def test_lift_compares_the_top_decile_with_the_base_rate():
    labels = np.array([1] * 10 + [0] * 90)
    scores = np.linspace(1, 0, 100)
    assert lift_at(labels, scores, 0.1) == pytest.approx(10.0)


def test_a_loaded_model_keeps_the_column_order_of_several_categoricals(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    features = pd.DataFrame(
        {
            "zeta": rng.choice(["a", "b"], n),
            "alpha": rng.choice(["x", "y", "z"], n),
            "count": rng.poisson(1.0, n).astype(float),
        }
    )
    labels = (rng.random(n) < 0.2 + 0.3 * (features["zeta"] == "a")).astype(int).to_numpy()
    model = churn_model_train(features, labels)
    digest = model.save(tmp_path / "m")
    loaded = ChurnModel.load(tmp_path / "m", expected_sha256=digest)
    assert loaded.schema.names == model.schema.names
    assert np.allclose(loaded.predict_proba(features), model.predict_proba(features))
