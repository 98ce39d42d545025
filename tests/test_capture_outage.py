"""Never lose an event: a server outage, and a process that exits with a full spool."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from _live_server import LiveServer
from trailkeeper.capture import Recorder


@pytest.mark.slow
def test_events_recorded_during_an_outage_all_arrive_exactly_once(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "audit.db")
    key = server.key("acme")
    recorder = Recorder(
        server.url, key, spool=tmp_path / "spool.db", max_backoff=0.2, flush_interval=0.05
    )
    try:
        ids = [
            recorder.record("model.update", actor=f"user-{i % 7}",
                            targets=[{"type": "model", "id": f"m{i}"}])
            for i in range(10_000)
        ]  # fmt: skip
        # The server is down: nothing can be delivered, everything ends up in the spool.
        assert not recorder.flush(1.0)
        during = recorder.counters()
        assert during.sent == 0
        assert during.retried > 0
        assert during.failed == 0
        assert during.pending == 10_000
        server.start()
        try:
            assert recorder.flush(60), recorder.counters()
            after = recorder.counters()
        finally:
            server.stop()
    finally:
        recorder.close(timeout=1)
    stored = server.events("acme")
    assert len(stored) == 10_000
    assert sorted(e.event.id for e in stored) == sorted(ids)
    assert (after.queued, after.sent, after.failed, after.pending) == (10_000, 10_000, 0, 0)
    assert after.spooled == 10_000  # every one waited in the spool, none was lost from memory


_PRODUCER = """
import sys
from trailkeeper.capture import Recorder
recorder = Recorder(sys.argv[1], sys.argv[2], spool=sys.argv[3], exit_timeout=0.5)
ids = [recorder.record("deployment.create", actor="deploy-svc") for _ in range(500)]
print("\\n".join(ids))
"""

_DRAINER = """
import sys
from trailkeeper.capture import Recorder
recorder = Recorder(sys.argv[1], sys.argv[2], spool=sys.argv[3])
print(recorder.flush(30), recorder.counters().retried)
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_a_spool_left_by_an_exited_process_is_delivered_by_the_next(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "audit.db")
    key = server.key("acme")
    spool = str(tmp_path / "spool.db")
    first = _python(_PRODUCER, server.url, key, spool)  # the server is down
    assert first.returncode == 0, first.stderr
    ids = first.stdout.split()
    assert len(ids) == 500
    assert "500 event(s) wait in the spool" in first.stderr
    with sqlite3.connect(spool) as db:
        assert db.execute("SELECT count(*) FROM spool").fetchone()[0] == 500
    server.start()
    try:
        started = time.monotonic()
        second = _python(_DRAINER, server.url, key, spool)
        assert second.returncode == 0, second.stderr
        assert second.stdout.split() == ["True", "500"]
        assert time.monotonic() - started < 30
    finally:
        server.stop()
    assert sorted(e.event.id for e in server.events("acme")) == sorted(ids)
    with sqlite3.connect(spool) as db:
        assert db.execute("SELECT count(*) FROM spool").fetchone()[0] == 0
