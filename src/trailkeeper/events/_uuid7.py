"""UUIDv7 (RFC 9562): time-ordered ids, so new events land at the end of the id index."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A new UUIDv7, monotonic within this process.

    The 48-bit Unix millisecond time leads; the 12 ``rand_a`` bits carry a counter seeded at
    random each millisecond (RFC 9562, section 6.2, method 1), so ids made in the same
    millisecond still sort in the order they were made.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2)) & 0x7FF
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        rand_b = int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
        value = (ms << 80) | (0x7 << 76) | (_counter << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)
