"""Fixtures of the API tests: the session's churn model as champion, decisions and API clients."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from ml.models import ModelVersion
from ml.registry import champions
from retention.api.auth import new_token, token_hash
from tests.builders import own_artifact_copy
from tests.factories import ApiClientFactory


@pytest.fixture
def churn_champion(db, trained_churn_artifact) -> ModelVersion:
    """The same champion as tests/ml's fixture, registered from the session's artifact instead of retrained."""
    champions.clear()
    version = ModelVersion.objects.create(
        **{**trained_churn_artifact, "artifact_dir": own_artifact_copy(trained_churn_artifact["artifact_dir"])},
        status=ModelVersion.Status.CHAMPION,
        promoted_by="test",
        promoted_at=timezone.now(),
    )
    yield version
    champions.clear()


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Throttle counts live in the cache, keyed by client id; ids come back after each test's rollback."""
    cache.clear()
    yield
    cache.clear()


def api_client_with(scopes: list[str], name: str | None = None) -> tuple[APIClient, object]:
    token = new_token()
    extra = {"name": name} if name else {}
    record = ApiClientFactory(scopes=scopes, token_prefix=token[:8], token_hash=token_hash(token), **extra)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client, record
