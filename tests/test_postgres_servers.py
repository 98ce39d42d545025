"""Several server processes on one PostgreSQL database, and PostgreSQL restarting under load.

Real `trailkeeper serve` processes on real ports, real HTTP, the machine's PostgreSQL server.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from conftest import PG_SERVER, store_url
from conftest import new_key as make_key
from conftest import serving as live
from trailkeeper.store import SearchQuery, open_store

#: How the restart test restarts the test server: Debian's cluster by default (this machine;
#: see pg_ctlcluster(1)); CI elsewhere sets e.g. "docker restart pg".
RESTART = shlex.split(
    os.environ.get("TRAILKEEPER_TEST_PG_RESTART", "pg_ctlcluster 15 main restart -m fast")
)


@contextmanager
def serving(db: str, *extra: str) -> Iterator[str]:
    with live(db, *extra, seconds=60) as server:
        yield server.url


def batch(size: int) -> list[dict[str, Any]]:
    when = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return [
        {
            "id": str(uuid.uuid4()),
            "time": when,
            "actor": {"id": "alice", "type": "user"},
            "operation": "model.create",
            "targets": [{"type": "model", "id": "m"}],
        }
        for _ in range(size)
    ]


def assert_log_holds_exactly(db: str, org: str, acknowledged: dict[str, int]) -> None:
    """seq is 0..n-1, every acknowledged event is there with its seq, none twice."""
    with open_store(db) as store:
        stored = list(store.scan(org, SearchQuery()))
        assert [s.seq for s in stored] == list(range(len(stored)))
        ids = [s.event.id for s in stored]
        assert len(set(ids)) == len(ids)
        by_id = {s.event.id: s.seq for s in stored}
        missing = set(acknowledged) - set(by_id)
        assert not missing, f"{len(missing)} acknowledged events are missing"
        assert all(by_id[i] == seq for i, seq in acknowledged.items())
        assert store.size(org) == len(stored)


@pytest.mark.slow
def test_four_servers_ingesting_into_one_org_give_dense_unique_seqs(tmp_path: Path) -> None:
    db = store_url("postgresql", tmp_path)
    key = make_key(db, "--org", "acme", "--scope", "events:write")
    acknowledged: dict[str, int] = {}
    lock = threading.Lock()
    failures: list[str] = []
    with (
        serving(db) as a,
        serving(db) as b,
        serving(db, "--read-db", db) as c,  # a "replica" (the primary itself) for reads
        serving(db, "--workers", "2") as d,  # one port, two processes of its own
    ):

        def produce(url: str) -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
                for _ in range(15):
                    response = http.post("/v1/events", json={"events": batch(20)}, timeout=30)
                    if not response.is_success:
                        failures.append(response.text)
                        continue
                    with lock:
                        for event in response.json()["events"]:
                            acknowledged[event["id"]] = event["seq"]

        threads = [
            threading.Thread(target=produce, args=(url,)) for url in (a, b, c, d, a, b, c, d)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reader = make_key(db, "--org", "acme", "--scope", "events:read")
        for url in (c, d):  # searches through the read database, and through a worker
            page = httpx.get(
                f"{url}/v1/events",
                params={"limit": 5},
                headers={"Authorization": f"Bearer {reader}"},
            )
            assert page.status_code == 200, page.text
            assert len(page.json()["events"]) == 5
    assert failures == []
    assert len(acknowledged) == 8 * 15 * 20
    assert_log_holds_exactly(db, "acme", acknowledged)


def _server_answers(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(PG_SERVER, connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


@pytest.mark.slow
def test_postgresql_restarting_mid_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    if shutil.which(RESTART[0]) is None:
        pytest.fail(f"{RESTART[0]!r} is missing: set TRAILKEEPER_TEST_PG_RESTART to a command")
    db = store_url("postgresql", tmp_path)
    key = make_key(db, "--org", "acme", "--scope", "events:write")
    acknowledged: dict[str, int] = {}
    refused: list[dict[str, Any]] = []
    stop = threading.Event()
    restarted = threading.Event()
    after_restart = [0]
    with serving(db) as url:

        def produce() -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
                while not stop.is_set():
                    response = http.post("/v1/events", json={"events": batch(50)}, timeout=60)
                    if response.is_success:
                        for event in response.json()["events"]:
                            acknowledged[event["id"]] = event["seq"]
                        if restarted.is_set():
                            after_restart[0] += 1
                    else:
                        refused.append(response.json())

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            time.sleep(1.5)
            subprocess.run(RESTART, check=True, capture_output=True, timeout=120)
            restarted.set()
            deadline = time.monotonic() + 60
            while after_restart[0] < 5 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            stop.set()
            producer.join(timeout=120)
            if not _server_answers(60) and RESTART[0] == "pg_ctlcluster":
                subprocess.run([*RESTART[:3], "start"], check=False, timeout=120)
            assert _server_answers(60), "PostgreSQL did not come back"
    # The server recovered by itself: requests succeeded again after the restart.
    assert after_restart[0] >= 5
    # A request caught by the restart failed with a clear, retryable error (or succeeded).
    for problem in refused:
        assert problem["status"] == 503, problem
        assert problem["code"] == "store_unavailable", problem
    assert len(acknowledged) > 0
    assert_log_holds_exactly(db, "acme", acknowledged)
