"""Writes of the synthetic customer base: its customers (through `customers_upsert`) and its hidden truth.

The truth (ml.CustomerTruth) is written only here and read only by the simulator:
no model or page may look at it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ml.models import CustomerTruth
from ml.simulate import OFFER_KINDS, PERSONAS, SOON_DAYS, SimulatedCustomer, TariffSpec, simulate_base
from retention.models import Customer, Tariff
from retention.selectors.catalog import tariff_spec
from retention.services.customers import customers_upsert

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
    today = today or timezone.now().date()
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
