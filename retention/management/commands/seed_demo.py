"""Load the offer catalog, the policy defaults and the demo teams and users; safe to run again."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from retention.services.catalog import (
    DemoLogin,
    DemoPassword,
    FixtureError,
    catalog_load,
    demo_password_get,
    demo_users_ensure,
    policy_defaults_load,
)


class Command(BaseCommand):
    help = "Load tariffs, offers, policy defaults, demo teams and demo users from the fixtures folder."

    def add_arguments(self, parser):
        parser.add_argument(
            "--fixtures", type=Path, default=None, help="Folder holding catalog.json, policy.json, demo_users.json."
        )
        parser.add_argument(
            "--no-users",
            action="store_true",
            help="Load the catalog and the policy only: no demo teams or users (what a production deployment wants).",
        )

    def handle(self, *args, fixtures: Path | None, no_users: bool, **options):
        if settings.PRODUCTION and not no_users:
            # Demo users have a known or printed password and a superuser among them: never on a real deployment.
            raise CommandError(
                "DJANGO_ENV is production: seed_demo would create demo users (a superuser among them) with a "
                "password printed here. Load the catalog and policy with --no-users, and create real users with "
                "`manage.py createsuperuser` and the admin."
            )
        folder = fixtures or Path(settings.BASE_DIR) / "fixtures"
        try:
            catalog = catalog_load(path=folder / "catalog.json")
            policy = policy_defaults_load(path=folder / "policy.json")
            if no_users:
                self._write_catalog(catalog, policy)
                return
            password = demo_password_get()
            logins = demo_users_ensure(
                path=folder / "demo_users.json", password=password.value, reset_passwords=password.from_settings
            )
        except FixtureError as error:
            raise CommandError(str(error)) from error
        self._write_catalog(catalog, policy)
        self._write_logins(logins, password)

    def _write_catalog(self, catalog, policy) -> None:
        self.stdout.write(f"Tariffs: {catalog.tariffs}")
        self.stdout.write(f"Offers: {catalog.offers}")
        self.stdout.write("Policy: version 1 stored" if policy else "Policy: kept the existing versions")

    def _write_logins(self, logins: list[DemoLogin], password: DemoPassword) -> None:
        self.stdout.write("Demo logins:")
        for login in logins:
            team = f", {login.team}" if login.team else ""
            kept = "" if login.password_set else " (existing user: password left as it was)"
            self.stdout.write(f"  {login.username:<8} {login.role}, level {login.authority_level}{team}{kept}")
        source = "DEMO_PASSWORD" if password.from_settings else str(password.path)
        self.stdout.write(self.style.SUCCESS(f"Password: {password.value}  (from {source})"))
