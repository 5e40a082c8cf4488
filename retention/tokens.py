"""API client tokens: made at random, kept only as a hash, and known again by a prefix shown in the admin."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX_LENGTH = 8


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)
