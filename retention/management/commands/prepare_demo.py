from __future__ import annotations

import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from ml.models import ModelVersion
from retention.management import arguments
from retention.management.interrupts import stopped_in_one_line
from retention.models import Customer, Decision

DEMO_CALLS = 200


class Command(BaseCommand):
    help = (
        "Make a demo ready to use: catalog, policy and demo users; a synthetic customer base when there is none; "
        "the first models when none is serving; a morning of calls by the demo agents when nobody has asked "
        "for advice yet. Reuses whatever already exists."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=arguments.positive_int, default=5000, help="Synthetic customers when there are none."
        )
        parser.add_argument("--seed", type=arguments.seed, default=0)
        parser.add_argument("--host", default="127.0.0.1:8000")
        parser.add_argument(
            "--calls",
            type=arguments.whole_number,
            default=DEMO_CALLS,
            help=f"Calls played when the log is empty (default {DEMO_CALLS}; 0 plays none).",
        )

    def handle(self, *args, customers: int, seed: int, host: str, calls: int, **options):
        started = time.perf_counter()
        with stopped_in_one_line("each step stores all of its data or none; run it again to finish"):
            self._prepare(customers=customers, seed=seed, calls=calls)
        self._print_urls(host, time.perf_counter() - started)

    def _prepare(self, *, customers: int, seed: int, calls: int) -> None:
        call_command("seed_demo", stdout=self.stdout)
        if not Customer.objects.exists():
            call_command("generate_customers", n=customers, seed=seed, stdout=self.stdout)
        if not ModelVersion.objects.filter(kind=ModelVersion.Kind.CHURN, status=ModelVersion.Status.CHAMPION).exists():
            call_command("train_models", seed=seed, stdout=self.stdout)
        # The review pages, the offer log and the fairness report have something to show from the start. All the calls
        # or none: calls are played only while the log is empty, so an interrupted morning would stay half played.
        if calls and not Decision.objects.exists():
            with transaction.atomic():
                call_command("play_calls", calls=calls, seed=seed, stdout=self.stdout)

    def _print_urls(self, host: str, seconds: float) -> None:
        # A customer nobody has called yet: one the demo agents just spoke to would open on that call's advice.
        example = (
            Customer.objects.filter(contracts__status="active", contracts__end_date__gte=timezone.localdate())
            .exclude(decisions__isnull=False)
            .order_by("contracts__end_date", "external_id")
            .first()
        )
        lines = [
            f"Ready in {seconds:.1f} s. Data in {settings.DATA_DIR}.",
            f"  Agent panel:  http://{host}/panel/" + (f"?customer={example.external_id}" if example else ""),
            f"  API docs:     http://{host}/api/v1/docs/",
            f"  Admin:        http://{host}/admin/",
        ]
        self.stdout.write("\n".join(lines))
