"""The PostgreSQL backend: many server processes on many machines share one database.

Sequencing takes a row lock on the org's log head (``orgs``) for the length of one append,
so appends to one org from any number of processes get dense, unique seqs in commit order;
appends to different orgs do not wait for each other. Rows go in with ``COPY``.

So every snapshot, of the primary or of a replica (which replays commits in the same order),
holds a prefix of each org's log, the ``orgs.size`` row included: a read in seq order never
passes an event that it cannot see yet (``scan``), and a head read in the same statement as
the events counts none that the statement could not see (``tail``).
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..events import StoredEvent, from_micros, to_micros
from ..keys import ApiKey
from ._port import (
    AppActivity,
    Appended,
    Bucket,
    ConflictError,
    LogStore,
    PreparedEvent,
    StoreClosedError,
    StoreSetupError,
    StoreUnavailableError,
    Tail,
)
from ._postgres_rows import EVENT_COLUMNS, LEAF_COLUMNS, copy_leaf, copy_row, where_clause
from ._postgres_schema import (
    MONTHS_AHEAD,
    MONTHS_BACK,
    create_partitions,
    existing_months,
    migrate,
    month_of,
)
from ._postgres_stats import Analyzer
from ._query import SearchQuery
from ._rows import SELECT_EVENTS, SELECT_KEYS, key_row, row_to_key, row_to_stored, upsert_key

#: How long a request waits for a connection (for one while the server is down) before it
#: fails with StoreUnavailableError.
POOL_TIMEOUT = 5.0

Con = psycopg.Connection[tuple[Any, ...]]

#: Seconds a new connection may take (a database behind a dropped route never refuses).
CONNECT_TIMEOUT = 10

#: Events rows sent to COPY at a time (see ``PostgresStore._insert``).
ROW_CHUNK = 100


#: A connection returned to the pool less than this many seconds ago is handed out again
#: without a check (a round trip, ~0.2 ms of every search); an older one is checked first.
FRESH_SECONDS = 1.0
#: A pool that can't reconnect gives up after this long and connects again when a request
#: asks for a connection. psycopg_pool's reconnection backs off 1 s, 2 s, 4 s, … for up to
#: 5 minutes by default: a database back after 10 s would then wait for the next attempt.
RECONNECT_SECONDS = 2.0
_returned: weakref.WeakKeyDictionary[Con, float] = weakref.WeakKeyDictionary()


def _returning(con: Con) -> None:
    _returned[con] = time.monotonic()


def _usable(con: Con) -> bool:
    """Whether ``con`` works: one that served a request a moment ago is taken on trust."""
    if time.monotonic() - _returned.get(con, 0.0) <= FRESH_SECONDS:
        return True
    try:
        ConnectionPool.check_connection(con)
    except psycopg.Error:
        return False
    return True


def _unavailable(what: str, exc: Exception) -> StoreUnavailableError:
    # The driver's text is for the operator's log (the server's 503 says none of it).
    return StoreUnavailableError(f"PostgreSQL {what}: {str(exc).strip() or type(exc).__name__}")


class _Pool(ConnectionPool[Con]):
    """psycopg_pool jitters each new connection's lifetime with the process-wide ``random``
    generator, which a pool filling in a background thread then advances behind the
    application's back (hypothesis, rightly, fails a property test for it). A private
    generator does the same job."""

    _random = random.Random()

    @classmethod
    def _jitter(cls, value: float, min_pc: float, max_pc: float) -> float:
        return value * (1.0 + ((max_pc - min_pc) * cls._random.random()) + min_pc)


def _connect_kwargs(url: str, application_name: str) -> dict[str, Any]:
    """Connection options: autocommit; ``application_name`` (pg_stat_activity then tells
    Trailkeeper's connections apart) and a connect timeout, unless the URL or the libpq
    environment sets them."""
    kwargs: dict[str, Any] = {"autocommit": True}
    given = conninfo_to_dict(url)
    if "application_name" not in given and not os.environ.get("PGAPPNAME"):
        kwargs["application_name"] = application_name
    if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT  # libpq's default is to wait for ever
    return kwargs


def _pool(url: str, name: str, size: int, application_name: str) -> ConnectionPool[Con]:
    # No ``check`` callback: the pool waits 1 s, 2 s, … between the checks of one request
    # (5 s in all with a few dead connections); ``_connection`` checks instead.
    return _Pool(
        url,
        min_size=1,
        max_size=size,
        kwargs=_connect_kwargs(url, application_name),
        reset=_returning,
        timeout=POOL_TIMEOUT,
        reconnect_timeout=RECONNECT_SECONDS,
        name=name,
        open=True,
    )


def _setup_failure(exc: psycopg.Error) -> str:
    """One line on why the schema could not be set up, and what to do about it."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, errors.InsufficientPrivilege):
        return (
            f"PostgreSQL refused to set up Trailkeeper's tables ({message}): run it as a role "
            "that owns the database or has CREATE on the schema (see docs/deploying.md)"
        )
    return f"PostgreSQL refused to set up Trailkeeper's tables: {message}"


def _head_row(con: Con, org_id: str, sql: str, params: tuple[Any, ...]) -> tuple[int, int]:
    """(org_key, size) from ``sql``, which locks the org's head row; the org is made first if
    it has none yet."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        con.execute(
            "INSERT INTO orgs (org_id) VALUES (%s) ON CONFLICT (org_id) DO NOTHING", (org_id,)
        )
        row = con.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class PostgresStore(LogStore):
    """The PostgreSQL backend. ``PostgresStore(url)`` connects, migrates and makes partitions.

    Args:
        url: a libpq URL, ``postgresql://user@host:5432/dbname``; ``?options=-csearch_path%3Dx``
            keeps Trailkeeper's tables in schema ``x``.
        read_url: a database (a streaming replica) for searches, scans and charts; the
            primary serves everything else, including gets of single events.
        pool_size: connections per pool at most.
        application_name: what ``pg_stat_activity`` shows for its connections, unless the
            URL (``?application_name=``) or ``PGAPPNAME`` says otherwise.
    """

    def __init__(
        self,
        url: str,
        *,
        read_url: str | None = None,
        pool_size: int = 8,
        application_name: str = "trailkeeper",
    ) -> None:
        try:
            with psycopg.connect(url, **_connect_kwargs(url, application_name)) as con:
                migrate(con)
                self._months = existing_months(con)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"can't reach PostgreSQL: {exc}".strip()) from exc
        except psycopg.Error as exc:
            raise StoreSetupError(_setup_failure(exc)) from exc
        self._closed = False
        self._lock = threading.Lock()
        self._writes = _pool(url, "trailkeeper-primary", pool_size, application_name)
        self._reads = (
            _pool(read_url, "trailkeeper-replica", pool_size, application_name)
            if read_url
            else self._writes
        )
        self._org_keys: dict[str, int] = {}
        self._in_old: set[int] = set()
        self._analyzer = Analyzer(lambda: self._connection(self._writes))
        self._ahead_from = -1
        try:
            self._ensure_months(set())
        except (psycopg.Error, PoolTimeout) as exc:
            self.close()
            raise StoreUnavailableError(f"can't prepare partitions: {exc}") from exc

    # -- connections --------------------------------------------------------------------------

    @contextmanager
    def _connection(self, pool: ConnectionPool[Con]) -> Iterator[Con]:
        """A working connection of ``pool``.

        After a database restart every idle connection is dead. The first one found dead
        has the pool check all its idle ones at once (``ConnectionPool.check``: the dead are
        replaced in the background), so a request pays for one dead connection, not one per
        connection the pool held.
        """
        if self._closed:
            raise StoreClosedError("the store is closed")
        with pool.connection() as con:
            if _usable(con):
                yield con
                return
        pool.check()
        with pool.connection() as con:
            yield con

    def _read(self, sql: str, params: Sequence[Any], *, primary: bool = False) -> list[Any]:
        """Run a read; again on another connection if one turns out dead (a restart)."""
        pool = self._writes if primary else self._reads
        for attempt in (1, 2, 3):
            try:
                with self._connection(pool) as con:
                    # Never prepared: a generic plan made for the first values would serve
                    # every later search, selective filter or not; each is planned for its own.
                    return con.execute(sql.encode(), params, prepare=False).fetchall()
            except PoolTimeout as exc:
                raise _unavailable("is not answering", exc) from exc
            except psycopg.OperationalError as exc:
                if attempt == 3:
                    raise _unavailable("read failed", exc) from exc
                pool.check()  # a connection died in use: drop every dead one with it
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self._read("SELECT 1", (), primary=True)

    def _ensure_months(self, months: set[int]) -> None:
        """Create partitions for ``months`` and for the months ahead of now, if missing.

        Months more than MONTHS_BACK old get none: their events go to ``events_old``. So one
        request creates a few partitions at most, whatever times its events have.
        """
        now = month_of(time.time_ns() // 1000)
        wanted = {m for m in months if m >= now - MONTHS_BACK}
        if now != self._ahead_from:
            wanted |= set(range(now - 1, now + MONTHS_AHEAD + 1))
        missing = wanted - self._months - self._in_old
        if not missing:
            self._ahead_from = now
            return
        with self._connection(self._writes) as con:
            create_partitions(con, missing)
            found = existing_months(con)
        with self._lock:
            self._months |= found
            self._in_old |= missing - found  # refused: events_old holds some of them
        self._ahead_from = now

    # -- writing ------------------------------------------------------------------------------

    def append(
        self, org_id: str, batch: Sequence[PreparedEvent], *, key: ApiKey | None = None
    ) -> list[Appended]:
        if self._closed:
            raise StoreClosedError("the store is closed")
        if not batch:
            return []
        months = {month_of(to_micros(p.event.time)) for p in batch}
        try:
            for attempt in (1, 2):
                self._ensure_months(months)
                try:
                    with self._connection(self._writes) as con:
                        appended = self._append(con, org_id, batch, key)
                    self._count_rows(batch, appended)
                    return appended
                except errors.CheckViolation:
                    # No partition for a row: a month this process knew of was dropped
                    # (retention) since. Forget what it knew, make it again, once.
                    if attempt == 2:
                        raise
                    with self._lock:
                        self._months = set()
            raise AssertionError("unreachable")
        except PoolTimeout as exc:
            raise _unavailable("is not answering; nothing was stored", exc) from exc
        except psycopg.OperationalError as exc:
            # The connection died; if it died during COMMIT, the append may have been
            # stored. Sending the same events again is safe either way: ids deduplicate.
            self._writes.check()
            raise _unavailable("connection lost during an append", exc) from exc

    def _count_rows(self, batch: Sequence[PreparedEvent], appended: list[Appended]) -> None:
        months: dict[int, int] = {}
        for prepared, outcome in zip(batch, appended, strict=True):
            if not outcome.duplicate:
                month = month_of(to_micros(prepared.event.time))
                if month in self._months:  # events_old is left to autovacuum
                    months[month] = months.get(month, 0) + 1
        self._analyzer.wrote(months)

    def _append(
        self, con: Con, org_id: str, batch: Sequence[PreparedEvent], key: ApiKey | None = None
    ) -> list[Appended]:
        received_us = time.time_ns() // 1000
        leaves = [copy_leaf(p) for p in batch]  # before the lock; the rows: see _insert
        try:
            # The common case, every id new, in as few round trips as the lock is held for:
            # each one is a wait for the interpreter lock as well as for the network.
            with con.transaction():
                if key is not None:
                    con.execute(_UPSERT_KEY, key_row(key))
                org_key, size = self._claim(con, org_id, len(batch))
                return self._insert(
                    con, org_key, size, batch, leaves, received_us, {}, claimed=True
                )
        except errors.UniqueViolation:
            pass  # an id is already stored; all of that was rolled back: again, knowing which
        with con.transaction():
            if key is not None:
                con.execute(_UPSERT_KEY, key_row(key))
            org_key, size = self._lock_head(con, org_id)
            existing: dict[str, tuple[int, bytes]] = {
                str(event_id): (seq, bytes(leaf))
                for event_id, seq, leaf in con.execute(
                    "SELECT id, seq, leaf_hash FROM leaves WHERE org_key = %s "
                    "AND id = ANY(%s::uuid[])",
                    (org_key, [p.event.id for p in batch]),
                )
            }
            return self._insert(
                con, org_key, size, batch, leaves, received_us, existing, claimed=False
            )

    def _claim(self, con: Con, org_id: str, count: int) -> tuple[int, int]:
        """Lock the org's head and move it ``count`` on, in one statement; the org's key and
        the first seq claimed. Rolled back with the append if that fails."""
        claim = "UPDATE orgs SET size = size + %s WHERE org_id = %s RETURNING org_key, size"
        org_key, size = _head_row(con, org_id, claim, (count, org_id))
        return org_key, size - count

    def _lock_head(self, con: Con, org_id: str) -> tuple[int, int]:
        select = "SELECT org_key, size FROM orgs WHERE org_id = %s FOR UPDATE"
        return _head_row(con, org_id, select, (org_id,))

    @staticmethod
    def _insert(
        con: Con,
        org_key: int,
        size: int,
        batch: Sequence[PreparedEvent],
        leaf_lines: list[str],
        received_us: int,
        existing: dict[str, tuple[int, bytes]],
        *,
        claimed: bool,
    ) -> list[Appended]:
        """COPY the batch's new events in at ``size`` on; ``claimed``: the head was moved on
        past them already (``_claim``), else it is moved here.

        The events rows are formatted as they are sent, ROW_CHUNK at a time: the database
        inserts each chunk while the next is formatted. Its work is the longer (more than
        twice the formatting's), so the org stays locked no longer than if they had been
        formatted before, and a lone producer no longer waits for both, one after the other.
        """
        results: list[Appended] = []
        conflicts: list[tuple[int, str]] = []
        rows: list[tuple[str, PreparedEvent]] = []
        leaves: list[str] = []
        for index, (prepared, leaf) in enumerate(zip(batch, leaf_lines, strict=True)):
            hit = existing.get(prepared.event.id)
            if hit is not None:
                if hit[1] == prepared.leaf_hash:
                    results.append(Appended(prepared.event.id, hit[0], True))
                else:
                    conflicts.append((index, prepared.event.id))
                continue
            head = f"{org_key}\t{size}\t"
            rows.append((head, prepared))
            leaves.append(head + leaf)
            results.append(Appended(prepared.event.id, size, False))
            size += 1
        if conflicts:
            raise ConflictError(conflicts)
        if rows:
            cur = con.cursor()
            # Leaves first: a known id fails here, before any event row is written.
            with cur.copy(f"COPY leaves ({LEAF_COLUMNS}) FROM STDIN".encode()) as copy:
                copy.write("".join(leaves).encode())
            with cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN".encode()) as copy:
                for start in range(0, len(rows), ROW_CHUNK):
                    chunk = rows[start : start + ROW_CHUNK]
                    copy.write(
                        "".join([h + copy_row(p, received_us, org_key) for h, p in chunk]).encode()
                    )
            if not claimed:
                cur.execute("UPDATE orgs SET size = %s WHERE org_key = %s", (size, org_key))
        return results

    # -- reading ------------------------------------------------------------------------------

    def _org_key(self, org_id: str) -> int | None:
        key = self._org_keys.get(org_id)
        if key is None:
            # From the primary: a replica may not have a new org yet (the key is then cached).
            rows = self._read("SELECT org_key FROM orgs WHERE org_id = %s", (org_id,), primary=True)
            if not rows:
                return None
            key = self._org_keys[org_id] = int(rows[0][0])
        return key

    def get(self, org_id: str, event_id: str) -> StoredEvent | None:
        return self.get_many(org_id, [event_id]).get(event_id)

    def get_many(self, org_id: str, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        org_key = self._org_key(org_id)
        if org_key is None or not event_ids:
            return {}
        # The leaf's time names the partition; (org_key, time_us, seq) finds the row in it.
        rows = self._read(
            f"{SELECT_EVENTS} JOIN leaves l ON e.org_key = l.org_key AND e.time_us = l.time_us "
            "AND e.seq = l.seq WHERE l.org_key = %s AND l.id = ANY(%s::uuid[])",
            (org_key, list(event_ids)),
            primary=True,  # a get follows an ingest; a replica may not have it yet
        )
        found = {}
        for row in rows:
            stored = row_to_stored(row)
            found[stored.event.id] = stored
        return found

    def search(self, org_id: str, query: SearchQuery) -> list[StoredEvent]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return []
        where, params = where_clause(org_key, query, with_position=True)
        direction = "DESC" if query.order == "desc" else "ASC"
        sql = (
            f"{SELECT_EVENTS} WHERE {where} ORDER BY e.time_us {direction}, e.seq {direction} "
            "LIMIT %s OFFSET %s"
        )
        return [row_to_stored(r) for r in self._read(sql, [*params, query.limit, query.offset])]

    def scan(
        self, org_id: str, query: SearchQuery, after_seq: int = -1, batch: int = 1000
    ) -> Iterator[StoredEvent]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return
        where, params = where_clause(org_key, query, with_position=False)
        sql = f"{SELECT_EVENTS} WHERE {where} AND e.seq > %s ORDER BY e.seq LIMIT %s"
        while True:
            rows = self._read(sql, [*params, after_seq, batch])
            for row in rows:
                yield row_to_stored(row)
            if len(rows) < batch:
                return
            after_seq = rows[-1][0]

    def tail(self, org_id: str, query: SearchQuery, after_seq: int, limit: int) -> Tail:
        # One statement, so one snapshot of the read database: the head it reads is the one
        # the replica has replayed, never the primary's (which runs ahead by the lag). Events
        # are bounded by it, so a poll with nothing new probes an empty range of the index.
        org_key = self._org_key(org_id)
        if org_key is None:
            return Tail(0, [])
        where, params = where_clause(org_key, query, with_position=False)
        sql = (
            "SELECT h.size, e.seq, e.received_us, e.leaf_hash, e.body FROM orgs h "
            f"LEFT JOIN LATERAL ({SELECT_EVENTS} WHERE {where} AND e.seq > %s "
            "AND e.seq < h.size ORDER BY e.seq LIMIT %s) e ON true WHERE h.org_key = %s"
        )
        rows = self._read(sql, [*params, after_seq, limit, org_key])
        if not rows:  # the replica has not replayed the org's creation yet
            return Tail(0, [])
        return Tail(int(rows[0][0]), [row_to_stored(r[1:]) for r in rows if r[1] is not None])

    def apps(self, org_id: str) -> list[AppActivity]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return []
        rows = self._read(
            "SELECT app_id, count(*), max(time_us) FROM events WHERE org_key = %s "
            'AND app_id IS NOT NULL GROUP BY app_id ORDER BY app_id COLLATE "C"',
            (org_key,),
        )
        return [AppActivity(app, n, from_micros(last)) for app, n, last in rows]

    def activity(self, org_id: str, query: SearchQuery, bucket_us: int) -> list[Bucket]:
        org_key = self._org_key(org_id)
        if org_key is None:
            return []
        where, params = where_clause(org_key, query, with_position=False)
        rows = self._read(
            "SELECT (e.time_us / %s) * %s AS b, count(*), count(*) FILTER (WHERE NOT e.success) "
            f"FROM events e WHERE {where} GROUP BY b ORDER BY b",
            [bucket_us, bucket_us, *params],
        )
        return [Bucket(from_micros(b), n, f) for b, n, f in rows]

    def size(self, org_id: str) -> int:
        rows = self._read("SELECT size FROM orgs WHERE org_id = %s", (org_id,), primary=True)
        return int(rows[0][0]) if rows else 0

    def orgs(self) -> list[str]:
        rows = self._read('SELECT org_id FROM orgs ORDER BY org_id COLLATE "C"', (), primary=True)
        return [r[0] for r in rows]

    # -- API keys -----------------------------------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        try:
            with self._connection(self._writes) as con:
                con.execute(sql.encode(), params)
        except PoolTimeout as exc:
            raise _unavailable("is not answering", exc) from exc
        except psycopg.OperationalError as exc:
            self._writes.check()
            raise _unavailable("write failed", exc) from exc

    def get_key(self, key_id: str) -> ApiKey | None:
        rows = self._read(f"{SELECT_KEYS} WHERE id = %s", (key_id,), primary=True)
        return row_to_key(rows[0]) if rows else None

    def list_keys(self, org_id: str) -> list[ApiKey]:
        rows = self._read(
            f'{SELECT_KEYS} WHERE org_id = %s ORDER BY created_us, id COLLATE "C"',
            (org_id,),
            primary=True,
        )
        return [row_to_key(r) for r in rows]

    def end_session(self, session_id: str, expires: datetime) -> None:
        self._write("DELETE FROM ended_sessions WHERE expires_us < %s", (time.time_ns() // 1000,))
        self._write(
            "INSERT INTO ended_sessions VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (session_id, to_micros(expires)),
        )

    def session_ended(self, session_id: str) -> bool:
        sql = "SELECT 1 FROM ended_sessions WHERE id = %s"
        return bool(self._read(sql, (session_id,), primary=True))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._analyzer.close()
        self._writes.close()
        if self._reads is not self._writes:
            self._reads.close()


_UPSERT_KEY = upsert_key("%s")
