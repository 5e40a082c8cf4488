from __future__ import annotations

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention.management import arguments
from retention.selectors.erased_ids import last_let_back
from retention.services.erasure import erased_customer_allow


class Command(BaseCommand):
    help = (
        "Let the CRM store again a customer erased at their request, for instance when they come back and agree: "
        "until then a record sent with their external id is left out. Their next record is stored as a new "
        "customer; nothing erased comes back. Who let them back, when and on what reference is kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "external_id",
            type=arguments.external_id,
            help="The customer's number in the CRM, as it was when they were erased.",
        )
        parser.add_argument("--reference", default="", help="What they agreed on, e.g. a ticket or contract number.")

    def handle(self, *args, external_id: str, reference: str, **options):
        try:
            lifted = erased_customer_allow(
                external_id=external_id, allowed_by=f"command line ({getpass.getuser()})", reference=reference
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        if not lifted:
            raise CommandError(_nothing_refuses(external_id))
        erasures = "; ".join(_erasure_said(refusal.erasure) for refusal in lifted)
        self.stdout.write(
            f"{external_id} ({erasures}) may be stored again: the CRM's next record of them is stored as a new customer"
        )


def _erasure_said(erasure) -> str:
    said = f"erased {timezone.localtime(erasure.erased_at):%Y-%m-%d %H:%M %Z}"
    return f"{said}, reference {erasure.reference}" if erasure.reference else said


def _nothing_refuses(external_id: str) -> str:
    earlier = last_let_back(external_id)
    if earlier is not None:
        when = timezone.localtime(earlier.allowed_at)
        return f"{external_id!r} was let back already, on {when:%Y-%m-%d %H:%M %Z} by {earlier.allowed_by}"
    return (
        f"{external_id!r} is not the number of a customer erased at their request: nothing refuses it. Numbers are "
        "compared exactly, capitals included; a customer erased for the retention period, or before erasures "
        "refused numbers, is stored again as the CRM sends them"
    )
