"""Hostile clients, class 3: one org's reads cannot take every reader thread (issue #13).

Each test holds reads on real threads with events it sets itself, so what it shows (who may
run while an org holds its share) does not depend on timing. bench/fairness.py measures
what that buys: another org's search latency while one org hammers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from trailkeeper.server import create_app
from trailkeeper.server._app import READERS, READERS_PER_ORG
from trailkeeper.server._fair import FairReaders
from trailkeeper.service import AuditService

#: A liveness guard only: every wait below ends as soon as what it waits for happens.
GUARD = 30.0


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD):
        while not condition():
            await asyncio.sleep(0.001)


class Held:
    """Reads that block their reader thread until released."""

    def __init__(self, readers: FairReaders) -> None:
        self.readers = readers
        self.gate = threading.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    def start(self, org_id: str, count: int) -> None:
        for _ in range(count):
            self.tasks.append(asyncio.create_task(self.readers.run(org_id, self.gate.wait)))

    async def release(self) -> None:
        self.gate.set()
        await asyncio.gather(*self.tasks)


def test_the_server_leaves_one_reader_thread_to_other_orgs() -> None:
    assert (READERS, READERS_PER_ORG) == (4, 3)


def test_an_org_holding_its_share_leaves_a_thread_for_another_org() -> None:
    async def scenario() -> None:
        readers = FairReaders(4, 3)
        held = Held(readers)
        held.start("big", 6)
        await until(lambda: readers.running("big") == 3 and readers.waiting("big") == 3)
        # The fourth thread is free and stays free for other orgs: "big" waits, "small" runs.
        assert await asyncio.wait_for(readers.run("small", lambda: "done"), GUARD) == "done"
        assert await asyncio.wait_for(readers.run("other", lambda: "too"), GUARD) == "too"
        assert (readers.running("big"), readers.waiting("big")) == (3, 3)
        await held.release()
        assert (readers.running("big"), readers.waiting("big")) == (0, 0)
        readers.shutdown()

    asyncio.run(scenario())


def test_waiting_orgs_take_freed_threads_in_turn() -> None:
    async def scenario() -> None:
        readers = FairReaders(1, 1)
        order: list[str] = []
        held = Held(readers)
        held.start("first", 1)
        await until(lambda: readers.running("first") == 1)
        calls = [
            asyncio.create_task(readers.run(org, order.append, f"{org}{n}"))
            for org, n in [("big", 1), ("big", 2), ("big", 3), ("small", 1), ("other", 1)]
        ]
        await until(lambda: readers.waiting("big") == 3 and readers.waiting("other") == 1)
        await held.release()
        await asyncio.gather(*calls)
        # One read per org in turn, not all of the org that queued first and most.
        assert order == ["big1", "small1", "other1", "big2", "big3"]
        readers.shutdown()

    asyncio.run(scenario())


def test_a_caller_that_goes_away_frees_its_place_but_not_a_running_thread() -> None:
    async def scenario() -> None:
        readers = FairReaders(2, 1)
        held = Held(readers)
        held.start("big", 1)
        await until(lambda: readers.running("big") == 1)
        queued = asyncio.create_task(readers.run("big", lambda: "never"))
        await until(lambda: readers.waiting("big") == 1)
        queued.cancel()
        await until(lambda: readers.waiting("big") == 0)
        # The running read was abandoned by its caller, but its thread is still reading.
        held.tasks[0].cancel()
        await asyncio.sleep(0)
        assert readers.running("big") == 1
        assert await asyncio.wait_for(readers.run("small", lambda: 1), GUARD) == 1
        held.gate.set()
        await until(lambda: readers.running("big") == 0)
        assert await asyncio.wait_for(readers.run("big", lambda: 2), GUARD) == 2
        readers.shutdown()

    asyncio.run(scenario())


# -- every face takes its turn as its key's org -------------------------------------------------

EVENT = {
    "time": "2026-11-26T11:00:00Z",
    "actor": {"id": "alice", "type": "user"},
    "operation": "model.create",
}


@pytest.fixture
def keys(service: AuditService) -> dict[str, str]:
    for org in ("acme", "globex"):
        service.ingest(org, [EVENT])
    return {org: service.keys.create(org, ["events:read"])[1] for org in ("acme", "globex")}


def _request(face: str, secret: str) -> tuple[str, str, dict[str, str], bytes]:
    if face == "clarifai":
        path = "/v2/users/me/audit_log/searches"
        return "POST", path, {"authorization": f"Key {secret}"}, b"{}"
    path = {
        "search": "/v1/events",
        "get": "/v1/events/0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f",
        "activity": "/v1/stats/activity",
        "apps": "/v1/apps",
        "stream": "/v1/events/stream",
    }[face]
    return "GET", path, {"authorization": f"Bearer {secret}"}, b""


async def _first_bytes(app: Any, request: tuple[str, str, dict[str, str], bytes]) -> int:
    """The status of a request, once its first body bytes are sent; then the client leaves.

    Driven as an ASGI server would (httpx's in-process transport waits for the whole body,
    and a stream's never ends).
    """
    method, path, headers, body = request
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("trailkeeper.test", 80),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-type", b"application/json"), (b"host", b"trailkeeper.test")],
    }  # fmt: skip
    sent = asyncio.Event()
    status = 0
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body, "more_body": False}
        await sent.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and (
            message.get("body") or not message.get("more_body")
        ):
            sent.set()

    call = asyncio.create_task(app(scope, receive, send))
    await sent.wait()
    async with asyncio.timeout(GUARD):
        await call  # a stream ends once it sees the client gone
    return status


@pytest.mark.parametrize("face", ["search", "get", "activity", "apps", "stream", "clarifai"])
def test_every_read_face_waits_its_orgs_turn_while_other_orgs_read(
    service: AuditService, keys: dict[str, str], face: str
) -> None:
    if face == "clarifai":
        pytest.importorskip("clarifai_grpc")
    app = create_app(service)
    readers: FairReaders = app.state.readers

    async def scenario() -> None:
        held = Held(readers)
        held.start("acme", READERS_PER_ORG)
        await until(lambda: readers.running("acme") == READERS_PER_ORG)
        mine = asyncio.create_task(_first_bytes(app, _request(face, keys["acme"])))
        await until(lambda: readers.waiting("acme") == 1)
        other = await asyncio.wait_for(_first_bytes(app, _request(face, keys["globex"])), GUARD)
        assert other in (200, 404)
        assert not mine.done()  # acme's read still waits for one of acme's threads
        await held.release()
        assert await asyncio.wait_for(mine, GUARD) in (200, 404)
        await until(lambda: readers.running("acme") == 0)

    asyncio.run(scenario())
