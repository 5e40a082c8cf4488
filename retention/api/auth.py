"""Token authentication for API clients: `Authorization: Token <key>`, with only a hash of the key stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from retention.models import ApiClient

TOKEN_PREFIX_LENGTH = 8
# How fresh an API client's "last used" time is kept: writing it on every request would make each read a
# write, which serialises a CRM's requests on SQLite's single write lock and on the client's row elsewhere.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != self.keyword.lower().encode():
            # Another scheme (Bearer, Basic) is a client that means to authenticate: "not provided" would mislead it.
            scheme = parts[0].decode(errors="replace")[:20]
            raise exceptions.AuthenticationFailed(f"Authorization header must be 'Token <key>', not {scheme!r}.")
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <key>'.")
        token = parts[1].decode(errors="replace")
        client = ApiClient.objects.filter(token_hash=token_hash(token), is_active=True).first()
        if client is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive API token.")
        _note_use(client)
        return (client, client)

    def authenticate_header(self, request) -> str:
        return self.keyword


def _note_use(client: ApiClient) -> None:
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at >= LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
