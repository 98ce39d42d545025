"""Rows as both backends read them back: an event row and an API key row.

Both select the same columns in the same order (``seq, received_us, leaf_hash, body`` and
the ``api_keys`` columns), so one function of each serves SQLite's and PostgreSQL's rows.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..events import StoredEvent, from_micros, to_micros
from ..keys import ApiKey

#: Events read for ``row_to_stored`` (the table aliased ``e``, for WHERE clauses on it).
SELECT_EVENTS = "SELECT e.seq, e.received_us, e.leaf_hash, e.body FROM events e"
#: API keys read for ``row_to_key``.
SELECT_KEYS = (
    "SELECT id, org_id, name, scopes, apps, created_us, expires_us, revoked_us, secret_hash "
    "FROM api_keys"
)


def row_to_stored(row: tuple[Any, ...] | list[Any]) -> StoredEvent:
    """A stored event from ``(seq, received_us, leaf_hash, body)``."""
    seq, received_us, leaf, body = row
    return StoredEvent(seq=seq, received_us=received_us, leaf_hash=bytes(leaf), canonical=body)


def row_to_key(row: tuple[Any, ...]) -> ApiKey:
    """An API key from a row of ``SELECT_KEYS``."""
    key_id, org_id, name, scopes, apps, created, expires, revoked, secret_hash = row
    return ApiKey(
        id=key_id,
        org_id=org_id,
        name=name,
        scopes=tuple(orjson.loads(scopes)),
        apps=tuple(orjson.loads(apps)),
        created_at=from_micros(created),
        expires_at=from_micros(expires) if expires is not None else None,
        revoked_at=from_micros(revoked) if revoked is not None else None,
        secret_hash=bytes(secret_hash),
    )


def upsert_key(placeholder: str) -> str:
    """The statement that stores ``key_row(key)``: a new key, or an existing one's
    revocation (the first revocation time is kept)."""
    places = ", ".join([placeholder] * 9)
    return (
        f"INSERT INTO api_keys VALUES ({places}) ON CONFLICT (id) DO UPDATE "
        "SET revoked_us = COALESCE(api_keys.revoked_us, excluded.revoked_us)"
    )


def key_row(key: ApiKey) -> tuple[object, ...]:
    """An API key as a row of ``api_keys``, in column order."""
    return (
        key.id,
        key.org_id,
        key.name,
        orjson.dumps(list(key.scopes)).decode(),
        orjson.dumps(list(key.apps)).decode(),
        to_micros(key.created_at),
        to_micros(key.expires_at) if key.expires_at else None,
        to_micros(key.revoked_at) if key.revoked_at else None,
        key.secret_hash,
    )
