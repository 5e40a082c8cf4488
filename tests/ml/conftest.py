import pytest

from ml.registry import champions
from tests.builders import session_champion, store_labelled_base


@pytest.fixture
def churn_champion(db, trained_churn_artifact):
    """The labelled base and, as champion, the churn model trained on it once per session."""
    store_labelled_base()
    champions.clear()
    yield session_champion(trained_churn_artifact)
    champions.clear()
