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


def review_nav(request: HttpRequest) -> list[NavEntry]:
    current_name = getattr(getattr(request, "resolver_match", None), "url_name", None)
    entries = []
    for url_name, label in REVIEW_PAGES:
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        entries.append(NavEntry(label=str(label), url=url, current=url_name == current_name))
    return entries
