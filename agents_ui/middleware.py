"""Per-user language, the frame-ancestors rule that lets configured CRM pages embed the panel, and no caching of
what a signed-in user sees."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers


class UserLanguageMiddleware:
    """An agent's own language choice wins over the browser's. It is also kept in the language cookie, so the sign-in
    page after signing out, or after the session ran out, speaks it too, not the call-centre computer's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        profile = (
            getattr(getattr(request, "user", None), "agent_profile", None) if request.user.is_authenticated else None
        )
        if profile is None or not profile.language:
            return self.get_response(request)
        translation.activate(profile.language)
        request.LANGUAGE_CODE = profile.language
        response = self.get_response(request)
        if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != profile.language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                profile.language,
                max_age=settings.LANGUAGE_COOKIE_AGE,
                path=settings.LANGUAGE_COOKIE_PATH,
                domain=settings.LANGUAGE_COOKIE_DOMAIN,
                # As the session's: the panel is framed by the CRM, where a cookie must be fit for a third party.
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
        return response


# Pages only our own origin may frame: the CRM embeds the agent panel (and its sign-in), never the team leads'
# review pages or the admin, which a framing page could otherwise overlay to steer a click.
OWN_FRAMES_ONLY = ("/admin/", "/review/", "/api/")


# The agent's and team lead's pages load only this site's own scripts, with no inline script and no eval (htmx is
# configured without either in base.html): text a CRM sent that ever slipped through escaping could not run as
# script. Inline style attributes stay allowed (the risk gauge's width). The admin and the API's pages, which are
# Django's and the schema viewer's own, get the framing rule only.
OWN_PAGES_SOURCES = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'"
)


class FrameAncestorsMiddleware:
    """Allow framing by our own origin and, for the agent panel, the CRM origins in settings; nobody else. Our own
    pages also name where their scripts, styles and form posts may come from."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.own_only = "frame-ancestors 'self'"
        self.with_crm = "frame-ancestors " + " ".join(["'self'", *settings.CRM_ORIGINS])

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self._policy(request.path))
        return response

    def _policy(self, path: str) -> str:
        frames = self.own_only if path.startswith(OWN_FRAMES_ONLY) else self.with_crm
        if path.startswith(("/admin/", "/api/")):
            return frames
        return f"{OWN_PAGES_SOURCES}; {frames}"


class PrivatePagesMiddleware:
    """Pages shown to a signed-in user, and the API's answers, carry customer data: no browser or proxy may keep
    them, so that the next person at a shared workstation cannot page back through them after logging out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # The API leaves `user` None for a request without a token (UNAUTHENTICATED_USER).
        user = getattr(request, "user", None)
        private = (user is not None and user.is_authenticated) or request.path.startswith("/api/")
        if private and "Cache-Control" not in response:
            add_never_cache_headers(response)
            patch_vary_headers(response, ["Cookie"])
        return response
