"""What every operation of the CRM API shares: token authentication, scopes and per-client throttling."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.utils import translation
from rest_framework import serializers
from rest_framework.exceptions import MethodNotAllowed, PermissionDenied
from rest_framework.views import APIView

from retention.api.errors import PayloadTooLarge
from retention.api.throttling import ApiClientBulkThrottle, ApiClientThrottle
from retention.models import ApiClient
from retention.services.api_clients import api_client_team_ids
from retention.services.decisions import takes_calls
from retention.services.outcomes import MAX_CLIENT_KEY_LENGTH

API_LANGUAGE = "en"  # of messages; reason and offer texts come in the language a request asks for
MAX_BODY_BYTES = 1_000_000
# 10,000 customer records with their contracts and events, or a scoring job naming millions of customers.
MAX_BULK_BODY_BYTES = 50_000_000


class ApiView(APIView):
    """One operation of the CRM API. Subclasses name the scope they need in `required_scope`."""

    throttle_classes = [ApiClientThrottle]
    max_body_bytes = MAX_BODY_BYTES

    def dispatch(self, request, *args, **kwargs):
        # The API speaks English whatever the site's language: its own messages are English, and DRF's
        # (a missing field, a bad choice, throttling) are made into text while the request is handled, so
        # without this a Dutch default would mix the two languages in one error.
        with translation.override(API_LANGUAGE):
            response = super().dispatch(request, *args, **kwargs)
        response.headers["Content-Language"] = API_LANGUAGE
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A method the operation does not have is answered 405 before anything about its request is judged.
        if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
            raise MethodNotAllowed(request.method)
        # The body is read from the stream past Django's DATA_UPLOAD_MAX_MEMORY_SIZE (retention.api.parsers), so this
        # is the limit, checked before a byte is read.
        if _content_length(request) > self.max_body_bytes:
            raise PayloadTooLarge(f"the body is larger than {self.max_body_bytes:,} bytes")
        # A write takes everything from its body: a parameter in the address (a "?dry_run=1" this API does not
        # have, or a ?format= asking for another reply) would otherwise be ignored while the write went ahead.
        if request.method in BODY_METHODS and request.query_params:
            raise serializers.ValidationError(
                {key: ["this operation takes no parameters in its address; send its fields in the body"]
                 for key in sorted(request.query_params)}
            )  # fmt: skip


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BulkApiView(ApiView):
    """An operation on thousands of rows: it also counts against the smaller bulk allowance."""

    throttle_classes = [ApiClientThrottle, ApiClientBulkThrottle]
    max_body_bytes = MAX_BULK_BODY_BYTES


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class StrictInput(serializers.Serializer):
    """A request body whose unknown keys are refused, naming them, instead of dropped: a misspelt optional field
    ("agnet") would otherwise be answered as if it were not sent. `input_name` says what the body is."""

    input_name = "this request"

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            _naming_the_choices(field)
        return fields

    def to_internal_value(self, data):
        # Every problem of the body at once: an unknown key beside a bad value would otherwise take two round trips.
        problems = {
            **unknown_key_problems(data, known=list(self.fields), input_name=self.input_name),
            **_booleans_as_numbers(data, self.fields),
            **_numbers_as_text(data, self.fields),
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not problems or not isinstance(error.detail, dict):
                raise
            problems = {**error.detail, **problems}
            value = None
        if problems:
            raise serializers.ValidationError(problems)
        return value


# Up to this many choices are listed in the refusal of a value that is none of them; the schema lists them all.
CHOICES_LISTED = 20


def _naming_the_choices(field: serializers.Field) -> None:
    """A refused choice says which values are taken ("customer_asked" is not one of customer_request, better_fit,
    ...), so a CRM developer need not look them up in the schema."""
    if not isinstance(field, serializers.ChoiceField) or len(field.choices) > CHOICES_LISTED:
        return
    names = ", ".join(str(choice) for choice in field.choices)
    field.error_messages["invalid_choice"] = f'"{{input}}" is not a valid choice; use one of: {names}.'


# DRF reads true as 1 and false as 0 in a number field: a tenure of `true` would be stored as one month.
NUMBER_FIELDS = (serializers.IntegerField, serializers.FloatField, serializers.DecimalField)


def _booleans_as_numbers(data, fields) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        return {}
    return {
        name: ["must be a number, not true or false"]
        for name, field in fields.items()
        if isinstance(field, NUMBER_FIELDS) and isinstance(data.get(name), bool)
    }


# DRF reads 1e20 as the text "1e+20" in a text field: a customer would be stored under an id no CRM has. The values
# of free attributes (ScalarMapField) may be numbers; they are no CharField, so this leaves them alone. A list of
# texts has TextOnlyField items instead, as this sees only the body's own fields.
def _numbers_as_text(data, fields) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        return {}
    return {
        name: [not_text_problem(data[name])]
        for name, field in fields.items()
        if isinstance(field, serializers.CharField) and _refused_in_text(data.get(name))
    }


class TextOnlyField(serializers.CharField):
    """Text sent as a JSON string, where a number is refused rather than made into text."""

    def to_internal_value(self, data) -> str:
        if _refused_in_text(data):
            raise serializers.ValidationError(not_text_problem(data))
        return super().to_internal_value(data)


def _refused_in_text(value: object) -> bool:
    """A number that is no whole number (1e20 and 12.5 arrive as floats), or true or false: made into text it
    would be stored as what the CRM never had ("1e+20"). A whole number is taken as its digits, as before: many
    CRMs number their customers, and their integrations send the number as it is."""
    return isinstance(value, bool | float)


def stored_text(value: object) -> str | None:
    """A text field's value as it is stored: text as it is, a whole number as its digits; None for anything else."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def not_text_problem(value: object) -> str:
    """What is wrong with `value` where text is expected; "" when it is text."""
    if isinstance(value, str):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        # 1001.0 from a float column of an export: stored before as "1001.0", so not read as 1001 now.
        return f'must be text (a JSON string), not a number with a decimal point: send "{int(value)}" or {int(value)}'
    kind = NOT_TEXT_KINDS.get(type(value), "a number" if isinstance(value, int | float) else "a list or object")
    return f"must be text (a JSON string), not {kind}"


NOT_TEXT_KINDS = {bool: "true or false", type(None): "null", list: "a list", dict: "an object"}


def refuse_unknown_keys(data, *, known: list[str], input_name: str) -> None:
    """ValidationError naming each key of the `data` dict that is not `known`."""
    if problems := unknown_key_problems(data, known=known, input_name=input_name):
        raise serializers.ValidationError(problems)


def unknown_key_problems(data, *, known: list[str], input_name: str) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        return {}
    names = ", ".join(known)
    return {
        str(key): [f"is not a field of {input_name} (known: {names})"]
        for key in sorted(map(str, data))
        if key not in known
    }


# Read by the paginator itself; a list's filters are the other query parameters.
PAGINATION_PARAMETERS = ("cursor", "page_size")


def query_values(request) -> dict[str, str]:
    """A list's filters, from its query parameters, as a plain dict: serializers treat a QueryDict as an HTML form,
    where a missing boolean means false, but a missing filter must mean "no filter". A parameter given twice is
    refused: one value would silently win, and the client would believe it filtered by both."""
    repeated = sorted(key for key, values in request.query_params.lists() if len(values) > 1)
    if repeated:
        raise serializers.ValidationError({key: ["given more than once; give one value"] for key in repeated})
    return {key: value for key, value in request.query_params.dict().items() if key not in PAGINATION_PARAMETERS}


def list_filters(request, filter_input: type[serializers.Serializer]) -> dict:
    """A list's filters, read from its query parameters and checked (a 400 names what is wrong)."""
    filters = filter_input(data=query_values(request))
    filters.is_valid(raise_exception=True)
    return filters.validated_data


def paged_response(view, request, rows, render: Callable[[list], list]):
    """One page of `rows` by the view's pagination, each row as `render` gives the page."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(render(page))


class AgentField(serializers.CharField):
    """An agent's username in; the active user with that name out (or None when not given)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", 150)
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("default", None)
        kwargs.setdefault("help_text", "Username of the agent (or team lead) on the call; not an administrator.")
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        username = super().run_validation(data)
        if username is None:
            return None
        # Only users with an agent profile answer calls: a superuser or a service account without one would carry
        # no team or authority level, and the advice or outcome would be logged in nobody's name.
        agents = (
            get_user_model()
            .objects.filter(username=username, is_active=True, agent_profile__isnull=False)
            .select_related("agent_profile__team")
        )
        if teams := self._client_teams():
            # A client bound to teams learns nothing of who works elsewhere: an agent of another team, an
            # administrator outside its teams and a name nobody has all get the same answer.
            agent = agents.filter(agent_profile__team__in=teams).first()
            if agent is None:
                raise PermissionDenied(f"this API client speaks for no agent named {username!r}")
        else:
            agent = agents.first()
        if agent is None:
            raise serializers.ValidationError(f"no active agent named {username!r}")
        if not takes_calls(agent):
            raise serializers.ValidationError(f"{username!r} is an administrator: name the agent on the call")
        return agent

    def _client_teams(self) -> set[int]:
        client = getattr(self.context.get("request"), "auth", None)
        return api_client_team_ids(client) if isinstance(client, ApiClient) else set()


class TextUUIDField(serializers.UUIDField):
    """A UUID sent as text, as the API gives ids out. DRF would read the number 12345 as the UUID
    00000000-0000-0000-0000-000000003039 and answer 404 for a typo that deserves a 400."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


IDEMPOTENCY_HEADER = "Idempotency-Key"
# Tells a client that this answer is the stored first one, not a new write.
REPLAY_HEADER = "Idempotent-Replayed"


def idempotency_key_from(request, *, required: bool) -> str | None:
    """The request's Idempotency-Key, checked (None when it is optional and not sent)."""
    sent = IDEMPOTENCY_HEADER in request.headers
    if not sent and not required:
        return None
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key:
        raise serializers.ValidationError({IDEMPOTENCY_HEADER: [_blank_key_problem(sent=sent, required=required)]})
    if len(key) > MAX_CLIENT_KEY_LENGTH or not key.isprintable():
        raise serializers.ValidationError(
            {IDEMPOTENCY_HEADER: [f"send a unique key of 1 to {MAX_CLIENT_KEY_LENGTH} printable characters"]}
        )
    return key


def _blank_key_problem(*, sent: bool, required: bool) -> str:
    """A missing key where one is required, or an empty one sent: an empty key is refused rather than taken for
    none, as a CRM sending one believes its retries are recognised."""
    key = f"a unique key of 1 to {MAX_CLIENT_KEY_LENGTH} printable characters per action"
    if not sent:
        return f"this header is required: {key}, so a retried request is recorded once"
    if required:
        return f"this header is required and must not be empty: send {key}, so a retried request is recorded once"
    return f"must not be empty when sent: send {key}, or leave the header out"
