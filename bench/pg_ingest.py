"""Ingest through AuditService on PostgreSQL against raw COPY of the same rows, same schema.

Both sides write the same events in batches of 1,000, one transaction a batch, into fresh
databases on the same server, created by the same migrations: the service through
``PostgresStore`` (validation, redaction, canonical JSON, hashing, the org head lock,
deduplication, COPY), the baseline by COPY alone, its rows computed before its clock starts.
Target (issue #6): service / raw >= 0.5.

Producers are threads calling ``ingest`` at once, as a server's requests do; the process is
set up as ``serve`` sets up its own (``tune_process``). Threads in one process share its
interpreter lock (validation and hashing are Python); ``serve --workers N`` runs N processes,
and ``--processes`` measures that shape (each process its own store and pools).

    python bench/pg_ingest.py [--events 1000000] [--producers 1 4] [--processes 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _data import batches
from _pg import copy_batches, drop_database, fresh_database, prepared_batches
from trailkeeper.server._process import tune_process
from trailkeeper.service import AuditService
from trailkeeper.store._postgres import PostgresStore

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def _threads(url: str, work: list[tuple[str, list[dict[str, Any]]]], producers: int) -> None:
    service = AuditService(PostgresStore(url), clock=lambda: NOW)
    shares = [work[i::producers] for i in range(producers)]

    def produce(share: list[tuple[str, list[dict[str, Any]]]]) -> None:
        for org, batch in share:
            service.ingest(org, batch)

    threads = [threading.Thread(target=produce, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    service.close()


def _child(url: str, share: list[Any], producers: int, ready: Any, go: Any) -> None:
    ready.wait()
    go.wait()
    _threads(url, share, producers)


def run_service(
    url: str, work: list[tuple[str, list[dict[str, Any]]]], producers: int, processes: int
) -> float:
    """Seconds to ingest ``work`` with ``producers`` threads in each of ``processes``
    processes (as ``serve --workers`` runs them), each process with its own store."""
    if processes == 1:
        started = time.perf_counter()
        _threads(url, work, producers)
        return time.perf_counter() - started
    context = multiprocessing.get_context("fork")  # the children share the generated work
    ready, go = context.Barrier(processes + 1), context.Event()
    children = [
        context.Process(target=_child, args=(url, work[i::processes], producers, ready, go))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    ready.wait()
    started = time.perf_counter()
    go.set()
    for child in children:
        child.join()
        assert child.exitcode == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--producers", type=int, nargs="+", default=[1, 4], help="threads calling ingest"
    )
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1], help="processes, each with threads"
    )
    args = parser.parse_args()
    print(f"generating {args.events:,} events ...", flush=True)
    work = batches(args.events, seed=1)
    state: dict[str, int] = {}
    prepared = list(prepared_batches(work, NOW, state))
    # As `serve` sets up its process (switch interval, heap frozen); both sides' inputs live
    # all run, frozen with it, so the collector stays off them.
    tune_process()

    ratios = []
    try:
        raw_url = fresh_database("tk_bench_raw")
        started = time.perf_counter()
        copy_batches(raw_url, prepared, state)
        raw_t = time.perf_counter() - started
        drop_database("tk_bench_raw")
        del prepared
        for processes in args.processes:
            for producers in args.producers:
                url = fresh_database("tk_bench_service")
                svc_t = run_service(url, work, producers, processes)
                raw_rate, svc_rate = args.events / raw_t, args.events / svc_t
                ratios.append(svc_rate / raw_rate)
                print(
                    f"{args.events:,} events into an empty database, {processes} process(es) "
                    f"x {producers} producer(s): "
                    f"service {svc_rate:,.0f} events/s, raw COPY {raw_rate:,.0f} events/s, "
                    f"ratio {svc_rate / raw_rate:.2f} (target >= 0.5)",
                    flush=True,
                )
    finally:
        drop_database("tk_bench_raw")
        drop_database("tk_bench_service")
    print("PASS" if max(ratios) >= 0.5 else "BELOW TARGET", "(best of the producer counts)")


if __name__ == "__main__":
    main()
