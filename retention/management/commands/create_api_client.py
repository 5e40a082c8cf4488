from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from retention.services.api_clients import api_client_create


class Command(BaseCommand):
    help = "Create an API client for a CRM integration and print its token once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes", required=True, help="Comma-separated: read,score,write_customers,write_outcomes"
        )

    def handle(self, *args, name: str, scopes: str, **options):
        try:
            client, token = api_client_create(name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()])
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from error
        self.stdout.write(f"API client {client.name!r} with scopes {', '.join(client.scopes)}")
        self.stdout.write("Token (shown once, store it now):")
        self.stdout.write(token)
