"""Per-client request rates: each API client has its own allowance, whichever address it calls from.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] under the scopes below ("50/second",
"600/minute", or None for no limit); a scope missing there uses the default named here. Counts live
in the default cache, so several server processes share them only when CACHE_URL names a shared one (Redis).
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from retention.models import ApiClient

DEFAULT_RATES = {
    # One integration speaks for a whole call centre: a thousand agents at peak make some 15 requests a second
    # (advice, offer presented, answer), and a CRM catching up on a backlog sends them back to back, about 40 a
    # second at a recommendation's 25 ms over HTTP. 50 a second lets both through and still keeps one client gone
    # wild to about one core. Counted per second, the throttle's history (a timestamp per request in the window)
    # stays at 50 entries instead of the 3,000 of a minute's worth.
    "api_client": "50/second",
    # Bulk upserts and scoring do thousands of rows per request: a smaller allowance on top of the general one.
    "api_client_bulk": "60/minute",
}


class ApiClientThrottle(SimpleRateThrottle):
    scope = "api_client"

    def get_rate(self) -> str | None:
        # Read at request time (not import time) so a settings change or override takes effect.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        return rates[self.scope] if self.scope in rates else DEFAULT_RATES[self.scope]

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiClient):
            return None  # not an API client: authentication or permissions refuse the request
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class ApiClientBulkThrottle(ApiClientThrottle):
    scope = "api_client_bulk"
