"""Free text per org: does another org's use of a word slow (and so reveal itself in) a search?

Two orgs: B holds the word ``zebra`` in every one of its events (--events of them); A holds
a tenth as many events and never the word. A searches for ``zebra`` (frequent in B's log) and
for ``okapi`` (in nobody's), newest first, 50 a page, through the store, alternating the two
so that both see the same noise. The ratio of the medians is what another org's volume adds
to A's search (issue #13: it was 36 ms against 3 ms): about 1 when the index is per org.

The old layout (one list of matches per word, shared by every org) is rebuilt next to the
new one in the same database and timed the same way, as the SQL the old store ran
(SQLite: the full-text join walked newest first; PostgreSQL: the WHERE clause and ORDER BY).

    python bench/fts_isolation.py [--events 200000] [--runs 200] [--backend sqlite|postgresql|both]

The PostgreSQL database (``tk_bench_fts_isolation`` on $TRAILKEEPER_BENCH_PG) and the SQLite
file (bench/data/) are built afresh each run and removed after.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from _pg import copy_batches, drop_database, fresh_database, prepared_batches
from trailkeeper.events import EventRules, leaf_hash, parse_event
from trailkeeper.store import LogStore, PreparedEvent, SearchQuery
from trailkeeper.store._postgres import PostgresStore
from trailkeeper.store._sqlite import SQLiteStore

START = datetime(2026, 6, 1, tzinfo=UTC)
NOW = START + timedelta(days=40)
PG_NAME = "tk_bench_fts_isolation"


def _event(i: int, org: str, count: int) -> dict[str, Any]:
    words = f"zebra sighting {i}" if org == "B" else f"quota check {i}"
    return {
        "time": (START + timedelta(days=30) * i / count).isoformat(),
        "actor": {"id": f"user-{i % 50}", "type": "user"},
        "operation": "model.create",
        "targets": [{"type": "model", "id": f"m{i % 100}"}],
        "details": [words],
    }


def traffic(count: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """B's events and A's (a tenth as many), interleaved in time and arrival, 1000 a batch."""
    for start in range(0, count, 1000):
        yield "B", [_event(i, "B", count) for i in range(start, min(start + 1000, count))]
        a = range(start // 10, min(start + 1000, count) // 10)
        yield "A", [_event(i * 10, "A", count) for i in a]


def _prepared(org: str, raw: list[dict[str, Any]]) -> list[PreparedEvent]:
    rules = EventRules()
    out = []
    for item in raw:
        event = parse_event(item, org_id=org, received_at=NOW, rules=rules).event
        canonical = event.canonical_bytes()
        out.append(PreparedEvent(event, canonical, leaf_hash(canonical)))
    return out


def _timed(runs: int, calls: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm up
        call()
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def _report(backend: str, layout: str, samples: dict[str, list[float]]) -> None:
    med = {name: statistics.median(s) for name, s in samples.items()}
    p95 = {name: statistics.quantiles(s, n=20)[-1] for name, s in samples.items()}
    ratio = med["zebra"] / med["okapi"]
    print(
        f"{backend:<10} {layout:<24} {med['zebra']:8.3f} {p95['zebra']:8.3f}"
        f" {med['okapi']:8.3f} {p95['okapi']:8.3f} {ratio:6.2f}",
        flush=True,
    )


def _store_calls(store: LogStore) -> dict[str, Callable[[], object]]:
    def search(term: str) -> Callable[[], object]:
        query = SearchQuery(text=(term,))
        return lambda: store.search("A", query)

    return {term: search(term) for term in ("zebra", "okapi")}


def sqlite_run(count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        path = Path(tmp) / "fts.db"
        started = time.perf_counter()
        store = SQLiteStore(path, synchronous="off")
        for org, raw in traffic(count):
            store.append(org, _prepared(org, raw))
        print(f"sqlite: built in {time.perf_counter() - started:.0f} s", flush=True)
        org_a = store._org_key("A")
        _report("sqlite", "per org (this store)", _timed(runs, _store_calls(store)))
        store.close()

        old = sqlite3.connect(path, isolation_level=None)
        old.execute(
            "CREATE VIRTUAL TABLE old_fts USING fts5 "
            "(text, content='', tokenize='unicode61 remove_diacritics 2')"
        )
        old.execute(
            "INSERT INTO old_fts (rowid, text) SELECT rowid, "
            "json_extract(CAST(body AS TEXT), '$.description') || ' ' || "
            "json_extract(CAST(body AS TEXT), '$.details[0]') FROM events"
        )
        # The old store's newest-first walk: matches of every org, in rowid order, joined.
        sql = (
            "SELECT e.rowid, e.time_us, e.seq, e.wm_us, e.received_us, e.leaf_hash, e.body "
            "FROM old_fts f CROSS JOIN events e ON e.rowid = f.rowid "
            "WHERE old_fts MATCH ? AND e.org_key = ? ORDER BY f.rowid DESC LIMIT 66"
        )

        def old_search(term: str) -> Callable[[], object]:
            return lambda: old.execute(sql, (f'"{term}"', org_a)).fetchall()

        calls = {term: old_search(term) for term in ("zebra", "okapi")}
        _report("sqlite", "shared (old layout)", _timed(runs, calls))
        old.close()


def postgres_run(count: int, runs: int) -> None:
    started = time.perf_counter()
    url = fresh_database(PG_NAME)
    state: dict[str, int] = {}
    try:
        copy_batches(url, prepared_batches(traffic(count), NOW, state), state)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("VACUUM ANALYZE")
        print(f"postgresql: built in {time.perf_counter() - started:.0f} s", flush=True)
        store = PostgresStore(url)
        try:
            _report("postgresql", "per org (this store)", _timed(runs, _store_calls(store)))
        finally:
            store.close()
        with psycopg.connect(url, autocommit=True) as con:
            # The old layout: the same words, without the org's prefix, in a GIN index.
            con.execute(
                "CREATE TABLE old_layout AS SELECT org_key, time_us, seq, "
                "to_tsvector('simple', convert_from(body, 'UTF8')::json->'details'->>0) AS words "
                "FROM events"
            )
            con.execute("CREATE INDEX ON old_layout USING gin (words)")
            con.execute("CREATE INDEX ON old_layout (org_key, time_us, seq)")
            con.execute("VACUUM ANALYZE old_layout")
            org_a = state["key:A"]
            sql = (
                "SELECT seq FROM old_layout e WHERE e.org_key = %s AND e.words @@ %s::tsquery "
                "ORDER BY e.time_us DESC, e.seq DESC LIMIT 50"
            )

            def old_search(term: str) -> Callable[[], object]:
                return lambda: con.execute(sql, (org_a, term)).fetchall()

            calls = {term: old_search(term) for term in ("zebra", "okapi")}
            _report("postgresql", "shared (old layout)", _timed(runs, calls))
    finally:
        drop_database(PG_NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="org B's events")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(
        f"org B: {args.events:,} events, every one with 'zebra'; org A: {args.events // 10:,}, "
        f"none; A searches; {args.runs} runs each, ms"
    )
    print(
        f"{'backend':<10} {'layout':<24} {'zebra':>8} {'p95':>8} {'okapi':>8} {'p95':>8} "
        f"{'ratio':>6}"
    )
    if args.backend in ("sqlite", "both"):
        sqlite_run(args.events, args.runs)
    if args.backend in ("postgresql", "both"):
        postgres_run(args.events, args.runs)


if __name__ == "__main__":
    main()
