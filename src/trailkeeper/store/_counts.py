"""A small, expiring cache of the capped counts that choose a search's access path.

A count is keyed by its whole query (SQL and parameters), which can be long: a filter of a
hundred actors and a time range. Keeping those tuples kept every search's parameters alive
until the cache filled, and thousands of distinct searches grew the process by gigabytes.
Entries are keyed by a 16-byte digest instead, so each costs the same ~250 bytes whatever
the search, the cache holds at most ``MAX_ENTRIES`` (about 1 MiB) and drops the least
recently used first, and an entry older than its time to live is never used.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

#: Entries kept; at ~250 bytes each (digest, time, count, the dict's slot) about 1 MiB.
MAX_ENTRIES = 4096


def digest(key: Hashable) -> bytes:
    """A fixed-size stand-in for ``key`` (its ``repr``: the SQL text and plain values)."""
    return hashlib.blake2b(repr(key).encode(), digest_size=16).digest()


class CountCache:
    """Counts by query, each reused for ``seconds`` at most; safe to share between threads."""

    def __init__(
        self,
        seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> int | None:
        """The count stored for ``key`` if it is younger than ``seconds``."""
        name = digest(key)
        with self._lock:
            found = self._entries.get(name)
            if found is None:
                return None
            if self._clock() - found[0] >= self.seconds:
                del self._entries[name]
                return None
            self._entries.move_to_end(name)
            return found[1]

    def put(self, key: Hashable, count: int) -> None:
        name = digest(key)
        now = self._clock()
        with self._lock:
            self._entries[name] = (now, count)
            self._entries.move_to_end(name)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            # The oldest entries sit at the front once no search uses them: drop the expired.
            while self._entries:
                stamp = next(iter(self._entries.values()))[0]
                if now - stamp < self.seconds:
                    break
                self._entries.popitem(last=False)
