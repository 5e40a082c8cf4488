"""Token authentication for API clients: `Authorization: Token <key>`, with only a hash of the key stored."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from retention.models import ApiClient
from retention.services.api_clients import api_client_note_use
from retention.tokens import token_hash


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
        api_client_note_use(client)
        return (client, client)

    def authenticate_header(self, request) -> str:
        return self.keyword
