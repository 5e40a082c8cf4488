from tests.ml.conftest import churn_champion  # noqa: F401
