"""GET /api/v1/offers/ (the offer catalog) and GET /api/v1/models/ (the model registry)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from ml.models import ModelVersion, TrainingJob
from retention.api.base import ApiView, StrictInput, list_filters, paged_response
from retention.api.pagination import CodePagination, NewestFirstPagination
from retention.api.schema import READ_ERRORS, responses
from retention.models import Offer
from retention.selectors.api import (
    FALLBACK_TYPICAL_MONTHLY_FEE_CENTS,
    model_versions_listed,
    offers_listed,
    training_jobs_listed,
    typical_monthly_fee_cents,
)
from retention.selectors.catalog import offer_spec


class OfferFilterInput(StrictInput):
    input_name = "the offer list's filters"

    active = serializers.BooleanField(required=False, help_text="true: only offers that can be made today.")
    language = serializers.ChoiceField(choices=["nl", "en"], required=False, default="nl")


class CatalogOfferOutput(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=Offer.Kind.choices)
    terms = serializers.CharField()
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False)
    duration_months = serializers.IntegerField()
    commitment_months = serializers.IntegerField(
        help_text="How long accepting binds the customer to the renewed contract; the best-tariff check compares over "
        "this period, at least a year."
    )
    fixed_cost_cents = serializers.IntegerField()
    cost_cents = serializers.IntegerField(help_text="What the offer costs for a customer paying the typical fee.")
    typical_monthly_fee_cents = serializers.IntegerField(help_text="The fee `cost_cents` assumes.")
    authority_level = serializers.IntegerField(help_text="Lowest authority level that may make the offer.")
    active = serializers.BooleanField(help_text="Switched on and within its dates today.")
    active_from = serializers.DateField(allow_null=True)
    active_until = serializers.DateField(allow_null=True)


def offer_json(offer: Offer, *, language: str, typical_fee_cents: int) -> dict:
    return {
        "code": offer.code,
        "title": getattr(offer, f"title_{language}"),
        "kind": offer.kind,
        "terms": getattr(offer, f"terms_{language}"),
        "discount_percent": offer.discount_percent,
        "duration_months": offer.duration_months,
        "commitment_months": offer.commitment_months,
        "fixed_cost_cents": offer.fixed_cost_cents,
        "cost_cents": offer_spec(offer).cost_cents(typical_fee_cents),
        "typical_monthly_fee_cents": typical_fee_cents,
        "authority_level": offer.authority_level,
        "active": offer.currently_active,
        "active_from": offer.active_from,
        "active_until": offer.active_until,
    }


class OfferListView(ApiView):
    required_scope = "read"
    pagination_class = CodePagination

    @extend_schema(
        parameters=[OfferFilterInput],
        responses=responses({200: CatalogOfferOutput(many=True)}, 400, *READ_ERRORS),
        operation_id="offers_list",
        description=(
            "Every offer of the catalog by code. `cost_cents` is for a typical customer: one paying the median "
            "monthly fee of the active contracts, or "
            f"{FALLBACK_TYPICAL_MONTHLY_FEE_CENTS} cents while there are none."
        ),
    )
    def get(self, request):
        filters = list_filters(request, OfferFilterInput)
        fee = typical_monthly_fee_cents()

        def render(page: list) -> list:
            body = [offer_json(offer, language=filters["language"], typical_fee_cents=fee) for offer in page]
            return CatalogOfferOutput(body, many=True).data

        return paged_response(self, request, offers_listed(active=filters.get("active")), render)


class ModelFilterInput(StrictInput):
    input_name = "the model list's filters"

    kind = serializers.ChoiceField(choices=ModelVersion.Kind.choices, required=False)
    status = serializers.ChoiceField(choices=ModelVersion.Status.choices, required=False)


class ModelVersionOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ModelVersion.Kind.choices)
    version = serializers.IntegerField()
    label = serializers.CharField()
    status = serializers.ChoiceField(choices=ModelVersion.Status.choices)
    metrics = serializers.DictField(help_text="Holdout metrics, e.g. auc, brier.")
    training_window = serializers.DictField(help_text="The period the training rows come from.")
    training_rows = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    promoted_at = serializers.DateTimeField(allow_null=True)


class ModelVersionListView(ApiView):
    required_scope = "read"
    pagination_class = NewestFirstPagination

    @extend_schema(
        parameters=[ModelFilterInput],
        responses=responses({200: ModelVersionOutput(many=True)}, 400, *READ_ERRORS),
        operation_id="models_list",
        description="Every registered model version, newest first.",
    )
    def get(self, request):
        versions = model_versions_listed(**list_filters(request, ModelFilterInput))
        return paged_response(self, request, versions, lambda page: ModelVersionOutput(page, many=True).data)


class TrainingJobFilterInput(StrictInput):
    input_name = "the training job list's filters"

    status = serializers.ChoiceField(choices=TrainingJob.Status.choices, required=False)


class TrainingJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kinds = serializers.ListField(child=serializers.CharField(), help_text="The model kinds it retrains.")
    trigger = serializers.ChoiceField(choices=TrainingJob.Trigger.choices)
    status = serializers.ChoiceField(choices=TrainingJob.Status.choices)
    stage = serializers.CharField(help_text="Where a running job is.")
    percent = serializers.IntegerField()
    error = serializers.CharField(help_text="Why it failed, was refused or was cancelled; empty otherwise.")
    results = serializers.DictField(
        help_text="Per kind: `outcome` (promoted; kept out, the version then `rejected` among the models; or refused, "
        "with no version trained), `version` and the `reason`."
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainingJobListView(ApiView):
    required_scope = "read"
    pagination_class = NewestFirstPagination

    @extend_schema(
        parameters=[TrainingJobFilterInput],
        responses=responses({200: TrainingJobOutput(many=True)}, 400, *READ_ERRORS),
        operation_id="training_jobs_list",
        description="Every retrain, newest first: what started it, how far it is, and what it decided per model kind, "
        "so a CRM sees a retrain that failed or was refused, not only the versions that came of one.",
    )
    def get(self, request):
        jobs = training_jobs_listed(**list_filters(request, TrainingJobFilterInput))
        return paged_response(self, request, jobs, lambda page: [_training_job_json(job) for job in page])


def _training_job_json(job: TrainingJob) -> dict:
    # The per-kind results as the log reads them: the phrases for pages in other languages stay inside.
    results = {kind: {k: v for k, v in result.items() if k != "reason_phrase"} for kind, result in job.results.items()}
    return {**TrainingJobOutput(job).data, "results": results}
