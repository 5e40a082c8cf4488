"""The models page: versions per kind with metrics, decisions and drift; training jobs with live progress;
and the Retrain now, Cancel (a queued job), Promote and Roll back buttons, each a POST through the ml services.

Promoting a version the retrain rules kept out takes two steps: the first POST changes nothing and shows
why it was kept out with a "Promote anyway" button, which posts the same form with confirm=1.

The page works without JavaScript (buttons post and redirect back; reload to see progress). With htmx
the jobs section polls every 2 s while a job is queued or running, and reloads the page once the job
it watched has finished, so new versions appear without a click.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from agents_ui.review.access import lead_required
from ml.artifacts import ArtifactError
from ml.jobs import (
    TrainingBusy,
    TrainingJobNotQueued,
    labels_since_last_job,
    training_job_cancel,
    training_job_request,
)
from ml.models import ModelVersion, TrainingJob
from ml.registry import NothingToRestore, model_version_promote, model_version_rollback, previous_champion
from ml.schema import SchemaMismatch
from ml.selectors import (
    DriftReport,
    model_drift,
    model_version_get,
    model_versions_by_kind,
    stand_in_for,
    training_job_active,
    training_job_silent_since,
    training_jobs_recent,
    version_files_problem,
)
from ml.verdicts import phrase

PAGE_TEMPLATE = "agents_ui/review/models.html"
JOBS_FRAGMENT = "agents_ui/review/partials/model_jobs.html"
PROMOTABLE = {ModelVersion.Status.CANDIDATE, ModelVersion.Status.REJECTED}
# A worker with nothing to do claims a queued job within seconds; one still queued after this long
# most likely has no worker running at all (a plain runserver, say), and the page says so.
NO_WORKER_SUSPECTED_AFTER = dt.timedelta(minutes=2)
KINDS = {
    ModelVersion.Kind.CHURN: gettext_lazy("Churn model"),
    ModelVersion.Kind.ACCEPTANCE: gettext_lazy("Offer-response model"),
}
VERSION_STATUSES = {
    ModelVersion.Status.CANDIDATE: gettext_lazy("Candidate"),
    ModelVersion.Status.CHAMPION: gettext_lazy("Champion"),
    ModelVersion.Status.RETIRED: gettext_lazy("Retired"),
    ModelVersion.Status.REJECTED: gettext_lazy("Rejected"),
}
JOB_STATUSES = {
    TrainingJob.Status.QUEUED: gettext_lazy("Queued"),
    TrainingJob.Status.RUNNING: gettext_lazy("Running"),
    TrainingJob.Status.SUCCEEDED: gettext_lazy("Succeeded"),
    TrainingJob.Status.FAILED: gettext_lazy("Failed"),
    TrainingJob.Status.REFUSED: gettext_lazy("Refused"),
    TrainingJob.Status.CANCELLED: gettext_lazy("Cancelled"),
}
JOB_STATUS_COLOURS = {
    "queued": "amber", "running": "amber", "succeeded": "green", "failed": "red", "refused": "red", "cancelled": "grey",
}  # fmt: skip
TRIGGERS = {
    TrainingJob.Trigger.NIGHTLY: gettext_lazy("Nightly"),
    TrainingJob.Trigger.OUTCOMES: gettext_lazy("New outcomes"),
    TrainingJob.Trigger.MANUAL: gettext_lazy("Retrain now"),
    TrainingJob.Trigger.COMMAND: gettext_lazy("Command line"),
}
# The codes of ml.training.STAGES, in the reader's language.
STAGES = {
    "queued": gettext_lazy("waiting for a worker"),
    "training_set": gettext_lazy("building the training set"),
    "training": gettext_lazy("training the challenger"),
    "refitting": gettext_lazy("refitting on every row"),
    "comparing": gettext_lazy("comparing with the champion"),
    "deciding": gettext_lazy("recording the decision"),
    "done": gettext_lazy("done"),
}
OUTCOMES = {
    "promoted": gettext_lazy("promoted"),
    "kept out": gettext_lazy("kept out"),
    "refused": gettext_lazy("refused"),
}


class DecisionReasonForm(forms.Form):
    reason = forms.CharField(max_length=300, required=False, strip=True)


# --- the page ------------------------------------------------------------------------------------


@require_GET
@lead_required
def models_page(request: HttpRequest) -> HttpResponse:
    if request.htmx and not request.htmx.history_restore_request:
        return _jobs_fragment(request)
    return _render_page(request)


def _render_page(request: HttpRequest, *, status: int = 200, extra: dict | None = None) -> HttpResponse:
    context = {"kinds": _kind_sections(), **_jobs_context(), **(extra or {})}
    response = render(request, PAGE_TEMPLATE, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _jobs_fragment(request: HttpRequest) -> HttpResponse:
    """The jobs section alone; when the job being watched has ended, the whole page reloads instead."""
    watching = request.GET.get("watching", "")
    if (
        watching.isdecimal()
        and not TrainingJob.objects.filter(pk=int(watching), status__in=TrainingJob.ACTIVE).exists()
    ):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    response = render(request, JOBS_FRAGMENT, _jobs_context())
    patch_vary_headers(response, ("HX-Request",))
    return response


@dataclass(frozen=True)
class KindSection:
    kind: str
    label: str
    versions: list[dict]
    champion: ModelVersion | None
    rollback_to: ModelVersion | None
    drift: DriftReport | None
    # What is wrong with the champion's files ("" when nothing), and the earlier champion serving meanwhile.
    files_problem: str = ""
    stand_in: ModelVersion | None = None


def _kind_sections() -> list[KindSection]:
    sections = []
    for kind, versions in model_versions_by_kind().items():
        champion = next((v for v in versions if v.status == ModelVersion.Status.CHAMPION), None)
        problem = version_files_problem(champion) if champion else ""
        sections.append(
            KindSection(
                kind=kind,
                label=str(KINDS.get(kind, kind)),
                versions=[_version_row(version) for version in versions],
                champion=champion,
                rollback_to=previous_champion(kind) if champion else None,
                drift=model_drift(version=champion) if champion and champion.training_distribution else None,
                files_problem=problem,
                stand_in=stand_in_for(champion) if problem else None,
            )
        )
    return sections


def _version_row(version: ModelVersion) -> dict:
    window = version.training_window or {}
    return {
        "version": version,
        "status_label": VERSION_STATUSES.get(version.status, version.status),
        "window_from": _moment(window.get("from")),
        "window_to": _moment(window.get("to")),
        "metrics": version.metrics,
        "comparison": version.metrics.get("comparison"),
        "decisions": list(version.promotions.all()),
        # A version whose files prune_model_files removed stays listed for its history, but cannot serve again.
        "promotable": version.status in PROMOTABLE and version.files_removed_at is None,
    }


def _moment(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _jobs_context() -> dict:
    active = training_job_active()
    return {
        "active_job": _job_row(active) if active else None,
        "jobs": [_job_row(job) for job in training_jobs_recent()],
        "new_labels": labels_since_last_job(),
        "retrain_after": settings.RETRAIN_AFTER_OUTCOMES,
        "retrain_hour": settings.RETRAIN_HOUR,
        "no_worker_minutes": round(NO_WORKER_SUSPECTED_AFTER.total_seconds() / 60),
    }


def _job_row(job: TrainingJob) -> dict:
    silent_since = training_job_silent_since(job=job)
    return {
        "job": job,
        "status_label": JOB_STATUSES.get(job.status, job.status),
        "status_colour": "red" if silent_since else JOB_STATUS_COLOURS.get(job.status, "amber"),
        "trigger_label": TRIGGERS.get(job.trigger, job.trigger),
        "kind_label": KINDS.get(job.stage_kind, job.stage_kind),
        "stage_label": STAGES.get(job.stage, job.stage),
        "cancellable": job.status == TrainingJob.Status.QUEUED,
        "no_worker_suspected": _queued_too_long(job),
        # Shown, not swept: a GET writes nothing. "Retrain now" sweeps it before it asks for a new job.
        "silent_since": silent_since,
        "results": [
            {
                "kind_label": KINDS.get(kind, kind),
                "outcome_label": OUTCOMES.get(result["outcome"], result["outcome"]),
                **result,
            }
            for kind, result in job.results.items()
        ],
    }


def _queued_too_long(job: TrainingJob) -> bool:
    return job.status == TrainingJob.Status.QUEUED and timezone.now() - job.created_at > NO_WORKER_SUSPECTED_AFTER


# --- the buttons ---------------------------------------------------------------------------------


@require_POST
@lead_required
def retrain(request: HttpRequest) -> HttpResponse:
    try:
        job = training_job_request(trigger=TrainingJob.Trigger.MANUAL, requested_by=request.user)
    except TrainingBusy as busy:
        return _refused(
            request,
            _("A retrain is already under way (job %(job)s, %(status)s). Wait for it to finish.")
            % {"job": busy.job.pk, "status": JOB_STATUSES.get(busy.job.status, busy.job.status)},
        )
    messages.success(request, _("Retrain queued as job %(job)s; its progress shows below.") % {"job": job.pk})
    return redirect("review-models")


@require_POST
@lead_required
def cancel_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob, pk=job_id)
    try:
        training_job_cancel(job=job, by=request.user)
    except TrainingJobNotQueued as refusal:
        return _refused(
            request,
            _(
                "Job %(job)s was not cancelled: it is %(status)s now. "
                "Only a job still waiting for a worker can be cancelled."
            )
            % {"job": refusal.job.pk, "status": JOB_STATUSES.get(refusal.job.status, refusal.job.status)},
        )
    messages.success(request, _("Job %(job)s cancelled; a retrain can be requested again.") % {"job": job.pk})
    return redirect("review-models")


@require_POST
@lead_required
def promote(request: HttpRequest, kind: str, version: int) -> HttpResponse:
    target = model_version_get(kind=kind, version=version)
    if target is None:
        raise Http404(f"no {kind} model version {version}")
    reason = _reason(request)
    if reason is None:
        return _refused(request, _("A reason has at most 300 characters."), status=400)
    if target.status not in PROMOTABLE:
        return _refused(request, _("Only a candidate or a rejected version can be promoted."))
    if target.status == ModelVersion.Status.REJECTED and request.POST.get("confirm") != "1":
        return _promotion_to_confirm(request, target, reason)
    username = request.user.get_username()
    try:
        model_version_promote(
            version=target,
            by=username,
            reason=phrase("promoted_on_models_page", user=username, reason=reason or phrase("no_reason_given")),
            decided_by=request.user,
        )
    except (ArtifactError, SchemaMismatch) as error:
        return _refused(
            request, _("This version cannot be loaded, so it was not promoted: %(error)s") % {"error": error}
        )
    messages.success(request, _("%(label)s is the champion now.") % {"label": target.label})
    return redirect("review-models")


def _promotion_to_confirm(request: HttpRequest, target: ModelVersion, reason: str) -> HttpResponse:
    """The page again, unchanged, with why the retrain rules kept `target` out and a "Promote anyway" button:
    one click would otherwise put a model the rules judged worse or miscalibrated in front of every team."""
    confirm = {"version": target, "decision": target.promotions.first(), "reason": reason}
    return _render_page(request, extra={"promotion_to_confirm": confirm})


@require_POST
@lead_required
def rollback(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in ModelVersion.Kind.values:
        raise Http404(f"no model kind {kind}")
    reason = _reason(request)
    if reason is None:
        return _refused(request, _("A reason has at most 300 characters."), status=400)
    if _shown_target_changed(request, kind):
        return _refused(request, _("The models changed since this page was shown: look again before rolling back."))
    if request.POST.get("confirm") != "1":
        # The button changes the advice of every team at once: it is not pressed by a slip.
        return _refused(request, _("Tick that every team's advice changes to confirm the rollback."), status=400)
    username = request.user.get_username()
    try:
        restored = model_version_rollback(
            kind=kind,
            by=username,
            reason=phrase("on_models_page", user=username, reason=reason or phrase("no_reason_given")),
            decided_by=request.user,
        )
    except NothingToRestore:
        return _refused(request, _("There is no earlier version to roll back to."))
    except (ArtifactError, SchemaMismatch) as error:
        return _refused(
            request, _("The earlier version cannot be loaded, so nothing changed: %(error)s") % {"error": error}
        )
    messages.success(request, _("Rolled back: %(label)s is the champion again.") % {"label": restored.label})
    return redirect("review-models")


def _shown_target_changed(request: HttpRequest, kind: str) -> bool:
    """The button named the version it would restore; a retrain or rollback since (another tab, a colleague)
    would otherwise restore another one than the reader chose."""
    shown = request.POST.get("to_version")
    if shown is None:
        return False
    target = previous_champion(kind)
    return target is None or str(target.version) != shown


def _reason(request: HttpRequest) -> str | None:
    """The reason typed with a button (may be empty); None when it is not acceptable."""
    form = DecisionReasonForm(request.POST)
    return form.cleaned_data["reason"] if form.is_valid() else None


def _refused(request: HttpRequest, message: str, *, status: int = 409) -> HttpResponse:
    """The page again with the refusal on top: nothing changed, and the reader sees why."""
    messages.error(request, message)
    return _render_page(request, status=status)
