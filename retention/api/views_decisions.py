"""GET /api/v1/decisions/: the decision log with each decision's latest action, filtered and paged."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers

from retention.api.base import ApiView, StrictInput, list_filters, paged_response
from retention.api.customer_input import ExistingDateField
from retention.api.errors import BestTariffOutput
from retention.api.pagination import NewestFirstPagination
from retention.api.schema import READ_ERRORS, responses
from retention.models import Decision, DecisionAction
from retention.selectors.api import NO_OUTCOME, DecisionFilters, decisions_for_review

OUTCOME_CHOICES = [*DecisionAction.Kind.values, NO_OUTCOME]


class DecisionFilterInput(StrictInput):
    input_name = "the decision list's filters"

    agent = serializers.CharField(required=False, max_length=150, help_text="Username of the deciding agent.")
    customer_id = serializers.CharField(required=False, max_length=100, help_text="The customer's external id.")
    date_from = ExistingDateField(required=False, help_text="First day, in the service's time zone.")
    date_to = ExistingDateField(required=False, help_text="Last day, included.")
    outcome = serializers.ChoiceField(
        choices=OUTCOME_CHOICES, required=False, help_text="Kind of the latest action; `none` for no action yet."
    )
    offer = serializers.CharField(required=False, max_length=50, help_text="An action names this offer.")
    recommended_offer = serializers.CharField(required=False, max_length=50)
    override = serializers.BooleanField(
        required=False, help_text="true: an action gave a reason for not following the recommendation."
    )

    def validate(self, data: dict) -> dict:
        if data.get("date_from") and data.get("date_to") and data["date_to"] < data["date_from"]:
            raise serializers.ValidationError({"date_to": ["is before date_from"]})
        return data


class DecisionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    customer_id = serializers.CharField(source="customer.external_id")
    agent = serializers.CharField(source="agent.username", allow_null=True, default=None)
    api_client = serializers.CharField(source="api_client.name", allow_null=True, default=None)
    team = serializers.CharField(source="team.name", allow_null=True, default=None)
    channel = serializers.ChoiceField(choices=Decision.Channel.choices)
    reason = serializers.CharField()
    churn_probability = serializers.SerializerMethodField(
        help_text="null once the customer objected to profiling: their score is no longer read (GDPR article 21(3))."
    )
    risk_band = serializers.SerializerMethodField(help_text="low, medium or high; null as churn_probability is.")
    recommended_offer = serializers.CharField(source="recommended_offer_code", allow_null=True)
    model_version = serializers.CharField(source="model_versions.churn")
    response_model_version = serializers.SerializerMethodField(
        help_text="The offer-response model version that estimated the offers' chances; null when the catalog's "
        "priors did."
    )
    policy_version = serializers.IntegerField()
    explored = serializers.BooleanField(help_text="The recommendation was an exploration pick, not the top offer.")
    control_group = serializers.BooleanField(
        help_text="The customer was in the random control group and got the default treatment (no offer)."
    )
    greedy_offer = serializers.CharField(
        source="greedy_offer_code",
        allow_null=True,
        help_text="What the policy would have recommended without exploration or the control group; null for none.",
    )
    propensity = serializers.FloatField(
        help_text="The chance the policy gave the action it recommended (exploration and control group included): "
        "what off-policy estimates divide by. Each listed offer's own chance is its `propensity` in the advice."
    )
    renewal_fee_cents = serializers.IntegerField(
        source="priced_on_cents",
        allow_null=True,
        help_text="The monthly fee the offers were priced on, after price parity; null if unknown.",
    )
    best_tariff = BestTariffOutput(
        allow_null=True,
        help_text="The best-tariff advice given with the decision, as it stood then (article 105(3) EECC); null when "
        "no tariff covered the customer's products, and once the customer was erased.",
    )
    outcome = serializers.ChoiceField(choices=DecisionAction.Kind.choices, allow_null=True)
    outcome_offer = serializers.CharField(allow_null=True)
    outcome_at = serializers.DateTimeField(allow_null=True)
    accepted_offer = serializers.CharField(
        allow_null=True, help_text="The offer that stands accepted (an acceptance a later decline corrected does not)."
    )
    accepted_cost_cents = serializers.IntegerField(help_text="What the accepted offer costs; 0 without one.")
    charged_team = serializers.CharField(
        allow_null=True,
        help_text="The team whose monthly budget the accepted offer spends: the advice's team, or for advice asked "
        "without an agent, the team of the agent who logged the acceptance; null without one. A client bound to "
        "teams also lists other clients' advice charged to them.",
    )
    override_reason = serializers.ChoiceField(choices=DecisionAction.OverrideReason.choices, allow_null=True)
    created_at = serializers.DateTimeField()

    def get_churn_probability(self, decision) -> float | None:
        return None if decision.customer.objects_to_profiling else decision.churn_probability

    def get_response_model_version(self, decision) -> str | None:
        return decision.model_versions.get("acceptance")

    @extend_schema_field(
        {"type": "string", "enum": ["low", "medium", "high"], "nullable": True}  # what the serializer method gives
    )
    def get_risk_band(self, decision) -> str | None:
        return None if decision.customer.objects_to_profiling else decision.risk_band

    def to_representation(self, decision):
        body = super().to_representation(decision)
        # Empty codes are stored as "", but mean "none".
        for name in ("recommended_offer", "greedy_offer", "outcome_offer", "accepted_offer", "override_reason"):
            body[name] = body[name] or None
        return body


class DecisionListView(ApiView):
    required_scope = "read"
    pagination_class = NewestFirstPagination

    @extend_schema(
        parameters=[DecisionFilterInput],
        responses=responses({200: DecisionOutput(many=True)}, 400, *READ_ERRORS),
        operation_id="decisions_list",
        description="Newest first, paged by cursor (`next`/`previous` links; `page_size` up to 500).",
    )
    def get(self, request):
        filters = DecisionFilters(**list_filters(request, DecisionFilterInput))
        decisions = decisions_for_review(filters=filters, api_client=request.auth)
        return paged_response(self, request, decisions, lambda page: DecisionOutput(page, many=True).data)
