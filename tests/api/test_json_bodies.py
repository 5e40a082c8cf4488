"""Every write takes its body as JSON only: another Content-Type is refused with 415, in the API's error shape,
before anything is read or stored."""

import json

import pytest

from retention.models import Customer
from tests.api.test_customers import record

WRITES = [
    "/api/v1/customers/bulk/",
    "/api/v1/recommendations/",
    "/api/v1/outcomes/",
    "/api/v1/renewals/",
    "/api/v1/scores/",
    "/api/v1/scoring-jobs/",
]
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]


@pytest.mark.parametrize("url", WRITES)
@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_of_another_type_than_json_is_415_saying_what_to_send(db, api_client, url, content_type):
    body = json.dumps({"customers": [record()]})

    response = api_client.generic("POST", url, body, content_type=content_type, HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 415
    assert response.json()["error"] == {
        "code": "unsupported_media_type",
        "message": "the body must be JSON, sent with Content-Type: application/json; this request has Content-Type "
        f'"{content_type}"',
    }
    assert not Customer.objects.exists()


def test_a_json_suffix_type_is_no_json_body_either(db, api_client):
    """application/merge-patch+json, for one, asks for a change, where each write takes the whole state."""
    response = api_client.generic(
        "POST", WRITES[0], json.dumps({"customers": [record()]}), content_type="application/merge-patch+json"
    )

    assert response.status_code == 415
    assert not Customer.objects.exists()


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_with_or_without_its_charset_is_taken(db, api_client, content_type):
    response = api_client.generic("POST", WRITES[0], json.dumps({"customers": [record()]}), content_type=content_type)

    assert response.status_code == 200, response.content
    assert Customer.objects.filter(external_id="CRM-1").exists()
