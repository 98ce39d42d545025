"""Redaction of secret-looking values in ``metadata`` and ``changes`` before storage."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

#: Key fragments that mark a value as secret. Keys are compared in lower case with '-', '_',
#: '.' and spaces removed, so ``API-Key``, ``api_key`` and ``apiKey`` all match ``apikey``.
DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "privatekey",
    "credential",
    "accesskey",
    "sessionid",
    "pat",
)

# Fragments that are also the start of harmless words: they count only at the end of a key.
_SUFFIX_ONLY = frozenset({"token"})
_FOLD = re.compile(r"[-_. ]")


class Redactor:
    """Replaces values under secret-looking keys, at any depth, with ``"[REDACTED]"``.

    A key matches when its folded form contains one of the fragments (``client-secret``,
    ``X-Api-Key``, ``aws_access_key_id``, ``password_hash``). ``token`` must end the key
    (``access_token``, ``refreshToken``), so ``max_tokens``, ``tokenizer`` and
    ``token_count``, common on AI platforms, are left alone. Fragments of three or fewer
    characters (such as ``pat``, a personal access token) must equal the folded key, so
    ``path`` and ``pattern`` stay too.
    """

    __slots__ = ("_cache", "_exact", "_fragments", "_suffixes")

    def __init__(self, keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> None:
        folded = [_FOLD.sub("", k.lower()) for k in keys]
        self._exact = frozenset(k for k in folded if len(k) <= 3)
        self._suffixes = tuple(k for k in folded if k in _SUFFIX_ONLY)
        self._fragments = tuple(k for k in folded if len(k) > 3 and k not in _SUFFIX_ONLY)
        self._cache: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        hit = self._cache.get(key)
        if hit is None:
            folded = _FOLD.sub("", key.lower())
            hit = (
                folded in self._exact
                or any(f in folded for f in self._fragments)
                or folded.endswith(self._suffixes)
            )
            if len(self._cache) < 10_000:
                self._cache[key] = hit
        return hit

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with secret-keyed values replaced; the input is not changed."""
        if isinstance(value, dict):
            return {k: REDACTED if self.is_secret(k) else self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def redact_changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` with both sides of a secret field replaced, and nested values redacted."""
        out: dict[str, Any] = {}
        for field, change in changes.items():
            if self.is_secret(field):
                out[field] = dict.fromkeys(change, REDACTED)
            else:
                out[field] = self.redact(change)
        return out
