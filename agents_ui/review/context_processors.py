"""Makes the review navigation available to every template that extends the review base."""

from __future__ import annotations

from functools import partial

from django.http import HttpRequest

from agents_ui.review.navigation import review_nav


def review_navigation(request: HttpRequest) -> dict:
    # Callables, so the url lookups and the viewer's role are read only on pages that show them.
    return {"review_nav": partial(review_nav, request), "may_review": partial(_may_review, request)}


def _may_review(request: HttpRequest) -> bool:
    """A team lead or administrator: the panel links them to the review pages, where escalations wait."""
    from agents_ui.review.access import review_scope_of

    return getattr(request, "user", None) is not None and review_scope_of(request.user) is not None
