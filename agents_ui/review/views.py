"""Team-lead review pages. Views stay thin: read the filter form, call a selector, present, render.

Every page works without JavaScript; with htmx, filtering and paging swap only the results.
A filter that does not validate is answered with 400 and the form as it was sent, with its errors.
"""

from __future__ import annotations

import csv
import logging

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from agents_ui.review import presenters
from agents_ui.review.access import escalations_waiting_for, lead_required
from agents_ui.review.forms import LogFilterForm, PeriodForm, TeamForm, with_default_period
from agents_ui.review.selectors import (
    OPEN_ESCALATION_DAYS,
    escalations_waiting,
    offer_log_decisions,
    period_kpis,
)
from agents_ui.views import agent_profile_of
from ml.fairness import fairness_report
from retention.selectors.budget import team_budget_months
from retention.selectors.fairness import fairness_log
from retention.selectors.outcome_log import OutcomeLogError

logger = logging.getLogger(__name__)

BUDGET_MONTHS = 6
CSV_CHUNK = 500


@require_GET
@lead_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("review-log")


def _render(request: HttpRequest, page: str, context: dict, *, status: int = 200) -> HttpResponse:
    """The full page, or only its results for an htmx request (a history restore needs the full page)."""
    fragment = request.htmx and not request.htmx.history_restore_request
    template = f"agents_ui/review/partials/{page}_results.html" if fragment else f"agents_ui/review/{page}.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


# --- offer log ----------------------------------------------------------------------------------


@require_GET
@lead_required
def offer_log(request: HttpRequest) -> HttpResponse:
    # The same default period as the KPIs and the fairness report, so their counts agree when first opened.
    form = LogFilterForm(with_default_period(request.GET), scope=request.review_scope)
    if not form.is_valid():
        return _render(request, "log", {"form": form}, status=400)
    per_page = form.cleaned_data["per_page"]
    page = Paginator(offer_log_decisions(**form.filters()), per_page).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "rows": [presenters.log_row(decision) for decision in page.object_list],
        "query": _query_without_page(request),
    }
    return _render(request, "log", context)


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@require_GET
@lead_required
def offer_log_csv(request: HttpRequest) -> HttpResponse:
    form = LogFilterForm(with_default_period(request.GET), scope=request.review_scope)
    if not form.is_valid():
        return render(request, "agents_ui/review/log.html", {"form": form}, status=400)
    decisions = offer_log_decisions(**form.filters()).iterator(chunk_size=CSV_CHUNK)
    response = StreamingHttpResponse(_csv_lines(decisions), content_type="text/csv; charset=utf-8")
    filename = f"offer-log-{timezone.localdate():%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _Echo:
    """A file-like object whose write hands the line back, so csv.writer can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(decisions):
    # Every cell quoted, so a separator inside one never splits it in a reader that honours quotes.
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow(presenters.CSV_HEADER)
    for decision in decisions:
        yield writer.writerow(presenters.csv_cells(presenters.log_row(decision)))


# --- KPIs ---------------------------------------------------------------------------------------


@require_GET
@lead_required
def kpis(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(with_default_period(request.GET), scope=request.review_scope)
    if not form.is_valid():
        return _render(request, "kpis", {"form": form}, status=400)
    since, until = form.bounds()
    try:
        overall, per_agent = period_kpis(team_ids=form.team_ids(), since=since, until=until)
    except OutcomeLogError as error:
        return _unvaluable_log(request, "kpis", form, error)
    return _render(request, "kpis", {"form": form, "kpis": overall, "agents": per_agent})


def _unvaluable_log(request: HttpRequest, page: str, form, error: OutcomeLogError) -> HttpResponse:
    """A decision the outcome log cannot value is a data error an administrator must fix: say so, do not guess."""
    logger.exception("review %s: the outcome log cannot be valued", page)
    message = _("The figures cannot be computed: %(problem)s. Ask an administrator to correct this.") % {
        "problem": error
    }
    return _render(request, page, {"form": form, "error": message}, status=500)


# --- budget -------------------------------------------------------------------------------------


@require_GET
@lead_required
def budget(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.GET, scope=request.review_scope)
    if not form.is_valid():
        return _render(request, "budget", {"form": form}, status=400)
    months = team_budget_months(teams=form.teams(), months=BUDGET_MONTHS)
    return _render(request, "budget", {"form": form, "months": presenters.budget_months(months)})


# --- escalations --------------------------------------------------------------------------------


@require_GET
@lead_required
def escalations(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.GET, scope=request.review_scope)
    if not form.is_valid():
        context = {"form": form, "rows": [], "for_administrator": [], "days": OPEN_ESCALATION_DAYS}
        return render(request, "agents_ui/review/escalations.html", context, status=400)
    waiting = _escalations_of(request, form)
    # What the lead may decide comes first; what waits for an administrator is listed after it, so the lead sees
    # their agent is waiting and for whom.
    context = {
        "form": form,
        "rows": [presenters.escalation_row(row, for_administrator=False) for row in waiting.for_viewer],
        "for_administrator": [
            presenters.escalation_row(row, for_administrator=True) for row in waiting.for_administrator
        ],
        "days": OPEN_ESCALATION_DAYS,
    }
    return render(request, "agents_ui/review/escalations.html", context)


def _escalations_of(request: HttpRequest, form: TeamForm):
    """Those of the team an administrator chose, else every one the viewer may see (as the navigation counts)."""
    team = form.cleaned_data.get("team")
    if team is None:
        return escalations_waiting_for(request)
    return escalations_waiting(team_ids=[team.pk], profile=agent_profile_of(request.user), now=timezone.now())


@require_GET
@lead_required
def escalations_count(request: HttpRequest) -> HttpResponse:
    """The navigation's count of escalations waiting for the viewer, which every review page asks for again now and
    then: an agent waits on the line for the lead's answer."""
    count = len(escalations_waiting_for(request).for_viewer)
    return render(request, "agents_ui/review/partials/escalations_count.html", {"escalations_waiting": count})


# --- fairness -----------------------------------------------------------------------------------


@require_GET
@lead_required
def fairness(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(with_default_period(request.GET), scope=request.review_scope)
    if not form.is_valid():
        return _render(request, "fairness", {"form": form}, status=400)
    since, until = form.bounds()
    try:
        log = fairness_log(since=since, until=until, team_ids=form.team_ids())
    except OutcomeLogError as error:
        return _unvaluable_log(request, "fairness", form, error)
    report = fairness_report(
        log.frame,
        attributes=log.attributes,
        threshold=settings.FAIRNESS_RATIO_THRESHOLD,
        min_group_size=settings.FAIRNESS_MIN_GROUP_SIZE,
    )
    tables = presenters.fairness_tables(report)
    context = {
        "form": form,
        "report": report,
        "tables": [(table, presenters.fairness_rows(table)) for table in tables],
        "flagged": presenters.flagged_items(tables),
    }
    return _render(request, "fairness", context)
