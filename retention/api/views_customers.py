"""POST /api/v1/customers/bulk/ (upsert up to 10,000 customers, all or nothing), GET /api/v1/customers/{id}/ and
DELETE /api/v1/customers/{id}/ (erase the customer's personal data at their request)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DomainValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from retention.api.base import ApiView, BulkApiView, StrictInput, query_values, refuse_unknown_keys, stored_text
from retention.api.customer_input import CustomerRecordInput, customer_record
from retention.api.errors import InvalidRecords, PayloadTooLarge
from retention.api.schema import READ_ERRORS, WRITE_ERRORS, responses
from retention.models import ApiClient, Contract, CustomerAccess, RenewalResult
from retention.records import CustomerRecord
from retention.selectors.api import customer_contracts, customer_with_latest_risk
from retention.selectors.panel import customer_get
from retention.services.access_log import accesses_record
from retention.services.api_clients import api_client_team_ids
from retention.services.customers import customers_upsert, record_errors
from retention.services.erasure import customer_erase

MAX_RECORDS = 10_000


class CustomerBulkInput(StrictInput):
    input_name = "a bulk upsert"

    customers = CustomerRecordInput(many=True, allow_empty=False, max_length=MAX_RECORDS)


# The envelope's keys, read once: the records in it are checked one by one below, not by this serializer.
BULK_FIELDS = list(CustomerBulkInput._declared_fields)


class CustomerBulkOutput(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="Customers whose own fields changed.")
    unchanged = serializers.IntegerField(
        help_text="Customers whose own fields were already as sent; their contracts and events are counted apart."
    )
    contracts = serializers.IntegerField(help_text="Contracts created or changed.")
    events = serializers.IntegerField(help_text="Service events added.")
    erased = serializers.IntegerField(
        help_text=(
            "Customers erased at their request (DELETE /customers/{external_id}/ or manage.py erase_customer), whose "
            "records were not stored."
        )
    )
    erased_ids = serializers.ListField(
        child=serializers.CharField(), help_text="Their external ids, so the CRM can stop sending them."
    )


BULK_ADDRESS = "bulk"


class CustomerBulkUpsertView(BulkApiView):
    required_scope = "write_customers"

    def initial(self, request, *args, **kwargs):
        # This is also the address of the customer numbered "bulk", which none can be (the id is refused here):
        # reading or erasing them answers, once the client is known, as for any customer not found.
        if request.method in ("GET", "DELETE"):
            self.perform_authentication(request)
            if request.auth is None:
                self.permission_denied(request)  # 401, as every operation answers without a valid token
            raise NotFound(f"no customer with external id {BULK_ADDRESS!r}")
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request=CustomerBulkInput,
        responses=responses({200: CustomerBulkOutput}, *WRITE_ERRORS),
        operation_id="customers_bulk_upsert",
        description=(
            f"Create or update up to {MAX_RECORDS:,} customers by external_id. All or nothing: when any record is "
            "invalid the answer is 400 listing every invalid record, and nothing is stored. A customer sent twice "
            "in one request is refused as an invalid record. A record is the customer's whole state, not a change: "
            "a field it leaves out is stored empty (attributes and protected attributes included), so send every "
            "field each time; only objects_to_profiling left out keeps what is stored. Contracts and events are "
            "added or matched (by start date; by kind and time), never removed. A customer erased at their request "
            "is not stored again: their record is left out and counted in erased, with its id in erased_ids, until "
            "`manage.py allow_customer_again` lets them back. No parameter goes in the address."
        ),
    )
    def post(self, request):
        items = _record_items(request.data)
        records = _valid_records(items)
        with transaction.atomic():  # customers_upsert commits per batch; one outer transaction makes it all or none
            summary = customers_upsert(records=records, source=RenewalResult.Source.CRM)
        body = {
            "received": len(records),
            "created": summary.created,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
            "contracts": summary.contracts,
            "events": summary.events,
            "erased": len(summary.erased),
            "erased_ids": summary.erased,
        }
        return Response(CustomerBulkOutput(body).data)


def _record_items(data) -> list:
    """The list of records, refused at once when the envelope is wrong or holds too many."""
    refuse_unknown_keys(data, known=BULK_FIELDS, input_name=CustomerBulkInput.input_name)
    items = data.get("customers") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValidationError({"customers": ["expected a list of customer records"]})
    if len(items) > MAX_RECORDS:
        raise PayloadTooLarge(f"{len(items):,} records; send at most {MAX_RECORDS:,} per request")
    if not items:
        raise ValidationError({"customers": ["the list is empty"]})
    return items


def _valid_records(items: list) -> list[CustomerRecord]:
    """Every record checked; when any is invalid, InvalidRecords lists each one with its field errors."""
    checker = CustomerRecordInput()
    today = timezone.localdate()
    records, invalid = [], []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            record = customer_record(checker.run_validation(item), today=today)
        except serializers.ValidationError as error:
            invalid.append(_invalid(index, item, error.detail))
            continue
        if problems := record_errors(record):
            invalid.append(_invalid(index, item, problems))
        # A record is the customer's whole state: two in one request leave nothing to say which is right.
        if (earlier := first_index.setdefault(record.external_id, index)) != index:
            invalid.append(_invalid(index, item, {"external_id": [f"repeats record {earlier} of this request"]}))
        records.append(record)
    if invalid:
        raise InvalidRecords(invalid, received=len(items))
    return records


def _invalid(index: int, item: object, fields) -> dict:
    external_id = item.get("external_id") if isinstance(item, dict) else None
    if not isinstance(fields, dict):
        fields = {"non_field_errors": fields}
    # Repeated as it would be stored: a whole number as its digits, as the record would be kept under them; another
    # number made into text ("1e+20") would name a customer the CRM never had, so none is named.
    return {"index": index, "external_id": stored_text(external_id), "fields": fields}


class LatestRiskOutput(serializers.Serializer):
    recommendation_id = serializers.UUIDField()
    churn_probability = serializers.FloatField()
    risk_band = serializers.ChoiceField(choices=["low", "medium", "high"])
    created_at = serializers.DateTimeField()


class ContractOutput(serializers.Serializer):
    bundle = serializers.CharField()
    contract_type = serializers.CharField()
    monthly_fee_cents = serializers.IntegerField()
    discount_cents = serializers.IntegerField(help_text="The monthly discount, in cents.")
    discount_end = serializers.DateField(allow_null=True)
    start_date = serializers.DateField(allow_null=True)
    end_date = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=Contract.Status.choices)


class CustomerOutput(serializers.Serializer):
    external_id = serializers.CharField()
    display_name = serializers.CharField()
    phone = serializers.CharField()
    segment = serializers.CharField()
    value_tier = serializers.CharField()
    signup_date = serializers.DateField(allow_null=True)
    region = serializers.CharField()
    products = serializers.ListField(child=serializers.CharField())
    attributes = serializers.DictField(help_text="The CRM fields kept as model features.")
    objects_to_profiling = serializers.BooleanField(
        help_text="The customer objected to profiling for offers: no score, no advice, no part in training."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    latest_risk = LatestRiskOutput(
        allow_null=True,
        help_text="From the newest recommendation this client may see (a client bound to teams: theirs, and those "
        "it asked for without an agent); null before any, and for a customer who objected to profiling.",
    )
    contracts = ContractOutput(
        many=True, help_text="As stored, newest first: what a bulk upsert of this customer replaced or kept."
    )


SHOWN_FIELDS = [name for name in CustomerOutput._declared_fields if name not in {"latest_risk", "contracts"}]


class ErasureOutput(serializers.Serializer):
    erased = serializers.BooleanField()
    erased_at = serializers.DateTimeField()
    reference = serializers.CharField(help_text="The request's reference, as recorded with the erasure.")
    removed = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Rows removed or emptied, by kind: contracts, service_events, protected_attributes, "
        "decision_snapshots (their features, reasons and call reason), admin_history and scoring_job_rows "
        "(the customer's rows in stored batch-scoring results, blanked in place).",
    )


class CustomerDetailView(ApiView):
    @property
    def required_scope(self) -> str:
        return ApiClient.Scope.ERASE_CUSTOMERS if self.request.method == "DELETE" else ApiClient.Scope.READ

    @extend_schema(
        responses=responses({200: CustomerOutput}, *READ_ERRORS, 404),
        operation_id="customers_retrieve",
    )
    def get(self, request, external_id: str):
        customer = customer_with_latest_risk(external_id=external_id, api_client=request.auth)
        if customer is None:
            raise NotFound(f"no customer with external id {external_id!r}")
        body = {**_customer_json(customer), "contracts": customer_contracts(customer=customer)}
        accesses_record(customers=[customer], purpose=CustomerAccess.Purpose.RECORD, reader=request.auth)
        return Response(CustomerOutput(body).data)

    @extend_schema(
        responses=responses({200: ErasureOutput}, *WRITE_ERRORS, 404),
        operation_id="customers_erase",
        parameters=[
            OpenApiParameter(
                "reference",
                str,
                OpenApiParameter.QUERY,
                required=False,
                description="The erasure request's reference (a ticket number), up to 100 characters.",
            )
        ],
        description=(
            "Erase the customer's personal data at their request (GDPR article 17): name, phone, region, signup "
            "date, products, attributes, protected values, contracts, service events and what each recommendation "
            "recorded of them. Their recommendations, the offers and their outcomes stay under a number no one can "
            "trace back, so team budgets and save rates stay whole; the external id is then unknown (404). Needs "
            "the `erase_customers` scope and a client for every team. Cannot be undone. Sending the customer again "
            "afterwards stores nothing (see the bulk upsert's erased_ids) until `manage.py allow_customer_again` "
            "lets them back; only a digest of the id, keyed with the site's secret, is kept for that. "
            "`?reference=` records the request's "
            "reference (a ticket number, up to 100 characters) with the erasure."
        ),
    )
    def delete(self, request, external_id: str):
        if api_client_team_ids(request.auth):
            raise PermissionDenied("Only an API client for every team may erase customers.")
        # Checked before anything is erased: a misspelt parameter would otherwise lose the request's reference.
        refuse_unknown_keys(query_values(request), known=["reference"], input_name="an erasure's parameters")
        if request.body:
            raise ValidationError({"body": ["give the reference as ?reference=, not in a body"]})
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise NotFound(f"no customer with external id {external_id!r}")
        try:
            erasure = customer_erase(
                customer=customer,
                requested_by=f"API client {request.auth.name}",
                reference=request.query_params.get("reference", ""),
            )
        except DomainValidationError as error:
            raise ValidationError({"reference" if error.code == "reference" else "customer": error.messages}) from error
        body = {
            "erased": True,
            "erased_at": erasure.erased_at,
            "reference": erasure.reference,
            "removed": erasure.removed,
        }
        return Response(ErasureOutput(body).data)


def _customer_json(customer) -> dict:
    latest = None
    # A customer who objected to profiling is not described by a score any more, an earlier one included.
    if customer.latest_decision_id is not None and not customer.objects_to_profiling:
        latest = {
            "recommendation_id": customer.latest_decision_id,
            "churn_probability": round(customer.latest_churn_probability, 4),
            "risk_band": customer.latest_risk_band,
            "created_at": customer.latest_decided_at,
        }
    return {**{name: getattr(customer, name) for name in SHOWN_FIELDS}, "latest_risk": latest}
