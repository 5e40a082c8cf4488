"""Fixtures of the API tests: a trained churn champion (trained once per session), decisions and API clients."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from ml.models import ModelVersion
from ml.registry import champions
from ml.services import churn_model_retrain
from retention.api.auth import new_token, token_hash
from tests.builders import store_labelled_base
from tests.factories import ApiClientFactory

ARTIFACT_FIELDS = ("kind", "version", "artifact_dir", "artifact_sha256", "feature_schema", "metrics", "training_window")


@pytest.fixture(scope="session")
def trained_churn_artifact(django_db_setup, django_db_blocker) -> dict:
    """Train the churn model once per session; its training rows are rolled back, its artifact stays on disk."""
    with django_db_blocker.unblock(), transaction.atomic():
        store_labelled_base()
        champions.clear()
        version = churn_model_retrain(by="test")
        fields = {name: getattr(version, name) for name in ARTIFACT_FIELDS}
        transaction.set_rollback(True)
    champions.clear()
    # A folder of its own: a later registration in the same second would reuse (and overwrite) the first one.
    own_folder = f"api-tests-{uuid.uuid4().hex}"
    shutil.copytree(Path(settings.MODEL_DIR) / fields["artifact_dir"], Path(settings.MODEL_DIR) / own_folder)
    return {**fields, "artifact_dir": own_folder}


@pytest.fixture
def churn_champion(db, trained_churn_artifact) -> ModelVersion:
    """The same champion as tests/ml's fixture, registered from the session's artifact instead of retrained."""
    champions.clear()
    version = ModelVersion.objects.create(
        **trained_churn_artifact, status=ModelVersion.Status.CHAMPION, promoted_by="test", promoted_at=timezone.now()
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
