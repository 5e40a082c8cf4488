"""Writes to an agent's own profile."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from retention.models import AgentProfile


def agent_shortcuts_set(*, user: AbstractBaseUser, on: bool) -> AgentProfile:
    """Whether single keys act on the advice in this user's panel from now on."""
    profile = AgentProfile.objects.get(user=user)
    profile.keyboard_shortcuts = on
    profile.save(update_fields=["keyboard_shortcuts"])
    return profile


def agent_language_set(*, user: AbstractBaseUser, language: str) -> AgentProfile:
    """The language the panel and the review pages speak to this user from now on."""
    known = [code for code, _ in settings.LANGUAGES]
    if language not in known:
        raise ValidationError({"language": f"must be one of {', '.join(known)}"})
    profile = AgentProfile.objects.get(user=user)
    profile.language = language
    profile.full_clean()
    profile.save(update_fields=["language"])
    return profile
