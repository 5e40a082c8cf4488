"""Writes of API clients: a token is shown once at creation, only its hash is stored."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from retention.api.auth import TOKEN_PREFIX_LENGTH, new_token, token_hash
from retention.models import ApiClient

SCOPES = set(ApiClient.Scope.values)


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str]) -> tuple[ApiClient, str]:
    """A new client and its token (the only time the token exists in clear)."""
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        named = ", ".join(sorted(unknown)) or "none given"
        raise ValidationError({"scopes": f"choose from {', '.join(sorted(SCOPES))}; unknown: {named}"})
    token = new_token()
    client = ApiClient(
        name=name, scopes=sorted(set(scopes)), token_prefix=token[:TOKEN_PREFIX_LENGTH], token_hash=token_hash(token)
    )
    client.full_clean()
    client.save()
    return client, token
