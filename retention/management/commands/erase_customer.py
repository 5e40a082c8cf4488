from __future__ import annotations

import getpass

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from retention.management import arguments
from retention.selectors.panel import customer_get
from retention.services.erasure import customer_erase


class Command(BaseCommand):
    help = (
        "Erase one customer's personal data at their request (GDPR article 17): name, phone, region, signup "
        "date, products, CRM attributes, protected values, contracts, service events and what each piece of "
        "advice recorded of them. Their advice, the offers and their outcomes stay, under a number no one can "
        "trace back, so the team budgets and the save rates stay whole. Cannot be undone. The CRM sending the "
        "customer again stores nothing until `allow_customer_again` lets them back."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", type=arguments.external_id, help="The customer's number in the CRM.")
        parser.add_argument("--reference", default="", help="The request's reference, e.g. a ticket number.")
        parser.add_argument(
            "--no-input", "--noinput", action="store_false", dest="interactive", help="Do not ask to confirm."
        )

    def handle(self, *args, external_id: str, reference: str, interactive: bool, **options):
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise CommandError(
                f"no customer with external id {external_id!r}: it is unknown, or the customer's data was erased "
                "(the admin's Erasures list them with their references)"
            )
        if interactive and not _confirmed(external_id, customer.display_name):
            raise CommandError("nothing erased: answer y or yes to erase")
        try:
            erasure = customer_erase(
                customer=customer, requested_by=f"command line ({getpass.getuser()})", reference=reference
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        removed = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in erasure.removed.items())
        self.stdout.write(f"erased the personal data of {external_id}: {removed}")
        self.stdout.write(
            f"a record the CRM sends again for {external_id} is left out until `allow_customer_again {external_id}`"
        )


def _confirmed(external_id: str, name: str) -> bool:
    who = f"{external_id} ({name})" if name else external_id
    try:
        answer = input(f"Erase the personal data of {who}? This cannot be undone. [y/N] ")
        return answer.strip().lower() in {"y", "yes", "j", "ja"}
    except EOFError:
        raise CommandError("nothing erased: no one could confirm it here; run it with --no-input") from None
