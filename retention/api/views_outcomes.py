"""POST /api/v1/outcomes/: what happened to a recommendation, recorded once per Idempotency-Key."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from retention.api.base import REPLAY_HEADER, AgentField, ApiView, StrictInput, TextUUIDField, idempotency_key_from
from retention.api.errors import Conflict, Unprocessable, django_error_codes, django_error_fields
from retention.api.schema import IDEMPOTENCY_KEY, WRITE_ERRORS, responses
from retention.models import Decision, DecisionAction
from retention.services.api_clients import api_client_check_speaks_for
from retention.services.outcomes import OUTCOME_RESULTS, IdempotencyConflict, outcome_record


class OutcomeInput(StrictInput):
    input_name = "an outcome"

    recommendation_id = TextUUIDField(help_text="The `id` of the recommendation the outcome is about.")
    offer_code = serializers.CharField(
        max_length=50, allow_null=True, allow_blank=True, help_text="The offer it is about; null for no offer."
    )
    result = serializers.ChoiceField(choices=OUTCOME_RESULTS)
    agent = AgentField()
    override_reason = serializers.ChoiceField(
        choices=DecisionAction.OverrideReason.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text=(
            "Why an offer other than the recommended one was made, so team leads see it among the overrides: "
            "needed when such an offer is presented, or accepted without having been presented on this "
            "recommendation (422 otherwise); refused (422) for the recommended offer."
        ),
    )


class OutcomeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    recommendation_id = serializers.UUIDField()
    offer_code = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(choices=OUTCOME_RESULTS)
    agent = serializers.CharField(allow_null=True)
    override_reason = serializers.CharField(allow_blank=True)
    cost_cents = serializers.IntegerField(help_text="What the accepted offer costs; 0 otherwise.")
    created_at = serializers.DateTimeField()


def outcome_json(action: DecisionAction) -> dict:
    """The answer is built from the stored row alone, so every replay gets exactly the first answer."""
    return {
        "id": action.pk,
        "recommendation_id": action.decision_id,
        "offer_code": action.offer_code or None,
        "result": action.kind,
        "agent": action.agent.get_username() if action.agent else None,
        "override_reason": action.override_reason,
        "cost_cents": action.cost_cents,
        "created_at": action.created_at,
    }


class OutcomeCreateView(ApiView):
    required_scope = "write_outcomes"

    @extend_schema(
        request=OutcomeInput,
        parameters=[IDEMPOTENCY_KEY],
        responses=responses({201: OutcomeOutput}, *WRITE_ERRORS, 404, 409, 422),
        operation_id="outcomes_create",
        description=(
            "Appends the outcome to the recommendation's log. A replay with the same Idempotency-Key and body "
            "returns the first answer (201, same body, header Idempotent-Replayed: true) and stores nothing. A key "
            "is taken once an outcome is stored under it: a refused request (4xx) stores nothing and leaves its key "
            "free for the corrected request. "
            "An acceptance is refused with 422 when another offer stands accepted on the recommendation, when the "
            "offer needs authority nobody with it gave, when the customer accepted the same offer on another "
            "recommendation within the policy's recent_offer_days, or when it would take what the customer "
            "accepted this month past the per-customer budget; an offer made (presented) meets the same customer "
            "rules, and the team's budget as it stands now unless a team lead makes it. An acceptance of an offer "
            "never presented checks the team's budget too."
        ),
    )
    def post(self, request):
        key = idempotency_key_from(request, required=True)
        data = OutcomeInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        decision = Decision.objects.filter(pk=values["recommendation_id"]).defer("features").first()
        if decision is None:
            raise NotFound(f"no recommendation with id {values['recommendation_id']}")
        api_client_check_speaks_for(request.auth, agent=values["agent"], decision=decision)
        try:
            recorded = outcome_record(
                decision=decision,
                result=values["result"],
                offer_code=values["offer_code"] or "",
                override_reason=values["override_reason"],
                agent=values["agent"],
                api_client=request.auth,
                idempotency_key=key,
            )
        except IdempotencyConflict as error:
            raise Conflict(str(error)) from error
        except DjangoValidationError as error:
            # The service names the action's kind, which this operation takes as `result`.
            fields = {
                ("result" if name == "kind" else name): messages
                for name, messages in django_error_fields(error).items()
            }
            raise Unprocessable(
                "The outcome does not fit the recommendation.", fields=fields, refusals=django_error_codes(error)
            ) from error
        headers = {REPLAY_HEADER: "true"} if recorded.replayed else {}
        body = OutcomeOutput(outcome_json(recorded.action)).data
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)
