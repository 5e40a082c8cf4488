"""Which external ids belong to customers erased at their request (see `ErasedCustomerId`).

An id is matched by its HMAC under the site's secret key and under each key in SECRET_KEY_FALLBACKS, so rotating
the key the way Django rotates it (the old one kept as a fallback for a while) keeps every refusal; the service
that stores customers moves a refusal found under an old key to the current one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import salted_hmac

from retention.models import ErasedCustomerId

KEY_SALT = "retention.erased-customer-id"


def erased_id_digest(external_id: str, *, secret: str | bytes | None = None) -> str:
    """The digest stored for an erased customer's external id: under the current key unless `secret` is given."""
    return salted_hmac(KEY_SALT, external_id, secret=secret, algorithm="sha256").hexdigest()


@dataclass(frozen=True)
class ErasedMatch:
    refusal: ErasedCustomerId
    current_digest: (
        str  # the id's digest under the current key; differs from refusal.digest when found under an old one
    )


def erased_ids_among(external_ids: Iterable[str]) -> dict[str, ErasedMatch]:
    """The ids, of those given, of customers erased at their request, with what refuses each; one query."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    candidates: dict[str, tuple[str, str]] = {}  # digest -> (external id, its digest under the current key)
    for external_id in set(external_ids):
        current = erased_id_digest(external_id, secret=keys[0])
        for key in keys:
            digest = current if key is keys[0] else erased_id_digest(external_id, secret=key)
            candidates[digest] = (external_id, current)
    if not candidates:
        return {}
    found = ErasedCustomerId.objects.filter(digest__in=list(candidates)).select_related("erasure")
    matches = {}
    for refusal in found:
        external_id, current = candidates[refusal.digest]
        matches[external_id] = ErasedMatch(refusal=refusal, current_digest=current)
    return matches
