"""Named personas and shared fixtures: an agent, a team lead, an outsider, API clients with and without scopes."""

from __future__ import annotations

import dataclasses

import pytest
from django.db import connection, transaction
from hypothesis import settings
from rest_framework.test import APIClient

from retention.models import AgentProfile
from retention.tokens import new_token, token_hash
from tests.builders import own_artifact_copy, store_labelled_base
from tests.factories import AgentProfileFactory, ApiClientFactory, TeamFactory, UserFactory

PASSWORD = "correct horse battery"

# Property tests judge what is computed, never how fast: a loaded machine must not fail one on time.
settings.register_profile("no_deadline", deadline=None)
settings.load_profile("no_deadline")

ARTIFACT_FIELDS = (
    "kind",
    "version",
    "artifact_dir",
    "artifact_sha256",
    "feature_schema",
    "metrics",
    "training_window",
    "training_rows",
    "training_distribution",
)


@pytest.fixture(scope="session")
def trained_churn_artifact(django_db_setup, django_db_blocker) -> dict:
    """Train the churn model once per session; its training rows are rolled back, its artifact stays on disk."""
    # Imported here, as the exploration fixture below imports: the xdist controller loads this conftest but
    # runs no test, and ml brings in XGBoost and scikit-learn, a second and a half before any worker starts.
    from ml.registry import champions
    from ml.services import churn_model_retrain

    with django_db_blocker.unblock(), transaction.atomic():
        store_labelled_base()
        champions.clear()
        version = churn_model_retrain(by="test")
        fields = {name: getattr(version, name) for name in ARTIFACT_FIELDS}
        transaction.set_rollback(True)
    champions.clear()
    return {**fields, "artifact_dir": own_artifact_copy(fields["artifact_dir"])}


@pytest.fixture(autouse=True)
def panel_search_allowance_unspent():
    """Each test starts with a whole minute's allowance of panel searches: the count lives in the cache (each test
    process's own memory, config/settings_test.py), which outlives a test, and users of different tests share
    primary keys."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def recommendations_without_exploration(request, monkeypatch):
    """Decisions recommend the top offer, so a test's expectations hold every run.

    Exploration draws from the customer and the day the test runs on; a test about exploration or the
    control group marks itself `exploring` and sets its own shares.
    """
    if request.node.get_closest_marker("exploring"):
        return
    from retention.services import decisions

    policy_current = decisions.policy_current

    def policy_without_exploration():
        version, policy = policy_current()
        return version, dataclasses.replace(policy, exploration_share=0.0, control_share=0.0)

    monkeypatch.setattr(decisions, "policy_current", policy_without_exploration)


@pytest.fixture
def team(db):
    return TeamFactory(name="Team Utrecht")


@pytest.fixture
def other_team(db):
    return TeamFactory(name="Team Rotterdam")


@pytest.fixture
def agent(team):
    return AgentProfileFactory(user=UserFactory(username="agent"), team=team, authority_level=1).user


@pytest.fixture
def lead(team):
    profile = AgentProfileFactory(
        user=UserFactory(username="lead"), team=team, role=AgentProfile.Role.LEAD, authority_level=2
    )
    return profile.user


@pytest.fixture
def outsider(db):
    """A logged-in user with no agent profile: no team, no role, no access."""
    return UserFactory(username="outsider")


def api_client_with(scopes: list[str], name: str | None = None) -> tuple[APIClient, object]:
    """A CRM integration's API client with these scopes, and its stored record."""
    token = new_token()
    extra = {"name": name} if name else {}
    record = ApiClientFactory(scopes=scopes, token_prefix=token[:8], token_hash=token_hash(token), **extra)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client, record


@pytest.fixture
def api_client(db):
    """A CRM integration holding every scope."""
    client, _ = api_client_with(["read", "score", "write_customers", "write_outcomes"])
    return client


@pytest.fixture
def read_only_api_client(db):
    client, _ = api_client_with(["read"])
    return client


@pytest.fixture
def postgresql():
    """For tests of row locks between connections, which SQLite's one writer at a time cannot show."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks between connections are tried on PostgreSQL (set DATABASE_URL)")
