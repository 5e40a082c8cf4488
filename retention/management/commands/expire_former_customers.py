from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from retention.management.interrupts import stopped_in_one_line
from retention.selectors.retention_period import former_customers_due
from retention.services.erasure import former_customers_expire, retention_days_problem


class Command(BaseCommand):
    help = (
        "Erase the personal data of former customers: those whose latest renewal result says they left, with no "
        "active contract, of whom nothing (a renewal, advice, a service event, a change from the CRM) has been "
        "heard for --days days. Each is erased as erase_customer does it, recorded as done by the retention "
        "period. The nightly task does the same with FORMER_CUSTOMER_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=settings.FORMER_CUSTOMER_DAYS or None,
            help="How long a former customer is kept (default: FORMER_CUSTOMER_DAYS, when set).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count who would be erased.")

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        if days is None:
            raise CommandError("say how long former customers are kept: --days N, or set FORMER_CUSTOMER_DAYS")
        if problem := retention_days_problem(days):
            raise CommandError(f"--days {problem}")
        if dry_run:
            due = former_customers_due(days=days, today=timezone.localdate())
            self.stdout.write(f"{len(due):,} former customer(s) gone over {days} days would be erased")
            return
        with stopped_in_one_line("each customer erased so far is erased whole; the next run erases the rest"):
            erased = former_customers_expire(days=days)
        self.stdout.write(f"{len(erased):,} former customer(s) gone over {days} days erased")
