from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention.services.erasure import erased_customer_allow


class Command(BaseCommand):
    help = (
        "Let the CRM store again a customer erased at their request, for instance when they come back and agree: "
        "until then a record sent with their external id is left out. Their next record is stored as a new "
        "customer; nothing erased comes back."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", help="The customer's number in the CRM, as it was when they were erased.")

    def handle(self, *args, external_id: str, **options):
        erasure = erased_customer_allow(external_id=external_id)
        if erasure is None:
            raise CommandError(
                f"{external_id!r} is not the id of a customer erased at their request: nothing refuses it (check "
                "its spelling; a customer erased for the retention period, or before erasures refused ids, is "
                "stored again as it is sent)"
            )
        when = timezone.localtime(erasure.erased_at)
        reference = f", reference {erasure.reference}" if erasure.reference else ""
        self.stdout.write(
            f"{external_id} (erased {when:%Y-%m-%d %H:%M %Z}{reference}) may be stored again: the CRM's next record "
            "of them is stored as a new customer"
        )
