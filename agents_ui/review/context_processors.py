"""Makes the review navigation available to every template that extends the review base."""

from __future__ import annotations

from functools import partial

from django.http import HttpRequest

from agents_ui.review.navigation import review_nav


def review_navigation(request: HttpRequest) -> dict:
    # A callable, so the url lookups run only on pages that show the navigation.
    return {"review_nav": partial(review_nav, request)}
