"""Scope checks: a view names the scope it needs in `required_scope`."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from retention.models import ApiClient


class HasApiClient(BasePermission):
    """The caller is an active API client holding the view's scope (when it names one)."""

    message = "This API client lacks the scope this operation needs."

    def has_permission(self, request, view) -> bool:
        client = request.auth
        if not isinstance(client, ApiClient):
            return False
        scope = getattr(view, "required_scope", None)
        if scope is None or scope in client.scopes:
            return True
        # DRF makes a new permission per request, so the refusal can name the scope: the CRM's administrator then
        # knows what to ask for (create_api_client --scopes) without reading the schema.
        self.message = f"This API client lacks the scope this operation needs: {scope}."
        return False
