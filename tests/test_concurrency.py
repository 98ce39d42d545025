"""Concurrent ingest: every org's seq stays exactly 0..n-1 with no gaps and no repeats."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from conftest import FakeClock
from trailkeeper.events import EventRules
from trailkeeper.filters import Filters
from trailkeeper.service import AuditService
from trailkeeper.store import LogStore

ORGS = ["acme", "globex", "initech"]
THREADS = 8
BATCHES = 15
BATCH = 40


def test_threads_ingesting_into_several_orgs_get_dense_unique_seqs(
    store: LogStore, make_event: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    service = AuditService(store, rules=EventRules(), clock=clock)
    acked: dict[str, list[tuple[str, int]]] = {org: [] for org in ORGS}
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            start.wait()
            for b in range(BATCHES):
                org = ORGS[(n + b) % len(ORGS)]
                result = service.ingest(org, [make_event() for _ in range(BATCH)])
                with lock:
                    acked[org].extend((e.id, e.seq) for e in result.events)
        except BaseException as exc:  # surfaced below; a thread can't fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = 0
    for org in ORGS:
        seqs = sorted(seq for _, seq in acked[org])
        assert seqs == list(range(len(seqs)))
        stored = {e.event.id: e.seq for e in service.scan(org, Filters())}
        assert stored == dict(acked[org])
        assert service.size(org) == len(seqs)
        total += len(seqs)
    assert total == THREADS * BATCHES * BATCH


def test_two_stores_on_one_file_share_one_sequence(
    backend: str, tmp_path: Any, make_event: Callable[..., dict[str, Any]], clock: FakeClock
) -> None:
    # Two processes (here: two store objects, each with its own writer) on one database.
    from conftest import store_url
    from trailkeeper.store import open_store

    url = store_url(backend, tmp_path)
    first, second = open_store(url), open_store(url)
    try:
        a = AuditService(first, clock=clock)
        b = AuditService(second, clock=clock)
        seqs: list[int] = []
        lock = threading.Lock()

        def run(service: AuditService) -> None:
            for _ in range(20):
                result = service.ingest("acme", [make_event() for _ in range(10)])
                with lock:
                    seqs.extend(e.seq for e in result.events)

        threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(seqs) == list(range(400))
    finally:
        first.close()
        second.close()
