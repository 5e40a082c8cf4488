"""Fixtures of the API tests: the session's churn model as champion, decisions and API clients."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from ml.models import ModelVersion
from ml.registry import champions
from tests.builders import session_champion


@pytest.fixture
def churn_champion(db, trained_churn_artifact) -> ModelVersion:
    """The same champion as tests/ml's fixture, registered from the session's artifact instead of retrained."""
    champions.clear()
    yield session_champion(trained_churn_artifact)
    champions.clear()


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Throttle counts live in the cache, keyed by client id; ids come back after each test's rollback."""
    cache.clear()
    yield
    cache.clear()
