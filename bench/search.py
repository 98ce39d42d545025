"""Search latency at 1M events, in-process, for the query shapes of issue #2.

Each shape runs through ``AuditService.search`` (first page, 50 events, decoded into
``StoredEvent`` values) and, as the baseline measured in the same run, as one SQL statement
with the same WHERE clause and ORDER BY ... LIMIT, executed raw with ``fetchall`` (no
decoding) under SQLite's own plan. Target (issue #2): service p95 <= 2 ms for each shape.
For most shapes the ratio is what decoding and the service layer add; for the CIDR and free
text shapes, where the store picks its own plan (a capped count; a watermark walk), a ratio
below 1 is what that plan saves over SQLite's.

The data set (bench/_data.py, seed 1) is built once through the service and kept in
bench/data/ (git-ignored); delete the file to rebuild it.

    python bench/search.py [--events 1000000] [--runs 300]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _data import END, events
from _shapes import ORG, time_shapes
from trailkeeper.service import AuditService
from trailkeeper.store._query import SearchQuery
from trailkeeper.store._rows import SELECT_EVENTS
from trailkeeper.store._sqlite import SQLiteStore
from trailkeeper.store._sqlite_rows import where_clause

LATER = END + timedelta(days=1)  # the receive clock: after every generated event
DATA = Path(__file__).parent / "data"


def build(path: Path, count: int) -> None:
    print(f"building {path.name}: {count:,} events through AuditService.ingest ...", flush=True)
    started = time.perf_counter()
    service = AuditService(SQLiteStore(path, synchronous="normal"), clock=lambda: LATER)
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for org, event in events(count, seed=1):
        pending[org].append(event)
        if len(pending[org]) == 1000:
            service.ingest(org, pending.pop(org))
    for org, batch in pending.items():
        service.ingest(org, batch)
    service.close()
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)


def _pristine(path: Path, count: int) -> bool:
    """Whether the data set holds exactly the generated events (a served copy gains records
    of reads; a copy used in place would skew the newest pages)."""

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total = con.execute("SELECT COALESCE(SUM(size), 0) FROM orgs").fetchone()[0]
    finally:
        con.close()
    return int(total) == count


def dataset(count: int) -> Path:
    """The generated data set of ``count`` events, built (or rebuilt) if need be."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"search-{count}.db"
    if path.exists() and not _pristine(path, count):
        print(f"{path.name} holds other events than the generated ones; rebuilding")
        path.unlink()
    if not path.exists():
        build(path, count)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    path = dataset(args.events)
    store = SQLiteStore(path)
    service = AuditService(store)
    org_key = store._org_key(ORG)
    assert org_key is not None
    con = store._reader()

    def statement(query: SearchQuery) -> Callable[[], object]:
        where, params = where_clause(org_key, query, with_position=True)
        sql = f"{SELECT_EVENTS} WHERE {where} ORDER BY e.time_us DESC, e.rowid DESC LIMIT ?"
        return lambda: con.execute(sql, [*params, 51]).fetchall()

    time_shapes(service, args.events, args.runs, 2.0, statement)
    service.close()


if __name__ == "__main__":
    main()
