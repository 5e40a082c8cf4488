"""The review navigation, built from url names so a page that is not installed yet is left out, not broken."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

REVIEW_PAGES = [
    ("review-log", _("Offer log")),
    ("review-escalations", _("Escalations")),
    ("review-kpis", _("KPIs")),
    ("review-budget", _("Budget")),
    ("review-fairness", _("Fairness")),
    ("review-models", _("Models")),
]


@dataclass(frozen=True)
class NavEntry:
    label: str
    url: str
    current: bool
    waiting: int | None = None  # the escalations waiting for the viewer, beside that page's name


def review_nav(request: HttpRequest) -> list[NavEntry]:
    current_name = getattr(getattr(request, "resolver_match", None), "url_name", None)
    entries = []
    for url_name, label in REVIEW_PAGES:
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        waiting = _escalations_waiting(request) if url_name == "review-escalations" else None
        entries.append(NavEntry(label=str(label), url=url, current=url_name == current_name, waiting=waiting))
    return entries


def _escalations_waiting(request: HttpRequest) -> int | None:
    """How many escalations wait for the viewer; None outside a review page (no scope to count in)."""
    if getattr(request, "review_scope", None) is None:
        return None
    # Imported here: the navigation is read by every page's template, the selectors only by review pages.
    from agents_ui.review.access import escalations_waiting_for

    return len(escalations_waiting_for(request).for_viewer)
