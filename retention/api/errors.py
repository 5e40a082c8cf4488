"""Every API error as JSON: {"error": {"code", "message", "fields"?, "refusals"?, "records"?}}.

`fields` maps an input field to its problems; `records` lists the invalid records of a bulk request
by position. Throttled responses keep DRF's Retry-After header.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler


def json_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(django_error_fields(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        exc = _not_json(context.get("request"))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {"code": "invalid", "message": "The request is not valid.", "fields": response.data}
    else:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        body = {"code": _code(exc), "message": str(detail)}
    body.update(getattr(exc, "extra", None) or {})
    response.data = {"error": body}
    return response


def _not_json(request) -> exceptions.UnsupportedMediaType:
    """A body of another type than JSON, said with what to send: DRF's own message names only what was sent.
    application/*+json types are refused too; merge-patch+json, for one, means a change and not a whole body."""
    media_type = getattr(request, "content_type", "") or ""
    sent = f'Content-Type "{media_type}"' if media_type else "no Content-Type"
    detail = f"the body must be JSON, sent with Content-Type: application/json; this request has {sent}"
    return exceptions.UnsupportedMediaType(media_type, detail=detail)


def django_error_fields(error: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ValidationError as field -> messages; errors without a field come under "non_field_errors"."""
    if hasattr(error, "error_dict"):
        return error.message_dict
    return {"non_field_errors": error.messages}


def django_error_codes(error: DjangoValidationError) -> list[str]:
    """The codes of a Django ValidationError's refusals that have one ("team_budget_spent", "needs_authority"),
    each once, in order: a CRM can act on a code (ask a team lead) where it would have to parse English text."""
    problems = (
        [problem for problems in error.error_dict.values() for problem in problems]
        if hasattr(error, "error_dict")
        else list(error.error_list)
    )
    codes = [problem.code for problem in problems if problem.code and problem.code != "invalid"]
    return list(dict.fromkeys(codes))


def _code(exc) -> str:
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    return codes if isinstance(codes, str) else getattr(exc, "default_code", "error")


def server_error(request) -> HttpResponse:
    """Django's last answer to an error nothing else handled (a database or cache that cannot be reached), logged
    with its traceback before this runs. Under the API it keeps the JSON shape a CRM parses, and says what is
    known: the request may or may not have been stored."""
    if not request.path.startswith(API_PREFIX):
        return defaults.server_error(request)
    message = (
        "The service failed while answering; the failure is logged. Whether a write was stored is not known: send "
        "it again with the same Idempotency-Key, or read it back, before sending it without one."
    )
    return _error_json("server_error", message, status=500)


API_PREFIX = "/api/"


@csrf_exempt  # a CRM's POST to a mistyped path gets this JSON 404, not the HTML page of a failed CSRF check
def not_found_json(request, exception=None) -> JsonResponse:
    """Any path under the API that names no operation: a JSON 404 like every other API error, pointing to the
    operation a missing final slash left out."""
    message = f"no API operation at {request.path}"
    if not request.path.endswith("/") and _names_an_operation(request.path + "/"):
        message += f"; did you mean {request.path}/ (with the final slash)?"
    return _error_json("not_found", message, status=status.HTTP_404_NOT_FOUND)


def _error_json(code: str, message: str, *, status: int) -> JsonResponse:
    """The API's error shape for an answer Django gives outside DRF's views (no such path, an unhandled error)."""
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _names_an_operation(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return match.func is not not_found_json


class Unprocessable(exceptions.APIException):
    """Well formed, but the data cannot be used: an unknown reference, a rule of the domain, no trained model."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request is well formed but cannot be processed."
    default_code = "unprocessable"

    def __init__(self, detail=None, *, fields: dict | None = None, refusals: list[str] | None = None, **extra) -> None:
        super().__init__(detail)
        self.extra = {name: value for name, value in (("fields", fields), ("refusals", refusals)) if value}
        self.extra.update(extra)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with an earlier one."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is larger than this operation accepts."
    default_code = "too_large"


class InvalidRecords(exceptions.APIException):
    """Some records of a bulk request are invalid; the response lists each one and nothing is stored."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_records"

    def __init__(self, records: list[dict], *, received: int) -> None:
        super().__init__(f"{len(records)} of {received} records are not valid; nothing was stored.")
        self.extra = {"records": records}


# --- how errors look in the OpenAPI schema --------------------------------------------------------------------


class InvalidRecordOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the record in the request, from 0.")
    external_id = serializers.CharField(allow_null=True)
    fields = serializers.JSONField(help_text="Per field, what is wrong; nested for contracts and events.")


class BestTariffOutput(serializers.Serializer):
    """The best-tariff advice: in a recommendation, and with a refusal for a customer who objected to profiling."""

    code = serializers.CharField()
    name = serializers.CharField()
    monthly_fee_cents = serializers.IntegerField(help_text="What the tariff costs a month today.")
    yearly_saving_cents = serializers.IntegerField(
        allow_null=True,
        help_text="What moving to the tariff saves a year against fee_after_contract_end_cents (0 when the customer "
        "will pay no more than the tariff); null when the records hold no fee for the customer.",
    )
    current_fee_cents = serializers.IntegerField(
        allow_null=True,
        help_text="What the customer pays a month now, any running discount taken off; null when unknown, and in "
        "advice stored before it was given.",
    )
    fee_after_contract_end_cents = serializers.IntegerField(
        allow_null=True,
        help_text="What the customer will pay a month once their contract ends if nothing changes: the current fee "
        "plus any discount that ends by then. The saving and price parity count from this fee. Null when unknown, and "
        "in advice stored before it was given.",
    )


class ErrorBodyOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, conflict, throttled, ...")
    message = serializers.CharField()
    fields = serializers.JSONField(required=False, help_text="Per input field, what is wrong with it.")
    refusals = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="422 from a rule of the domain: each rule's code, e.g. needs_authority, beyond_authority, "
        "over_team_budget, team_budget_spent, hold_ended, offer_withdrawn, customer_budget_spent, declined_recently, "
        "accepted_recently, "
        "another_offer_accepted, offer_stands_accepted, already_answered, already_escalated, "
        "call_already_escalated, escalation_by_lead, override_reason_needed, not_an_override, unknown_offer, "
        "offer_needed, offer_not_expected, just_logged, customer_erased, profiling_objection, former_customer.",
    )
    best_tariff = BestTariffOutput(
        required=False,
        allow_null=True,
        help_text="With profiling_objection: the best-tariff advice still owed to the customer (as in a "
        "recommendation), or null when no tariff covers their products.",
    )
    records = InvalidRecordOutput(many=True, required=False, help_text="Bulk requests: every invalid record.")


class ErrorOutput(serializers.Serializer):
    error = ErrorBodyOutput()
