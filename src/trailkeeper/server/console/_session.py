"""The console's session cookie: the key's id, a session id and an expiry, signed with
HMAC-SHA256.

The browser never holds the key's secret after sign-in, only this cookie (HttpOnly, so page
scripts cannot read it; SameSite=Strict, so other sites cannot send it). Every request
checks the key again: revoking or expiring it ends its sessions at once. Signing out
records the session id as ended in the store, so a copy of the cookie stops working on
every server that shares the database, not only in the browser that signed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

COOKIE = "tk_console"
#: How long a sign-in lasts.
LIFETIME_SECONDS = 12 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A verified cookie: whose key, which sign-in, and until when (Unix seconds)."""

    key_id: str
    id: str
    expires: int


def sign(secret: bytes, key_id: str, now: float | None = None) -> str:
    """A cookie value for a new session of ``key_id``, valid for ``LIFETIME_SECONDS``."""
    issued = int(now if now is not None else time.time())
    claims = {"k": key_id, "s": secrets.token_urlsafe(16), "exp": issued + LIFETIME_SECONDS}
    body = _b64(orjson.dumps(claims))
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: bytes, value: str, now: float | None = None) -> Session | None:
    """The session a cookie value was signed for, or ``None`` if forged, garbled or expired.

    Whether the session was signed out is the store's to say (``session_ended``).
    """
    body, _, mac = value.partition(".")
    if not body or not mac or len(value) > 512:
        return None
    expected = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        claims = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(claims, dict):
        return None
    key_id, session_id, expires = claims.get("k"), claims.get("s"), claims.get("exp")
    if not isinstance(key_id, str) or not isinstance(session_id, str):
        return None
    if not isinstance(expires, int) or expires <= (now if now is not None else time.time()):
        return None
    return Session(key_id, session_id, expires)


def form_token(secret: bytes, purpose: str, value: str) -> str:
    """A token for a form's hidden field, bound to ``value`` (a session id, a login nonce)."""
    mac = hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return _b64(mac)


def token_matches(secret: bytes, purpose: str, value: str, token: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged form's).
    expected = form_token(secret, purpose, value).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))
