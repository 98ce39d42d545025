"""Redaction of secret-looking values in ``metadata`` and ``changes`` before storage.

An append-only, hashed log can never remove a secret it stored, so this errs towards
redacting. Keys are normalised before matching (``normalize_key``), so a look-alike,
zero-width or full-width spelling of a secret name is caught; header pairs and name/value
lists are read as the mappings they stand for; values that are credentials by their shape
(``Bearer …``, ``Basic …``, a JWT) are redacted wherever they are. The rules are listed in
``docs/events.md``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

#: Names that mark a value as secret, compared after ``normalize_key`` with the words joined.
#: A name of four characters or fewer (``pat``, ``pwd``, ``auth``, ``jwt``) must be the whole
#: key (so ``path`` and ``author`` stay); a longer one matches anywhere in it
#: (``client_secret``, ``X-Api-Key``); ``token`` ends the key or sits next to a word that
#: makes it a credential (``access_tokens``, ``token_value``), so ``max_tokens`` stays.
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
    "sshkey",
    "signingkey",
    "bearer",
    "pat",
    "pwd",
    "auth",
    "jwt",
    "otp",
    "sid",
    "pass",
    "pw",
    "pin",
    "totp",
    "mfacode",
    "dsn",
    "connectionstring",
    "passwort",
    "motdepasse",
    "contrasena",
)

# Words before "token(s)" that make it a credential, and after it.
_TOKEN_BEFORE = frozenset(
    {"access", "refresh", "auth", "api", "id", "session", "bearer", "csrf", "xsrf", "oauth",
     "personal", "service", "client", "user", "app", "bot", "github", "slack", "jwt"}
)  # fmt: skip
_TOKEN_AFTER = frozenset({"value", "secret", "string", "key", "hash", "data"})
_TOKENS = frozenset({"token", "tokens"})

# Letters that look like Latin ones (Cyrillic, Greek), as spoofed key names use them.
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁԛѡкмнтвɡαεορτυνικχ",
    "aeopcyxijsdqwkmhtbgaeoptuvikx",
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_]+")
# A {name: …, value: …} pair, whatever the case of its keys (.NET and AWS write Name/Value).
_PAIR_NAMES = frozenset({"name", "key", "header", "k"})
_PAIR_VALUES = frozenset({"value", "val", "v", "data"})
# Invisible letters (Hangul fillers) that spoofed names hide inside words.
_FILLERS = dict.fromkeys(map(ord, "\u115f\u1160\u3164\uffa0"))
# Credentials inside longer text: a JWT, an Authorization header line, a URL's password, a
# secret query parameter, and a Bearer/Basic/Digest credential after a separator.
_CREDENTIAL_IN = re.compile(
    r"eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*"
    r"|(?<=authorization:)\s*\S.*"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"
    r"|(?<=[?&;\s])(?:access_token|id_token|refresh_token|token|api_key|apikey|key|password"
    r"|passwd|secret|sig|signature)=[^&\s#]+"
    r"|(?:(?<=^)|(?<=[\s:=\"']))(?:bearer|digest)\s+[\w.~+/=-]{4,}"
    # Basic's base64 has a digit, a capital or +/=: "basic settings" is prose, not a secret.
    r"|(?:(?<=^)|(?<=[\s:=\"']))basic\s+(?=[\w+/=]*(?-i:[0-9A-Z+/=]))[\w+/=]{4,}",
    re.IGNORECASE | re.ASCII,
)

# Values that are credentials by their shape: an Authorization header value, or a JWT.
_CREDENTIAL = re.compile(
    r"\s*(?:(?:bearer|basic|digest|token)\s+[\w.~+/=-]{8,}"
    r"|eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]*)\s*",
    re.IGNORECASE | re.ASCII,
)


def normalize_key(key: str) -> list[str]:
    """The words of ``key`` as matching sees them.

    NFKC (full-width and other compatibility forms), format characters removed (zero-width
    spaces and joiners, soft hyphens, bidi controls), look-alike Cyrillic and Greek letters
    made Latin, split into words at separators and camelCase, case-folded.
    """
    text = unicodedata.normalize("NFKD", key)  # accents apart, then dropped: pássword
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Mn"))
    text = unicodedata.normalize("NFKC", text).translate(_FILLERS)
    text = text.translate(_CONFUSABLES)
    return [w.casefold() for w in _WORD.findall(text)]


class Redactor:
    """Replaces values under secret-looking keys, at any depth, with ``"[REDACTED]"``.

    Also the value of a ``[name, value]`` pair and of a ``{"name"|"key"|"header": …,
    "value": …}`` object whose name is secret, and any string shaped like a credential
    (``Bearer …``, ``Basic …``, a JWT). See ``DEFAULT_SECRET_KEYS`` for how names match.
    """

    __slots__ = ("_cache", "_fragments", "_token", "_words")

    def __init__(self, keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> None:
        folded = ["".join(normalize_key(k)) for k in keys]
        self._token = "token" in folded
        self._words = frozenset(k for k in folded if len(k) <= 4)
        self._fragments = tuple(k for k in folded if len(k) > 4 and k != "token")
        self._cache: dict[str, bool] = {}

    def is_secret(self, key: str) -> bool:
        hit = self._cache.get(key)
        if hit is None:
            hit = self._match(normalize_key(key))
            if len(self._cache) < 10_000:
                self._cache[key] = hit
        return hit

    def _match(self, words: list[str]) -> bool:
        if not words:
            return False
        joined = "".join(words)
        if joined in self._words:
            return True
        if any(f in joined for f in self._fragments):
            return True
        if self._token:
            if joined.endswith("token"):
                return True
            for i, word in enumerate(words):
                if word in _TOKENS and (
                    (i > 0 and words[i - 1] in _TOKEN_BEFORE)
                    or (i + 1 < len(words) and words[i + 1] in _TOKEN_AFTER)
                ):
                    return True
        return False

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with secret values replaced; the input is not changed."""
        if isinstance(value, dict):
            pair = self._pair_name(value)
            return {
                k: REDACTED
                if self.is_secret(k) or (pair and _folded(k) in _PAIR_VALUES)
                else self.redact(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            if len(value) == 2 and isinstance(value[0], str) and self.is_secret(value[0]):
                return [value[0], REDACTED]
            return [self.redact(v) for v in value]
        if isinstance(value, str):
            if len(value) >= 12 and _CREDENTIAL.fullmatch(value):
                return REDACTED
            if len(value) >= 8:
                return _CREDENTIAL_IN.sub(REDACTED, value)
        return value

    def _pair_name(self, value: dict[str, Any]) -> bool:
        folded = {_folded(k): v for k, v in value.items() if isinstance(k, str)}
        if not _PAIR_VALUES & folded.keys():
            return False
        for name in _PAIR_NAMES:
            named = folded.get(name)
            if isinstance(named, str) and self.is_secret(named):
                return True
        return False

    def redact_changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` with both sides of a secret field replaced, and nested values redacted."""
        out: dict[str, Any] = {}
        for field, change in changes.items():
            if self.is_secret(field):
                out[field] = dict.fromkeys(change, REDACTED)
            else:
                out[field] = self.redact(change)
        return out


def _folded(key: object) -> str:
    return "".join(normalize_key(key)) if isinstance(key, str) else ""
