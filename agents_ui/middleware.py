"""Per-user language and the frame-ancestors rule that lets configured CRM pages embed the panel."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation


class UserLanguageMiddleware:
    """An agent's own language choice wins over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        profile = (
            getattr(getattr(request, "user", None), "agent_profile", None) if request.user.is_authenticated else None
        )
        if profile is not None and profile.language:
            translation.activate(profile.language)
            request.LANGUAGE_CODE = profile.language
        return self.get_response(request)


class FrameAncestorsMiddleware:
    """Allow framing by our own origin and the CRM origins in settings, nobody else."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = "frame-ancestors " + " ".join(["'self'", *settings.CRM_ORIGINS])

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy)
        return response
