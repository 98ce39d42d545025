"""Turning a recorded event into the bytes the log and the spool take, for every event."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson

from ..events._limits import REFUSED_IN_LINE, REFUSED_IN_TEXT
from ._processors import Processor, run_processors
from ._spool import Item

_log = logging.getLogger("trailkeeper.capture")

#: (org, time in ns since the epoch, event) as ``record()`` leaves it for the sender.
Raw = tuple[str | None, int, dict[str, Any]]

_second: tuple[int, str] = (-1, "")


def format_ns(time_ns: int) -> str:
    """``2026-11-26T02:20:09.000123Z`` (the event model's one time format), with the part up
    to the second cached: building a datetime per event cost more than the rest of encode."""
    global _second
    second, micros = divmod(time_ns // 1000, 1_000_000)
    cached, prefix = _second
    if cached != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, prefix)  # one tuple: threads never see a half-updated cache
    return f"{prefix}.{micros:06d}Z"


def encode(raw: Raw, processors: Sequence[Processor]) -> tuple[Item, str | None]:
    """The spool item of a recorded event, and the reason it must be refused (if any).

    Never raises: an event a processor fails on, or that JSON cannot hold (a non-string
    key, an int over 64 bits, a lone surrogate), comes back with the reason, and a body
    that keeps as much of it as can be written, for the spool's ``rejected`` table.
    """
    org, time_ns, original = raw
    # A copy: the processors' changes stay off the caller's dict (close() may encode a
    # batch the sender thread is still encoding).
    event = dict(original)
    try:
        event["time"] = format_ns(time_ns)
        event = clean_text(run_processors(processors, event))
        return (org, str(event["id"]), orjson.dumps(event)), None
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        # The refusal is logged as an error by the caller; the traceback helps debug processors.
        _log.debug("trailkeeper: event %s cannot be sent", original.get("id"), exc_info=True)
    return (org, str(original.get("id")), _best_effort(event)), reason


#: What replaces each character the log refuses in text.
REPLACEMENT = "\ufffd"


def clean_text(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with every character the log refuses in its text fields replaced by U+FFFD.

    The user agent, and often the actor's name, come from the request: a stranger can put a
    control character or U+2028 in them. The log refuses those (a line-based reader would
    split the event); replacing them keeps the event, and shows that something was there.
    Nested dicts and lists are copied before a change: the caller's stay as they were.
    """
    for name, pattern in (("user_agent", REFUSED_IN_LINE), ("description", REFUSED_IN_TEXT)):
        value = event.get(name)
        if type(value) is str and pattern.search(value):
            event[name] = pattern.sub(REPLACEMENT, value)
    actor = event.get("actor")
    if type(actor) is dict:
        event["actor"] = _clean_fields(actor, ("name", "email"), REFUSED_IN_LINE)
    targets = event.get("targets")
    if type(targets) is list:
        cleaned = [
            _clean_fields(t, ("name",), REFUSED_IN_LINE) if type(t) is dict else t for t in targets
        ]
        if any(a is not b for a, b in zip(cleaned, targets, strict=True)):
            event["targets"] = cleaned
    error = event.get("error")
    if type(error) is dict:
        event["error"] = _clean_fields(error, ("message",), REFUSED_IN_TEXT)
    details = event.get("details")
    if type(details) is list and any(type(d) is str and REFUSED_IN_TEXT.search(d) for d in details):
        event["details"] = [
            REFUSED_IN_TEXT.sub(REPLACEMENT, d) if type(d) is str else d for d in details
        ]
    return event


def _clean_fields(
    value: dict[str, Any], names: tuple[str, ...], pattern: re.Pattern[str]
) -> dict[str, Any]:
    out = value
    for name in names:
        text = value.get(name)
        if type(text) is str and pattern.search(text):
            if out is value:
                out = dict(value)
            out[name] = pattern.sub(REPLACEMENT, text)
    return out


def _best_effort(event: Any) -> bytes:
    try:
        return orjson.dumps(_plain(event))
    except Exception:  # whatever is left (a strange str subclass): Python's ASCII repr
        return orjson.dumps({"unencodable": ascii(event)})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return repr(value).encode("utf-8", "backslashreplace").decode("utf-8")
