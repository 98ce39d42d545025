"""What only the PostgreSQL backend has: partitions, retention by dropping them, a replica."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import store_url
from trailkeeper.events import EventRules, leaf_hash, parse_event
from trailkeeper.store import (
    Criteria,
    PreparedEvent,
    SearchQuery,
    StoreUnavailableError,
    open_store,
)
from trailkeeper.store._postgres import PostgresStore
from trailkeeper.store._postgres_schema import (
    MONTHS_AHEAD,
    MONTHS_BACK,
    month_of,
    partition_name,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def prepare(raw: dict[str, Any], org: str = "acme") -> PreparedEvent:
    event = parse_event(raw, org_id=org, received_at=NOW, rules=EventRules()).event
    canonical = event.canonical_bytes()
    return PreparedEvent(event, canonical, leaf_hash(canonical))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return store_url("postgresql", tmp_path)


@pytest.fixture
def pg(url: str) -> Iterator[PostgresStore]:
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    yield store
    store.close()


def partitions(url: str) -> set[str]:
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'events'::regclass"
        ).fetchall()
    return {r[0] for r in rows}


def test_partitions_are_ready_for_this_month_and_the_next_ones(pg: PostgresStore, url: str) -> None:
    now = month_of(time.time_ns() // 1000)
    expected = {partition_name(m) for m in range(now - 1, now + MONTHS_AHEAD + 1)}
    assert expected <= partitions(url)


def _month_start(month: int) -> datetime:
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


def test_an_event_in_a_month_without_a_partition_gets_one(
    pg: PostgresStore, url: str, make_event: Callable[..., dict[str, Any]]
) -> None:
    month = month_of(time.time_ns() // 1000) - 10
    when = _month_start(month).replace(day=5)
    old = prepare(make_event(time=when.isoformat()))
    pg.append("acme", [old, prepare(make_event())])
    assert partition_name(month) in partitions(url)
    until = _month_start(month + 1)
    assert [s.event.id for s in pg.search("acme", SearchQuery(until=until))] == [old.event.id]


def test_events_older_than_the_monthly_partitions_share_one_and_make_none(
    pg: PostgresStore, url: str, make_event: Callable[..., dict[str, Any]]
) -> None:
    # One request, events in 100 months: it may not create a partition per month.
    now = month_of(time.time_ns() // 1000)
    before = partitions(url)
    batch = [
        prepare(make_event(time=_month_start(now - back).replace(day=3).isoformat()))
        for back in range(1, 101)
    ]
    pg.append("acme", batch)
    created = partitions(url) - before
    assert created == {partition_name(now - back) for back in range(1, MONTHS_BACK + 1)} - before
    assert "events_old" in before
    with psycopg.connect(url) as con:
        [(in_old,)] = con.execute("SELECT count(*) FROM events_old").fetchall()
    assert in_old == 100 - MONTHS_BACK
    found = {s.event.id for s in pg.search("acme", SearchQuery(limit=1000))}
    assert found == {p.event.id for p in batch}
    [stored] = pg.get_many("acme", [batch[-1].event.id]).values()
    assert stored.event.time == batch[-1].event.time


def test_dropping_a_month_keeps_the_log_its_seqs_and_its_ids(
    pg: PostgresStore, url: str, make_event: Callable[..., dict[str, Any]]
) -> None:
    old = [prepare(make_event(time=f"2025-01-0{d}T10:00:00Z")) for d in (1, 2)]
    recent = prepare(make_event())
    pg.append("acme", [*old, recent])
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("DROP TABLE events_p202501")
    # The payloads are gone; the log's length, seqs and ids (the leaves) are not.
    assert pg.size("acme") == 3
    assert [s.event.id for s in pg.search("acme", SearchQuery())] == [recent.event.id]
    assert pg.get("acme", old[0].event.id) is None
    [again] = pg.append("acme", [old[0]])
    assert (again.seq, again.duplicate) == (0, True)
    # A late event for the dropped month makes its partition again, in this very process.
    late = prepare(make_event(time="2025-01-15T10:00:00Z"))
    [stored] = pg.append("acme", [late])
    assert stored.seq == 3
    assert pg.get("acme", late.event.id) is not None


def test_searches_read_the_replica_while_gets_and_sizes_read_the_primary(
    url: str, tmp_path: Path, make_event: Callable[..., dict[str, Any]]
) -> None:
    # Stand-in for a replica that has not caught up: another, empty Trailkeeper database.
    replica = store_url("postgresql", tmp_path / "replica")
    open_store(replica).close()
    with open_store(url, read_url=replica) as store:
        event = prepare(make_event(actor={"id": "alice"}))
        store.append("acme", [event])
        assert store.get("acme", event.event.id) is not None
        assert store.size("acme") == 1
        assert store.search("acme", SearchQuery()) == []
        assert list(store.scan("acme", SearchQuery(include=Criteria(actors=("alice",))))) == []
    with open_store(url, read_url=url) as store:
        assert len(store.search("acme", SearchQuery())) == 1


def test_an_unreachable_server_is_a_clear_store_unavailable_error() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="can't reach PostgreSQL"):
        open_store("postgresql://postgres@127.0.0.1:1/trailkeeper?connect_timeout=3")
    assert time.monotonic() - started < 10


def test_a_read_database_with_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read database is for PostgreSQL"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}", read_url="postgresql://h/db")


def test_a_partition_is_analysed_as_it_fills_without_waiting_for_autovacuum(
    pg: PostgresStore, url: str, make_event: Callable[..., dict[str, Any]]
) -> None:
    month = month_of(time.time_ns() // 1000) - 6

    def analysed() -> Any:
        with psycopg.connect(url) as con:
            row = con.execute(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s "
                "AND schemaname = current_schema()",
                (partition_name(month),),
            ).fetchone()
        return row[0] if row else None

    first, second = (_month_start(month).replace(day=d).isoformat() for d in (1, 2))
    pg.append("acme", [prepare(make_event(time=first)) for _ in range(999)])
    time.sleep(0.5)
    assert analysed() is None
    pg.append("acme", [prepare(make_event(time=second))])
    deadline = time.monotonic() + 20
    while analysed() is None:
        assert time.monotonic() < deadline, "the partition was not analysed"
        time.sleep(0.1)


def test_every_plan_gives_the_same_answers(
    url: str, make_event: Callable[..., dict[str, Any]]
) -> None:
    """PostgreSQL's planner picks how to read (a filter's index, the time index, a bitmap,
    the table); an answer must not depend on which (forced here by planner settings)."""
    import ipaddress

    from trailkeeper.store import TargetRef

    def minute(n: int) -> str:
        return f"2026-11-26T{9 + n // 60:02d}:{n % 60:02d}:00Z"

    events = [
        prepare(
            make_event(
                time=minute(i % 17),
                actor={"id": f"user-{i % 4}"},
                operation=("model.create", "model.delete", "team.create")[i % 3],
                app_id=("main", "other")[i % 2],
                source_ip=f"10.0.{i % 3}.{i % 7 + 1}" if i % 5 else None,
                targets=[{"type": "model", "id": f"m{i % 6}"}],
                request_id=f"req-{i % 9}",
                details=["quota" if i % 4 == 0 else "fine"],
            )
        )
        for i in range(120)
    ]
    with open_store(url) as store:
        store.append("acme", events)
    net = ipaddress.ip_network
    queries = [
        SearchQuery(include=Criteria(actors=("user-1",))),
        SearchQuery(include=Criteria(actors=("user-1",), request_ids=("req-3",))),
        SearchQuery(include=Criteria(operations=("model.create", "team.create")), order="asc"),
        SearchQuery(include=Criteria(source_ips=(net("10.0.1.0/24"),), apps=("main",))),
        SearchQuery(include=Criteria(targets=(TargetRef("m2", "model"),)), success=True),
        SearchQuery(text=("quota",), order="asc"),
        SearchQuery(text=("quota",), include=Criteria(actors=("user-0",)), limit=7),
        SearchQuery(exclude=Criteria(apps=("main",), targets=(TargetRef("m1"),)), limit=9),
    ]
    answers = []
    for settings in ("", "enable_indexscan=off", "enable_bitmapscan=off", "enable_seqscan=off"):
        planned = f"{url}%20-c{settings.replace('=', '%3D')}" if settings else url
        with open_store(planned) as store:
            answers.append([[s.event.id for s in store.search("acme", q)] for q in queries])
    assert answers[0] == answers[1] == answers[2] == answers[3]
    assert all(answers[0])


def test_connections_are_made_without_touching_the_process_wide_random_generator(
    url: str,
) -> None:
    import random
    import threading

    state = random.getstate()
    with open_store(url) as store:
        barrier = threading.Barrier(6)

        def read() -> None:
            barrier.wait()
            for _ in range(20):
                store.search("acme", SearchQuery())
                store.size("acme")

        threads = [threading.Thread(target=read) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert isinstance(store, PostgresStore)
        assert store._writes.get_stats()["pool_size"] > 1  # the pool grew meanwhile
    assert random.getstate() == state
