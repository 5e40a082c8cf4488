"""Sign-in with a limit on guessing: after repeated wrong passwords for one user from one address, that pair is
refused for a while without the password even being checked. The panel's sign-in and the admin's both use it.

The address is the client's, not a proxy's: behind FORWARDED_FOR_PROXIES trusted proxies it is read from
X-Forwarded-For. Counted by the proxy's address, ten wrong guesses from anywhere would lock a user out for everyone."""

from __future__ import annotations

import datetime as dt
import unicodedata

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config.counting import counted_in_cache, counted_or

MAX_FAILURES = 10
LOCKOUT_MINUTES = 15


class GuardedSignIn:
    """Counts every attempt before the password is checked, in one atomic step, and forgets them on success:
    guesses sent in parallel each take a turn of their own instead of all reading the same count."""

    def clean(self):
        key = self._attempts_key()
        # Each attempt restarts the wait, so guessing slowly does not get round it either.
        attempts = counted_in_cache(key, seconds=LOCKOUT_MINUTES * 60, renew=True, what="a sign-in attempt")
        if attempts > MAX_FAILURES:
            raise ValidationError(
                _("Too many failed sign-ins for this user: try again in %(minutes)s minutes."),
                code="locked_out",
                params={"minutes": LOCKOUT_MINUTES},
            )
        cleaned = super().clean()
        counted_or(lambda: cache.delete(key), uncounted=None, what="a sign-in that succeeded")
        return cleaned

    def _attempts_key(self) -> str:
        # The account a sign-in reaches, as Django's username field reads it (NFKC, stripped: a full-width "ａgent"
        # is "agent"): counting raw spellings gave every look-alike spelling ten guesses of its own. Not folded to
        # one case: usernames are matched exactly, so guesses at "AGENT" reach no account and must not lock "agent".
        username = unicodedata.normalize("NFKC", str(self.data.get("username") or "")).strip()
        address = client_address(self.request.META) if self.request is not None else ""
        return f"sign-in-attempts:{address}:{username}"


def client_address(meta: dict) -> str:
    """The client's address: REMOTE_ADDR, or behind FORWARDED_FOR_PROXIES proxies the address the outermost of them
    took the request from. Each proxy appends the address it was sent from to X-Forwarded-For, so only that many
    entries from the right can be trusted; anything before them the client may have written itself."""
    proxies = settings.FORWARDED_FOR_PROXIES
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if not proxies or not hops:
        return meta.get("REMOTE_ADDR", "")
    return hops[-min(proxies, len(hops))]


class GuardedAuthenticationForm(GuardedSignIn, AuthenticationForm):
    pass


class GuardedAdminAuthenticationForm(GuardedSignIn, AdminAuthenticationForm):
    pass


class GuardedLoginView(LoginView):
    form_class = GuardedAuthenticationForm


def sign_in_lasts_a_shift(sender, request, user, **kwargs) -> None:
    """A sign-in ends SESSION_HOURS after it was made, however much it is used: desks are shared, and a session
    renewed by every search would outlast any shift. (Django's own expiry counts from the last change to the
    session, so each search would start it anew.)"""
    request.session.set_expiry(timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE))
