from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from retention.management import arguments
from retention.selectors.customer_data import customer_data_export
from retention.selectors.panel import customer_get


class Command(BaseCommand):
    help = (
        "Write everything the service holds on one customer as JSON, for their request to see it (GDPR article "
        "15): their record, protected values, contracts, service events, every piece of advice made about them "
        "with what was logged on it, their renewal results, and how the advice is made."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", type=arguments.external_id, help="The customer's number in the CRM.")
        parser.add_argument(
            "--out", type=Path, help="Write to this file instead of printing (not over an existing one)."
        )

    def handle(self, *args, external_id: str, out: Path | None, **options):
        if out is not None and (problem := arguments.output_file_problem(out)):
            raise CommandError(f"--out: {problem}")
        if out is not None and (out.exists() or out.is_symlink()):
            raise CommandError(f"{out} exists: give a new file, so an earlier export is not overwritten")
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise CommandError(
                f"no customer with external id {external_id!r}: it is unknown, or the customer's data was erased"
            )
        text = json.dumps(customer_data_export(customer=customer), indent=2, ensure_ascii=False)
        if out is None:
            self.stdout.write(text)
            return
        try:
            # Readable by its owner only: it holds protected values and everything else held on the person.
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            raise CommandError(f"cannot write {out}: {error.strerror or error}") from error
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text + "\n")
        except OSError as error:
            # The file is this run's own (it was created just now): half an export must not stand for one, nor
            # keep the next try from writing it.
            os.unlink(out)
            raise CommandError(f"cannot write {out}: {error.strerror or error}") from error
        self.stdout.write(f"everything held on {external_id} written to {out}")
