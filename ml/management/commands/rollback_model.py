from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ml.artifacts import ArtifactError
from ml.models import ModelVersion
from ml.registry import NothingToRestore, model_version_rollback
from ml.schema import SchemaMismatch


class Command(BaseCommand):
    help = (
        "Restore an earlier model version as champion: by default the champion before the current one. "
        "The reason and who did it are recorded with the promotion."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=ModelVersion.Kind.values)
        parser.add_argument("--to-version", type=int, help="The version number to restore.")
        parser.add_argument("--reason", default="", help="Why; recorded with the promotion.")
        parser.add_argument("--user", help="Username recorded as the one who decided (default: none, OS user noted).")

    def handle(self, *args, kind: str, to_version: int | None, reason: str, user: str | None, **options):
        decided_by = _user(user) if user else None
        by = user or f"rollback_model ({getpass.getuser()})"
        try:
            version = model_version_rollback(
                kind=kind,
                to_version=to_version,
                by=by,
                reason=reason or "restored with manage.py rollback_model",
                decided_by=decided_by,
            )
        except (NothingToRestore, ArtifactError, SchemaMismatch) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{version.label} is the {kind} champion again: {version.status_reason}")


def _user(username: str):
    found = get_user_model().objects.filter(username=username).first()
    if found is None:
        raise CommandError(f"no user named {username!r}")
    return found
