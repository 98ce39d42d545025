"""Ingest through AuditService.ingest against raw executemany into the same schema.

Both sides write the same events, in batches of 1,000, one transaction a batch, into fresh
databases with the same pragmas (WAL, synchronous=FULL): first ``--events`` into an empty
database, then ``--more`` into it. The baseline's rows (canonical JSON, hashes, index
columns) are computed before its clock starts, so the ratio is what validation, redaction,
canonicalisation, hashing, deduplication and sequencing cost on top of storage.
Target (issue #2): service / raw >= 0.5.

    python bench/ingest.py [--events 1000000] [--more 100000]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _data import batches
from trailkeeper.events import EventRules, leaf_hash, parse_event
from trailkeeper.service import AuditService
from trailkeeper.store import PreparedEvent
from trailkeeper.store._sqlite import SQLiteStore
from trailkeeper.store._sqlite_rows import (
    EVENT_INSERT,
    FTS_INSERT,
    TARGET_INSERT,
    event_rows,
)

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def run_service(
    path: Path, work: list[tuple[str, list[dict[str, Any]]]], producers: int = 1
) -> float:
    service = AuditService(SQLiteStore(path), clock=lambda: NOW)
    shares = [work[i::producers] for i in range(producers)]

    def produce(share: list[tuple[str, list[dict[str, Any]]]]) -> None:
        for org, batch in share:
            service.ingest(org, batch)

    started = time.perf_counter()
    threads = [threading.Thread(target=produce, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    service.close()
    return elapsed


def raw_rows(
    work: list[tuple[str, list[dict[str, Any]]]], org_keys: dict[str, int], state: dict[str, int]
) -> list[tuple[str, list[Any], list[Any], list[Any]]]:
    rules = EventRules()
    out = []
    for org, batch in work:
        key = org_keys.setdefault(org, len(org_keys) + 1)
        rows, targets, fts = [], [], []
        for raw in batch:
            event = parse_event(raw, org_id=org, received_at=NOW, rules=rules).event
            canonical = event.canonical_bytes()
            prepared = PreparedEvent(event, canonical, leaf_hash(canonical))
            seq = state.setdefault(org, 0)
            state[org] = seq + 1
            state["rowid"] = state.get("rowid", 0) + 1
            wm = state.get(f"wm:{org}", -(2**62))
            row, t, f = event_rows(prepared, key, seq, state["rowid"], 0, wm)
            state[f"wm:{org}"] = row[5]
            rows.append(row)
            targets.extend(t)
            fts.append(f)
        out.append((org, rows, targets, fts))
    return out


def run_raw(
    path: Path,
    prepared: list[tuple[str, list[Any], list[Any], list[Any]]],
    org_keys: dict[str, int],
    state: dict[str, int],
) -> float:
    SQLiteStore(path).close()  # the same schema, created by the same migrations
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("PRAGMA cache_size = -65536")
    for org, key in org_keys.items():
        con.execute("INSERT OR IGNORE INTO orgs (org_key, org_id) VALUES (?, ?)", (key, org))
    started = time.perf_counter()
    for org, rows, targets, fts in prepared:
        con.execute("BEGIN IMMEDIATE")
        con.executemany(EVENT_INSERT, rows)
        con.executemany(TARGET_INSERT, targets)
        con.executemany(FTS_INSERT, fts)
        con.execute(
            "UPDATE orgs SET size = ?, max_time_us = ? WHERE org_key = ?",
            (state[org], state[f"wm:{org}"], org_keys[org]),
        )
        con.execute("COMMIT")
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--more", type=int, default=100_000)
    parser.add_argument(
        "--producers", type=int, nargs="+", default=[1], help="threads calling ingest (e.g. 1 2)"
    )
    args = parser.parse_args()
    print(f"generating {args.events:,} + {args.more:,} events ...", flush=True)
    first = batches(args.events, seed=1)
    second = batches(args.more, seed=2)
    org_keys: dict[str, int] = {}
    state: dict[str, int] = {}
    raw_first = raw_rows(first, org_keys, state)
    raw_second = raw_rows(second, org_keys, state)
    # The inputs of both sides (~2M objects) live for the whole run; a server holds no such
    # heap. Freezing them keeps the cyclic GC from re-walking them during either side's run.
    gc.collect()
    gc.freeze()

    workdir = Path(tempfile.mkdtemp(prefix="tk-bench-"))
    try:
        results = []
        raw_t1 = run_raw(workdir / "raw.db", raw_first, org_keys, state)
        raw_t2 = run_raw(workdir / "raw.db", raw_second, org_keys, state)
        runs = []
        for producers in args.producers:
            db = workdir / f"service-{producers}.db"
            svc_t1 = run_service(db, first, producers)
            svc_t2 = run_service(db, second, producers)
            runs += [
                (
                    f"{args.events:,} into an empty database, {producers} producer(s)",
                    args.events,
                    raw_t1,
                    svc_t1,
                ),
                (f"{args.more:,} more into it, {producers} producer(s)", args.more, raw_t2, svc_t2),
            ]
        for label, n, raw_t, svc_t in runs:
            raw_rate, svc_rate = n / raw_t, n / svc_t
            ratio = svc_rate / raw_rate
            results.append(ratio)
            print(
                f"{label}: service {svc_rate:,.0f} events/s, raw executemany {raw_rate:,.0f} "
                f"events/s, ratio {ratio:.2f} (target >= 0.5)"
            )
    finally:
        shutil.rmtree(workdir)
    print("PASS" if min(results[:2]) >= 0.5 else "BELOW TARGET", "(judged on 1 producer)")


if __name__ == "__main__":
    main()
