"""Writes of API clients: a token is shown once at creation, only its hash is stored."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from retention.models import ApiClient, Decision, Team
from retention.selectors.api import decisions_spoken_for_by
from retention.tokens import TOKEN_PREFIX_LENGTH, new_token, token_hash

SCOPES = set(ApiClient.Scope.values)
# How fresh an API client's "last used" time is kept: writing it on every request would make each read a
# write, which serialises a CRM's requests on SQLite's single write lock and on the client's row elsewhere.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str], teams: list[str] = ()) -> tuple[ApiClient, str]:
    """A new client and its token (the only time the token exists in clear). `teams` names the teams it speaks
    for; none: every team."""
    unknown = set(scopes) - SCOPES
    if not scopes:
        raise ValidationError({"scopes": f"none given; choose from {', '.join(sorted(SCOPES))}"})
    if unknown:
        named = ", ".join(sorted(unknown))
        raise ValidationError({"scopes": f"choose from {', '.join(sorted(SCOPES))}; unknown: {named}"})
    found = list(Team.objects.filter(name__in=teams))
    if missing := sorted(set(teams) - {team.name for team in found}):
        known = ", ".join(Team.objects.order_by("name").values_list("name", flat=True)) or "none yet"
        raise ValidationError({"teams": f"unknown team(s) {', '.join(missing)}; known: {known}"})
    token = new_token()
    client = ApiClient(
        name=name, scopes=sorted(set(scopes)), token_prefix=token[:TOKEN_PREFIX_LENGTH], token_hash=token_hash(token)
    )
    client.full_clean()
    client.save()
    client.teams.set(found)
    return client, token


def api_client_team_ids(client: ApiClient) -> set[int]:
    """The teams a client speaks for; empty for a client that speaks for every team."""
    return set(client.teams.values_list("pk", flat=True))


def api_client_check_speaks_for(
    client: ApiClient, *, agent: AbstractBaseUser | None = None, decision: Decision | None = None
) -> None:
    """A client bound to teams names only their agents and answers only for their advice, or for advice it asked
    for itself without an agent. Raises PermissionDenied, naming what it may not speak for."""
    teams = api_client_team_ids(client)
    if not teams:
        return
    profile = getattr(agent, "agent_profile", None) if agent is not None else None
    if agent is not None and (profile is None or profile.team_id not in teams):
        raise PermissionDenied(f"this API client does not speak for the team of agent {agent.get_username()!r}")
    if decision is None:
        return
    if not Decision.objects.filter(decisions_spoken_for_by(client), pk=decision.pk).exists():
        raise PermissionDenied(f"this API client does not speak for the team of recommendation {decision.pk}")


def api_client_note_use(client: ApiClient) -> None:
    """Record when the client last called, to the minute."""
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
