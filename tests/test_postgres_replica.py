"""Reads from a real streaming replica (``serve --read-db``) that lags behind its primary.

The test makes a primary and a replica of its own (``initdb``, ``pg_basebackup -R``) in a
temporary directory on spare ports: the machine's shared PostgreSQL server is neither
reconfigured for replication nor copied. It fails, never skips, without PostgreSQL's binaries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from conftest import free_port, new_key, serving
from trailkeeper.client import Client

pytestmark = pytest.mark.slow

#: Where PostgreSQL's server binaries are (Debian's layout by default).
PG_BIN = Path(os.environ.get("TRAILKEEPER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: How far behind its primary the replica applies commits, as a busy replica does.
APPLY_DELAY_MS = 150
SCHEMA = "tk"


@dataclass
class Pair:
    primary: str
    replica: str  # libpq URLs of the same database and schema

    def on_replica(self, sql: str) -> Any:
        with psycopg.connect(self.replica.split("?")[0], autocommit=True) as con:
            row = con.execute(sql.encode()).fetchone()
            return row[0] if row else None


def _as_postgres(*args: str | Path) -> list[str]:
    # initdb and postgres refuse to run as root: the tests do, so they hand over.
    command = [str(a) for a in args]
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(*args: str | Path) -> None:
    done = subprocess.run(_as_postgres(*args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr or done.stdout}"


def _start(data: Path, port: int, sockets: Path, *options: str) -> None:
    settings = " ".join(
        [f"-p {port}", f"-k {sockets}", "-c listen_addresses=127.0.0.1", "-c fsync=off",
         "-c shared_buffers=16MB", "-c max_connections=60", *options]
    )  # fmt: skip
    _run(PG_BIN / "pg_ctl", "-D", data, "-l", data.parent / f"{data.name}.log", "-w",
         "-t", "30", "-o", settings, "start")  # fmt: skip


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A primary and a streaming replica of it, each its own cluster; stopped at the end."""
    for tool in ("initdb", "pg_ctl", "pg_basebackup"):
        if not (PG_BIN / tool).exists():
            pytest.fail(f"PostgreSQL's {tool} is not in {PG_BIN}: set TRAILKEEPER_TEST_PG_BIN")
    # Not under pytest's tmp_path: the postgres user can't enter root's 0700 directory.
    root = Path(tempfile.mkdtemp(prefix="tk-replica-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary, replica = root / "primary", root / "replica"
    ports = free_port(), free_port()
    started: list[Path] = []
    try:
        _run(PG_BIN / "initdb", "-D", primary, "-U", "postgres", "-A", "trust", "--no-sync")
        _start(primary, ports[0], root)
        started.append(primary)
        primary_url = f"postgresql://postgres@127.0.0.1:{ports[0]}/postgres"
        with psycopg.connect(primary_url, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {SCHEMA}".encode())
        source = ("-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres")
        _run(PG_BIN / "pg_basebackup", *source, "-D", replica, "-R", "-c", "fast", "--no-sync")
        _start(replica, ports[1], root, f"-c recovery_min_apply_delay={APPLY_DELAY_MS}ms")
        started.append(replica)
        options = f"?options=-csearch_path%3D{SCHEMA}"
        replica_url = f"postgresql://postgres@127.0.0.1:{ports[1]}/postgres"
        pair = Pair(primary_url + options, replica_url + options)
        assert pair.on_replica("SELECT pg_is_in_recovery()") is True
        yield pair
    finally:
        for data in reversed(started):
            subprocess.run(_as_postgres(PG_BIN / "pg_ctl", "-D", data, "-m", "immediate",
                                        "-w", "stop"), capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Listener:
    """A stream's messages as a client receives them, read by a thread of its own."""

    url: str
    key: str
    params: dict[str, str]
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    opened: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()
        assert self.opened.wait(10), "the stream did not open"

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            url = f"{self.url}/v1/events/stream"
            timeout = httpx.Timeout(10, read=None)
            with httpx.stream(
                "GET", url, params=self.params, headers=headers, timeout=timeout
            ) as response:
                seq = None
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        self.opened.set()
                    elif line.startswith("id: "):
                        seq = int(line[4:])
                    elif line.startswith("data: ") and seq is not None:
                        self.received.append({"seq": seq, **json.loads(line[6:])})
                        seq = None
        except httpx.HTTPError as exc:  # the server stopping ends the stream
            self.errors.append(exc)

    def ids(self, operation: str = "model.create") -> list[str]:
        return [e["id"] for e in self.received if e["operation"] == operation]

    def wait_for(self, count: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while len(self.ids()) < count and time.monotonic() < deadline:
            time.sleep(0.1)


def _batch(actor: str, n: int) -> list[dict[str, Any]]:
    return [{"operation": "model.create", "actor": {"id": actor, "type": "user"},
             "targets": [{"type": "model", "id": f"m{i}"}]} for i in range(n)]  # fmt: skip


def _in_order_once(listener: Listener) -> None:
    seqs = [e["seq"] for e in listener.received]
    assert seqs == sorted(set(seqs)), "an event was repeated or delivered out of seq order"


def test_a_stream_waits_for_a_paused_replica_and_then_delivers_every_event(pair: Pair) -> None:
    with serving(pair.primary, "--read-db", pair.replica) as server:
        reader = Listener(server.url, server.key("--org", "acme", "--scope", "events:read"), {})
        writer = new_key(pair.primary, "--org", "acme", "--scope", "events:write")
        reader.start()
        pair.on_replica("SELECT pg_wal_replay_pause()")
        try:
            while pair.on_replica("SELECT pg_get_wal_replay_pause_state()") != "paused":
                time.sleep(0.05)
            with Client(server.url, writer) as producer:
                stored = producer.record_many(_batch("alice", 10))["events"]
            time.sleep(1.5)  # six polls of a replica that has none of them
            assert reader.ids() == []
        finally:
            pair.on_replica("SELECT pg_wal_replay_resume()")
        reader.wait_for(10, 15)
        assert reader.ids() == [e["id"] for e in stored]
    _in_order_once(reader)


def test_streams_deliver_every_event_once_while_producers_outrun_the_replica(
    pair: Pair,
) -> None:
    producers, batches, size = 3, 25, 8
    with serving(pair.primary, "--read-db", pair.replica) as server:
        key = server.key("--org", "globex", "--scope", "events:read")
        everything = Listener(server.url, key, {})
        one_actor = Listener(server.url, key, {"actor": "p1"})  # most events do not match
        everything.start()
        one_actor.start()
        writer = new_key(pair.primary, "--org", "globex", "--scope", "events:write")
        sent: dict[str, list[str]] = {}

        def produce(actor: str) -> None:
            with Client(server.url, writer) as producer:
                for _ in range(batches):
                    result = producer.record_many(_batch(actor, size))
                    sent.setdefault(actor, []).extend(e["id"] for e in result["events"])
                    time.sleep(0.02)

        exports: list[list[int]] = []

        def export() -> None:  # a scan in seq order, batch after batch, on the replica
            with Client(server.url, key) as client:
                while any(t.is_alive() for t in threads):
                    lines = b"".join(client.events.export()).splitlines()
                    exports.append([json.loads(line)["seq"] for line in lines])

        threads = [threading.Thread(target=produce, args=(f"p{i}",)) for i in range(producers)]
        for thread in threads:
            thread.start()
        exporter = threading.Thread(target=export)
        exporter.start()
        for thread in [*threads, exporter]:
            thread.join(60)
        total = producers * batches * size
        assert sum(len(ids) for ids in sent.values()) == total
        everything.wait_for(total, 20)
        one_actor.wait_for(batches * size, 10)
        time.sleep(0.5)  # a repeat would come by now
    assert sorted(everything.ids()) == sorted(i for ids in sent.values() for i in ids)
    assert one_actor.ids() == sent["p1"]
    _in_order_once(everything)
    _in_order_once(one_actor)
    assert exports, "no export ran while the producers did"
    for seqs in exports:  # whatever the replica has replayed, without a hole
        assert seqs == list(range(len(seqs)))
