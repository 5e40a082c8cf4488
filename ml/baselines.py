"""Reference models the churn model must beat, fitted on the same features and folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.schema import FeatureSchema

MISSING_LEVEL = "(missing)"


def _as_text(encoded: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    out = encoded.copy()
    for name in categorical:
        out[name] = out[name].astype(object).where(out[name].notna(), MISSING_LEVEL).astype(str)
    return out


def logistic_regression_scores(train: pd.DataFrame, labels: np.ndarray, test: pd.DataFrame) -> np.ndarray:
    """One-hot categoricals, scaled numbers (median-imputed, with missing flags), plain logistic regression."""
    schema = FeatureSchema.infer(train)
    numeric, categorical = list(schema.numeric), list(schema.categorical)
    columns = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=5000))
    model.fit(_as_text(schema.encode(train), categorical), labels)
    return model.predict_proba(_as_text(schema.encode(test), categorical))[:, 1]


def default_xgboost_scores(train: pd.DataFrame, labels: np.ndarray, test: pd.DataFrame, *, seed: int = 0) -> np.ndarray:
    """XGBoost's own defaults (100 rounds, depth 6), native categoricals, no tuning."""
    schema = FeatureSchema.infer(train)
    model = xgb.XGBClassifier(tree_method="hist", enable_categorical=True, random_state=seed, n_jobs=2)
    model.fit(schema.encode(train), labels)
    return model.predict_proba(schema.encode(test))[:, 1]
