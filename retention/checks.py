"""System checks of the deployment (`manage.py check --deploy`) beyond Django's own."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

PROCESS_LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache",)


@checks.register(checks.Tags.security, deploy=True)
def shared_cache_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Rate limits and the sign-in lockout count in the default cache: one in each process's memory lets every
    server process grant the whole allowance, so N processes let a client or a password guesser through N times."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            "The default cache is kept in each process's memory: API rate limits and the sign-in lockout are "
            "counted per server process.",
            hint="Set CACHE_URL to a cache the server processes share, e.g. redis://127.0.0.1:6379/1, unless a "
            "single process serves.",
            id="retention.W001",
        )
    ]
