"""Erasing a customer's personal data at their request (GDPR article 17).

The decision log is append-only, and it holds what the team budgets spent, what the offers kept and what
the models learn from; so the customer is not deleted but made anonymous. Their row stays under a random
number no one can trace back to them, without name, phone, region, signup date, products, CRM attributes
or protected values; their contracts and service events (with their notes) are removed; each decision keeps
its scores, offers, propensities and the actions logged on it, but loses the feature values, the reasons in
words and the reason for the call, which describe the person. Renewal results stay, as the save rates count
them; a customer without history trains no model.

This is the one rewrite of the decision log: it is done in one transaction and recorded as an `Erasure`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from retention.models import (
    Contract,
    Customer,
    Decision,
    DecisionAction,
    ErasedCustomerId,
    Erasure,
    ProtectedAttributes,
    ServiceEvent,
)
from retention.selectors.erased_ids import erased_id_digest, erased_ids_among, key_fingerprint
from retention.selectors.retention_period import former_customers_due
from retention.services.scoring_jobs import scoring_jobs_forget

ERASED_ID_PREFIX = "erased-"
MAX_REFERENCE = 100  # Erasure.reference


def customer_erase(*, customer: Customer, requested_by: str, reference: str = "", refuse_again: bool = True) -> Erasure:
    """Make the customer anonymous (see the module's description); refused for one already erased.

    With `refuse_again` (an erasure at the customer's request), the CRM sending their external id again afterwards
    does not store them anew (see `ErasedCustomerId`) until `erased_customer_allow` lets it.
    """
    if not requested_by.strip():
        raise ValidationError("say who had the erasure done", code="requested_by_missing")
    if len(reference.strip()) > MAX_REFERENCE:
        raise ValidationError(
            f"the reference is longer than {MAX_REFERENCE} characters: give the request's number", code="reference"
        )
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if locked.erased_at is not None:
            raise ValidationError(
                f"this customer's data was already erased on {locked.erased_at:%Y-%m-%d}", code="already_erased"
            )
        external_id = locked.external_id
        removed = _remove_personal_data(locked)
        erasure = Erasure.objects.create(
            customer=locked, requested_by=requested_by.strip()[:150], reference=reference.strip(), removed=removed
        )
        if refuse_again:
            _refuse_id_again(external_id, erasure)
    return erasure


def _refuse_id_again(external_id: str, erasure: Erasure) -> None:
    """Keep the CRM from storing the id again, under the current key. Should the id be refused under it already (a
    customer stored under a refused id before anything checked for it), that refusal stays and this erasure adds
    none; one refused only under an earlier key gets a refusal of its own under the current one."""
    match = erased_ids_among([external_id]).get(external_id)
    if match is not None and match.under_current_key is not None:
        return
    ErasedCustomerId.objects.create(digest=erased_id_digest(external_id), key_id=key_fingerprint(), erasure=erasure)


def erased_customer_allow(*, external_id: str, allowed_by: str, reference: str = "") -> list[ErasedCustomerId]:
    """Let the CRM store again a customer erased at their request (they came back and agreed): their next record is
    stored as a new customer, nothing erased comes back. Each refusal of the id stays, saying who let them back,
    when and on what reference. Returns them, earliest first; none when the id was not refused."""
    if not allowed_by.strip():
        raise ValidationError("say who lets the customer back", code="allowed_by_missing")
    if len(reference.strip()) > MAX_REFERENCE:
        raise ValidationError(f"the reference is longer than {MAX_REFERENCE} characters", code="reference")
    # Stripped as the API and CRM files strip an id before it is stored or refused.
    match = erased_ids_among([external_id.strip()]).get(external_id.strip())
    if match is None:
        return []
    # Every refusal of the id, under whichever key: one left in force would still keep the customer out.
    return erased_refusals_lift(match.refusals, allowed_by=allowed_by, reference=reference)


def erased_refusals_lift(
    refusals: Sequence[ErasedCustomerId], *, allowed_by: str, reference: str = ""
) -> list[ErasedCustomerId]:
    """Mark the refusals as no longer in force, saying who lifted them, when and why."""
    lifted = ErasedCustomerId.objects.filter(pk__in=[refusal.pk for refusal in refusals])
    lifted.update(allowed_at=timezone.now(), allowed_by=allowed_by.strip()[:150], allowed_reference=reference.strip())
    return list(lifted.select_related("erasure").order_by("created_at"))


def _remove_personal_data(customer: Customer) -> dict[str, int]:
    removed = {
        "contracts": Contract.objects.filter(customer=customer).delete()[0],
        "service_events": ServiceEvent.objects.filter(customer=customer).delete()[0],
        "protected_attributes": ProtectedAttributes.objects.filter(customer=customer).delete()[0],
        # A queryset update, not `save`: Decision refuses edits, and this is the one its log allows.
        # The best tariff goes with them: it names the bundle that covers the customer's products.
        "decision_snapshots": Decision.objects.filter(customer=customer).update(
            features={}, reasons=[], reason="", best_tariff=None
        ),
        # A CRM's request key often spells the customer's number or the day of a call: it goes too.
        "idempotency_keys": _idempotency_keys_forgotten(customer),
        "admin_history": _admin_history_anonymised(customer),
        # Files, outside the transaction: should the erasure still fail, the rows stay blanked, erring on the
        # side of the customer.
        "scoring_job_rows": scoring_jobs_forget(external_id=customer.external_id),
    }
    customer.external_id = f"{ERASED_ID_PREFIX}{uuid.uuid4().hex}"
    customer.display_name = customer.phone = customer.region = ""
    customer.signup_date = None
    customer.products, customer.attributes = [], {}
    customer.erased_at = timezone.now()
    customer.save()
    return removed


def _idempotency_keys_forgotten(customer: Customer) -> int:
    """Clear the keys CRM requests for the customer's advice and outcomes came with; how many there were."""
    advice = Decision.objects.filter(customer=customer, idempotency_key__isnull=False)
    outcomes = DecisionAction.objects.filter(decision__customer=customer, idempotency_key__isnull=False)
    return advice.update(idempotency_key=None) + outcomes.update(idempotency_key=None)


def _admin_history_anonymised(customer: Customer) -> int:
    """The admin's change history names the object as it was then ("NL1234567 Jan de Vries")."""
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    )
    return entries.update(object_repr=ERASED_ID_PREFIX.rstrip("-"), change_message="")


RETENTION_PERIOD = "retention period"
# A century: a longer period keeps everyone, and its cut-off date would fall before the calendar's first.
MAX_RETENTION_DAYS = 36_500


def retention_days_problem(days: int) -> str:
    """Why `days` cannot be a retention period, or "" when it can: the one check of the command and the service."""
    if 1 <= days <= MAX_RETENTION_DAYS:
        return ""
    return f"must be 1 to {MAX_RETENTION_DAYS:,} days, not {days:,}"


def former_customers_expire(*, days: int, today: dt.date | None = None) -> list[Erasure]:
    """Erase every former customer gone `days` or more with nothing heard since (see `former_customers_due`), each
    as an erasure of their own, recorded as done by the retention period."""
    if problem := retention_days_problem(days):
        raise ValidationError(f"the retention period {problem}", code="retention_days")
    today = today or timezone.localdate()
    erased = []
    for customer in former_customers_due(days=days, today=today):
        try:
            erased.append(
                customer_erase(
                    customer=customer,
                    requested_by=RETENTION_PERIOD,
                    reference=f"left over {days} days ago",
                    # Not at their request: a former customer who signs up again is stored as anyone new.
                    refuse_again=False,
                )
            )
        except ValidationError as error:
            if error.code != "already_erased":  # erased on request meanwhile: nothing left to do for them
                raise
    return erased
