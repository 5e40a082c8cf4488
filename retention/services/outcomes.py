"""Outcomes reported by a CRM system: what happened to a recommendation, recorded exactly once per key.

A CRM retries when it does not hear back, so every outcome carries a key of the client's choosing.
Keys are kept per API client (two integrations may pick the same key without clashing); the first
outcome stored under a key is the answer to every replay, and a replay that says something else is
refused rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from retention.models import ApiClient, Decision, DecisionAction
from retention.services.decisions import IdempotencyConflict, IdempotencyKeyTaken, decision_action_record

OUTCOME_RESULTS = (
    DecisionAction.Kind.PRESENTED,
    DecisionAction.Kind.ACCEPTED,
    DecisionAction.Kind.DECLINED,
    DecisionAction.Kind.THINKING,
    DecisionAction.Kind.ESCALATED,
    DecisionAction.Kind.NO_ACTION,
    DecisionAction.Kind.UNDONE,
)
# The stored key is "api:<client id>:<key>" in a column of 100 characters.
MAX_CLIENT_KEY_LENGTH = 80


@dataclass(frozen=True)
class RecordedOutcome:
    action: DecisionAction
    replayed: bool  # True when the key had been used before and nothing new was written


def outcome_record(
    *,
    decision: Decision,
    result: str,
    offer_code: str,
    agent: AbstractBaseUser | None,
    api_client: ApiClient,
    idempotency_key: str,
    override_reason: str = "",
) -> RecordedOutcome:
    """Append the outcome to the decision log once; a replay with the same key and body returns the first row.

    Raises ValidationError when the outcome does not fit the decision (e.g. an offer it never ranked),
    and IdempotencyConflict when the key already stands for a different outcome.
    """
    key = stored_idempotency_key(api_client=api_client, key=idempotency_key)
    wanted = (decision.pk, result, offer_code, agent.pk if agent else None, override_reason)
    existing = _stored_under(key)
    if existing is None:
        try:
            action = decision_action_record(
                decision=decision,
                kind=result,
                offer_code=offer_code,
                override_reason=override_reason,
                agent=agent,
                api_client=api_client,
                idempotency_key=key,
            )
            return RecordedOutcome(action=action, replayed=False)
        except IdempotencyKeyTaken as taken:
            # A request with the same key, sent at the same moment, stored its outcome first.
            existing = taken.action
    _refuse_different(existing, wanted)
    return RecordedOutcome(action=existing, replayed=True)


def _stored_under(key: str) -> DecisionAction | None:
    return DecisionAction.objects.filter(idempotency_key=key).first()


def stored_idempotency_key(*, api_client: ApiClient, key: str) -> str:
    if not key or len(key) > MAX_CLIENT_KEY_LENGTH:
        raise ValueError(f"an idempotency key has 1 to {MAX_CLIENT_KEY_LENGTH} characters")
    return f"api:{api_client.pk}:{key}"


def _refuse_different(action: DecisionAction, wanted: tuple) -> None:
    if (action.decision_id, action.kind, action.offer_code, action.agent_id, action.override_reason) != wanted:
        raise IdempotencyConflict("this Idempotency-Key was used before for a different outcome")
