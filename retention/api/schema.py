"""How the API describes itself in OpenAPI: the token scheme and the error responses of each operation."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from retention.api.errors import ErrorOutput

ERROR_DESCRIPTIONS = {
    400: "The request is not valid: `fields` (or `records`) says what is wrong.",
    401: "No token, or an unknown or inactive one.",
    403: (
        "This API client lacks the scope the operation needs, or does not speak for the team concerned, or the "
        "agent named may not act on this advice (only the agent who got it, their team's lead or an administrator)."
    ),
    404: "Not found.",
    409: "The Idempotency-Key was used before with a different body.",
    413: "Too many records or ids in one request, or too large a body.",
    415: "The body is not sent as JSON: the Content-Type must be application/json (a charset may follow).",
    422: "Well formed but unusable: unknown references, a rule of the domain, or no trained model.",
    429: "Too many requests from this API client; Retry-After says how many seconds to wait.",
}
READ_ERRORS = (401, 403, 429)
WRITE_ERRORS = (400, 401, 403, 413, 415, 429)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "retention.api.auth.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`, the key printed once by `manage.py create_api_client`.",
        }


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorOutput, description=ERROR_DESCRIPTIONS[code]) for code in statuses}


def responses(success: dict, *statuses: int) -> dict:
    """An operation's success responses plus the errors it can answer with."""
    return {**success, **error_responses(*statuses)}


def _idempotency_key(*, required: bool, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name="Idempotency-Key",
        location=OpenApiParameter.HEADER,
        required=required,
        type=str,
        description=description,
        pattern=r"^.*\S.*$",  # a blank key is refused, not taken for none
    )


IDEMPOTENCY_KEY = _idempotency_key(
    required=True,
    description=(
        "A key unique to this outcome, 1 to 80 printable characters (spaces around it are dropped), e.g. a UUID. "
        "Sending the same key again returns the first response and stores nothing new; the same key with a "
        "different body is refused with 409."
    ),
)
OPTIONAL_IDEMPOTENCY_KEY = _idempotency_key(
    required=False,
    description=(
        "Optional: a key unique to this request, 1 to 80 printable characters (spaces around it are dropped), e.g. "
        "a UUID. Asking again with the same key and customer, channel, agent and reason returns the first advice "
        "(header Idempotent-Replayed: true) and stores nothing new, so a retry after a timeout makes no second "
        "decision; the same key for another request is refused with 409."
    ),
)


def closed_request_bodies(result, generator, request, public):
    """A postprocessing hook: every request body's object (the `...Input` components, StrictInput serializers) says
    `additionalProperties: false`, as the API refuses a key it does not know rather than ignoring it."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Input") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


def stated_limits(result, generator, request, public):
    """A postprocessing hook: the limits the bulk upsert enforces on lists of nested records and on attributes,
    which the schema generator leaves out, so a client can check a body before sending it."""
    from retention.api.customer_input import MAX_ATTRIBUTES, MAX_CONTRACTS, MAX_EVENTS
    from retention.api.views_customers import MAX_RECORDS

    limits = {
        ("CustomerBulkInput", "customers"): {"maxItems": MAX_RECORDS},
        ("CustomerRecordInput", "contracts"): {"maxItems": MAX_CONTRACTS},
        ("CustomerRecordInput", "events"): {"maxItems": MAX_EVENTS},
        ("CustomerRecordInput", "attributes"): {"maxProperties": MAX_ATTRIBUTES},
    }
    schemas = result.get("components", {}).get("schemas", {})
    for (component, field), limit in limits.items():
        schemas[component]["properties"][field].update(limit)
    return result
