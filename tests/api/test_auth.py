"""Token authentication: another scheme is told what to send, and each client's "last used" time is kept
without writing on every request."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from retention.models import ApiClient
from retention.services.api_clients import LAST_USED_RESOLUTION
from tests.conftest import api_client_with

OFFERS = "/api/v1/offers/"


def test_a_request_notes_when_the_client_was_last_used(db):
    client, record = api_client_with(["read"])
    before = timezone.now()

    assert client.get(OFFERS).status_code == 200

    record.refresh_from_db()
    assert record.last_used_at >= before


def test_requests_within_the_resolution_write_it_once(db):
    client, record = api_client_with(["read"])
    client.get(OFFERS)
    record.refresh_from_db()
    first = record.last_used_at

    with CaptureQueriesContext(connection) as captured:
        client.get(OFFERS)

    assert not [query for query in captured.captured_queries if query["sql"].startswith("UPDATE")]
    record.refresh_from_db()
    assert record.last_used_at == first


def test_after_the_resolution_the_next_request_writes_it_again(db):
    client, record = api_client_with(["read"])
    long_ago = timezone.now() - LAST_USED_RESOLUTION - dt.timedelta(seconds=1)
    ApiClient.objects.filter(pk=record.pk).update(last_used_at=long_ago)

    client.get(OFFERS)

    record.refresh_from_db()
    assert record.last_used_at > long_ago + LAST_USED_RESOLUTION


@pytest.mark.parametrize("header", ["Bearer abc", "Basic dXNlcjpwdw=="])
def test_another_authorization_scheme_is_told_to_send_a_token(db, header):
    response = APIClient().get("/api/v1/models/", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    scheme = header.split()[0]
    assert response.json()["error"]["message"] == f"Authorization header must be 'Token <key>', not '{scheme}'."
    assert response["WWW-Authenticate"] == "Token"
