"""Turning producer input into an ``Event``: every rule, with messages a person understands.

All problems of one event are collected, not just the first, so a producer can fix a batch in
one round trip. The rules and limits are listed in ``docs/events.md``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ._catalogue import Catalogue, UnknownOperationError
from ._ip import normalize_ip
from ._limits import (
    DEFAULT_LIMITS,
    ERROR_CODE_PATTERN,
    ID_PATTERN,
    ID_RULE,
    MAX_SAFE_INTEGER,
    REFUSED_IN_LINE,
    REFUSED_IN_TEXT,
    Limits,
)
from ._model import ACTOR_TYPES, Actor, ErrorInfo, Event, Target, canonical_json
from ._redact import Redactor
from ._uuid7 import uuid7

EVENT_FIELDS = frozenset(
    {
        "id",
        "time",
        "org_id",
        "app_id",
        "actor",
        "operation",
        "description",
        "targets",
        "success",
        "error",
        "source_ip",
        "user_agent",
        "request_id",
        "details",
        "changes",
        "metadata",
    }
)
SERVER_FIELDS = frozenset({"seq", "received_at", "leaf_hash"})

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?P<frac>\.\d{1,9})?(?P<tz>[Zz]|[+-]\d{2}:\d{2})"
)
_CONTROL = REFUSED_IN_LINE
_CONTROL_MULTILINE = REFUSED_IN_TEXT
_SURROGATE = re.compile("[\ud800-\udfff]")
#: JSON numbers must lie strictly inside this: the server reads a larger JSON integer as an
#: approximate float, which can't be told from one sent as a float.
INT64_LIMIT = 2**63
_CANONICAL_UUID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_GOOD_IDS: set[str] = set()
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_MS = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


#: At most this many errors are kept, of one event and of a batch; the rest are only counted.
MAX_ERRORS = 100


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one event.

    ``omitted``: not a problem itself but the note (field ``(more)``) that ends a list cut at
    ``MAX_ERRORS``: how many problems were found and not listed (``index``: the event of the
    first of them).
    """

    field: str
    message: str
    index: int | None = None
    omitted: int = 0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            data["index"] = self.index
        return data


class EventValidationError(ValueError):
    """One or more events broke the rules; ``errors`` names each event and field.

    At most ``MAX_ERRORS`` entries: past that, the first ``MAX_ERRORS - 1`` problems and a
    note of how many more (``FieldError.omitted``). ``error_count`` counts every problem and
    ``event_count`` the events they are in: a batch of a thousand bad events must not make a
    response of a thousand times their problems. ``omitted``: problems found and not listed
    in ``errors`` (counted by a caller that stopped collecting); ``event_count`` is given by
    such a caller, whose listed errors do not name every event.
    """

    def __init__(
        self, errors: list[FieldError], *, omitted: int = 0, event_count: int | None = None
    ) -> None:
        self.error_count = sum(e.omitted or 1 for e in errors) + omitted
        self.event_count = len({e.index for e in errors}) if event_count is None else event_count
        if len(errors) > MAX_ERRORS or omitted:
            kept = errors[: MAX_ERRORS - 1]
            rest = self.error_count - sum(e.omitted or 1 for e in kept)
            index = errors[len(kept)].index if len(errors) > len(kept) else errors[-1].index
            note = f"{rest:,} more problem(s) found and not listed"
            errors = [*kept, FieldError("(more)", note, index, rest)]
        self.errors = errors
        first = [e for e in errors[:5] if not e.omitted]
        shown = "; ".join(
            (f"event {e.index}: " if e.index is not None else "") + f"{e.field}: {e.message}"
            for e in first
        )
        more = f" (and {self.error_count - len(first):,} more)" if self.error_count > 5 else ""
        super().__init__(f"invalid event: {shown}{more}")


@dataclass(frozen=True, slots=True)
class EventRules:
    """What validation checks against: the catalogue, the limits and the redactor."""

    catalogue: Catalogue = field(default_factory=Catalogue.default)
    limits: Limits = DEFAULT_LIMITS
    redactor: Redactor | None = field(default_factory=Redactor)


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A valid event, and whether the producer left its ``time`` out (see ``_parse_time``)."""

    event: Event
    time_defaulted: bool


class _Collector:
    """The errors of one event: the first ``MAX_ERRORS`` kept, the rest only counted."""

    __slots__ = ("errors", "index", "omitted")

    def __init__(self, index: int | None) -> None:
        self.index = index
        self.errors: list[FieldError] = []
        self.omitted = 0

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def add(self, name: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(FieldError(name, message, self.index))
        else:
            self.omitted += 1

    def fail(self) -> EventValidationError:
        return EventValidationError(self.errors, omitted=self.omitted)


class BatchErrors:
    """The errors of a batch of events: the first ``MAX_ERRORS`` kept, the rest only counted,
    so that a thousand bad events do not build a list of a thousand times their problems."""

    __slots__ = ("errors", "events", "omitted")

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.omitted = 0
        self.events = 0

    def __bool__(self) -> bool:
        return self.events > 0

    def add(self, exc: EventValidationError) -> None:
        """Count the problems of one more invalid event, keeping those that still fit."""
        self.events += 1
        room = max(MAX_ERRORS - len(self.errors), 0)
        self.errors.extend(exc.errors[:room])
        self.omitted += sum(e.omitted or 1 for e in exc.errors[room:])

    def fail(self) -> EventValidationError:
        return EventValidationError(self.errors, omitted=self.omitted, event_count=self.events)


def parse_event(
    raw: object,
    *,
    org_id: str | None,
    received_at: datetime,
    rules: EventRules,
    index: int | None = None,
) -> ParsedEvent:
    """Validate and normalise one event as a producer sent it.

    Args:
        raw: the event as decoded JSON (a mapping).
        org_id: the org the event is ingested into; an ``org_id`` in ``raw`` must equal it.
            ``None`` takes the org from ``raw`` (which then must have one).
        received_at: the receive time: the default ``time``, and the base of the
            future-time limit.
        rules: catalogue, limits and redactor.
        index: the event's position in its batch, carried into every error.

    Returns:
        The event, with defaults filled in and secrets redacted.

    Raises:
        EventValidationError: naming every bad field.
    """
    c = _Collector(index)
    limits = rules.limits
    if not isinstance(raw, Mapping):
        c.add("(event)", f"an event must be a JSON object, not {_kind(raw)}")
        raise c.fail()

    for key in () if type(raw) is dict and raw.keys() <= EVENT_FIELDS else raw:
        if c.full:
            # Counted, without the cost of a message and a hint.
            c.omitted += key in SERVER_FIELDS or key not in EVENT_FIELDS
        elif key in SERVER_FIELDS:
            c.add(str(key), "is assigned by the server; leave it out")
        elif key not in EVENT_FIELDS:
            c.add(_shown(key), f"is not an event field{_hint(str(key), EVENT_FIELDS)}")

    event_id = _parse_id(raw.get("id"), c)
    time, time_defaulted = _parse_time(raw.get("time"), event_id, received_at, limits, c)

    raw_org = raw.get("org_id")
    if raw_org is None:
        org = org_id
        if org is None:
            c.add("org_id", "is required")
    else:
        org = _ident(raw_org, "org_id", c)
        if org is not None and org_id is not None and org != org_id:
            c.add("org_id", f"is {org!r}, but this batch is for org {org_id!r}")

    app_id = _ident(raw.get("app_id"), "app_id", c, required=False)
    actor = _parse_actor(raw.get("actor"), limits, c)

    operation = raw.get("operation")
    default_description = ""
    if not isinstance(operation, str):
        c.add("operation", "is required" if operation is None else "must be a string")
        operation = ""
    else:
        try:
            default_description = rules.catalogue.get(operation).description
        except UnknownOperationError as exc:
            c.add("operation", str(exc))

    description = _text(raw.get("description"), "description", limits.description, c, True)
    targets = _parse_targets(raw.get("targets"), rules.catalogue.target_types, limits, c)

    success = raw.get("success", True)
    if not isinstance(success, bool):
        c.add("success", "must be true or false")
        success = True
    error = _parse_error(raw.get("error"), success, limits, c)

    source_ip = _parse_ip(raw.get("source_ip"), c)
    user_agent = _text(raw.get("user_agent"), "user_agent", limits.user_agent, c, False)
    request_id = _ident(raw.get("request_id"), "request_id", c, required=False)
    details = _parse_details(raw.get("details"), limits, c)
    changes = _parse_changes(raw.get("changes"), limits, c)
    metadata = _parse_metadata(raw.get("metadata"), limits, c)

    if c.errors:
        raise c.fail()
    if rules.redactor is not None:
        if changes:
            changes = rules.redactor.redact_changes(changes)
        if metadata:
            metadata = rules.redactor.redact(metadata)

    assert org is not None
    assert actor is not None
    assert time is not None
    event = Event(
        id=event_id or str(uuid7()),
        time=time,
        org_id=org,
        operation=operation,
        actor=actor,
        description=description or default_description,
        targets=targets,
        success=success,
        error=error,
        app_id=app_id,
        source_ip=source_ip,
        user_agent=user_agent,
        request_id=request_id,
        details=details,
        changes=changes or {},
        metadata=metadata or {},
    )
    return ParsedEvent(event, time_defaulted)


def check_event_size(
    event: Event, canonical: bytes, limits: Limits, index: int | None = None
) -> None:
    """Refuse an event whose encoding, or whose ``changes`` or ``metadata``, is over its limit.

    The parts are measured only when the whole event is larger than a part's limit: below
    that, no part can be over.
    """
    if len(canonical) > min(limits.changes_bytes, limits.metadata_bytes):
        c = _Collector(index)
        if event.changes:
            _size_ok(event.changes, "changes", limits.changes_bytes, c)
        if event.metadata:
            _size_ok(event.metadata, "metadata", limits.metadata_bytes, c)
        if c.errors:
            raise c.fail()
    if len(canonical) > limits.event_bytes:
        raise EventValidationError(
            [
                FieldError(
                    "(event)",
                    f"is {len(canonical):,} bytes encoded; the limit is "
                    f"{limits.event_bytes:,} bytes",
                    index,
                )
            ]
        )


def _kind(value: object) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _brief(value: object) -> str:
    """A value an error quotes: a string's first 64 characters, else only its kind (the repr
    of a deeply nested value is huge, or fails)."""
    if isinstance(value, str):
        return repr(value[:64])
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return _integer(value)
    return _kind(value)


def _integer(value: int) -> str:
    # Python refuses to write an int of over 4,300 digits; past 40, the digits tell nothing.
    return str(value) if abs(value) < 10**40 else f"of {value.bit_length()} bits"


def _hint(name: str, choices: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _parse_id(value: object, c: _Collector) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        c.add("id", f"must be a UUID string, not {_kind(value)}")
        return None
    if not _CANONICAL_UUID.fullmatch(value):
        c.add(
            "id",
            f"{value[:64]!r} is not a UUID in its 36-character hyphenated form "
            "(like 0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f)",
        )
        return None
    if value == _NIL_UUID:
        c.add("id", "must be a real UUID, not the nil UUID")
        return None
    return value.lower()


def _parse_time(
    value: object, event_id: str | None, received_at: datetime, limits: Limits, c: _Collector
) -> tuple[datetime | None, bool]:
    """The event's time, and whether it was left out.

    Left out, it is the millisecond a UUIDv7 ``id`` carries: every server, at any moment,
    gives a resend the same time, so it is the same event. Without such an id, or when the
    id's time is outside the accepted range (a producer's clock far off), the receive time
    (the service then reuses a stored first copy's time, see ``AuditService``).
    """
    if value is None:
        embedded = uuid7_time(event_id) if event_id is not None else None
        if embedded is None or not (
            -limits.max_past <= embedded - received_at <= limits.max_future
        ):
            return received_at.astimezone(UTC), True
        return embedded, True
    if isinstance(value, datetime):
        if value.tzinfo is None:
            c.add("time", "must have a time zone")
            return None, False
        parsed = _to_utc(value, repr(value.isoformat()), c)
        if parsed is None:
            return None, False
    elif isinstance(value, str):
        match = _RFC3339.fullmatch(value)
        if match is None:
            c.add(
                "time",
                f"{value[:64]!r} is not an RFC 3339 date-time with a time zone "
                "(like 2026-11-26T09:30:00Z or 2026-11-26T10:30:00.250+01:00)",
            )
            return None, False
        text = value
        frac = match.group("frac")
        if frac and len(frac) > 7:  # keep microseconds; finer digits are dropped, not rounded
            text = value[: match.start("frac") + 7] + value[match.end("frac") :]
        try:
            local = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            c.add("time", f"{value[:64]!r} is not a real date and time")
            return None, False
        parsed = _to_utc(local, repr(value[:64]), c)
        if parsed is None:
            return None, False
    else:
        c.add("time", f"must be an RFC 3339 string, not {_kind(value)}")
        return None, False
    if parsed - received_at > limits.max_future:
        c.add(
            "time",
            f"is {format_delta(parsed - received_at)} in the future; at most "
            f"{format_delta(limits.max_future)} ahead of the server clock is accepted",
        )
        return None, False
    if received_at - parsed > limits.max_past:
        c.add(
            "time",
            f"is {format_delta(received_at - parsed)} in the past; at most "
            f"{format_delta(limits.max_past)} before the server clock is accepted "
            "(TRAILKEEPER_MAX_PAST_DAYS)",
        )
        return None, False
    return parsed, False


def _to_utc(value: datetime, shown: str, c: _Collector) -> datetime | None:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        c.add("time", f"{shown} is outside the years 1-9999 once converted to UTC")
        return None


def uuid7_time(event_id: str) -> datetime | None:
    """The Unix millisecond a UUIDv7 (RFC 9562) carries; ``None`` for other UUIDs."""
    if event_id[14] != "7" or event_id[19] not in "89ab":
        return None
    ms = int(event_id[:8] + event_id[9:13], 16)
    if ms > _LAST_MS:  # after 9999 (48 bits of ms reach 10889): refused as in the future
        return datetime.max.replace(tzinfo=UTC)
    return _EPOCH + timedelta(milliseconds=ms)


def format_delta(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _ident(value: object, name: str, c: _Collector, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            c.add(name, "is required")
        return None
    if type(value) is str and value in _GOOD_IDS:
        return value
    if not isinstance(value, str):
        c.add(name, f"must be a string, not {_kind(value)}")
        return None
    if not ID_PATTERN.fullmatch(value):
        if not value:
            c.add(name, "must not be empty")
        elif len(value) > 128:
            c.add(name, f"is {len(value)} characters; the limit is 128")
        else:
            bad = sorted({ch for ch in value if not ID_PATTERN.fullmatch(ch)})[:5]
            c.add(name, f"has characters outside the allowed set ({ID_RULE}): {bad}")
        return None
    # Actors, apps and targets repeat across events: remember ids that passed (bounded).
    if len(_GOOD_IDS) >= 65_536:
        _GOOD_IDS.clear()
    _GOOD_IDS.add(value)
    return value


def _plain_text(value: object, limit: int) -> bool:
    """Whether ``value`` passes ``_text`` as a one-line field (without saying why not)."""
    return type(value) is str and len(value) <= limit and _CONTROL.search(value) is None


def _text(value: object, name: str, limit: int, c: _Collector, multiline: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        c.add(name, f"must be a string, not {_kind(value)}")
        return None
    if len(value) > limit:
        c.add(name, f"is {len(value):,} characters; the limit is {limit:,}")
        return None
    found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
    if found:
        c.add(name, _bad_character(found))
        return None
    return value


def _bad_character(found: re.Match[str]) -> str:
    char = found.group()
    where = f"U+{ord(char):04X} at position {found.start()}"
    if "\ud800" <= char <= "\udfff":
        return f"has a lone surrogate ({where}), which is not a character"
    if char in "\u2028\u2029":
        return f"must not contain line or paragraph separators ({where})"
    return f"must not contain control characters ({where})"


_ACTOR_FIELDS = frozenset({"id", "type", "name", "email"})


def _parse_actor(value: object, limits: Limits, c: _Collector) -> Actor | None:
    if value is None:
        c.add("actor", "is required: an object with at least an 'id'")
        return None
    if type(value) is dict and value.keys() <= _ACTOR_FIELDS:  # the common case, as targets
        kind, actor_id = value.get("type", "user"), value.get("id")
        name, email = value.get("name"), value.get("email")
        if (
            type(kind) is str
            and kind in ACTOR_TYPES
            and type(actor_id) is str
            and actor_id in _GOOD_IDS
            and (name is None or _plain_text(name, limits.name))
            and (email is None or (_plain_text(email, limits.email) and _EMAIL.fullmatch(email)))
        ):
            return Actor(actor_id, kind, name, email)  # type: ignore[arg-type]
    if isinstance(value, str):
        value = {"id": value}
    if not isinstance(value, Mapping):
        c.add(
            "actor", f"must be an object like {{'id': 'alice', 'type': 'user'}}, not {_kind(value)}"
        )
        return None
    for key in value:
        if c.full:
            c.omitted += key not in _ACTOR_FIELDS
        elif key not in _ACTOR_FIELDS:
            c.add(f"actor.{_shown(key)}", "is not an actor field (id, type, name, email)")
    kind = value.get("type", "user")
    if kind not in ACTOR_TYPES:
        c.add("actor.type", f"must be one of {', '.join(ACTOR_TYPES)}; got {_brief(kind)}")
        kind = "user"
    raw_id = value.get("id")
    if raw_id is None and kind == "anonymous":
        raw_id = "anonymous"
    actor_id = _ident(raw_id, "actor.id", c)
    name = _text(value.get("name"), "actor.name", limits.name, c, False)
    email = _text(value.get("email"), "actor.email", limits.email, c, False)
    if email is not None and not _EMAIL.fullmatch(email):
        c.add("actor.email", f"{email[:64]!r} is not an email address")
    if actor_id is None:
        return None
    return Actor(actor_id, kind, name, email)


_TARGET_FIELDS = frozenset({"type", "id", "name"})


def _parse_targets(
    value: object, known: frozenset[str], limits: Limits, c: _Collector
) -> tuple[Target, ...]:
    if value is None:
        return ()
    if type(value) is list and len(value) <= limits.targets:
        # The common case, checked without building a field name per target: plain objects
        # of known fields, types and ids seen valid before, names with no control character.
        # Anything else goes the way below, which names each problem.
        out = []
        for item in value:
            if type(item) is not dict or not item.keys() <= _TARGET_FIELDS:
                break
            kind, target_id, name = item.get("type"), item.get("id"), item.get("name")
            if (
                type(kind) is not str
                or kind not in known
                or type(target_id) is not str
                or target_id not in _GOOD_IDS
                or (name is not None and not _plain_text(name, limits.name))
            ):
                break
            out.append(Target(kind, target_id, name))
        else:
            return tuple(out)
    if not isinstance(value, list):
        c.add("targets", f"must be an array of {{type, id, name?}} objects, not {_kind(value)}")
        return ()
    if len(value) > limits.targets:
        c.add("targets", f"has {len(value)} entries; the limit is {limits.targets}")
        return ()
    out = []
    for i, item in enumerate(value):
        where = f"targets[{i}]"
        if not isinstance(item, Mapping):
            c.add(where, f"must be an object with 'type' and 'id', not {_kind(item)}")
            continue
        for key in item:
            if c.full:
                c.omitted += key not in _TARGET_FIELDS
            elif key not in _TARGET_FIELDS:
                c.add(f"{where}.{_shown(key)}", "is not a target field (type, id, name)")
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in known:
            shown = "is required" if kind is None else f"{_brief(kind)} is not a target type"
            c.add(f"{where}.type", f"{shown}; known types: {', '.join(sorted(known))}")
        target_id = _ident(item.get("id"), f"{where}.id", c)
        name = _text(item.get("name"), f"{where}.name", limits.name, c, False)
        if isinstance(kind, str) and kind in known and target_id is not None:
            out.append(Target(kind, target_id, name))
    return tuple(out)


def _parse_error(value: object, success: bool, limits: Limits, c: _Collector) -> ErrorInfo | None:
    if value is None:
        return None
    if success:
        c.add("error", "is only for failed events; set success to false or leave error out")
        return None
    if not isinstance(value, Mapping):
        c.add("error", f"must be an object {{code, message}}, not {_kind(value)}")
        return None
    for key in value:
        if c.full:
            c.omitted += key not in ("code", "message")
        elif key not in ("code", "message"):
            c.add(f"error.{_shown(key)}", "is not an error field (code, message)")
    code = value.get("code")
    if not isinstance(code, str) or not ERROR_CODE_PATTERN.fullmatch(code):
        c.add("error.code", "is required: 1-128 letters, digits, '.', '_' or '-'")
        code = None
    raw_message = value.get("message", "")
    if not isinstance(raw_message, str):
        c.add("error.message", f"must be a string, not {_kind(raw_message)}")
        return None
    message = _text(raw_message, "error.message", limits.error_message, c, True)
    if code is None or message is None:
        return None
    return ErrorInfo(code, message)


def _parse_ip(value: object, c: _Collector) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        c.add("source_ip", f"must be a string, not {_kind(value)}")
        return None
    parsed = normalize_ip(value)
    if parsed is None:
        c.add("source_ip", f"{value[:64]!r} is not an IPv4 or IPv6 address")
        return None
    return parsed[0]


def _parse_details(value: object, limits: Limits, c: _Collector) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        c.add("details", f"must be an array of strings, not {_kind(value)}")
        return ()
    if len(value) > limits.details:
        c.add("details", f"has {len(value)} lines; the limit is {limits.details}")
        return ()
    out = []
    for i, line in enumerate(value):
        text = _text(line, f"details[{i}]", limits.detail_line, c, True)
        if text is not None:
            out.append(text)
    return tuple(out)


def _parse_changes(value: object, limits: Limits, c: _Collector) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        c.add("changes", 'must be an object like {"name": {"from": "a", "to": "b"}}')
        return None
    if len(value) > limits.changes_fields:
        c.add("changes", f"has {len(value)} fields; the limit is {limits.changes_fields}")
        return None
    out: dict[str, Any] = {}
    ok = True
    for name, change in value.items():
        where = f"changes.{name}"
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            c.add("changes", f"field name {_brief(name)} must be 1-128 characters")
            ok = False
            continue
        found = _CONTROL.search(name)
        if found:
            c.add("changes", f"field name {name[:64]!r} {_bad_character(found)}")
            ok = False
            continue
        if not isinstance(change, Mapping) or not change or set(change) - {"from", "to"}:
            c.add(where, 'must be an object with "from", "to" or both')
            ok = False
            continue
        if not _json_ok(change, where, limits.json_depth, c):
            ok = False
            continue
        out[name] = dict(change)
    return out if ok else None


def _parse_metadata(value: object, limits: Limits, c: _Collector) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        c.add("metadata", f"must be a JSON object, not {_kind(value)}")
        return None
    if not _json_ok(value, "metadata", limits.json_depth, c):
        return None
    return dict(value)


def _json_ok(value: object, where: str, depth: int, c: _Collector) -> bool:
    """Plain JSON only: string keys, valid text, finite numbers in range, bounded nesting.

    This walk only decides; ``_json_problem`` walks again to name the first problem's path.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and _SURROGATE.search(item):  # type: ignore[attr-defined,call-overload]
                break
        elif kind is bool or item is None:
            continue
        elif kind is dict:
            if level >= depth:
                break
            for key, inner in item.items():  # type: ignore[attr-defined]
                if type(key) is not str or (not key.isascii() and _SURROGATE.search(key)):
                    break
                stack.append((inner, level + 1))
            else:
                continue
            break
        elif kind is list:
            if level >= depth:
                break
            stack.extend((inner, level + 1) for inner in item)  # type: ignore[attr-defined]
        elif kind is int:
            if abs(item) > MAX_SAFE_INTEGER:  # type: ignore[arg-type]
                break
        elif kind is float:
            if not -INT64_LIMIT < item < INT64_LIMIT:  # type: ignore[operator]
                break  # also NaN, which compares false
        elif isinstance(item, Mapping):
            stack.append((dict(item), level))
        else:
            break
    else:
        return True
    path, message = _json_problem(value, where, 0, depth) or (where, "is not plain JSON")
    c.add(path, message)
    return False


def _json_problem(value: object, path: str, level: int, depth: int) -> tuple[str, str] | None:
    """The path and message of the first thing ``_json_ok`` refuses in ``value``, if any."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        return (path, _bad_character(found)) if found else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            return path, (
                f"integer {_integer(value)} is beyond ±(2**53 - 1), which JSON readers can't keep"
            )
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return path, "numbers must be finite (no NaN or Infinity)"
        if not -INT64_LIMIT < value < INT64_LIMIT:
            return path, (
                f"number {value!r} is outside the signed 64-bit range (±2**63); an integer "
                "that large is read as an approximate float: send it as a string"
            )
        return None
    if isinstance(value, Mapping | list):
        if level >= depth:
            return path, f"nests more than {depth} levels deep"
        if isinstance(value, list):
            items: Any = ((f"{path}[{i}]", inner) for i, inner in enumerate(value))
        else:
            items = value.items()
            for key, _ in items:
                if not isinstance(key, str):
                    return path, "object keys must be strings"
                found = _SURROGATE.search(key)
                if found:
                    return f"{path}.{_shown(key)}", f"key {_bad_character(found)}"
            items = ((f"{path}.{_shown(key)}", inner) for key, inner in value.items())
        for inner_path, inner in items:
            problem = _json_problem(inner, inner_path, level + 1, depth)
            if problem is not None:
                return problem
        return None
    return path, f"{_kind(value)} is not a JSON value"


def _shown(name: object) -> str:
    """A name as an error shows it: at most 64 characters, so errors stay small, with the
    characters text refuses written as escapes, so an error is always valid one-line text."""
    text = name if isinstance(name, str) else str(name)
    text = text if len(text) <= 64 else text[:63] + "…"
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _size_ok(value: object, where: str, limit: int, c: _Collector) -> bool:
    try:
        size = len(canonical_json(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        c.add(where, f"can't be encoded as JSON: {exc}")
        return False
    if size > limit:
        c.add(where, f"is {size:,} bytes encoded; the limit is {limit:,} bytes")
        return False
    return True
