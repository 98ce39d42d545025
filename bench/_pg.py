"""PostgreSQL helpers for the benchmarks: fresh databases, and raw COPY of prepared rows.

The server is $TRAILKEEPER_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg

from trailkeeper.events import EventRules, leaf_hash, parse_event, to_micros
from trailkeeper.store import PreparedEvent
from trailkeeper.store._postgres_rows import EVENT_COLUMNS, LEAF_COLUMNS, copy_leaf, copy_row
from trailkeeper.store._postgres_schema import create_partitions, migrate, month_of

SERVER = os.environ.get("TRAILKEEPER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_database(name: str) -> str:
    """Drop and create database ``name``; its URL, migrated."""
    with psycopg.connect(SERVER, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())
        con.execute(f"CREATE DATABASE {name}".encode())
    url = SERVER.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as con:
        migrate(con)
    return url


def drop_database(name: str) -> None:
    with psycopg.connect(SERVER, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


# (org, COPY text of the events rows, of the leaves rows, months the rows fall in)
Prepared = tuple[str, bytes, bytes, set[int]]


def prepared_batches(
    work: Iterable[tuple[str, list[dict[str, Any]]]], now: datetime, state: dict[str, int]
) -> Iterator[Prepared]:
    """The COPY data of each batch, exactly as the store would send it."""
    rules = EventRules()
    for org, batch in work:
        key = state.setdefault(f"key:{org}", len([k for k in state if k.startswith("key:")]) + 1)
        rows, leaves, months = [], [], set()
        for raw in batch:
            event = parse_event(raw, org_id=org, received_at=now, rules=rules).event
            canonical = event.canonical_bytes()
            seq = state.setdefault(org, 0)
            state[org] = seq + 1
            prepared = PreparedEvent(event, canonical, leaf_hash(canonical))
            rows.append(f"{key}\t{seq}\t{copy_row(prepared, 0, key)}")
            leaves.append(f"{key}\t{seq}\t{copy_leaf(prepared)}")
            months.add(month_of(to_micros(event.time)))
        yield org, "".join(rows).encode(), "".join(leaves).encode(), months


def copy_batches(url: str, batches: Iterable[Prepared], state: dict[str, int]) -> None:
    """COPY each batch in a transaction of its own, as the store does, without its checks
    (the data of the batches is ready before, so a timed call times the database alone)."""
    with psycopg.connect(url, autocommit=True) as con:
        months: set[int] = set()
        for org, rows, leaves, batch_months in batches:
            needed = batch_months - months
            if needed:
                create_partitions(con, needed)
                months |= needed
            with con.transaction():
                key = state[f"key:{org}"]
                # Orgs get keys 1, 2, ... in order of first appearance, here and in the rows.
                con.execute(
                    "INSERT INTO orgs (org_id) "
                    "SELECT %s WHERE NOT EXISTS (SELECT 1 FROM orgs WHERE org_id = %s)",
                    (org, org),
                )
                cur = con.cursor()
                with cur.copy(f"COPY leaves ({LEAF_COLUMNS}) FROM STDIN".encode()) as copy:
                    copy.write(leaves)
                with cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN".encode()) as copy:
                    copy.write(rows)
                cur.execute("UPDATE orgs SET size = %s WHERE org_key = %s", (state[org], key))
