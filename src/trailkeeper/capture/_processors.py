"""The processor pipeline: small functions that each take an event dict and return it.

Processors run on the sender's thread, off the request path, after the request context has
been merged into the event, in the order given. A processor that raises stops that event:
it is counted as failed, logged with its id and kept in the spool's rejected table, never
sent half-processed (a failed redaction must not leak a secret).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..events._redact import DEFAULT_SECRET_KEYS, Redactor

Event = dict[str, Any]
Processor = Callable[[Event], Event]


def redact_secrets(keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> Processor:
    """Replace values under secret-looking keys in ``metadata`` and ``changes``.

    The server redacts too; doing it here keeps secrets off the wire and out of the spool.
    """
    redactor = Redactor(keys)

    def redact(event: Event) -> Event:
        metadata = event.get("metadata")
        if metadata:
            event["metadata"] = redactor.redact(metadata)
        changes = event.get("changes")
        if changes:
            event["changes"] = redactor.redact_changes(changes)
        return event

    return redact


def add_metadata(**fields: Any) -> Processor:
    """Enrich every event's ``metadata`` with fixed fields (service name, version, region);
    a field the event already has wins."""

    def enrich(event: Event) -> Event:
        event["metadata"] = {**fields, **(event.get("metadata") or {})}
        return event

    return enrich


def run_processors(processors: Sequence[Processor], event: Event) -> Event:
    for processor in processors:
        event = processor(event)
        if not isinstance(event, dict):
            raise TypeError(f"processor {processor!r} returned {type(event).__name__}, not a dict")
    return event
