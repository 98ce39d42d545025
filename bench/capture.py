"""The capture SDK's cost (issue #5), against baselines measured in the same run.

1. ``record()`` on the caller's thread, with a bound request context, while the sender
   delivers to a real ``trailkeeper serve``. Target: <= 10 us per event. Baseline: the same
   event written synchronously to SQLite with a commit.
2. p50 latency of a trivial ASGI endpoint: bare; behind ``AuditMiddleware`` recording one
   event per request through the route map; and writing its audit row to SQLite with a
   commit in the handler. Target: middleware adds <= 10 % to the bare p50. The three
   servers run at once and are called in turn, so drift of the shared machine hits all
   three alike.

    python bench/capture.py [--events 200000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))

from _server import make_key, serving
from trailkeeper.capture import Recorder, bind

HERE = Path(__file__).parent


def record_cost(url: str, key: str, workdir: Path, events: int) -> None:
    recorder = Recorder(url, key, spool=workdir / "spool.db")
    targets = [{"type": "app", "id": "fraud-detect"}, {"type": "model", "id": "scorer"}]
    record = recorder.record
    burst = 1_000
    with bind(actor={"id": "ana", "type": "user"}, source_ip="203.0.113.7",
              request_id="req-1", user_agent="bench/1.0", app_id="fraud-detect"):  # fmt: skip
        for _ in range(2_000):  # warm up
            record("model.update", targets=targets, details=["bench"])
        recorder.flush(30)
        gc.collect()
        # Bursts of 1,000 calls, timed; between bursts the sender catches up (not timed).
        spent = 0.0
        for _ in range(events // burst):
            started = time.perf_counter()
            for _ in range(burst):
                record("model.update", targets=targets, details=["bench"])
            spent += time.perf_counter() - started
            recorder.flush(30)
        caller = spent / (events // burst * burst) * 1e6
        # One unbroken loop: the caller outruns the sender and pays for spooling.
        started = time.perf_counter()
        for _ in range(events):
            record("model.update", targets=targets, details=["bench"])
        sustained = (time.perf_counter() - started) / events * 1e6
    delivered = recorder.flush(300)
    counters = recorder.counters()
    recorder.close()

    db = sqlite3.connect(workdir / "sync.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE audit (id TEXT PRIMARY KEY, time REAL, data TEXT)")
    sync_n = min(events, 20_000)
    started = time.perf_counter()
    for _ in range(sync_n):
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO audit VALUES (?, ?, ?)",
            (str(uuid.uuid4()), time.time(),
             orjson.dumps({"operation": "model.update", "targets": targets}).decode()),
        )  # fmt: skip
        db.execute("COMMIT")
    sync = (time.perf_counter() - started) / sync_n * 1e6
    db.close()
    print(f"record(): {caller:.2f} us per event on the caller's thread, in bursts of {burst:,} "
          f"({events:,} events; target <= 10 us)")  # fmt: skip
    print(f"  {sustained:.2f} us per event in one unbroken loop of {events:,} (the caller "
          f"outruns the sender and spools part of the queue itself)")  # fmt: skip
    print(f"  baseline, SQLite insert + commit per event: {sync:.2f} us ({sync_n:,} events); "
          f"ratio record/baseline = {caller / sync:.3f}")  # fmt: skip
    print(f"  all delivered: {delivered}; queued {counters.queued:,}, sent {counters.sent:,}, "
          f"failed {counters.failed}, spooled {counters.spooled:,}")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def endpoint_latency(url: str, key: str, workdir: Path, requests: int) -> None:
    modes = {
        "bare": [],
        "audited": [url, key, str(workdir / "mw-spool.db")],
        "sqlite": [str(workdir / "endpoint.db")],
    }
    servers: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for mode, extra in modes.items():
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, str(HERE / "_capture_app.py"), str(port), mode, *extra]
            )
            servers[mode] = (process, f"http://127.0.0.1:{port}")
        clients = {mode: httpx.Client(base_url=base) for mode, (_, base) in servers.items()}
        for client in clients.values():
            for _attempt in range(300):
                try:
                    client.post("/models/m1")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            for _ in range(200):  # warm up
                client.post("/models/m1", headers={"x-user": "ana"})
        times: dict[str, list[float]] = {mode: [] for mode in clients}
        gc.collect()
        gc.disable()
        for i in range(requests):
            for mode, client in clients.items():
                started = time.perf_counter()
                response = client.post("/models/m1", headers={"x-request-id": f"r{i}"})
                times[mode].append(time.perf_counter() - started)
                assert response.status_code == 200
        gc.enable()
        for client in clients.values():
            client.close()
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=60)
    p50 = {mode: statistics.median(t) * 1e3 for mode, t in times.items()}
    p90 = {mode: statistics.quantiles(t, n=10)[-1] * 1e3 for mode, t in times.items()}
    print(f"\ntrivial ASGI endpoint, {requests:,} requests each, interleaved (p50 / p90 ms):")
    for mode in times:
        print(f"  {mode:<8} {p50[mode]:.3f} / {p90[mode]:.3f}   "
              f"p50 ratio to bare {p50[mode] / p50['bare']:.3f}")  # fmt: skip
    added = (p50["audited"] / p50["bare"] - 1) * 100
    sync_added = (p50["sqlite"] / p50["bare"] - 1) * 100
    print(f"  middleware + one event adds {added:.1f} % to p50 (target <= 10 %); "
          f"a synchronous SQLite audit row adds {sync_added:.1f} %")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=3_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="tk-capture-"))
    try:
        db_url = f"sqlite:///{workdir / 'audit.db'}"
        key = make_key(db_url, "acme", "events:write")
        with serving(db_url) as url:
            record_cost(url, key, workdir, args.events)
            endpoint_latency(url, key, workdir, args.requests)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
