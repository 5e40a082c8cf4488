"""Sign-in with a limit on guessing: after repeated wrong passwords for one user from one address, that pair is
refused for a while without the password even being checked."""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

MAX_FAILURES = 10
LOCKOUT_MINUTES = 15


class GuardedAuthenticationForm(AuthenticationForm):
    def clean(self):
        key = self._failures_key()
        failures = cache.get(key, 0)
        if failures >= MAX_FAILURES:
            raise ValidationError(
                _("Too many failed sign-ins for this user: try again in %(minutes)s minutes."),
                code="locked_out",
                params={"minutes": LOCKOUT_MINUTES},
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            # Each failure restarts the wait, so guessing slowly does not get round it either.
            cache.set(key, failures + 1, timeout=LOCKOUT_MINUTES * 60)
            raise
        cache.delete(key)
        return cleaned

    def _failures_key(self) -> str:
        username = str(self.data.get("username") or "").strip().lower()
        address = self.request.META.get("REMOTE_ADDR", "") if self.request is not None else ""
        return f"sign-in-failures:{address}:{username}"


class GuardedLoginView(LoginView):
    form_class = GuardedAuthenticationForm
