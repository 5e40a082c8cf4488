"""Which external ids belong to customers erased at their request (see `ErasedCustomerId`).

An id is matched by its HMAC under the site's secret key and under each key in SECRET_KEY_FALLBACKS, so rotating
the key the way Django rotates it (the old one kept as a fallback for a while) keeps every refusal; the service
that stores customers moves a refusal found under an old key to the current one. Each digest records which key
made it (a fingerprint), so a refusal under a key no longer configured is found before it lapses (see
`refusals_under_unknown_keys`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from django.utils.crypto import salted_hmac

from retention.models import ErasedCustomerId

KEY_SALT = "retention.erased-customer-id"
FINGERPRINT_SALT = "retention.erased-customer-id.key"
# Under the 999 parameters of a query older SQLite builds allow; a chunk of a file being scored holds 50,000 ids.
DIGESTS_PER_QUERY = 900


def erased_id_digest(external_id: str, *, secret: str | None = None) -> str:
    """The digest stored for an erased customer's external id, under the current key unless `secret` is given:
    salted_hmac(KEY_SALT, external_id, secret, algorithm="sha256"), with the derived key worked out once per key,
    since a file being scored asks for one per row."""
    key = _derived_key(settings.SECRET_KEY if secret is None else secret)
    return hmac.new(key, external_id.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=16)
def _derived_key(secret: str) -> bytes:
    # As django.utils.crypto.salted_hmac derives its key from the salt and the secret.
    return hashlib.sha256(KEY_SALT.encode() + secret.encode()).digest()


def key_fingerprint(secret: str | None = None) -> str:
    """Names a secret key without revealing it: which key a stored digest was made with."""
    return salted_hmac(FINGERPRINT_SALT, "key", secret=secret, algorithm="sha256").hexdigest()[:16]


def configured_keys() -> list[str]:
    """The current secret key, then the fallbacks still accepted."""
    return [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]


@dataclass(frozen=True)
class ErasedMatch:
    """What refuses one id: usually one refusal; two when the id was erased again while the key its first refusal
    was made under was missing, and that key came back as a fallback."""

    refusals: tuple[ErasedCustomerId, ...]
    current_digest: str  # the id's digest under the current key

    @property
    def refusal(self) -> ErasedCustomerId:
        """The one under the current key if there is one, else the latest."""
        return self.under_current_key or max(self.refusals, key=lambda refusal: refusal.created_at)

    @property
    def under_current_key(self) -> ErasedCustomerId | None:
        return next((refusal for refusal in self.refusals if refusal.digest == self.current_digest), None)


def erased_ids_among(external_ids: Iterable[str]) -> dict[str, ErasedMatch]:
    """The ids, of those given, of customers erased at their request and not let back, with what refuses each.

    While no refusal is in force (most of a deployment's life) no digest is worked out: storing or scoring a batch
    then costs one query, not an HMAC per id.
    """
    in_force = _in_force()
    refusals = in_force.count()
    if not refusals:
        return {}
    keys = configured_keys()
    candidates: dict[str, tuple[str, str]] = {}  # digest -> (external id, its digest under the current key)
    for external_id in set(external_ids):
        current = erased_id_digest(external_id, secret=keys[0])
        candidates[current] = (external_id, current)
        for key in keys[1:]:
            candidates[erased_id_digest(external_id, secret=key)] = (external_id, current)
    found: dict[str, list[ErasedCustomerId]] = {}
    for refusal in _among(in_force, list(candidates), refusals):
        found.setdefault(candidates[refusal.digest][0], []).append(refusal)
    return {
        external_id: ErasedMatch(refusals=tuple(refusals), current_digest=candidates[refusals[0].digest][1])
        for external_id, refusals in found.items()
    }


def _in_force() -> QuerySet[ErasedCustomerId]:
    return ErasedCustomerId.objects.filter(allowed_at__isnull=True)


def _among(in_force: QuerySet[ErasedCustomerId], digests: list[str], refusals: int) -> Iterator[ErasedCustomerId]:
    """The refusals in force among these digests. Where there are fewer refusals than digests (a chunk of a file
    being scored asks about 50,000 ids) every digest in force is read and matched here, which is one query
    however long the list; else the digests are looked up a part at a time."""
    if refusals <= len(digests):
        wanted = set(digests)
        digests = [digest for digest in in_force.values_list("digest", flat=True) if digest in wanted]
    for start in range(0, len(digests), DIGESTS_PER_QUERY):
        yield from in_force.filter(digest__in=digests[start : start + DIGESTS_PER_QUERY]).select_related("erasure")


def erased_external_ids(external_ids: Iterable[str]) -> set[str]:
    """The ids, of those given, of customers erased at their request and not let back."""
    return set(erased_ids_among(external_ids))


def last_let_back(external_id: str) -> ErasedCustomerId | None:
    """The latest refusal of this id that was lifted, under any configured key; None if there is none."""
    digests = [erased_id_digest(external_id, secret=key) for key in configured_keys()]
    lifted = ErasedCustomerId.objects.filter(digest__in=digests, allowed_at__isnull=False)
    return lifted.order_by("-allowed_at").first()


def configured_key_ids() -> list[str]:
    """The fingerprints of the keys digests are matched under."""
    return [key_fingerprint(key) for key in configured_keys()]


def refusals_under_unknown_keys() -> int:
    """Refusals in force whose digest was made with a key that is neither the current one nor a fallback: they
    match nothing any more, so those customers would be stored again if the CRM sent them."""
    return _in_force().exclude(key_id__in=configured_key_ids()).count()
