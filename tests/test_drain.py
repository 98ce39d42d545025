"""Readiness, and stopping: a draining server finishes its work and says so to the rest."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ASGIClient, new_key, serving, store_url
from trailkeeper.server import create_app
from trailkeeper.service import AuditService
from trailkeeper.store import open_store

MakeEvent = Callable[..., dict[str, Any]]


@pytest.fixture
def api(backend: str, tmp_path: Path) -> Iterator[tuple[Any, ASGIClient, str]]:
    service = AuditService(open_store(store_url(backend, tmp_path)))
    _, secret = service.keys.create("acme", ["events:write", "events:read"])
    app = create_app(service)
    client = ASGIClient(app, headers={"Authorization": f"Bearer {secret}"})
    yield app, client, secret
    client.close()
    service.close()


def test_readyz_is_ready_when_the_store_answers(api: tuple[Any, ASGIClient, str]) -> None:
    _, client, _ = api
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_a_draining_server_refuses_new_work_with_503_and_retry_after(
    api: tuple[Any, ASGIClient, str], make_event: MakeEvent
) -> None:
    app, client, _ = api
    app.state.drain.start()
    assert app.state.draining.is_set()
    for response in (
        client.post("/v1/events", json={"events": [make_event()]}),
        client.get("/v1/events"),
        client.get("/readyz"),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "1"
        assert response.json()["code"] == "shutting_down"
    # Still alive (liveness), while it finishes what it was doing.
    assert client.get("/healthz").status_code == 200


def _event() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "time": datetime.now(UTC).isoformat(),
        "actor": {"id": "alice", "type": "user"},
        "operation": "model.create",
        "targets": [{"type": "model", "id": "m"}],
    }


@pytest.mark.slow
def test_sigterm_finishes_ingests_in_flight_and_ends_streams_with_a_last_message(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'drain.db'}"
    writer = new_key(db, "--org", "acme", "--scope", "events:write")
    reader = new_key(db, "--org", "acme", "--scope", "events:read")
    statuses: list[int] = []
    problems: list[dict[str, Any]] = []
    stream_lines: list[str] = []
    stop = threading.Event()
    with serving(db, env={"TRAILKEEPER_DRAIN_SECONDS": "20"}) as server:

        def follow() -> None:
            headers = {"Authorization": f"Bearer {reader}"}
            with httpx.stream(
                "GET", f"{server.url}/v1/events/stream", headers=headers, timeout=60
            ) as response:
                for line in response.iter_lines():
                    stream_lines.append(line)

        def produce() -> None:
            headers = {"Authorization": f"Bearer {writer}"}
            while not stop.is_set():
                try:
                    response = httpx.post(
                        f"{server.url}/v1/events",
                        json={"events": [_event() for _ in range(200)]},
                        headers=headers,
                        timeout=60,
                    )
                except httpx.TransportError:
                    continue  # refused: the server stopped listening
                statuses.append(response.status_code)
                if response.status_code != 202:
                    problems.append({"status": response.status_code, "body": response.text})

        follower = threading.Thread(target=follow)
        follower.start()
        producers = [threading.Thread(target=produce) for _ in range(16)]
        for thread in producers:
            thread.start()
        time.sleep(2)
        server.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        server.process.wait(timeout=40)
        stopped_in = time.monotonic() - started
        stop.set()
        for thread in producers:
            thread.join(timeout=60)
        follower.join(timeout=30)
    assert 202 in statuses
    # Nothing was cut with a 500: what the server took on, it finished or refused clearly.
    for problem in problems:
        assert problem["status"] == 503, problem
        assert '"code":"shutting_down"' in problem["body"], problem
    # The open stream did not hold the shutdown for the drain period, and was told why.
    assert stopped_in < 15
    assert "event: error" in stream_lines, stream_lines[-5:]
    last_data = stream_lines[stream_lines.index("event: error") + 1]
    assert "shutting_down" in last_data
    # uvicorn ends by the signal it was stopped with, after a clean shutdown.
    assert server.process.returncode in (0, -signal.SIGTERM)
