"""Per-client request rates: each API client has its own allowance, whichever address it calls from.

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] under the scopes below ("50/second", "600/minute", or
None for no limit); a scope missing there uses retention.api.rates.DEFAULT_RATES, which also says why those. Counts
live in the default cache, so several server processes share them only when CACHE_URL names a shared one (Redis).
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from config.counting import counted_or
from retention.api.rates import DEFAULT_RATES
from retention.models import ApiClient


class ApiClientThrottle(SimpleRateThrottle):
    scope = "api_client"

    def get_rate(self) -> str | None:
        # Read at request time (not import time) so a settings change or override takes effect.
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        return rates[self.scope] if self.scope in rates else DEFAULT_RATES[self.scope]

    def allow_request(self, request, view) -> bool:
        return counted_or(lambda: super(ApiClientThrottle, self).allow_request(request, view), uncounted=True,
                          what=f"the {self.scope} rate")  # fmt: skip

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiClient):
            return None  # not an API client: authentication or permissions refuse the request
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


class ApiClientBulkThrottle(ApiClientThrottle):
    scope = "api_client_bulk"
