"""Generate a synthetic Dutch customer base with two years of history and store it with its hidden truth."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from retention.management import arguments
from retention.services.simulation import base_generate


class Command(BaseCommand):
    help = "Simulate N customers (deterministic for a seed) against the stored tariffs; run seed_demo first."

    def add_arguments(self, parser):
        parser.add_argument("--n", type=arguments.positive_int, default=5000, help="How many customers (default 5000).")
        parser.add_argument(
            "--seed", type=arguments.seed, default=0, help="Random seed; the same seed gives the same base."
        )

    def handle(self, *args, n: int, seed: int, **options):
        try:
            summary = base_generate(n=n, seed=seed)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Customers: {summary.customers} ({summary.created} new)")
        self.stdout.write(
            f"Labelled renewals: {summary.labelled}, of which churned {summary.churned} ({summary.churn_rate:.1%})"
        )
        self.stdout.write(f"Contract ending in the next 90 days: {summary.ending_soon}")
        self.stdout.write(self.style.SUCCESS(f"Done in {summary.seconds:.1f} s"))
