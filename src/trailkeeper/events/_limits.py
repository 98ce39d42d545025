"""Every limit an event is held to, in one place (documented in ``docs/events.md``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

#: Ids (org, app, actor, target, request): 1-128 characters of this set.
ID_PATTERN = re.compile(r"[A-Za-z0-9._~@+:/=-]{1,128}")
ID_RULE = "1-128 characters: letters A-Z a-z, digits, and . _ ~ @ + : / = -"

#: Error codes: 1-128 characters of letters, digits, '.', '_' and '-'.
ERROR_CODE_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")

# Refused in text: C0 and C1 controls, DEL, the Unicode line and paragraph separators (every
# line break str.splitlines knows, so no reader splits a line where the log has none) and lone
# surrogates (not characters; UTF-8 can't hold them).
#: What one-line text (names, email, user agent) must not contain.
REFUSED_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: What multi-line text (description, details, error message) must not contain: the same,
#: less tab, line feed and carriage return.
REFUSED_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

#: Largest integer magnitude kept exactly by every JSON reader (IEEE-754 doubles).
MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits. Every value over a limit is refused with a message; none is truncated."""

    description: int = 1_024
    name: int = 256
    email: int = 320
    error_message: int = 2_048
    user_agent: int = 1_024
    targets: int = 64
    details: int = 32
    detail_line: int = 1_024
    changes_fields: int = 64
    changes_bytes: int = 16_384
    metadata_bytes: int = 16_384
    json_depth: int = 8
    event_bytes: int = 32_768
    max_future: timedelta = timedelta(minutes=5)
    #: How old an event may be: ten years (and a leap day or three) by default. An older time
    #: is far more likely a bug (a zero date, seconds read as milliseconds) than a record.
    max_past: timedelta = timedelta(days=3653)


DEFAULT_LIMITS = Limits()
