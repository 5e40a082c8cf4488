from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ml.artifacts import ArtifactError
from ml.models import ModelVersion
from ml.registry import NothingToRestore, model_version_rollback
from ml.schema import SchemaMismatch
from retention.models import AgentProfile

# Who may decide which model serves: those the models page is for.
DECIDING_ROLES = (AgentProfile.Role.LEAD, AgentProfile.Role.ADMIN)


class Command(BaseCommand):
    help = (
        "Restore a model version that served before as champion: by default the champion before the current one, "
        "so that a second rollback goes back one champion further. The reason and who did it (a team lead, an "
        "administrator or a superuser) are recorded with the promotion."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", required=True, choices=ModelVersion.Kind.values)
        parser.add_argument(
            "--to-version", type=int, help="The version number to restore; it must have served as champion before."
        )
        parser.add_argument("--reason", default="", help="Why; recorded with the promotion.")
        parser.add_argument(
            "--user",
            help="Username of the team lead, administrator or superuser recorded as the one who decided "
            "(default: none, OS user noted).",
        )

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
    """The user named, when they may decide which model serves (as on the models page)."""
    found = get_user_model().objects.filter(username=username).select_related("agent_profile").first()
    if found is None:
        raise CommandError(f"no user named {username!r}")
    if not found.is_active:
        raise CommandError(f"user {username!r} is deactivated: name an active team lead or administrator")
    if not found.is_superuser and _role(found) not in DECIDING_ROLES:
        raise CommandError(
            f"user {username!r} is {_role_words(found)}: only a team lead, an administrator or a superuser "
            "decides which model serves"
        )
    return found


def _role(user) -> str | None:
    profile = getattr(user, "agent_profile", None)
    return profile.role if profile is not None else None


def _role_words(user) -> str:
    role = _role(user)
    return f"an {AgentProfile.Role(role).label.lower()}" if role else "not an agent, team lead or administrator"
