"""Every API error as JSON: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.views import exception_handler


def json_exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        body = {"error": {"code": "invalid", "message": "The request is not valid.", "fields": response.data}}
    else:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        body = {"error": {"code": code, "message": str(detail)}}
    response.data = body
    return response


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request is well formed but cannot be processed."
    default_code = "unprocessable"
