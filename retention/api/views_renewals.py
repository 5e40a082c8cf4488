"""POST /api/v1/renewals/: whether customers renewed or left, one report or a list; repeats change nothing."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from retention.api.base import BulkApiView, StrictInput
from retention.api.customer_input import BoundedDateField
from retention.api.errors import PayloadTooLarge, Unprocessable, django_error_fields
from retention.api.schema import WRITE_ERRORS, responses
from retention.models import RenewalResult
from retention.services.renewals import RenewalReport, renewal_results_record

MAX_REPORTS = 10_000


class RenewalInput(StrictInput):
    input_name = "a renewal report"

    customer_id = serializers.CharField(max_length=100, help_text="The customer's external id.")
    result = serializers.ChoiceField(choices=RenewalResult.Result.choices)
    date = BoundedDateField(help_text="The day the customer renewed or left (ISO 8601).")


class RenewalListInput(serializers.ListSerializer):
    child = RenewalInput()


RENEWAL_REQUEST = PolymorphicProxySerializer(
    component_name="RenewalReports",
    serializers=[RenewalInput, RenewalListInput(allow_empty=False, max_length=MAX_REPORTS)],
    resource_type_field_name=None,
    many=False,
)


class RenewalOutput(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    already_recorded = serializers.IntegerField(
        help_text="Reports of results stored before (or repeated in the list): the same result on the same day, or "
        "within 180 days of it with no other result between (the same renewal reported again)."
    )


class RenewalCreateView(BulkApiView):
    required_scope = "write_outcomes"

    @extend_schema(
        request=RENEWAL_REQUEST,
        responses=responses({201: RenewalOutput}, *WRITE_ERRORS, 422),
        operation_id="renewals_create",
        description=f"One report or a list of up to {MAX_REPORTS:,}; all are stored or none.",
    )
    def post(self, request):
        reports = _reports(request.data)
        try:
            summary = renewal_results_record(reports=reports)
        except DjangoValidationError as error:
            fields = django_error_fields(error)
            raise Unprocessable("Some reports cannot be recorded; none was.", fields=fields) from error
        body = {"received": summary.received, "created": summary.created, "already_recorded": summary.already_recorded}
        return Response(RenewalOutput(body).data, status=status.HTTP_201_CREATED)


def _reports(data) -> list[RenewalReport]:
    if isinstance(data, list) and len(data) > MAX_REPORTS:
        raise PayloadTooLarge(f"{len(data):,} reports; send at most {MAX_REPORTS:,} per request")
    many = isinstance(data, list)
    checked = RenewalInput(data=data, many=many, **({"allow_empty": False} if many else {}))
    checked.is_valid(raise_exception=True)
    values = checked.validated_data if many else [checked.validated_data]
    return [RenewalReport(customer_id=v["customer_id"], result=v["result"], date=v["date"]) for v in values]
