"""Where events wait when they cannot be sent now: a SQLite spool, or memory if none.

The spool is a file, so events survive a process exit and the next process with the same
spool path delivers them. Rows leave it only after the server acknowledged them; a crash
between the acknowledgement and the delete sends them again, which the server deduplicates.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import deque
from pathlib import Path

#: (org, event id, encoded event)
Item = tuple[str | None, str, bytes]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT,
    id TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


class Backlog:
    """Events waiting to be sent again, oldest first (in memory: lost with the process)."""

    durable = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[tuple[int, Item]] = deque()
        self._next = 0
        self.rejected: list[tuple[Item, str]] = []

    def put(self, items: list[Item]) -> None:
        with self._lock:
            for item in items:
                self._items.append((self._next, item))
                self._next += 1

    def take(self, limit: int) -> list[tuple[int, Item]]:
        with self._lock:
            return [self._items[i] for i in range(min(limit, len(self._items)))]

    def delete(self, handles: list[int]) -> None:
        done = set(handles)
        with self._lock:
            self._items = deque(entry for entry in self._items if entry[0] not in done)

    def reject(self, item: Item, reason: str) -> None:
        with self._lock:
            self.rejected.append((item, reason))

    def rejected_events(self) -> list[tuple[str, str]]:
        """``(event id, reason)`` of every event refused for good, oldest first."""
        with self._lock:
            return [(item[1], reason) for item, reason in self.rejected]

    def count(self) -> int:
        return len(self._items)

    def after_fork(self) -> Backlog:
        """The backlog a forked child uses: the parent keeps delivering what it holds."""
        return Backlog()

    def close(self) -> None:
        pass


class Spool(Backlog):
    """A SQLite file of events waiting to be sent, and of events the server refused."""

    durable = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        # One connection, shared by the sender and by callers that overflow the memory queue.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL: a commit survives the process crashing (the case a spool is for);
        # only an OS crash or power loss right after it can undo the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._count = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]

    def put(self, items: list[Item]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO spool (org, id, body) VALUES (?, ?, ?)", items)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._count += len(items)  # counted here: count(*) scans the whole table

    def take(self, limit: int) -> list[tuple[int, Item]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT n, org, id, body FROM spool ORDER BY n LIMIT ?", (limit,)
            ).fetchall()
            if len(rows) < min(limit, self._count):
                # Fewer rows than counted: another process sharing the file delivered some.
                self._count = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]
        return [(n, (org, event_id, bytes(body))) for n, org, event_id, body in rows]

    def delete(self, handles: list[int]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            deleted = self._db.executemany("DELETE FROM spool WHERE n = ?", [(n,) for n in handles])
            self._db.execute("COMMIT")
            self._count = max(0, self._count - max(0, deleted.rowcount))

    def reject(self, item: Item, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO rejected (org, id, body, reason) VALUES (?, ?, ?, ?)", (*item, reason)
            )

    def rejected_events(self) -> list[tuple[str, str]]:
        """``(event id, reason)`` of every event refused for good, oldest first."""
        with self._lock:
            return self._db.execute("SELECT id, reason FROM rejected ORDER BY n").fetchall()

    def count(self) -> int:
        return int(self._count)

    def refresh(self) -> int:
        """Count again (another process may have added or drained rows)."""
        with self._lock:
            self._count = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]
        return int(self._count)

    def after_fork(self) -> Backlog:
        """A new connection to the same file (SQLite connections must not cross a fork)."""
        return Spool(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()
