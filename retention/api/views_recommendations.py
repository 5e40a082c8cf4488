"""POST /api/v1/recommendations/: score a customer and rank the offers, as the panel does."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from ml.registry import NoChampion
from retention.api.base import REPLAY_HEADER, AgentField, ApiView, StrictInput, idempotency_key_from
from retention.api.errors import BestTariffOutput, Conflict, Unprocessable
from retention.api.schema import OPTIONAL_IDEMPOTENCY_KEY, WRITE_ERRORS, responses
from retention.models import Customer, CustomerAccess, Decision
from retention.selectors.budget import team_budget_status
from retention.services.access_log import accesses_record
from retention.services.api_clients import api_client_check_speaks_for
from retention.services.decisions import (
    FormerCustomer,
    IdempotencyConflict,
    ProfilingObjection,
    decision_create,
    decision_create_once,
)
from retention.services.outcomes import stored_idempotency_key

DEFAULT_OFFER_LIMIT = 3


class RecommendationInput(StrictInput):
    input_name = "a recommendation request"

    customer_id = serializers.CharField(min_length=1, max_length=100, help_text="The customer's external id.")
    channel = serializers.ChoiceField(choices=Decision.Channel.choices)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    agent = AgentField()
    limit = serializers.IntegerField(
        min_value=0,
        max_value=100,
        required=False,
        default=DEFAULT_OFFER_LIMIT,
        help_text="How many of the best offers to list (the recommended offer is listed too, even when it ranks "
        "lower); 0 lists every eligible offer.",
    )
    language = serializers.ChoiceField(choices=["nl", "en"], required=False, default="nl")


class ReasonOutput(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()
    impact = serializers.FloatField(help_text="Contribution to the log-odds of leaving; positive raises the risk.")


class OfferOutput(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=["discount", "gift", "upgrade", "service_recovery"])
    expected_acceptance = serializers.FloatField(help_text="Chance the customer stays with this offer.")
    expected_net_value_cents = serializers.IntegerField(
        help_text="Margin kept over horizon_months beyond making no offer, minus the offer's cost; negative when the "
        "offer costs more than it is expected to keep."
    )
    cost_cents = serializers.IntegerField()
    authority_level = serializers.IntegerField(help_text="The offer's level in the catalog.")
    required_authority_level = serializers.IntegerField(
        allow_null=True,
        default=None,
        help_text="The lowest authority level whose discount and cost limits take this offer at this cost: whoever "
        "makes it needs at least this level (null: no level's limits take it, so nobody may make it).",
    )
    needs_escalation = serializers.BooleanField(
        help_text="Someone with more authority must make it: above the agent's authority (see "
        "required_authority_level), or over the team's budget (a team lead), or both."
    )
    within_authority = serializers.BooleanField(default=True, help_text="Within the asking agent's authority.")
    over_team_budget = serializers.BooleanField(
        default=False, help_text="Costs more than the agent's team has left of this month's budget."
    )
    propensity = serializers.FloatField()


class TeamBudgetOutput(serializers.Serializer):
    team = serializers.CharField()
    budget_cents = serializers.IntegerField()
    spent_cents = serializers.IntegerField(help_text="The cost of the offers accepted this calendar month.")
    held_cents = serializers.IntegerField(
        help_text="The cost of offers made and still waiting for the customer's answer, within the policy's "
        "offer_hold_days: their yes is honoured, so this is not given away again."
    )
    remaining_cents = serializers.IntegerField(help_text="The budget less what was spent and what is held, at least 0.")
    overspent_cents = serializers.IntegerField(
        help_text="What was spent and is held beyond the budget (a team lead's offers over it), else 0."
    )
    status = serializers.ChoiceField(
        choices=["green", "amber", "red"],
        help_text="green below 75% of the budget spent or held, amber below 100%, red from 100%.",
    )


class RecommendationOutput(serializers.Serializer):
    id = serializers.UUIDField()
    customer_id = serializers.CharField()
    churn_probability = serializers.FloatField()
    risk_band = serializers.ChoiceField(choices=["low", "medium", "high"])
    reasons = ReasonOutput(many=True)
    recommended_offer = serializers.CharField(allow_null=True)
    no_offer_needed = serializers.BooleanField(
        help_text="Making no offer is worth most: no offer the agent may make is expected to keep more than it costs. "
        "False when an offer is recommended, when none is only because this decision explores or the customer "
        "is in the control group, and when no offer could be priced (renewal_fee_cents null)."
    )
    stay_probability_without_offer = serializers.FloatField(
        allow_null=True,
        help_text="Chance the customer stays with no offer, which every offer's value is counted against.",
    )
    horizon_months = serializers.IntegerField(
        allow_null=True, help_text="Months of margin the offers' expected_net_value_cents count."
    )
    renewal_fee_cents = serializers.IntegerField(
        allow_null=True,
        help_text="The monthly fee the customer renews at before any offer, which every offer is priced on; null "
        "when no contract with a fee is known (then no offer is ranked, and no_offer_needed is false). With "
        "price parity, a customer at risk renews at no more than a new customer pays for the same bundle, nor more "
        "than best_tariff; an offer never leaves the customer paying more in its first year than best_tariff would.",
    )
    explored = serializers.BooleanField(
        help_text="This decision explores: recommended_offer was drawn among the eligible offers (with the "
        "propensity its offer carries), not the offer worth most, so the policy keeps learning. Keyed on the "
        "customer and the day, so asking again the same day draws the same."
    )
    control_group = serializers.BooleanField(
        help_text="The customer is in the random control group, which gets the default treatment (no offer)."
    )
    team_budget = TeamBudgetOutput(
        allow_null=True, help_text="This month's budget of the team the advice is for; null when it is for no team."
    )
    offers = OfferOutput(many=True)
    best_tariff = BestTariffOutput(allow_null=True)
    model_version = serializers.CharField(help_text="The churn model version that scored the customer.")
    response_model_version = serializers.CharField(
        allow_null=True,
        help_text="The offer-response model version that estimated each offer's chance to keep the customer; null "
        "when none served and the catalog's priors did.",
    )
    policy_version = serializers.IntegerField()
    created_at = serializers.DateTimeField()


def recommendation_json(decision: Decision, *, language: str, limit: int) -> dict:
    offers = decision.offers_shown(limit=limit)
    return {
        "id": decision.id,
        "customer_id": decision.customer.external_id,
        "churn_probability": round(decision.churn_probability, 4),
        "risk_band": decision.risk_band,
        "reasons": [{**reason, "text": reason["text"][language]} for reason in decision.reasons],
        "recommended_offer": decision.recommended_offer_code or None,
        "no_offer_needed": decision.no_offer_needed,
        "stay_probability_without_offer": _rounded(decision.stay_probability_without_offer),
        "horizon_months": decision.horizon_months,
        "renewal_fee_cents": decision.priced_on_cents,
        "explored": decision.explored,
        "control_group": decision.control_group,
        "team_budget": _team_budget(decision),
        "offers": [{**offer, "title": offer["title"][language]} for offer in offers],
        "best_tariff": decision.best_tariff,
        "model_version": decision.model_versions["churn"],
        "response_model_version": decision.model_versions.get("acceptance"),
        "policy_version": decision.policy_version,
        "created_at": decision.created_at,
    }


def _team_budget(decision: Decision) -> dict | None:
    if decision.team is None:
        return None
    status = team_budget_status(team=decision.team)
    return {
        "team": status.team_name,
        "budget_cents": status.budget_cents,
        "spent_cents": status.spent_cents,
        "held_cents": status.held_cents,
        "remaining_cents": status.remaining_cents,
        "overspent_cents": status.overspent_cents,
        "status": status.level,
    }


def _rounded(probability: float | None) -> float | None:
    return None if probability is None else round(probability, 4)


class RecommendationCreateView(ApiView):
    required_scope = "score"

    @extend_schema(
        request=RecommendationInput,
        parameters=[OPTIONAL_IDEMPOTENCY_KEY],
        responses=responses({201: RecommendationOutput}, *WRITE_ERRORS, 404, 409, 422),
        operation_id="recommendations_create",
        description=(
            "Scores the customer now, ranks the offers for the agent named (or without one) and stores the whole "
            "decision, which outcomes then refer to. Any exploration is drawn per customer and local day: asking "
            "again for the same customer the same day, on any channel and for any agent, draws the same. A customer "
            "who objected to profiling gets no advice: 422 with the refusal profiling_objection and, in best_tariff, "
            "the best-tariff advice still owed to them; nothing is stored. A former customer (their latest renewal "
            "result says they churned, and no contract since) gets none either: 422 with the refusal former_customer."
        ),
    )
    def post(self, request):
        data = RecommendationInput(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        customer = Customer.objects.not_erased().filter(external_id=values["customer_id"]).first()
        if customer is None:
            raise NotFound(f"no customer with external id {values['customer_id']!r}")
        api_client_check_speaks_for(request.auth, agent=values["agent"])
        key = idempotency_key_from(request, required=False)
        asked = {"customer": customer, "channel": values["channel"], "agent": values["agent"]}
        replayed = False
        try:
            if key is None:
                decision = decision_create(**asked, api_client=request.auth, reason=values["reason"])
            else:
                stored_key = stored_idempotency_key(api_client=request.auth, key=key)
                decision, replayed = decision_create_once(
                    idempotency_key=stored_key, **asked, api_client=request.auth, reason=values["reason"]
                )
        except IdempotencyConflict as error:
            raise Conflict(str(error)) from error
        except NoChampion as error:
            raise Unprocessable(str(error)) from error
        except ProfilingObjection as objection:
            # No advice, but the best tariff, read from their products and fee, goes back: that is a read of them.
            accesses_record(customers=[customer], purpose=CustomerAccess.Purpose.ADVICE, reader=request.auth)
            raise Unprocessable(
                str(objection), refusals=["profiling_objection"], best_tariff=objection.best_tariff
            ) from objection
        except FormerCustomer as former:
            raise Unprocessable(str(former), refusals=["former_customer"]) from former
        body = recommendation_json(decision, language=values["language"], limit=values["limit"])
        accesses_record(customers=[customer], purpose=CustomerAccess.Purpose.ADVICE, reader=request.auth)
        headers = {REPLAY_HEADER: "true"} if replayed else {}
        return Response(RecommendationOutput(body).data, status=status.HTTP_201_CREATED, headers=headers)
