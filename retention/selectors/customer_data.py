"""Everything the service holds on one customer, for a request to see it (GDPR article 15)."""

from __future__ import annotations

import datetime as dt
import uuid

from django.utils import timezone

from retention.models import Customer, Decision, DecisionAction, ProtectedAttributes, ScoringJob

# What the customer is told of how the advice about them is made (article 15(1)(h)), in both languages.
HOW_ADVICE_IS_MADE = {
    "nl": (
        "Als u belt over het verlengen van uw contract, schat een model hoe groot de kans is dat u vertrekt, op "
        "grond van uw contracten, prijzen, producten, regio, klantsoort en contacten met ons (klachten, storingen, "
        "vragen, NPS-antwoorden), en van de overige gegevens die ons klantsysteem over u doorgeeft (hieronder "
        "onder 'attributes'). Beschermde kenmerken zoals leeftijd of geslacht houden we buiten het model; die "
        "bewaren we alleen om te controleren dat klanten gelijk behandeld worden. Daarna rangschikt de dienst de "
        "aanbiedingen waarop u recht hebt naar wat ze naar verwachting voor u en ons opleveren. De medewerker "
        "beslist wat u wordt aangeboden; de dienst adviseert alleen. Een klein deel van de adviezen wordt "
        "willekeurig gekozen, zodat we leren welke aanbiedingen werken. U kunt altijd bezwaar maken tegen deze "
        "profilering; daarna maken we geen score en geen advies meer over u en wordt geen nieuw model meer met uw "
        "gegevens getraind (het model dat op dat moment in gebruik is, werd eerder getraind)."
    ),
    "en": (
        "When you call about renewing your contract, a model estimates how likely you are to leave, from your "
        "contracts, prices, products, region, customer type and contacts with us (complaints, outages, questions, "
        "NPS answers), and from the other facts our customer system passes on about you (under 'attributes' "
        "below). We keep protected characteristics such as age or gender out of the model; we keep those only to "
        "check that customers are treated alike. The service then ranks the offers you may get by what they are "
        "expected to be worth to you and to us. The agent decides what you are offered; the service only advises. "
        "A small share of advice is chosen at random, so we learn which offers work. You may object to this "
        "profiling at any time; from then on we make no score and no advice about you, and no new model is "
        "trained on your data (the model in use at that moment was trained before)."
    ),
}
CUSTOMER_FIELDS = (
    "external_id", "display_name", "phone", "segment", "value_tier", "signup_date", "region", "products",
    "attributes", "objects_to_profiling", "created_at", "updated_at",
)  # fmt: skip
CONTRACT_FIELDS = (
    "bundle", "contract_type", "monthly_fee_cents", "start_date", "end_date", "discount_cents", "discount_end",
    "status",
)  # fmt: skip
EVENT_FIELDS = ("kind", "occurred_at", "value", "note")
DECISION_FIELDS = (
    "id", "created_at", "channel", "reason", "features", "churn_probability", "risk_band", "reasons", "offers",
    "recommended_offer_code", "best_tariff", "explored", "control_group",
)  # fmt: skip
# What each offer in a decision says of it and of the customer; what it is worth to the company, its propensity and
# the authority it needs are the service's own.
OFFER_FIELDS = ("code", "title", "kind", "cost_cents", "expected_acceptance")


def customer_data_export(*, customer: Customer, now: dt.datetime | None = None) -> dict:
    """The customer's record, protected values, contracts, service events, every piece of advice made about them
    with what was logged on it, their renewal results and when their data was consulted: JSON-ready (dates as ISO
    8601, money in cents).

    Who logged an action is given as its role (an agent, the CRM), not by name: that is the staff's data."""
    protected = ProtectedAttributes.objects.filter(customer=customer).values_list("values", flat=True).first()
    decisions = Decision.objects.filter(customer=customer).order_by("created_at", "pk")
    actions = DecisionAction.objects.filter(decision__customer=customer).order_by("created_at", "pk")
    by_decision: dict = {}
    for action in actions:
        by_decision.setdefault(action.decision_id, []).append(_action(action))
    return _json_ready(
        {
            "exported_at": now or timezone.now(),
            "customer": {name: getattr(customer, name) for name in CUSTOMER_FIELDS},
            "protected": protected or {},
            "contracts": list(customer.contracts.order_by("start_date", "pk").values(*CONTRACT_FIELDS)),
            "service_events": list(customer.events.order_by("occurred_at", "pk").values(*EVENT_FIELDS)),
            "advice": [_decision(decision, by_decision.get(decision.pk, [])) for decision in decisions],
            "renewal_results": list(customer.renewal_results.order_by("date", "pk").values("date", "result")),
            "scoring_jobs_naming_them": _scoring_jobs_naming(customer.external_id),
            "consultations": _consultations(customer),
            "how_advice_is_made": HOW_ADVICE_IS_MADE,
        }
    )


def _consultations(customer: Customer) -> list[dict]:
    """When their data was opened or read and why (kept ACCESS_LOG_DAYS): by our staff (an agent, team lead or
    administrator) or a CRM, not by the staff member's name."""
    accesses = customer.accesses.order_by("at", "pk").values_list("at", "purpose", "user_id")
    return [{"at": at, "purpose": purpose, "by": "staff" if user_id else "crm"} for at, purpose, user_id in accesses]


def _scoring_jobs_naming(external_id: str) -> list[dict]:
    """The stored batch-scoring jobs a CRM asked about this customer by name (a job for every customer names none,
    though its result holds them until it is removed)."""
    jobs = (
        ScoringJob.objects.filter(customer_ids__isnull=False)
        .order_by("created_at")
        .only("pk", "customer_ids", "created_at", "status")
    )
    return [
        {"id": job.pk, "created_at": job.created_at, "status": job.status}
        for job in jobs
        if external_id in job.customer_ids
    ]


def _decision(decision: Decision, actions: list[dict]) -> dict:
    values = {name: getattr(decision, name) for name in DECISION_FIELDS}
    values["reasons"] = [reason.get("text") or reason.get("code") for reason in decision.reasons or []]
    values["offers"] = [{name: offer.get(name) for name in OFFER_FIELDS} for offer in decision.offers or []]
    values["actions"] = actions
    return values


def _action(action: DecisionAction) -> dict:
    logged_by = "agent" if action.agent_id else "crm" if action.api_client_id else ""
    return {
        "kind": action.kind,
        "offer_code": action.offer_code,
        "override_reason": action.override_reason,
        "cost_cents": action.cost_cents,
        "logged_at": action.created_at,
        "logged_by": logged_by,
    }


def _json_ready(value):
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
