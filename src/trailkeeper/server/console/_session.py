"""The console's session cookie: the key's id and an expiry, signed with HMAC-SHA256.

The browser never holds the key's secret after sign-in, only this cookie (HttpOnly, so page
scripts cannot read it; SameSite=Strict, so other sites cannot send it). Every request
checks the key again: revoking or expiring it ends its sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson

COOKIE = "tk_console"
#: How long a sign-in lasts.
LIFETIME_SECONDS = 12 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, key_id: str, now: float | None = None) -> str:
    """A cookie value for ``key_id``, valid for ``LIFETIME_SECONDS``."""
    issued = int(now if now is not None else time.time())
    body = _b64(orjson.dumps({"k": key_id, "exp": issued + LIFETIME_SECONDS}))
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: bytes, value: str, now: float | None = None) -> str | None:
    """The key id a cookie value was signed for, or ``None`` if forged, garbled or expired."""
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
    if not isinstance(claims, dict) or not isinstance(claims.get("k"), str):
        return None
    expires = claims.get("exp")
    if not isinstance(expires, int) or expires <= (now if now is not None else time.time()):
        return None
    key_id: str = claims["k"]
    return key_id
