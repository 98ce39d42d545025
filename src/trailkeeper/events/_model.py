"""The event as Trailkeeper keeps it: frozen values, their canonical JSON and leaf hash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

ActorType = Literal["user", "api_key", "service", "anonymous"]
ACTOR_TYPES: tuple[str, ...] = ("user", "api_key", "service", "anonymous")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(value: datetime) -> str:
    """The one time format of the canonical encoding: UTC, six fraction digits, ``Z``.

    ``2026-11-26T02:20:09.000000Z``; every stored time has exactly this shape.
    """
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" becomes "Z"


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch (UTC) of an aware datetime."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    """The aware UTC datetime ``micros`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it."""

    id: str
    type: ActorType = "user"
    name: str | None = None
    email: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "name": self.name, "email": self.email}


@dataclass(frozen=True, slots=True)
class Target:
    """A resource the action touched."""

    type: str
    id: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why an action failed: a machine-readable code and a message for people."""

    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class Event:
    """One audit event, validated and normalised (see ``docs/events.md`` for every rule).

    Build events with ``trailkeeper.events.parse_event``; the constructor does not validate.
    """

    id: str
    time: datetime
    org_id: str
    operation: str
    actor: Actor
    description: str
    targets: tuple[Target, ...] = ()
    success: bool = True
    error: ErrorInfo | None = None
    app_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    details: tuple[str, ...] = ()
    changes: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data: every field, ``None`` where absent."""
        return {
            "id": self.id,
            "time": format_time(self.time),
            "org_id": self.org_id,
            "app_id": self.app_id,
            "actor": self.actor.to_dict(),
            "operation": self.operation,
            "description": self.description,
            "targets": [t.to_dict() for t in self.targets],
            "success": self.success,
            "error": self.error.to_dict() if self.error else None,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "request_id": self.request_id,
            "details": list(self.details),
            "changes": dict(self.changes) if self.changes is not None else {},
            "metadata": dict(self.metadata) if self.metadata is not None else {},
        }

    def canonical_bytes(self) -> bytes:
        """The canonical JSON encoding (see ``canonical_json``)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from ``to_dict`` output that was validated before (no checks)."""
        actor = data["actor"]
        error = data.get("error")
        return cls(
            id=data["id"],
            time=datetime.fromisoformat(data["time"]),
            org_id=data["org_id"],
            operation=data["operation"],
            actor=Actor(actor["id"], actor["type"], actor.get("name"), actor.get("email")),
            description=data["description"],
            targets=tuple(Target(t["type"], t["id"], t.get("name")) for t in data["targets"]),
            success=data["success"],
            error=ErrorInfo(error["code"], error["message"]) if error else None,
            app_id=data.get("app_id"),
            source_ip=data.get("source_ip"),
            user_agent=data.get("user_agent"),
            request_id=data.get("request_id"),
            details=tuple(data.get("details") or ()),
            changes=data.get("changes") or {},
            metadata=data.get("metadata") or {},
        )


# Events of one batch share their receive time: format each one once.
_received_text: dict[int, str] = {}


class StoredEvent:
    """An event as the log holds it, with what the server assigned.

    Built from the stored canonical bytes, it decodes them into ``event`` only when that is
    first read: an API response copies the bytes as they are (``to_json``).
    """

    __slots__ = ("_event", "canonical", "leaf_hash", "received_us", "seq")

    def __init__(
        self,
        event: Event | None = None,
        seq: int = 0,
        received_at: datetime = EPOCH,
        leaf_hash: bytes = b"",
        *,
        canonical: bytes | None = None,
        received_us: int | None = None,
    ) -> None:
        if event is None and canonical is None:
            raise ValueError("a StoredEvent needs its event or its canonical bytes")
        self._event = event
        self.canonical = canonical if canonical is not None else event.canonical_bytes()  # type: ignore[union-attr]
        self.seq = seq
        # Kept as stored, in microseconds: a page of results is mostly copied out as JSON,
        # and making a datetime for each row cost more than the rest of reading it.
        self.received_us = received_us if received_us is not None else to_micros(received_at)
        self.leaf_hash = leaf_hash

    @property
    def received_at(self) -> datetime:
        """When the server received the event (UTC)."""
        return from_micros(self.received_us)

    @property
    def event(self) -> Event:
        if self._event is None:
            self._event = Event.from_dict(orjson.loads(self.canonical))
        return self._event

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredEvent):
            return NotImplemented
        return (self.canonical, self.seq, self.received_us, self.leaf_hash) == (
            other.canonical,
            other.seq,
            other.received_us,
            other.leaf_hash,
        )

    def __hash__(self) -> int:
        return hash((self.seq, self.leaf_hash))

    def __repr__(self) -> str:
        return f"StoredEvent(seq={self.seq}, canonical={self.canonical[:60]!r}...)"

    def to_dict(self) -> dict[str, Any]:
        """The event's fields plus ``seq``, ``received_at`` and ``leaf_hash`` (hex)."""
        data = self.event.to_dict()
        data["seq"] = self.seq
        data["received_at"] = format_time(self.received_at)
        data["leaf_hash"] = self.leaf_hash.hex()
        return data

    def to_json(self) -> bytes:
        """``to_dict`` as JSON, made from the stored bytes without decoding them."""
        received = _received_text.get(self.received_us)
        if received is None:
            if len(_received_text) > 4096:
                _received_text.clear()
            received = _received_text[self.received_us] = format_time(self.received_at)
        tail = (
            f',"seq":{self.seq},"received_at":"{received}","leaf_hash":"{self.leaf_hash.hex()}"}}'
        )

        return self.canonical[:-1] + tail.encode()


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: keys sorted by code point, no insignificant white space, UTF-8.

    Strings are written as JSON strings with only the escapes JSON requires (``"``, ``\\``
    and control characters); non-ASCII characters are written as themselves. Integers are
    plain decimal digits (they are limited to ±(2**53 - 1) at validation); floats are the
    shortest digits that read back as the same IEEE-754 double, in plain notation from 1e-5
    up to below 1e16 and in exponent notation outside it: ``0.1``, ``1.0``, ``0.000025``,
    ``1e-7``, ``1e+16`` (orjson's encoder, pinned to 3.10+ in pyproject). Times are strings
    in the ``format_time`` shape. Verification reads the stored bytes, never re-encodes.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def leaf_hash(canonical: bytes) -> bytes:
    """The RFC 6962 leaf hash of an event: SHA-256(0x00 || canonical bytes)."""
    return hashlib.sha256(b"\x00" + canonical).digest()
