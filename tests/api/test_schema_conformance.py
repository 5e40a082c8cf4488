"""Every operation, fed generated requests with a valid token, answers without a server error and as documented."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from retention.tokens import new_token, token_hash
from tests.factories import ApiClientFactory, ContractFactory, CustomerFactory, OfferFactory, TariffFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 6  # keeps the whole run well under 30 seconds


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The raw WSGI app closes database connections after each request, as in production; inside a test that
    would close the connection holding the test's transaction (PostgreSQL), so, like Django's test client,
    keep it open for the test."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_token(db) -> str:
    token = new_token()
    ApiClientFactory(
        scopes=["read", "score", "write_customers", "write_outcomes"],
        token_prefix=token[:8],
        token_hash=token_hash(token),
    )
    return token


@pytest.fixture
def some_data(churn_champion):
    TariffFactory()
    OfferFactory(code="korting-10")
    ContractFactory(customer=CustomerFactory(external_id="C1"))


# Serving the schema needs no database, so it is read once, when the tests are collected.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_its_schema_says(case, api_token, some_data):
    case.call_and_validate(headers={"Authorization": f"Token {api_token}"}, checks=CHECKS)
