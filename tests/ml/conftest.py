import pytest

from ml.registry import champions
from ml.services import churn_model_retrain
from tests.builders import store_labelled_base


@pytest.fixture
def churn_champion(db):
    store_labelled_base()
    champions.clear()
    version = churn_model_retrain(by="test")
    yield version
    champions.clear()
