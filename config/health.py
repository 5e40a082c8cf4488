"""GET /health/: what a load balancer or monitor probes. 200 when the service can answer, 503 naming what fails.

Checked on every probe: the database answers a query, the cache (where the API's rate limits and the sign-in
lockout count) takes and gives back a value, and each champion model's files are all there with the checksums the
registry recorded. A model not trained yet is said, not failed: a new deployment serves its pages and API, and
advice answers that no model is trained. Nothing here names a customer, so it needs no sign-in.
"""

from __future__ import annotations

import logging
import os

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ml.selectors import NOT_TRAINED, champion_problems

OK = "ok"

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def health(request) -> JsonResponse:
    checks = {"database": _database(), "cache": _cache()}
    if checks["database"] == OK:
        checks.update({f"{kind}_model": problem or OK for kind, problem in champion_problems().items()})
    failing = [name for name, said in checks.items() if said not in (OK, NOT_TRAINED)]
    return JsonResponse({"status": "failing" if failing else OK, "checks": checks}, status=503 if failing else 200)


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure to reach or query it is the answer
        return _failing("database", error)
    return OK


def _cache() -> str:
    key = f"health-probe:{os.getpid()}"
    try:
        cache.set(key, "answered", timeout=10)
        if cache.get(key) != "answered":
            return "failing: a value set was not read back"
    except Exception as error:  # a cache server down or refusing
        return _failing("cache", error)
    return OK


def _failing(what: str, error: Exception) -> str:
    """The kind of failure for whoever probes, who needs no sign-in; the message, which may name a host, a user or
    a path, goes to the log for the operator."""
    logger.error("health: the %s check failed: %s: %s", what, type(error).__name__, error)
    return f"failing: {type(error).__name__} (details in the service's log)"
