"""Who may open the review pages, and which teams' data they see.

Team leads see their own team; administrators and superusers see every team. Agents and users
without a profile get a 403 page and no data; anonymous users are sent to the login page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from agents_ui.review.selectors import EscalationsWaiting, escalations_waiting
from agents_ui.views import agent_profile_of, forbidden
from retention.models import AgentProfile, Team

REVIEW_ROLES = {AgentProfile.Role.LEAD, AgentProfile.Role.ADMIN}


@dataclass(frozen=True)
class ReviewScope:
    """The teams a reviewer may see: `team_ids` is None for every team."""

    team_ids: frozenset[int] | None

    @property
    def all_teams(self) -> bool:
        return self.team_ids is None

    def teams(self):
        teams = Team.objects.order_by("name")
        return teams if self.all_teams else teams.filter(pk__in=self.team_ids)


def review_scope_of(user) -> ReviewScope | None:
    """The scope of a reviewer, or None for anyone who may not review."""
    if user.is_superuser:
        return ReviewScope(team_ids=None)
    profile = agent_profile_of(user)  # the middleware loaded it already
    if profile is None or profile.role not in REVIEW_ROLES:
        return None
    if profile.role == AgentProfile.Role.ADMIN:
        return ReviewScope(team_ids=None)
    return ReviewScope(team_ids=frozenset([profile.team_id]) if profile.team_id else frozenset())


def lead_required(view):
    """Logged in as a team lead, administrator or superuser; the view finds the scope in `request.review_scope`."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        scope = review_scope_of(request.user)
        if scope is None:
            return forbidden(request, _("The review pages are for team leads and administrators."))
        if not scope.all_teams and not scope.team_ids:
            return forbidden(request, _("Your team lead profile has no team yet. Ask an administrator to add one."))
        request.review_scope = scope
        return view(request, *args, **kwargs)

    logged_in_and_guarded = login_required(guarded)

    @wraps(view)
    def entry(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.htmx and not request.user.is_authenticated:
            # A look the page takes by itself (the escalations count) or a filter sent after the session ended:
            # the whole page goes to the login and back, instead of the login form landing inside the page.
            page = request.htmx.current_url_abs_path or reverse("review")
            messages.info(request, _("Your session had ended. Log in to go on."))
            return HttpResponseClientRedirect(redirect_to_login(page).url)
        return logged_in_and_guarded(request, *args, **kwargs)

    return entry


def escalations_waiting_for(request: HttpRequest) -> EscalationsWaiting:
    """The escalations waiting in the viewer's scope, read once a request: the navigation's count and the
    escalations page show the same ones. No profile: a superuser, who decides every one."""
    if not hasattr(request, "escalations_waiting"):
        request.escalations_waiting = escalations_waiting(
            team_ids=request.review_scope.team_ids, profile=agent_profile_of(request.user), now=timezone.now()
        )
    return request.escalations_waiting
