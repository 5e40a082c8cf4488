"""System checks of the deployment (`manage.py check --deploy`) beyond Django's own."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from retention.selectors.erased_ids import refusals_under_unknown_keys

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


@checks.register(checks.Tags.database)
def erased_id_refusals_check(app_configs, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Run by `migrate` (so by every deployment) and `check --database default`, which name the databases a check
    may read: a refusal whose digest was made with a secret key no longer configured matches nothing, and the
    customer it kept out would be stored again."""
    if not databases or "default" not in databases:
        return []
    try:
        lapsed = refusals_under_unknown_keys()
    except DatabaseError:  # before the table exists: nothing to check yet
        return []
    if not lapsed:
        return []
    return [
        checks.Warning(
            f"Refusals of customers erased at their request made under a secret key no longer configured: {lapsed}. "
            "A number refused only by them would be stored anew if the CRM sent it.",
            hint="Put the earlier SECRET_KEY back in SECRET_KEY_FALLBACKS; a refusal moves to the current key when "
            "the CRM next sends its id.",
            id="retention.W002",
        )
    ]
