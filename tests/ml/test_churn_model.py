import json

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ml import churn
from ml.artifacts import ArtifactError
from ml.churn import ChurnModel, check_training_data, churn_model_train, tree_matrix
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


@pytest.mark.parametrize("absurd", [1e308, -1e308, "1e39", "3.5e38", float("inf"), 2e15])
def test_a_number_no_measurement_can_be_is_read_as_unknown_not_passed_to_the_trees(trained, absurd):
    model, features, _ = trained
    odd = features.head(2).astype({"attr:speed": object})
    odd.loc[odd.index[0], "attr:speed"] = absurd
    unknown = features.head(2).astype({"attr:speed": object})
    unknown.loc[unknown.index[0], "attr:speed"] = None

    assert model.predict_proba(odd).tolist() == model.predict_proba(unknown).tolist()
    assert np.isfinite(model.contributions(odd).to_numpy()).all()


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


BLENDED = {"max_depth": 1, "eta": 0.1, "linear_weight": 0.5}
LINEAR_ONLY = {"max_depth": 1, "eta": 0.1, "linear_weight": 1.0}


@pytest.fixture(scope="module")
def blended():
    features, labels = synthetic()
    return churn_model_train(features, labels, seed=0, params=BLENDED), features, labels


def log_odds(probabilities):
    return np.log(probabilities / (1 - probabilities))


def test_a_blend_with_the_linear_bag_saves_and_loads_in_xgboost_format(tmp_path, blended):
    model, features, _ = blended
    assert model.params["linear_weight"] == 0.5
    digest = model.save(tmp_path / "m")
    loaded = ChurnModel.load(tmp_path / "m", expected_sha256=digest)
    assert np.allclose(loaded.predict_proba(features), model.predict_proba(features))
    assert np.allclose(loaded.contributions(features.head(5)), model.contributions(features.head(5)))
    assert sorted(path.name for path in (tmp_path / "m").glob("linear-*")) == [f"linear-{n}.ubj" for n in range(5)]
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_a_corrupt_linear_booster_file_is_refused(tmp_path, blended):
    model, _, _ = blended
    digest = model.save(tmp_path / "m")
    (tmp_path / "m" / "linear-0.ubj").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="corrupt"):
        ChurnModel.load(tmp_path / "m", expected_sha256=digest)


def test_a_linear_design_that_does_not_fit_the_schema_is_refused(tmp_path, blended):
    model, _, _ = blended
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["linear"]["design"]["centre"].pop()
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="linear design"):
        ChurnModel.load(tmp_path / "m")


def test_the_linear_bag_scores_from_its_weights_as_its_boosters_do(blended):
    model, features, _ = blended
    for rows in (features, features.head(1)):
        columns = model.linear.design.matrix(model.schema.values(rows), model.schema.names)
        data = xgb.DMatrix(columns, nthread=1)
        from_boosters = churn._bag_log_odds(model.linear.boosters, data)
        from_weights = churn._linear_bag_log_odds(model.linear.weights(), columns)
        np.testing.assert_allclose(from_weights, from_boosters, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            np.mean([weights.contributions(columns) for weights in model.linear.weights()], axis=0),
            np.mean([each[:, :-1] for each in churn._booster_contributions(model.linear.boosters, data)], axis=0),
            rtol=1e-6,
            atol=1e-7,
        )


def test_explain_gives_the_probabilities_predict_proba_gives(blended, trained):
    for model, features in ((blended[0], blended[1]), (trained[0], trained[1])):
        probabilities, _ = model.explain(features)
        np.testing.assert_allclose(probabilities, model.predict_proba(features), rtol=1e-6, atol=1e-7)


def test_scoring_one_row_at_a_time_gives_what_scoring_them_together_gives(blended):
    model, features, _ = blended
    together_probabilities, together_contributions = model.explain(features.head(20))
    for number in range(20):
        probability, contributions = model.explain(features.iloc[[number]])
        np.testing.assert_allclose(probability, together_probabilities[[number]], rtol=1e-6)
        np.testing.assert_allclose(
            contributions.to_numpy(), together_contributions.iloc[[number]].to_numpy(), atol=1e-6
        )


def test_explain_gives_the_probabilities_and_contributions_per_original_feature(blended):
    model, features, _ = blended
    probabilities, contributions = model.explain(features.head(4))
    assert np.allclose(probabilities, model.predict_proba(features.head(4)))
    assert list(contributions.columns) == model.schema.names
    assert np.isfinite(contributions.to_numpy()).all()


def test_blended_contributions_add_up_to_the_differences_in_log_odds(blended):
    model, features, _ = blended
    rows = features.iloc[[0, 1, 2, 3]]
    raw = model.raw_scores(rows)
    totals = model.contributions(rows).sum(axis=1).to_numpy()
    # The bias cancels between rows; the bags average probabilities, hence the tolerance.
    assert np.allclose(np.diff(totals), np.diff(log_odds(raw)), atol=0.05)


def test_the_strongest_reason_of_a_linear_model_is_the_feature_that_drives_churn():
    features, labels = synthetic()
    model = churn_model_train(features, labels, seed=0, params=LINEAR_ONLY)
    risky = features.head(1).assign(complaints_90d=5.0, contract_type="2 jaar")
    contributions = model.contributions(risky).iloc[0]
    assert contributions.abs().idxmax() == "complaints_90d"
    assert contributions["complaints_90d"] > 0


def test_a_number_missing_at_scoring_contributes_nothing_through_the_linear_part():
    features, labels = synthetic()
    model = churn_model_train(features, labels, seed=0, params=LINEAR_ONLY)
    gap = features.head(1).assign(complaints_90d=np.nan)
    assert model.contributions(gap).iloc[0]["complaints_90d"] == pytest.approx(0.0, abs=1e-6)


def test_the_linear_part_stays_flat_beyond_the_training_range():
    features, labels = synthetic()
    model = churn_model_train(features, labels, seed=0, params=LINEAR_ONLY)
    highest = features["complaints_90d"].max()
    rows = features.head(2).assign(complaints_90d=[highest, highest * 10])
    probabilities = model.predict_proba(rows)
    assert probabilities[0] == pytest.approx(probabilities[1])


def test_the_search_leans_on_the_linear_bag_when_the_signal_is_additive_and_linear():
    rng = np.random.default_rng(0)
    usage = rng.normal(size=(600, 8))
    labels = (rng.random(600) < 1 / (1 + np.exp(-0.5 * usage.sum(axis=1)))).astype(int)
    features = pd.DataFrame(usage, columns=[f"usage_{number}" for number in range(8)])
    model = churn_model_train(features, labels, seed=0)
    assert model.params["linear_weight"] >= 0.5
    assert model.linear is not None and model.linear.weight == model.params["linear_weight"]


def test_a_refit_with_the_chosen_params_keeps_the_blend(trained):
    model, features, labels = trained
    refit = churn_model_train(features, labels, seed=0, params=model.params)
    assert refit.params["linear_weight"] == model.params["linear_weight"]
    assert (refit.linear is None) == (model.linear is None)


def test_tree_parameters_alone_fit_the_trees_alone():
    features, labels = synthetic()
    model = churn_model_train(features, labels, seed=0, params={"nthread": 1})
    assert model.linear is None
    assert model.params["linear_weight"] == 0.0


def test_large_data_is_not_searched_for_a_linear_blend(monkeypatch):
    monkeypatch.setattr(churn, "LINEAR_MAX_ROWS", 100)
    features, labels = synthetic()
    model = churn_model_train(features, labels, seed=0)
    assert model.linear is None
    assert model.params["linear_weight"] == 0.0


def test_an_artifact_of_the_trees_only_format_still_loads_and_scores_the_same(tmp_path):
    features, labels = synthetic()
    model = churn_model_train(features, labels, seed=0, params={"max_depth": 1, "eta": 0.1})
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    manifest["format"] = 1
    del manifest["params"]["linear_weight"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    loaded = ChurnModel.load(tmp_path / "m")
    assert loaded.linear is None
    assert np.allclose(loaded.predict_proba(features), model.predict_proba(features))
    probabilities, contributions = loaded.explain(features.head(3))
    assert np.allclose(probabilities, model.predict_proba(features.head(3)))
    assert np.allclose(contributions, model.contributions(features.head(3)))


def test_the_tree_matrix_from_arrays_scores_exactly_as_the_pandas_frame():
    rng = np.random.default_rng(3)
    rows = 600
    features = pd.DataFrame(
        {
            "tenure_months": np.where(rng.random(rows) < 0.1, np.nan, rng.uniform(0, 120, rows)),
            "monthly_fee": rng.uniform(20, 90, rows),
            "contract_type": rng.choice(["1 jaar", "2 jaar", "maandelijks", None], rows),
            "region": rng.choice(["Utrecht", "Zeeland", "Drenthe", "Limburg"], rows),
        }
    )
    labels = (rng.random(rows) < 0.2 + 0.3 * (features["contract_type"] == "maandelijks")).astype(int).to_numpy()
    model = churn_model_train(features, labels, seed=0, params={"max_depth": 3, "eta": 0.1})
    unseen = features.head(50).assign(region="Friesland", contract_type=[None, "3 jaar"] * 25)
    for data in (features, unseen, features.head(1)):
        from_frame = xgb.DMatrix(model.schema.encode(data), enable_categorical=True)
        from_arrays = tree_matrix(model.schema, model.schema.values(data), threads=1)
        for booster in model.boosters:
            np.testing.assert_array_equal(booster.predict(from_arrays), booster.predict(from_frame))
            np.testing.assert_array_equal(
                booster.predict(from_arrays, pred_contribs=True), booster.predict(from_frame, pred_contribs=True)
            )


@pytest.mark.parametrize("knot_count", [1, 2, 5, 13])
def test_the_tents_are_the_piecewise_linear_interpolation_of_each_knots_unit(knot_count):
    rng = np.random.default_rng(knot_count)
    knots = np.unique(rng.normal(size=knot_count))
    values = np.concatenate([rng.normal(scale=2, size=500), knots, [np.nan, -1e9, 1e9]])
    expected = np.column_stack([np.interp(values, knots, unit) for unit in np.eye(len(knots))])
    expected[np.isnan(values)] = np.nan

    np.testing.assert_allclose(churn._tents(values, knots), expected, rtol=0, atol=1e-12)
    one_by_one = np.vstack([churn._tents(values[[row]], tuple(knots)) for row in range(len(values))])
    np.testing.assert_array_equal(one_by_one, churn._tents(values, knots))


def test_trees_trained_on_unnamed_matrices_carry_the_names_and_types_of_the_encoded_frame(trained):
    model, features, _ = trained
    frame = xgb.DMatrix(model.schema.encode(features), enable_categorical=True)
    for booster in model.boosters:
        assert booster.feature_names == frame.feature_names
        assert booster.feature_types == frame.feature_types
        assert booster.predict(frame).shape == (len(features),)
