import io
import uuid

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

from tests.conftest import api_client_with

MODELS = "/api/v1/models/"


def rates(**values):
    return override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": values})


def test_a_client_over_its_rate_gets_429_with_retry_after(db, api_client):
    with rates(api_client="2/minute"):
        statuses = [api_client.get(MODELS).status_code for _ in range(3)]
        response = api_client.get(MODELS)
    assert statuses == [200, 200, 429]
    assert response.json()["error"]["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60


def test_errors_are_in_english_whatever_language_the_client_accepts(db, api_client):
    bad = api_client.post(
        "/api/v1/recommendations/", {"channel": "fax", "limit": -1}, format="json", HTTP_ACCEPT_LANGUAGE="nl"
    )
    with rates(api_client="1/minute"):
        api_client.get(MODELS, HTTP_ACCEPT_LANGUAGE="nl")
        throttled = api_client.get(MODELS, HTTP_ACCEPT_LANGUAGE="nl")

    assert bad.json()["error"]["fields"] == {
        "customer_id": ["This field is required."],
        "channel": ['"fax" is not a valid choice; use one of: phone, chat, email, shop, api.'],
        "limit": ["Ensure this value is greater than or equal to 0."],
    }
    assert throttled.json()["error"]["message"].startswith("Request was throttled.")
    assert bad["Content-Language"] == throttled["Content-Language"] == "en"


def test_each_client_has_its_own_allowance(db, api_client):
    other, _ = api_client_with(["read"], name="other-crm")
    with rates(api_client="1/minute"):
        assert api_client.get(MODELS).status_code == 200
        assert other.get(MODELS).status_code == 200
        assert api_client.get(MODELS).status_code == 429


def test_bulk_operations_count_against_the_smaller_bulk_allowance(db, api_client):
    with rates(api_client="100/minute", api_client_bulk="1/minute"):
        assert api_client.post("/api/v1/scores/", {"customer_ids": ["x"]}, format="json").status_code == 422
        assert api_client.post("/api/v1/scores/", {"customer_ids": ["x"]}, format="json").status_code == 429
        assert api_client.get(MODELS).status_code == 200


def test_the_schema_is_openapi_3_and_public(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/customers/bulk/", "/api/v1/outcomes/", "/api/v1/scoring-jobs/{job_id}/result.csv"} <= set(
        schema["paths"]
    )


def test_the_docs_page_loads_swagger_ui_from_this_site(client):
    html = client.get("/api/v1/docs/").content.decode()
    assert f"{settings.STATIC_URL}drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/api/v1/recommendations/", {"customer_id": "N", "channel": "api", "agnet": "a"}, "a recommendation request"),
        ("/api/v1/outcomes/", {"recommendation_id": str(uuid.uuid4()), "result": "declined", "why": 1}, "an outcome"),
        ("/api/v1/renewals/", {"customer_id": "N", "result": "renewed", "date": "2024", "x": 0}, "a renewal report"),
        ("/api/v1/scores/", {"customer_ids": ["NL-1"], "as_of": "2024-01-01"}, "a scores request"),
        ("/api/v1/customers/bulk/", {"customers": [], "dry_run": True}, "a bulk upsert"),
    ],
)  # fmt: skip
def test_a_field_the_operation_does_not_know_is_refused_naming_it(db, api_client, path, body, named):
    response = api_client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 400
    [unknown] = set(body) - {
        "customer_id",
        "channel",
        "recommendation_id",
        "result",
        "date",
        "customer_ids",
        "customers",
    }
    [message] = response.json()["error"]["fields"][unknown]
    assert message.startswith(f"is not a field of {named} (known: ")


@pytest.mark.parametrize(
    ("path", "hint"),
    [("/api/v1/recommendations", "; did you mean /api/v1/recommendations/ (with the final slash)?"),
     ("/api/v1/outcome/", "")],
)  # fmt: skip
def test_a_post_to_a_path_that_names_no_operation_is_a_json_404_even_without_a_csrf_token(db, path, hint):
    response = Client(enforce_csrf_checks=True).post(path, {"customer_id": "NL1"}, content_type="application/json")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": f"no API operation at {path}{hint}"}}


def test_the_schema_is_valid_openapi_and_generated_without_a_warning():
    out = io.StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out, stderr=io.StringIO())

    schema = yaml.safe_load(out.getvalue())
    erase = schema["paths"]["/api/v1/customers/{external_id}/"]["delete"]
    assert [parameter["name"] for parameter in erase["parameters"] if parameter["in"] == "query"] == ["reference"]
    page_size = next(p for p in schema["paths"]["/api/v1/decisions/"]["get"]["parameters"] if p["name"] == "page_size")
    assert page_size["schema"]["minimum"] == 1
    bodies = {name: component for name, component in schema["components"]["schemas"].items() if name.endswith("Input")}
    assert {"CustomerRecordInput", "ContractInput", "RecommendationInput", "OutcomeInput"} <= set(bodies)
    assert all(c["additionalProperties"] is False for c in bodies.values() if c.get("type") == "object")
    record = bodies["CustomerRecordInput"]["properties"]
    assert bodies["CustomerBulkInput"]["properties"]["customers"]["maxItems"] == 10_000
    assert (record["contracts"]["maxItems"], record["events"]["maxItems"]) == (100, 1_000)
    assert record["attributes"]["maxProperties"] == 200
    recommendation = schema["paths"]["/api/v1/recommendations/"]["post"]
    assert [(p["name"], p.get("required", False)) for p in recommendation["parameters"]] == [("Idempotency-Key", False)]
