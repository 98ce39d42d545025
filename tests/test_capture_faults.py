"""The capture SDK under faults: unencodable events, shared spools, hung transports, forks,
callers that mutate what they recorded, and record() racing close()."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from _live_server import LiveServer
from trailkeeper.capture import Recorder, Spool, Transport, TransportError


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("faults") / "audit.db")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def org(request: pytest.FixtureRequest) -> str:
    name = request.node.name.replace("_", "-")[:40]
    return f"{name}-{hashlib.sha256(request.node.name.encode()).hexdigest()[:8]}"


def _spooled(path: Path) -> tuple[int, list[tuple[str, str]]]:
    spool = Spool(path)
    try:
        return spool.refresh(), spool.rejected_events()
    finally:
        spool.close()


@pytest.mark.parametrize("bad", [{1: "x"}, {"n": 2**70}, {"s": "\ud800"}])
def test_an_unencodable_event_is_rejected_alone_and_its_batch_is_delivered(
    server: LiveServer, org: str, tmp_path: Path, bad: dict[Any, Any]
) -> None:
    recorder = Recorder(server.url, server.key(org), spool=tmp_path / "s.db")
    first = recorder.record("model.create", actor="ana")
    broken = recorder.record("model.update", actor="ana", metadata=bad)
    last = recorder.record("model.delete", actor="ana")
    assert recorder.flush(10)
    recorder.close()
    counters = recorder.counters()
    assert (counters.queued, counters.sent, counters.failed) == (3, 2, 1)
    assert sorted(e.event.id for e in server.events(org)) == sorted([first, last])
    rows, rejected = _spooled(tmp_path / "s.db")
    assert rows == 0
    assert [event_id for event_id, _ in rejected] == [broken]


def test_an_unencodable_event_in_the_overflow_path_does_not_reach_the_caller(
    server: LiveServer, org: str, tmp_path: Path
) -> None:
    recorder = Recorder(server.url, server.key(org), spool=tmp_path / "s.db", max_queue=0)
    good = recorder.record("model.create", actor="ana")  # max_queue=0: spooled by the caller
    broken = recorder.record("model.update", actor="ana", metadata={1: "x"})
    assert recorder.flush(10)
    recorder.close()
    assert [e.event.id for e in server.events(org)] == [good]
    counters = recorder.counters()
    assert (counters.queued, counters.sent, counters.failed) == (2, 1, 1)
    assert [event_id for event_id, _ in _spooled(tmp_path / "s.db")[1]] == [broken]


def test_recorders_sharing_a_spool_see_each_others_deliveries(
    server: LiveServer, org: str, tmp_path: Path
) -> None:
    key = server.key(org)
    spool = tmp_path / "shared.db"
    down = LiveServer(tmp_path / "down.db")  # never started: connection refused
    first = Recorder(down.url, key, spool=spool, max_backoff=0.2, flush_interval=0.05)
    try:
        ids = [first.record("model.create", actor="ana") for _ in range(10)]
        assert not first.flush(0.5)
        assert first.counters().pending == 10
        assert _until(lambda: first.counters().spooled == 10)  # all in the file, none in hand
        second = Recorder(server.url, key, spool=spool)
        assert second.flush(10)  # delivers the first recorder's spooled events
        second.close()
        assert sorted(e.event.id for e in server.events(org)) == sorted(ids)
        # The rows are gone from the file: the first recorder must notice, not wait for them.
        assert first.flush(10), first.counters()
        assert first.counters().pending == 0
    finally:
        first.close(timeout=1)


class _Hanging(Transport):
    """A log that accepts the connection and never answers (until released)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, org_id: str | None, events: Sequence[bytes]) -> list[tuple[int, str]]:
        self.entered.set()
        self.release.wait(60)
        raise TransportError("no answer")

    def close(self) -> None:
        pass


def test_close_honours_its_timeout_and_spools_the_batch_being_sent(tmp_path: Path) -> None:
    transport = _Hanging()
    recorder = Recorder(transport=transport, spool=tmp_path / "s.db", flush_interval=0.01)
    ids = {recorder.record("model.create", actor="ana") for _ in range(5)}
    assert transport.entered.wait(10)
    assert recorder.counters().pending == 5  # the batch being sent counts, each event of it
    started = time.monotonic()
    recorder.close(timeout=1)
    took = time.monotonic() - started
    transport.release.set()
    assert took < 10  # was max(timeout, 15) s
    spool = Spool(tmp_path / "s.db")
    try:
        assert {event_id for _, (_, event_id, _) in spool.take(100)} == ids
    finally:
        spool.close()


def test_record_copies_what_it_was_given(server: LiveServer, org: str, tmp_path: Path) -> None:
    recorder = Recorder(server.url, server.key(org), spool=tmp_path / "s.db", flush_interval=5)
    actor: dict[str, Any] = {"id": "ana", "type": "user"}
    targets = [{"type": "model", "id": "m1"}]
    details = ["first"]
    changes: dict[str, Any] = {"name": {"from": "a", "to": "b"}}
    metadata: dict[str, Any] = {"region": "eu"}
    recorder.record(
        "model.update", actor=actor, targets=targets, details=details, changes=changes,
        metadata=metadata,
    )  # fmt: skip
    targets.append({"type": "model", "id": "m2"})
    details.append("second")
    changes["size"] = {"from": 1, "to": 2}
    metadata["region"] = "us"
    actor["id"] = "bob"
    assert recorder.flush(10)
    recorder.close()
    [stored] = [e.event.to_dict() for e in server.events(org)]
    assert [t["id"] for t in stored["targets"]] == ["m1"]
    assert stored["details"] == ["first"]
    assert list(stored["changes"]) == ["name"]
    assert stored["metadata"] == {"region": "eu"}
    assert stored["actor"]["id"] == "ana"


def test_a_forked_child_delivers_through_a_recorder_made_in_the_parent(
    server: LiveServer, org: str, tmp_path: Path
) -> None:
    recorder = Recorder(server.url, server.key(org), spool=tmp_path / "s.db")
    parent = recorder.record("model.create", actor="parent")
    assert recorder.flush(10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            child = recorder.record("model.update", actor="child")
            delivered = recorder.flush(10)
            os.write(write, f"{child} {delivered} {recorder.counters().sent}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child, delivered, sent = answer.split()
    assert (delivered, sent) == ("True", "1")
    recorder.close()
    assert sorted(e.event.id for e in server.events(org)) == sorted([parent, child])


class _Refusing(Transport):
    def send(self, org_id: str | None, events: Sequence[bytes]) -> list[tuple[int, str]]:
        raise TransportError("down")

    def close(self) -> None:
        pass


def test_events_left_in_memory_at_close_are_counted_once_as_failed() -> None:
    transport = _Hanging()
    recorder = Recorder(transport=transport, spool=None, flush_interval=0.01)
    recorder.record("model.create", actor="ana")
    assert transport.entered.wait(10)  # the first is being sent; three more wait behind it
    for _ in range(3):
        recorder.record("model.create", actor="ana")
    recorder.close(timeout=0.5)
    transport.release.set()
    assert recorder.counters().failed == 4  # no spool: lost, and each counted once


def test_flush_waits_for_events_a_caller_is_spooling(tmp_path: Path) -> None:
    recorder = Recorder(transport=_Refusing(), spool=tmp_path / "s.db", max_queue=0)
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the spool's write lock
    caller = threading.Thread(target=recorder.record, args=("model.create",))
    caller.start()  # max_queue=0: the caller spools the event itself, and waits for the lock
    try:
        deadline = time.monotonic() + 10
        while recorder.counters().queued == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.counters().pending == 1
        assert not recorder.flush(0.2)  # the event is neither queued nor spooled yet
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    caller.join(20)
    assert recorder.counters().pending == 1  # now in the spool
    recorder.close(timeout=0.2)


def test_a_record_racing_close_is_refused_not_lost(tmp_path: Path) -> None:
    inside, go_on = threading.Event(), threading.Event()

    def clock() -> int:  # record() reads the clock after it checked the recorder is open
        if threading.current_thread().name == "racer":
            inside.set()
            go_on.wait(10)
        return time.time_ns()

    recorder = Recorder(transport=_Refusing(), spool=tmp_path / "s.db", clock=clock)
    outcome: list[str | RuntimeError] = []

    def race() -> None:
        try:
            outcome.append(recorder.record("model.create", actor="ana"))
        except RuntimeError as exc:
            outcome.append(exc)

    racer = threading.Thread(target=race, name="racer")
    racer.start()
    assert inside.wait(10)
    recorder.close(timeout=0.5)  # drains the queue for the last time while record() runs
    go_on.set()
    racer.join(10)
    [result] = outcome
    assert isinstance(result, RuntimeError), f"{result} was accepted after close and lost"
    assert "closed" in str(result)


def _until(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.slow
def test_events_the_spool_cannot_take_wait_in_memory_and_are_spooled_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(
        transport=_Refusing(), spool=tmp_path / "s.db", flush_interval=0.01, max_backoff=0.2
    )
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # locked past the spool's 10 s busy timeout
    try:
        ids = {recorder.record("model.create", actor="ana") for _ in range(3)}
        assert _until(lambda: "could not be spooled" in caplog.text)
        counters = recorder.counters()
        assert (counters.failed, counters.pending) == (0, 3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _until(lambda: recorder.counters().spooled == 3), recorder.counters()
    recorder.close(timeout=0.5)
    assert recorder.counters().failed == 0
    spool = Spool(tmp_path / "s.db")
    try:
        assert {event_id for _, (_, event_id, _) in spool.take(100)} == ids
    finally:
        spool.close()
