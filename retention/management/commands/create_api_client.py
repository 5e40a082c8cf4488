from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from retention.services.api_clients import api_client_create


class Command(BaseCommand):
    help = "Create an API client for a CRM integration and print its token once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes", required=True, help="Comma-separated: read,score,write_customers,write_outcomes,erase_customers"
        )
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            dest="teams",
            help="A team the client speaks for (repeatable): it may then name only their agents and log outcomes "
            "only on their advice. Without it, every team.",
        )

    def handle(self, *args, name: str, scopes: str, teams: list[str], **options):
        # The command speaks English; Django's own messages (a name taken, a blank field) would otherwise come in
        # the site's default language. They are rendered when read, so inside the override too.
        with translation.override("en"):
            try:
                client, token = api_client_create(
                    name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()], teams=teams
                )
            except ValidationError as error:
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from error
        speaks_for = ", ".join(sorted(teams)) if teams else "every team"
        self.stdout.write(f"API client {client.name!r} with scopes {', '.join(client.scopes)}, for {speaks_for}")
        self.stdout.write("Token (shown once, store it now):")
        self.stdout.write(token)
