"""The embedded backend: one SQLite file in WAL mode, one writer thread, readers per thread.

Appends from every thread go through one queue to one writer thread, which commits all the
appends waiting at that moment in one transaction (group commit): one fsync serves many
requests. Each append runs in its own savepoint, so a conflict in one refuses only that one.
"""

from __future__ import annotations

import heapq
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from ..events import StoredEvent, from_micros, to_micros
from ..keys import ApiKey
from ._counts import CountCache
from ._port import (
    AppActivity,
    Appended,
    Bucket,
    ConflictError,
    LogStore,
    PreparedEvent,
    StoreClosedError,
    StoreUnavailableError,
)
from ._query import SearchQuery
from ._rows import SELECT_EVENTS, SELECT_KEYS, key_row, row_to_key, row_to_stored, upsert_key
from ._sqlite_rows import (
    EVENT_INSERT,
    FTS_INSERT,
    SELECTIVE,
    TARGET_INSERT,
    event_rows,
    fts_match,
    in_time_order,
    index_probes,
    where_clause,
)
from ._sqlite_schema import migrate

# At most this many events go into one group commit (bounds a transaction's memory and time).
_GROUP_EVENTS = 20_000
_SYNCHRONOUS = {"off", "normal", "full", "extra"}
_NO_TIME = -(2**62)


class _Job:
    __slots__ = ("batch", "future", "key", "org_id")

    def __init__(
        self, org_id: str, batch: Sequence[PreparedEvent], key: ApiKey | None = None
    ) -> None:
        self.org_id = org_id
        self.batch = batch
        self.key = key
        self.future: Future[list[Appended]] = Future()


class _Task:
    """Other writes (API keys): a function run in the writer thread in its own transaction."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()


def _connect(path: str, *, synchronous: str, readonly: bool) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute(f"PRAGMA synchronous = {synchronous}")
    con.execute("PRAGMA cache_size = -65536")  # 64 MiB per connection
    con.execute("PRAGMA temp_store = MEMORY")
    # Readers share the OS page cache through the mapping instead of each thread's connection
    # warming a private cache; SQLite caps the size (2 GiB by default) by itself.
    con.execute("PRAGMA mmap_size = 68719476736")
    if readonly:
        con.execute("PRAGMA query_only = 1")
    return con


_UPSERT_KEY = upsert_key("?")
#: How long a filter's capped count may be reused to choose a plan (see _counts).
PROBE_SECONDS = 10.0


def _id_bytes(event_id: str) -> bytes:
    return bytes.fromhex(event_id.replace("-", ""))


class SQLiteStore(LogStore):
    """The SQLite backend. ``SQLiteStore(path)`` creates or opens the file and migrates it.

    Args:
        path: the database file (``:memory:`` is refused: readers need the same database).
        synchronous: SQLite's ``synchronous`` setting for the writer. ``full`` (the default)
            makes each acknowledged append survive power loss, not only a process crash.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "full") -> None:
        self.path = str(path)
        if self.path == ":memory:" or self.path.startswith("file::memory:"):
            raise ValueError("the SQLite store needs a file; ':memory:' can't be shared")
        if synchronous not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous
        con = _connect(self.path, synchronous=synchronous, readonly=False)
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            con.close()
            raise RuntimeError(f"SQLite would not switch {self.path} to WAL (got {mode!r})")
        migrate(con)
        self._writer_con = con
        self._queue: queue.SimpleQueue[_Job | _Task | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._org_keys: dict[str, int] = {}
        #: Under this many matches a filter's index leads a search (see _choose_access);
        #: tests lower or raise it to run every access path on small data.
        self.selective = SELECTIVE
        self._probe_counts = CountCache(PROBE_SECONDS)
        self._writer = threading.Thread(target=self._write_loop, name="trailkeeper-sqlite-writer")
        self._writer.daemon = True
        self._writer.start()

    # -- writing ------------------------------------------------------------------------------

    def append(
        self, org_id: str, batch: Sequence[PreparedEvent], *, key: ApiKey | None = None
    ) -> list[Appended]:
        job = _Job(org_id, batch, key)
        if not batch:
            job.future.set_result([])
            return []
        self._submit(job)
        return job.future.result()

    def submit(self, org_id: str, batch: Sequence[PreparedEvent]) -> Future[list[Appended]]:
        job = _Job(org_id, batch)
        if not batch:
            job.future.set_result([])
            return job.future
        self._submit(job)
        return job.future

    def _submit(self, item: _Job | _Task) -> None:
        with self._close_lock:
            if self._closed:
                raise StoreClosedError("the store is closed")
            self._queue.put(item)

    def _run_task(self, con: sqlite3.Connection, task: _Task) -> None:
        try:
            con.execute("BEGIN IMMEDIATE")
            result = task.fn(con)
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        task = _Task(fn)
        self._submit(task)
        return task.future.result()

    def _write_loop(self) -> None:
        con = self._writer_con
        while True:
            job = self._queue.get()
            if job is None:
                break
            if isinstance(job, _Task):
                self._run_task(con, job)
                continue
            jobs = [job]
            events = len(job.batch)
            stop = False
            while events < _GROUP_EVENTS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if isinstance(more, _Task):
                    self._commit_group(con, jobs)
                    jobs = []
                    self._run_task(con, more)
                    continue
                jobs.append(more)
                events += len(more.batch)
            if jobs:
                self._commit_group(con, jobs)
            if stop:
                break
        con.close()

    def _commit_group(self, con: sqlite3.Connection, jobs: list[_Job]) -> None:
        outcomes: list[list[Appended] | BaseException] = []
        received_us = time.time_ns() // 1000
        try:
            con.execute("BEGIN IMMEDIATE")
            next_rowid = con.execute("SELECT COALESCE(MAX(rowid), 0) + 1 FROM events").fetchone()[0]
            for job in jobs:
                con.execute("SAVEPOINT job")
                try:
                    result, next_rowid = self._append_one(con, job, next_rowid, received_us)
                except (ConflictError, sqlite3.Error) as exc:
                    con.execute("ROLLBACK TO job")
                    con.execute("RELEASE job")
                    outcomes.append(exc)
                else:
                    con.execute("RELEASE job")
                    outcomes.append(result)
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _append_one(
        self, con: sqlite3.Connection, job: _Job, next_rowid: int, received_us: int
    ) -> tuple[list[Appended], int]:
        row = con.execute(
            "SELECT org_key, size, max_time_us FROM orgs WHERE org_id = ?", (job.org_id,)
        ).fetchone()
        if row is None:
            cur = con.execute("INSERT INTO orgs (org_id, size) VALUES (?, 0)", (job.org_id,))
            org_key, size, wm = cur.lastrowid, 0, None
        else:
            org_key, size, wm = row
        if wm is None:
            wm = _NO_TIME
        assert org_key is not None
        if job.key is not None:
            con.execute(_UPSERT_KEY, key_row(job.key))
        ids = [_id_bytes(p.event.id) for p in job.batch]
        # Fast path: new ids, the common case. The unique index on (org_key, id) is checked
        # by the insert anyway; only when it reports an existing id do we look ids up.
        con.execute("SAVEPOINT fresh")
        try:
            result = self._insert(con, job, ids, {}, (org_key, size, wm), next_rowid, received_us)
        except sqlite3.IntegrityError:
            con.execute("ROLLBACK TO fresh")
            con.execute("RELEASE fresh")
        else:
            con.execute("RELEASE fresh")
            return result
        existing: dict[bytes, tuple[int, bytes]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for event_id, seq, leaf in con.execute(
                f"SELECT id, seq, leaf_hash FROM events WHERE org_key = ? AND id IN "
                f"({', '.join('?' * len(chunk))})",
                [org_key, *chunk],
            ):
                existing[event_id] = (seq, leaf)
        return self._insert(con, job, ids, existing, (org_key, size, wm), next_rowid, received_us)

    @staticmethod
    def _insert(
        con: sqlite3.Connection,
        job: _Job,
        ids: list[bytes],
        existing: dict[bytes, tuple[int, bytes]],
        head: tuple[int, int, int],
        next_rowid: int,
        received_us: int,
    ) -> tuple[list[Appended], int]:
        org_key, size, wm = head
        results: list[Appended] = []
        conflicts: list[tuple[int, str]] = []
        rows: list[tuple[Any, ...]] = []
        target_rows: list[tuple[Any, ...]] = []
        fts_rows: list[tuple[Any, ...]] = []
        for index, (prepared, event_id) in enumerate(zip(job.batch, ids, strict=True)):
            hit = existing.get(event_id)
            if hit is not None:
                if hit[1] == prepared.leaf_hash:
                    results.append(Appended(prepared.event.id, hit[0], True))
                else:
                    conflicts.append((index, prepared.event.id))
                continue
            row, targets, fts = event_rows(prepared, org_key, size, next_rowid, received_us, wm)
            wm = row[5]
            rows.append(row)
            target_rows.extend(targets)
            fts_rows.append(fts)
            results.append(Appended(prepared.event.id, size, False))
            size += 1
            next_rowid += 1
        if conflicts:
            raise ConflictError(conflicts)
        if rows:
            con.executemany(EVENT_INSERT, rows)
            con.executemany(TARGET_INSERT, target_rows)
            con.executemany(FTS_INSERT, fts_rows)
            con.execute(
                "UPDATE orgs SET size = ?, max_time_us = ? WHERE org_key = ?", (size, wm, org_key)
            )
        return results, next_rowid

    # -- reading ------------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            if self._closed:
                raise StoreClosedError("the store is closed")
            con = _connect(self.path, synchronous="normal", readonly=True)
            self._local.con = con
            with self._readers_lock:
                self._readers.append(con)
        return con

    def _org_key(self, org_id: str) -> int | None:
        key = self._org_keys.get(org_id)
        if key is None:
            row = (
                self._reader()
                .execute("SELECT org_key FROM orgs WHERE org_id = ?", (org_id,))
                .fetchone()
            )
            if row is None:
                return None
            key = self._org_keys[org_id] = row[0]
        return key

    def get(self, org_id: str, event_id: str) -> StoredEvent | None:
        return self.get_many(org_id, [event_id]).get(event_id)

    def get_many(self, org_id: str, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        org_key = self._org_key(org_id)
        if org_key is None or not event_ids:
            return {}
        found: dict[str, StoredEvent] = {}
        con = self._reader()
        keys = [_id_bytes(i) for i in event_ids]
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for row in con.execute(
                f"{SELECT_EVENTS} WHERE e.org_key = ? AND e.id IN ({', '.join('?' * len(chunk))})",
                [org_key, *chunk],
            ):
                stored = row_to_stored(row)
                found[stored.event.id] = stored
        return found

    def search(self, org_id: str, query: SearchQuery) -> list[StoredEvent]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return []
        con = self._reader()
        if query.text and query.order == "desc":
            return self._search_text(con, org_key, query)
        sql, params = self.search_sql(con, org_key, query)
        rows = con.execute(sql, params).fetchall()
        return [row_to_stored(r) for r in rows]

    def search_sql(
        self, con: sqlite3.Connection, org_key: int, query: SearchQuery
    ) -> tuple[str, list[Any]]:
        """The SQL and parameters ``search`` runs for a query without newest-first text."""
        source = self._choose_access(con, org_key, query)
        where, params = where_clause(org_key, query, with_position=True)
        direction = "DESC" if query.order == "desc" else "ASC"
        order = f"ORDER BY e.time_us {direction}, e.rowid {direction}"
        # Two phases: order and cut the page on (time, rowid) alone, from the index where it
        # covers the filters, then read the page's rows; sorting whole rows, bodies
        # included, cost twice as much for a page drawn from hundreds of matches.
        sql = (
            f"{SELECT_EVENTS} WHERE e.rowid IN (SELECT e.rowid FROM events e {source} "
            f"WHERE {where} {order} LIMIT ? OFFSET ?) {order}"
        )
        return sql, [*params, query.limit, query.offset]

    def _choose_access(self, con: sqlite3.Connection, org_key: int, query: SearchQuery) -> str:
        """How to read the events table: through the most selective filter, or in time order.

        SQLite's planner needs statistics to tell a /8 from a /32 or a rare operation from a
        common one, and sampled statistics mislead it (they put ~1,000 events in an org of
        250,000). A capped count on each filter's own index costs a fraction of a
        millisecond and tells exactly: the smallest one under ``SELECTIVE`` leads; when
        every filter matches more, walking the time index finds a page soonest, or the index
        of a single actor, operation or app, which reads in time order (and needs no count
        at all when it is the only filter).
        """
        ordered = in_time_order(query)
        probes = index_probes(org_key, query, self.selective)
        if ordered is not None and len(probes) == 1:
            return f"INDEXED BY {ordered}"  # the only filter, and its index is in time order
        best: tuple[int, str | None] | None = None
        for index, sql, params, key in probes:
            # Counts only choose a plan (every plan gives the same answer), so one a few
            # seconds old serves: a dashboard repeating its searches pays for them once.
            count = self._probe_counts.get(key)
            if count is None:
                count = int(con.execute(sql, params).fetchone()[0])
                self._probe_counts.put(key, count)
            if count < self.selective and (best is None or count < best[0]):
                best = (count, index)
        if best is None:
            return f"INDEXED BY {ordered or 'events_time'}"
        index = best[1]
        # NOT INDEXED still allows reading by rowid, which the rowid subquery needs.
        return f"INDEXED BY {index}" if index else "NOT INDEXED"

    def _search_text(
        self, con: sqlite3.Connection, org_key: int, query: SearchQuery
    ) -> list[StoredEvent]:
        """Newest-first free-text search without sorting every match.

        Full-text matches come in descending rowid order, which is arrival order, not time
        order: an event may arrive late with an old time. Each row's watermark ``wm_us`` is
        the latest time of its org's rows up to it, so once the k-th best time so far is at
        least the current watermark, no earlier row can enter the page (an equal time loses
        the tie on seq, which is lower for every earlier row). Exact, and it stops after
        about a page of matches when matches are common.
        """
        where, params = where_clause(org_key, query, with_position=True, with_text=False)
        joined = (
            "FROM events_fts f CROSS JOIN events e ON e.rowid = f.rowid "
            f"WHERE events_fts MATCH ? AND {where} ORDER BY f.rowid DESC"
        )
        match = fts_match(org_key, query.text)
        if match is None:
            return []
        keep = query.offset + query.limit  # the skipped events are kept as keys only
        at_once = self._text_page_at_once(con, joined, [match, *params], keep, query.offset)
        if at_once is not None:
            return at_once
        sql = f"SELECT e.rowid, e.time_us, e.seq, e.wm_us {joined}"
        best: list[tuple[int, int, int]] = []  # min-heap of the page so far: (time, seq, rowid)
        cursor = con.execute(sql, [match, *params])
        try:
            done = False
            chunk = keep + 16  # usually enough when matches are common; then more
            while not done and (rows := cursor.fetchmany(chunk)):
                chunk = 256
                for rowid, time_us, seq, wm_us in rows:
                    entry = (time_us, seq, rowid)
                    if len(best) < keep:
                        heapq.heappush(best, entry)
                    elif entry > best[0]:
                        heapq.heapreplace(best, entry)
                    if len(best) == keep and wm_us <= best[0][0]:
                        done = True
                        break
        finally:
            cursor.close()
        chosen = sorted(best, reverse=True)[query.offset :]
        if not chosen:
            return []
        found = {
            r[0]: r[1:]
            for r in con.execute(
                "SELECT e.rowid, e.seq, e.received_us, e.leaf_hash, e.body FROM events e "
                f"WHERE e.rowid IN ({', '.join('?' * len(chosen))})",
                [rowid for _, _, rowid in chosen],
            )
        }
        return [row_to_stored(found[rowid]) for _, _, rowid in chosen]

    @staticmethod
    def _text_page_at_once(
        con: sqlite3.Connection, joined: str, params: list[Any], keep: int, offset: int
    ) -> list[StoredEvent] | None:
        """The page from the newest ``keep + 16`` matches alone, whole rows in one statement,
        when they settle it (the usual case when matches are common); else ``None``.

        The same walk as ``_search_text``'s, over rows that carry their bodies: it saves
        reading the page's rows a second time.
        """
        fetch = keep + 16
        columns = "e.rowid, e.time_us, e.seq, e.wm_us, e.received_us, e.leaf_hash, e.body"
        rows = con.execute(f"SELECT {columns} {joined} LIMIT ?", [*params, fetch]).fetchall()
        best: list[tuple[int, int, int]] = []  # (time, seq, index in rows)
        settled = len(rows) < fetch  # every match is here
        for index, row in enumerate(rows):
            entry = (row[1], row[2], index)
            if len(best) < keep:
                heapq.heappush(best, entry)
            elif entry > best[0]:
                heapq.heapreplace(best, entry)
            if len(best) == keep and row[3] <= best[0][0]:
                settled = True
                break
        if not settled:
            return None
        chosen = sorted(best, reverse=True)[offset:]
        return [row_to_stored(rows[i][2:3] + rows[i][4:]) for _, _, i in chosen]

    def scan(
        self, org_id: str, query: SearchQuery, after_seq: int = -1, batch: int = 1000
    ) -> Iterator[StoredEvent]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return
        where, params = where_clause(org_key, query, with_position=False)
        sql = f"{SELECT_EVENTS} WHERE {where} AND e.seq > ? ORDER BY e.seq LIMIT ?"
        while True:
            rows = self._reader().execute(sql, [*params, after_seq, batch]).fetchall()
            for row in rows:
                yield row_to_stored(row)
            if len(rows) < batch:
                return
            after_seq = rows[-1][0]

    def apps(self, org_id: str) -> list[AppActivity]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return []
        rows = self._reader().execute(
            "SELECT app_id, COUNT(*), MAX(time_us) FROM events "
            "WHERE org_key = ? AND app_id IS NOT NULL GROUP BY app_id ORDER BY app_id",
            (org_key,),
        )
        return [AppActivity(app, n, from_micros(last)) for app, n, last in rows]

    def activity(self, org_id: str, query: SearchQuery, bucket_us: int) -> list[Bucket]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return []
        where, params = where_clause(org_key, query, with_position=False)
        rows = self._reader().execute(
            f"SELECT (e.time_us / ?) * ? AS b, COUNT(*), SUM(1 - e.success) FROM events e "
            f"WHERE {where} GROUP BY b ORDER BY b",
            [bucket_us, bucket_us, *params],
        )
        return [Bucket(from_micros(b), n, int(f)) for b, n, f in rows]

    def size(self, org_id: str) -> int:
        row = self._reader().execute("SELECT size FROM orgs WHERE org_id = ?", (org_id,)).fetchone()
        return int(row[0]) if row else 0

    def orgs(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT org_id FROM orgs ORDER BY org_id")]

    # -- API keys -----------------------------------------------------------------------------

    def get_key(self, key_id: str) -> ApiKey | None:
        row = self._reader().execute(f"{SELECT_KEYS} WHERE id = ?", (key_id,)).fetchone()
        return row_to_key(row) if row else None

    def list_keys(self, org_id: str) -> list[ApiKey]:
        rows = self._reader().execute(
            f"{SELECT_KEYS} WHERE org_id = ? ORDER BY created_us, id", (org_id,)
        )
        return [row_to_key(r) for r in rows]

    def end_session(self, session_id: str, expires: datetime) -> None:
        def end(con: sqlite3.Connection) -> None:
            con.execute(
                "DELETE FROM ended_sessions WHERE expires_us < ?", (time.time_ns() // 1000,)
            )
            con.execute(
                "INSERT OR IGNORE INTO ended_sessions VALUES (?, ?)",
                (session_id, to_micros(expires)),
            )

        self._write(end)

    def session_ended(self, session_id: str) -> bool:
        sql = "SELECT 1 FROM ended_sessions WHERE id = ?"
        return self._reader().execute(sql, (session_id,)).fetchone() is not None

    def ping(self) -> None:
        if not self._writer.is_alive():
            raise StoreClosedError("the store is closed")
        try:
            self._reader().execute("SELECT 1 FROM orgs LIMIT 1").fetchall()
        except sqlite3.OperationalError as exc:  # unreadable file, full disk, lost mount
            raise StoreUnavailableError(f"SQLite read failed: {exc}") from exc

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join()
        with self._readers_lock:
            for con in self._readers:
                con.close()
            self._readers.clear()
