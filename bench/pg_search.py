"""Search latency on PostgreSQL at 1M (or 10M) events, in-process, for issue #2's shapes.

Each shape runs through ``AuditService.search`` over ``PostgresStore`` (first page, 50
events, decoded) and, as the baseline measured in the same run, as the one SQL statement the
store sends, executed raw with ``fetchall`` on its own connection. Target (issue #6): service
p95 <= 5 ms for each shape.

The data set is bench/_data.py's generator (seed 1: four orgs of 60/25/10/5 %, times over the
180 days before 2026-11-01, the same generator as the SQLite benchmarks), written by COPY in
batches of 1,000 exactly as the store writes them (bench/_pg.py), then VACUUM ANALYZE, as
after any bulk load. It is kept in database ``tk_bench_search_<N>`` on the server and reused
while it holds exactly the generated events. ``--events 10000000`` builds the 10M set the
same way (about 6 GB and, on a 2-core machine, about an hour).

    python bench/pg_search.py [--events 1000000] [--runs 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))

from _data import END, events
from _pg import SERVER, copy_batches, fresh_database, prepared_batches
from _shapes import ORG, time_shapes
from trailkeeper.service import AuditService
from trailkeeper.store._postgres import PostgresStore
from trailkeeper.store._postgres_rows import where_clause
from trailkeeper.store._query import SearchQuery
from trailkeeper.store._rows import SELECT_EVENTS

LATER = END + timedelta(days=1)  # the receive clock: after every generated event


def work(count: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for org, event in events(count, seed=1):
        pending[org].append(event)
        if len(pending[org]) == 1000:
            yield org, pending.pop(org)
    yield from pending.items()


def database(count: int) -> str:
    name = f"tk_bench_search_{count}"
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    try:
        with psycopg.connect(url) as con:
            row = con.execute("SELECT COALESCE(SUM(size), 0) FROM orgs").fetchone()
            if row is not None and int(row[0]) == count:
                return url
    except psycopg.Error:
        pass
    print(f"building {name}: {count:,} events by COPY ...", flush=True)
    started = time.perf_counter()
    url = fresh_database(name)
    state: dict[str, int] = {}
    copy_batches(url, prepared_batches(work(count), LATER, state), state)
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("VACUUM ANALYZE")
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    url = database(args.events)
    store = PostgresStore(url)
    service = AuditService(store)
    org_key = store._org_key(ORG)
    assert org_key is not None
    raw = psycopg.connect(url, autocommit=True, prepare_threshold=None)

    def statement(query: SearchQuery) -> Callable[[], object]:
        where, params = where_clause(org_key, query, with_position=True)
        sql = f"{SELECT_EVENTS} WHERE {where} ORDER BY e.time_us DESC, e.seq DESC LIMIT %s".encode()
        return lambda: raw.execute(sql, [*params, 51]).fetchall()

    time_shapes(service, args.events, args.runs, 5.0, statement)
    raw.close()
    service.close()


if __name__ == "__main__":
    main()
