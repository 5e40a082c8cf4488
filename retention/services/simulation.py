"""Writes of the synthetic customer base: its customers (through `customers_upsert`), its hidden truth, and
retention calls played on it through the services the panel uses.

The truth (ml.CustomerTruth) is written only here and read only by the simulator and the calls played here:
no model or page may look at it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import islice

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ml.models import CustomerTruth
from ml.simulate import OFFER_KINDS, PERSONAS, SOON_DAYS, SimulatedCustomer, TariffSpec, simulate_base
from retention.models import Contract, Customer, Decision, DecisionAction, Tariff
from retention.selectors.catalog import tariff_spec
from retention.services.customers import customers_upsert
from retention.services.decisions import decision_action_record, decision_create

BATCH_SIZE = 1000
TRUTH_FIELDS = ["persona", "leave_probability", "offer_effects", "pushiness"]


@dataclass(frozen=True)
class GenerationSummary:
    customers: int
    created: int
    labelled: int
    churned: int
    ending_soon: int
    seconds: float

    @property
    def churn_rate(self) -> float:
        return self.churned / self.labelled if self.labelled else 0.0


def base_generate(*, n: int, seed: int, today: date | None = None) -> GenerationSummary:
    """Simulate `n` customers against today's tariffs and store them with their truth.

    Precondition: the Tariff table holds the catalog (run seed_demo first). The same seed
    gives the same customers, so running it again updates rows instead of adding any.
    """
    started = time.monotonic()
    today = today or timezone.localdate()
    simulated = simulate_base(n=n, seed=seed, today=today, tariffs=_tariff_specs())
    stored = customers_upsert(records=[customer.record for customer in simulated], source="simulation")
    truths_store(customers=simulated)
    labelled = [customer for customer in simulated if customer.labelled]
    return GenerationSummary(
        customers=len(simulated),
        created=stored.created,
        labelled=len(labelled),
        churned=sum(customer.record.renewals[-1].result == "churned" for customer in labelled),
        ending_soon=sum(today < customer.renewal_date <= today + timedelta(days=SOON_DAYS) for customer in simulated),
        seconds=time.monotonic() - started,
    )


def _tariff_specs() -> dict[str, TariffSpec]:
    specs = {tariff.code: tariff_spec(tariff) for tariff in Tariff.objects.all()}
    if not specs:
        raise ValidationError("there are no tariffs to simulate customers with: run `manage.py seed_demo` first")
    return specs


@transaction.atomic
def truths_store(*, customers: Sequence[SimulatedCustomer]) -> int:
    """Create or replace the hidden truth of each simulated customer; returns how many were stored.

    Precondition: the customers are stored already (by external id); a missing one, or a
    truth out of range, raises ValidationError and nothing is stored.
    """
    for customer in customers:
        if errors := truth_errors(customer):
            raise ValidationError({customer.record.external_id: errors})
    ids = _customer_ids([customer.record.external_id for customer in customers])
    rows = [
        CustomerTruth(
            customer_id=ids[customer.record.external_id],
            persona=customer.persona,
            leave_probability=customer.leave_probability,
            offer_effects=customer.offer_effects,
            pushiness=customer.pushiness,
        )
        for customer in customers
    ]
    CustomerTruth.objects.bulk_create(
        rows, batch_size=BATCH_SIZE, update_conflicts=True, unique_fields=["customer"], update_fields=TRUTH_FIELDS
    )
    return len(rows)


def truth_errors(customer: SimulatedCustomer) -> list[str]:
    """What is wrong with a simulated customer's truth; empty when it can be stored."""
    errors = []
    if customer.persona not in PERSONAS:
        errors.append(f"persona must be one of {', '.join(PERSONAS)}, not {customer.persona!r}")
    if not 0.0 <= customer.leave_probability <= 1.0:
        errors.append(f"leave_probability must be between 0 and 1, not {customer.leave_probability}")
    if not 0.0 <= customer.pushiness <= 1.0:
        errors.append(f"pushiness must be between 0 and 1, not {customer.pushiness}")
    if set(customer.offer_effects) != set(OFFER_KINDS):
        errors.append(f"offer_effects must name exactly {', '.join(OFFER_KINDS)}")
    elif not all(0.0 <= effect <= 1.0 for effect in customer.offer_effects.values()):
        errors.append("offer_effects must lie between 0 and 1")
    return errors


def _customer_ids(external_ids: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for batch in _batches(external_ids, BATCH_SIZE):
        ids.update(Customer.objects.filter(external_id__in=batch).values_list("external_id", "pk"))
    missing = [external_id for external_id in external_ids if external_id not in ids]
    if missing:
        raise ValidationError(
            f"{len(missing)} simulated customers are not stored (first: {', '.join(missing[:5])}); "
            "store them with customers_upsert before their truth"
        )
    return ids


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


# --- calls played on the synthetic base ------------------------------------------------------------------------

# A customer this insistent (the truth's pushiness, 0 to 1) asks for more than the advice, and gets it from the
# agent half of the time: what agents do today, which the review pages' overrides and fairness report then show.
INSISTENT = 0.75
GIVES_IN = 0.5


@dataclass(frozen=True)
class CallsSummary:
    calls: int
    presented: int
    insisted: int  # offers made other than the advice, at the customer's insistence
    accepted: int
    declined: int
    seconds: float


def calls_play(*, calls: int, seed: int, agents: Sequence[AbstractBaseUser]) -> CallsSummary:
    """Retention calls on the synthetic base through the services the panel uses, in the agents' names in turn.

    Each call asks for advice on a customer whose contract ends within SOON_DAYS and who has had none yet,
    makes the recommended offer (or, for an insistent customer, sometimes the dearest the agent may make), and
    logs the customer's answer as their hidden truth gives it: with an offer of a kind that removes a share s
    of their chance p to leave, they stay with chance 1 - p(1 - s), and accept the offer if they stay. With
    no offer to make the call logs no action. Renewal results are not written: those come when the contracts end.
    """
    if calls < 1:
        raise ValidationError("the number of calls must be at least 1")
    if not agents:
        raise ValidationError("calls need at least one agent with an agent profile")
    rng = np.random.default_rng(seed)
    played = presented = insisted = accepted = 0
    started = time.monotonic()
    for number, truth in enumerate(_callers(calls, rng)):
        agent = agents[number % len(agents)]
        decision = decision_create(customer=truth.customer, channel=Decision.Channel.PHONE, agent=agent)
        offer, override = _offer_made(decision, truth, rng)
        played += 1
        if offer is None:
            decision_action_record(decision=decision, kind=DecisionAction.Kind.NO_ACTION, agent=agent)
            continue
        decision_action_record(
            decision=decision, kind=DecisionAction.Kind.PRESENTED, offer_code=offer["code"], override_reason=override,
            agent=agent,
        )  # fmt: skip
        presented += 1
        insisted += bool(override)
        stays = rng.random() < 1.0 - truth.leave_probability * (1.0 - truth.offer_effects.get(offer["kind"], 0.0))
        answer = DecisionAction.Kind.ACCEPTED if stays else DecisionAction.Kind.DECLINED
        decision_action_record(decision=decision, kind=answer, offer_code=offer["code"], agent=agent)
        accepted += stays
    return CallsSummary(
        calls=played,
        presented=presented,
        insisted=insisted,
        accepted=accepted,
        declined=presented - accepted,
        seconds=time.monotonic() - started,
    )


def _callers(calls: int, rng: np.random.Generator) -> list[CustomerTruth]:
    """Up to `calls` customers, drawn at random, whose contract ends soon and who have had no advice yet; one who
    objected to profiling gets no advice, so is no such call."""
    today = timezone.localdate()
    truths = list(
        CustomerTruth.objects.select_related("customer")
        .filter(
            customer__objects_to_profiling=False,
            customer__contracts__status=Contract.Status.ACTIVE,
            customer__contracts__end_date__gt=today,
            customer__contracts__end_date__lte=today + timedelta(days=SOON_DAYS),
        )
        .exclude(customer__decisions__isnull=False)
        .distinct()
        .order_by("customer__external_id")
    )
    if not truths:
        raise ValidationError(
            "no customer of the synthetic base has a contract ending soon and no advice yet: "
            "run `manage.py generate_customers` first"
        )
    picked = rng.choice(len(truths), size=min(calls, len(truths)), replace=False)
    return [truths[position] for position in sorted(picked)]


def _offer_made(decision: Decision, truth: CustomerTruth, rng: np.random.Generator) -> tuple[dict | None, str]:
    """The offer the agent makes and, when it is not the advice, the reason logged for it."""
    recommended = decision.offer(decision.recommended_offer_code)
    if truth.pushiness >= INSISTENT and rng.random() < GIVES_IN:
        makeable = [o for o in decision.offers if not o["needs_escalation"]]
        dearest = max(makeable, key=lambda offer: offer["cost_cents"], default=None)
        if dearest is not None and dearest is not recommended:
            return dearest, DecisionAction.OverrideReason.CUSTOMER_REQUEST
    return recommended, ""
