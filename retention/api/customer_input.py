"""The customer record of the bulk API: its fields, their checks, and its translation into a CustomerRecord.

The fields are those of a CRM file mapping (see retention/mapping.py): the core fields, `attributes`
that become model features, `protected` attributes kept only for fairness reports, plus the contract
history and service events. Amounts come in euros, as a number or a string ("29.95"); dates as ISO 8601.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal

from django.utils import timezone
from django.utils.dateparse import date_re, datetime_re, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.schema import MAX_FEATURE_MAGNITUDE
from retention.api.base import StrictInput, TextOnlyField
from retention.models import Contract, Customer, ServiceEvent
from retention.records import (
    MAX_TENURE_DAYS,
    MAX_TENURE_MONTHS,
    ContractRecord,
    CustomerRecord,
    EventRecord,
    looks_protected,
    signup_from_tenure,
)

FIRST_DATE = dt.date(1900, 1, 1)
LAST_DATE = dt.date(2100, 12, 31)
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_KEY = 100
MAX_ATTRIBUTE_TEXT = 1_000
MAX_CONTRACTS = 100
MAX_EVENTS = 1_000
MAX_EVENT_VALUE = 1_000_000
SCALAR_SCHEMA = {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True}


class ExistingDateField(serializers.DateField):
    """An ISO 8601 date; one well written that names no day (2020-02-30) is refused as such, not as a wrong
    format, which would send the CRM's developer looking for a formatting fault."""

    def to_internal_value(self, value) -> dt.date:
        if isinstance(value, str) and (problem := missing_day_problem(value, date_re)):
            raise serializers.ValidationError(problem)
        return super().to_internal_value(value)


class BoundedDateField(ExistingDateField):
    """An ISO 8601 date between 1900 and 2100: anything else is a typo in the CRM."""

    def to_internal_value(self, value) -> dt.date:
        day = super().to_internal_value(value)
        if not FIRST_DATE <= day <= LAST_DATE:
            raise serializers.ValidationError(f"must be between {FIRST_DATE} and {LAST_DATE}")
        return day


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 moment with its UTC offset, returned in UTC; a time without an offset is ambiguous."""

    def __init__(self, **kwargs) -> None:
        super().__init__(default_timezone=dt.UTC, **kwargs)

    def to_internal_value(self, value) -> dt.datetime:
        if isinstance(value, str) and (problem := missing_day_problem(value, datetime_re)):
            raise serializers.ValidationError(problem)
        if isinstance(value, str) and _is_naive(value):
            raise serializers.ValidationError("needs a UTC offset, e.g. 2024-03-31T14:05:00+02:00 or ...Z")
        moment = super().to_internal_value(value)
        if not FIRST_DATE.year <= moment.year <= LAST_DATE.year:
            raise serializers.ValidationError(f"must be between {FIRST_DATE.year} and {LAST_DATE.year}")
        return moment


def missing_day_problem(text: str, pattern: re.Pattern) -> str:
    """Why a value written as an ISO 8601 date (or moment, by `pattern`) names no day that exists, such as
    2020-02-30; "" when it names one, or is not written as one at all (the field then says the format is wrong)."""
    written = pattern.match(text)
    if written is None:
        return ""
    year, month, day = (int(written[part]) for part in ("year", "month", "day"))
    if year < 1:
        reason = "there is no year 0"
    elif not 1 <= month <= 12:
        reason = f"there is no month {month}"
    elif not 1 <= day <= (days := calendar.monthrange(year, month)[1]):
        reason = f"{calendar.month_name[month]} {year} has {days} days" if day else "there is no day 0"
    else:
        return ""
    return f"the date {text[: written.end('day')]} does not exist: {reason}"


def _is_naive(text: str) -> bool:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return False  # well formed but impossible (e.g. 30 February): the field itself reports it
    return parsed is not None and timezone.is_naive(parsed)


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON booleans only: a legal objection is not read from "yes", 1 or "0"."""

    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError("must be true or false")
        return data


class EurosField(serializers.DecimalField):
    """An amount in euros with at most two decimals, as a JSON number or string."""

    default_error_messages = {
        # Said as the amount it is, as the schema gives it, rather than as a count of digits.
        "max_digits": "must be less than 10,000,000 euros",
        "max_whole_digits": "must be less than 10,000,000 euros",
    }

    def __init__(self, **kwargs) -> None:
        super().__init__(max_digits=9, decimal_places=2, min_value=Decimal(0), coerce_to_string=False, **kwargs)


def euros_to_cents(amount: Decimal) -> int:
    return int(amount * 100)


def text_field(max_length: int, **kwargs) -> serializers.CharField:
    """Optional text: missing, null and "" all mean not known."""
    return serializers.CharField(max_length=max_length, allow_blank=True, allow_null=True, default="", **kwargs)


@extend_schema_field({"type": "object", "additionalProperties": SCALAR_SCHEMA})
class ScalarMapField(serializers.Field):
    """A JSON object of plain values (text, numbers, true/false, null): one model feature per key."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("default", dict)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> dict:
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object of names and plain values")
        if len(data) > MAX_ATTRIBUTES:
            raise serializers.ValidationError(f"at most {MAX_ATTRIBUTES} names")
        problems = [problem for key, value in data.items() if (problem := _scalar_problem(key, value))]
        if problems:
            raise serializers.ValidationError(problems)
        return dict(data)

    def to_representation(self, value) -> dict:
        return value


def _scalar_problem(key: str, value: object) -> str:
    if not key or len(key) > MAX_ATTRIBUTE_KEY or not storable_text(key):
        return f"name {key[:40]!r} must be 1 to {MAX_ATTRIBUTE_KEY} characters of text"
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        # NaN and infinity are refused too: neither is "at most" anything.
        if abs(value) <= MAX_FEATURE_MAGNITUDE:
            return ""
        return f"{key}: must be a finite number of at most {MAX_FEATURE_MAGNITUDE:.0e} either way"
    if isinstance(value, str):
        return "" if len(value) <= MAX_ATTRIBUTE_TEXT and storable_text(value) else f"{key}: text too long or unusable"
    return f"{key}: must be text, a number, true/false or null, not a list or object"


def storable_text(text: str) -> bool:
    """No NUL characters (PostgreSQL refuses them) and no lone surrogates (no encoding can store them)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ContractInput(StrictInput):
    input_name = "a contract"

    monthly_fee = EurosField(help_text="What the contract costs a month before any discount, in euros.")
    bundle = text_field(50, help_text="Tariff code of the bundle.")
    contract_type = text_field(50)
    start_date = BoundedDateField(required=False, allow_null=True, default=None)
    end_date = BoundedDateField(required=False, allow_null=True, default=None)
    discount = EurosField(required=False, default=Decimal(0), help_text="Monthly discount running, in euros.")
    discount_end = BoundedDateField(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=Contract.Status.choices, default=Contract.Status.ACTIVE)

    def validate(self, data: dict) -> dict:
        if data["start_date"] and data["end_date"] and data["end_date"] < data["start_date"]:
            raise serializers.ValidationError({"end_date": [f"is before the start date {data['start_date']}"]})
        if data["discount"] > data["monthly_fee"]:
            # The customer would be paid to stay: no renewal fee, and no offer, could be priced on that.
            raise serializers.ValidationError(
                {"discount": [f"is more than the monthly fee of {data['monthly_fee']} euros"]}
            )
        return data


# A CRM's clock may run a little ahead of ours; an event further ahead has not happened yet.
EVENT_CLOCK_SKEW = dt.timedelta(minutes=5)


class EventInput(StrictInput):
    input_name = "an event"

    kind = serializers.ChoiceField(choices=ServiceEvent.Kind.choices)
    occurred_at = AwareDateTimeField(help_text="With its UTC offset.")
    value = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=-MAX_EVENT_VALUE,
        max_value=MAX_EVENT_VALUE,
        help_text="NPS score 0-10, or outage hours.",
    )
    note = text_field(300)

    def validate(self, data: dict) -> dict:
        """An event the churn model reads must be one that can have happened: its reasons would quote it."""
        value, kind = data["value"], data["kind"]
        if kind == ServiceEvent.Kind.NPS and value is None:
            raise serializers.ValidationError({"value": ["an NPS answer needs its score, 0 to 10"]})
        if kind == ServiceEvent.Kind.NPS and not 0 <= value <= 10:
            raise serializers.ValidationError({"value": [f"an NPS score is 0 to 10, not {value:g}"]})
        if kind == ServiceEvent.Kind.OUTAGE and value is not None and value < 0:
            raise serializers.ValidationError({"value": [f"outage hours cannot be negative ({value:g})"]})
        if data["occurred_at"] > timezone.now() + EVENT_CLOCK_SKEW:
            raise serializers.ValidationError({"occurred_at": ["is in the future"]})
        return data


class CustomerRecordInput(StrictInput):
    """One customer. Every record replaces the stored core fields of the customer with the same external_id;
    contracts are matched by start date and events by kind and time, so sending a record again changes nothing."""

    input_name = "a customer record"

    external_id = serializers.CharField(max_length=100, help_text="The CRM's id of the customer.")
    display_name = text_field(200)
    phone = text_field(40)
    segment = serializers.ChoiceField(choices=Customer.Segment.choices, default=Customer.Segment.CONSUMER)
    value_tier = serializers.ChoiceField(
        choices=Customer.ValueTier.choices, allow_blank=True, allow_null=True, default=""
    )
    signup_date = BoundedDateField(required=False, allow_null=True, default=None)
    tenure_months = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=MAX_TENURE_MONTHS,
        help_text="Months as a customer, counted back from today when no signup_date is given.",
    )
    monthly_fee = EurosField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The current contract's monthly fee in euros; with contract_type and contract_end it describes "
        "the current contract. Leave it out when `contracts` lists the contracts.",
    )
    contract_type = text_field(50)
    contract_end = BoundedDateField(required=False, allow_null=True, default=None)
    products = serializers.ListField(
        child=TextOnlyField(max_length=30), max_length=20, default=list, help_text="e.g. internet, tv, mobile"
    )
    region = text_field(100)
    attributes = ScalarMapField(required=False, help_text="Any other CRM fields; each one is a model feature.")
    protected = ScalarMapField(
        required=False, help_text="Protected attributes (age, gender, ...): only for fairness reports, never a feature."
    )
    objects_to_profiling = StrictBooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: the customer objected to profiling for offers (no score, no advice, no part in training); "
        "false lifts the objection; left out or null keeps what is stored.",
    )
    contracts = ContractInput(many=True, required=False, default=list, max_length=MAX_CONTRACTS)
    events = EventInput(many=True, required=False, default=list, max_length=MAX_EVENTS)

    def validate(self, data: dict) -> dict:
        _keep_protected_apart(data)
        if data["monthly_fee"] is None and (data["contract_type"] or data["contract_end"]):
            raise serializers.ValidationError({"monthly_fee": ["is needed with contract_type or contract_end"]})
        if data["monthly_fee"] is not None and data["contracts"]:
            raise serializers.ValidationError(
                {"contracts": ["give the current contract either as monthly_fee or in contracts, not both"]}
            )
        if data["signup_date"] and data["signup_date"] > timezone.localdate():
            raise serializers.ValidationError({"signup_date": ["is in the future"]})
        if data["signup_date"] and (timezone.localdate() - data["signup_date"]).days > MAX_TENURE_DAYS:
            # As a file's row is refused: a tenure of more than a century is a typo.
            raise serializers.ValidationError(
                {"signup_date": [f"is more than {MAX_TENURE_MONTHS:,} months ago: no customer stays a century"]}
            )
        _check_contracts_after_signup(data)
        _check_one_contract_per_start(data["contracts"])
        return data


def _check_contracts_after_signup(data: dict) -> None:
    """A contract that ended before the customer signed up is a typo in one of the dates; its renewal result
    would be refused later as dated before the signup."""
    signup = data["signup_date"]
    ends = [data["contract_end"], *(contract["end_date"] for contract in data["contracts"])]
    if signup and (early := sorted(str(end) for end in ends if end and end < signup)):
        raise serializers.ValidationError(
            {"contracts": [f"a contract ends before the signup {signup}: {', '.join(early)}"]}
        )


def _check_one_contract_per_start(contracts: list[dict]) -> None:
    """Contracts are matched by their start date when a record is sent again: two starting the same day would be
    stored as two contracts, and neither could be told from the other."""
    starts = [str(contract["start_date"]) for contract in contracts if contract["start_date"]]
    if repeated := sorted({start for start in starts if starts.count(start) > 1}):
        raise serializers.ValidationError(
            {"contracts": [f"more than one contract starts on {', '.join(repeated)}: send each contract once"]}
        )


def customer_record(values: dict, *, today: dt.date) -> CustomerRecord:
    """A validated CustomerRecordInput as the record `customers_upsert` stores."""
    return CustomerRecord(
        external_id=values["external_id"],
        display_name=values["display_name"] or "",
        phone=values["phone"] or "",
        segment=values["segment"],
        value_tier=values["value_tier"] or "",
        signup_date=values["signup_date"] or _signup_from_tenure(values["tenure_months"], today),
        region=values["region"] or "",
        products=list(dict.fromkeys(product.strip().lower() for product in values["products"] if product.strip())),
        attributes=values["attributes"],
        protected=values["protected"],
        objects_to_profiling=values["objects_to_profiling"],
        contracts=_contracts(values),
        events=[
            EventRecord(kind=e["kind"], occurred_at=e["occurred_at"], value=e["value"], note=e["note"] or "")
            for e in values["events"]
        ],
    )


def _signup_from_tenure(months: float | None, today: dt.date) -> dt.date | None:
    return None if months is None else signup_from_tenure(months, today)


def _contracts(values: dict) -> list[ContractRecord]:
    if values["monthly_fee"] is not None:
        return [
            ContractRecord(
                monthly_fee_cents=euros_to_cents(values["monthly_fee"]),
                contract_type=values["contract_type"] or "",
                end_date=values["contract_end"],
            )
        ]
    return [
        ContractRecord(
            monthly_fee_cents=euros_to_cents(c["monthly_fee"]),
            bundle=c["bundle"] or "",
            contract_type=c["contract_type"] or "",
            start_date=c["start_date"],
            end_date=c["end_date"],
            discount_cents=euros_to_cents(c["discount"]),
            discount_end=c["discount_end"],
            status=c["status"],
        )
        for c in values["contracts"]
    ]


def _keep_protected_apart(data: dict) -> None:
    """Attributes become model features and sit in the decision log; a protected characteristic never may. One
    sent as an attribute (named like one, or also sent under `protected`) is kept as protected instead; the
    same key with two different values is refused, as nothing says which is right."""
    attributes, protected = dict(data.get("attributes") or {}), dict(data.get("protected") or {})
    apart = [key for key in attributes if looks_protected(key) or key in protected]
    conflicting = [key for key in apart if key in protected and protected[key] != attributes[key]]
    if conflicting:
        raise serializers.ValidationError(
            {"attributes": [f"{key!r} is also sent under `protected`, with another value" for key in conflicting]}
        )
    for key in apart:
        protected[key] = attributes.pop(key)
    if apart:
        data["attributes"], data["protected"] = attributes, protected
