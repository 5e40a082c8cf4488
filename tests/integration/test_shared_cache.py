"""With CACHE_URL on Redis, the sign-in lockout and the API's rate limits count in one place for every server
process: here two cache connections stand for two processes."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings
from django.urls import reverse

from agents_ui.login import MAX_FAILURES
from tests.conftest import PASSWORD, api_client_with
from tests.integration.conftest import REDIS, redis_runs

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
REDIS_CACHE_DB = 14


@pytest.fixture
def redis_cache():
    if not redis_runs():
        pytest.skip(f"no Redis answers on {REDIS[0]}:{REDIS[1]}")
    prefix = f"test-{uuid.uuid4().hex}"  # runs on one machine never see each other's counts
    cache_settings = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_CACHE_DB}",
        "KEY_PREFIX": prefix,
    }
    with override_settings(CACHES={"default": cache_settings}):
        yield prefix
    # Only this run's keys: clearing the cache would empty the whole Redis database, other runs' keys too.
    server = redis_server()
    for key in server.scan_iter(f"{prefix}:*"):
        server.delete(key)


def other_process_cache():
    """A connection of its own to the configured cache, as another server process would open."""
    return caches.create_connection("default")


def stored_in_redis(prefix: str, key: str) -> bytes | None:
    """The value as Redis itself holds it, past Django's cache: proof the count left this process."""
    return redis_server().get(f"{prefix}:1:{key}")


def redis_server() -> redis.Redis:
    return redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_CACHE_DB)


def test_wrong_passwords_count_for_every_process_and_lock_out_the_right_one(client, agent, redis_cache):
    for _ in range(MAX_FAILURES):
        client.post(reverse("login"), {"username": "agent", "password": "guess"})

    counted_elsewhere = other_process_cache().get("sign-in-attempts:127.0.0.1:agent")
    locked = client.post(reverse("login"), {"username": "agent", "password": PASSWORD})

    assert counted_elsewhere == MAX_FAILURES
    assert stored_in_redis(redis_cache, "sign-in-attempts:127.0.0.1:agent") == str(MAX_FAILURES + 1).encode()
    assert locked.status_code == 200
    assert "Te vaak mislukt aangemeld" in locked.text


def test_an_api_clients_requests_count_against_one_allowance(redis_cache):
    api_client, record = api_client_with(["read"])
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api_client": "2/minute"}}
    with override_settings(REST_FRAMEWORK=rates):
        statuses = [api_client.get("/api/v1/models/").status_code for _ in range(3)]

    history_elsewhere = other_process_cache().get(f"throttle_api_client_{record.pk}")
    assert statuses == [200, 200, 429]
    assert len(history_elsewhere) == 2  # the two requests let through; the refused one is not counted
    assert stored_in_redis(redis_cache, f"throttle_api_client_{record.pk}") is not None
