"""API keys: what a key may do, and how its secret is made and checked.

A secret looks like ``tk_<key id>_<43 random url-safe characters>``. Only the SHA-256 of the
secret is stored; the secret is shown once, when the key is made. (The secret carries 256
random bits, so a fast hash is enough: there is nothing to brute-force.)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Scope = Literal["events:write", "events:read", "admin"]
SCOPES: tuple[str, ...] = ("events:write", "events:read", "admin")


class AuthError(Exception):
    """A request whose key is missing, unknown, expired, revoked or lacks a scope.

    ``code`` is machine-readable: ``missing_key``, ``invalid_key``, ``expired_key``,
    ``revoked_key`` (status 401), ``forbidden`` or ``app_not_allowed`` (status 403).
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)

    @property
    def status(self) -> int:
        return 403 if self.code in ("forbidden", "app_not_allowed") else 401


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key, as stored (never with its secret)."""

    id: str
    org_id: str
    name: str
    scopes: tuple[str, ...]
    apps: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    secret_hash: bytes

    def allows(self, scope: str) -> bool:
        """Whether the key has ``scope``; ``admin`` has every scope."""
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "org_id": self.org_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "apps": list(self.apps),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def new_secret() -> tuple[str, str, bytes]:
    """A fresh (key id, secret, secret hash)."""
    key_id = secrets.token_hex(6)
    secret = f"tk_{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, secret, hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def key_id_of(secret: str) -> str | None:
    """The key id a secret names, or ``None`` if it isn't shaped like one of ours."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != "tk" or len(parts[1]) != 12:
        return None
    return parts[1]


def matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, hash_secret(secret))
