"""GET /v1/events/stream: server-sent events in seq order, over a real server on a real port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ASGIClient, LiveServer
from trailkeeper.client import Client
from trailkeeper.server import create_app
from trailkeeper.service import AuditService


def messages(response: httpx.Response) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(id, event)`` for each message of an open event stream."""
    event_id, data = None, []
    for line in response.iter_lines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            data.append(line[6:])
        elif not line and data:
            assert event_id is not None
            yield event_id, json.loads("\n".join(data))
            event_id, data = None, []


def take(response: httpx.Response, n: int) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for message in messages(response):
        found.append(message)
        if len(found) == n:
            break
    return found


@pytest.fixture
def keys(live_server: LiveServer) -> dict[str, str]:
    return {
        "write": live_server.key("--org", "acme", "--scope", "events:write"),
        "read": live_server.key("--org", "acme", "--scope", "events:read"),
        "main-only": live_server.key("--org", "acme", "--scope", "events:read", "--app", "main"),
    }


def stream(server: LiveServer, key: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}", **params.pop("headers", {})}
    return httpx.stream(
        "GET", f"{server.url}/v1/events/stream", params=params, headers=headers,
        timeout=httpx.Timeout(10.0),
    )  # fmt: skip


def record(server: LiveServer, key: str, events: list[dict[str, Any]]) -> None:
    with Client(server.url, key) as producer:
        for start in range(0, len(events), 1000):
            producer.record_many(events[start : start + 1000])


def test_new_events_arrive_in_seq_order_with_their_seq_as_id(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    with stream(live_server, keys["read"], operation="model.*") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        # Written while the stream waits; one arrives late with an old time.
        threading.Timer(0.5, record, (live_server, keys["write"], [
            {"actor": "ana", "operation": "model.create"},
            {"actor": "raj", "operation": "team.create"},
            {"actor": "zoe", "operation": "model.delete", "time": "2021-03-01T00:00:00Z"},
        ])).start()  # fmt: skip
        got = take(response, 2)
    assert [(e["actor"]["id"], e["operation"]) for _, e in got] == [
        ("ana", "model.create"),
        ("zoe", "model.delete"),
    ]
    assert [seq for seq, _ in got] == [e["seq"] for _, e in got]
    assert got[0][0] < got[1][0]


def test_last_event_id_resumes_without_skipping_or_repeating(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    record(live_server, keys["write"], [{"actor": f"u{i}", "operation": "model.create"}
                                        for i in range(10)])  # fmt: skip
    with stream(live_server, keys["read"], backlog=100, operation="model.create") as response:
        first = take(response, 4)
    record(live_server, keys["write"], [{"actor": f"v{i}", "operation": "model.create"}
                                        for i in range(1200)])  # fmt: skip
    resumed = {"Last-Event-ID": str(first[-1][0])}
    with stream(live_server, keys["read"], operation="model.create", headers=resumed) as response:
        rest = take(response, 6 + 1200)  # more than one batch of the server's reads
    actors = [e["actor"]["id"] for _, e in first + rest]
    assert actors == [f"u{i}" for i in range(10)] + [f"v{i}" for i in range(1200)]


def test_an_app_limited_key_streams_only_its_apps(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    record(live_server, keys["write"], [
        {"actor": "a", "operation": "model.create", "app_id": "main"},
        {"actor": "b", "operation": "model.create", "app_id": "secret"},
        {"actor": "c", "operation": "model.create", "app_id": "main"},
    ])  # fmt: skip
    with stream(live_server, keys["main-only"], after=-1) as response:
        got = take(response, 2)
    assert [e["actor"]["id"] for _, e in got] == ["a", "c"]


def test_opening_a_stream_is_recorded_as_a_read(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    record(live_server, keys["write"], [{"actor": "a", "operation": "model.create"}])
    with stream(live_server, keys["read"], after=-1, q="actor:a") as response:
        take(response, 1)
    with stream(live_server, keys["read"], after=-1, operation="audit_log.stream") as response:
        (_, read), = take(response, 1)  # fmt: skip
    assert read["metadata"]["request"] == {
        "q": "actor:a",
        "after": -1,
        "backlog": 0,
        "resumed": False,
    }
    assert read["metadata"]["face"] == "api"
    assert read["source_ip"] == "127.0.0.1"
    assert read["user_agent"].startswith("python-httpx/")


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("after=abc", "invalid_query", "after"),
        ("after=-2", "invalid_query", "after"),
        ("backlog=5000", "invalid_query", "backlog"),
        ("q=status:maybe", "invalid_query", None),
        ("source_ip=10.0.0.0/33", "invalid_query", None),
        ("bogus=1", "invalid_query", None),
    ],
)
def test_bad_stream_parameters_are_refused_before_streaming(
    service: AuditService, query: str, code: str, field: str | None
) -> None:
    _, secret = service.keys.create("acme", ["events:read"])
    client = ASGIClient(create_app(service), headers={"Authorization": f"Bearer {secret}"})
    try:
        response = client.get(f"/v1/events/stream?{query}")
    finally:
        client.close()
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if field:
        assert problem["errors"][0]["field"] == field


def test_a_stream_needs_a_read_key(service: AuditService) -> None:
    _, writer = service.keys.create("acme", ["events:write"])
    client = ASGIClient(create_app(service))
    try:
        assert client.get("/v1/events/stream").json()["code"] == "missing_key"
        refused = client.get("/v1/events/stream", headers={"Authorization": f"Bearer {writer}"})
    finally:
        client.close()
    assert refused.status_code == 403


def test_the_async_client_follows_the_stream_too(
    live_server: LiveServer, keys: dict[str, str]
) -> None:
    import asyncio

    from trailkeeper.client import AsyncClient

    record(live_server, keys["write"], [{"actor": f"a{i}", "operation": "model.create",
                                         "app_id": "main"} for i in range(3)])  # fmt: skip

    async def follow() -> tuple[list[str], list[dict[str, Any]], int]:
        async with AsyncClient(live_server.url, keys["read"]) as client:
            got = []
            async for event in client.events.tail(backlog=100, operation="model.create"):
                got.append(event["actor"]["id"])
                if len(got) == 3:
                    break
            apps = await client.apps()
            buckets = await client.activity("day", operation="model.create")
        return got, apps, sum(b["events"] for b in buckets)

    got, apps, counted = asyncio.run(follow())
    assert got == ["a0", "a1", "a2"]
    assert [(a["app_id"], a["events"]) for a in apps] == [("main", 3)]
    assert counted == 3
