"""Counts kept in the cache (API rates, the sign-in lockout, panel searches) when the cache cannot be reached.

The cache is a server of its own where CACHE_URL names Redis. Without it a count cannot be kept, and refusing every
request would take the whole service down with it (every API call and sign-in answered 500). So the request is let
through uncounted and each such time is logged as an error: the limits lapse while the cache is down, and the
logs and GET /health/ say so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

logger = logging.getLogger(__name__)

T = TypeVar("T")


def counted_or(count: Callable[[], T], *, uncounted: T, what: str) -> T:
    """`count()`, or `uncounted` (the answer that lets the request through) when the cache fails."""
    try:
        return count()
    except Exception as error:  # a cache server down, refusing or timing out
        logger.error("the cache could not count %s (%s: %s): let through uncounted", what, type(error).__name__, error)
        return uncounted


def counted_in_cache(key: str, *, seconds: int, renew: bool = False, what: str) -> int:
    """One more under `key`, kept `seconds` from the first count (from this one when `renew`), and the count so far;
    0 when the cache fails. Added in one atomic step: requests sent in parallel each take a turn of their own."""

    def count() -> int:
        cache.add(key, 0, timeout=seconds)
        total = cache.incr(key)
        if renew:
            cache.touch(key, timeout=seconds)
        return total

    return counted_or(count, uncounted=0, what=what)
