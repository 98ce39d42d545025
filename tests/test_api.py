"""The HTTP API in-process (httpx over ASGI): contract, tenancy, scopes and bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from conftest import ASGIClient, FakeClock
from trailkeeper.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    EventPage,
    ValidationError,
)
from trailkeeper.server import create_app
from trailkeeper.service import AuditService

MakeEvent = Callable[..., dict[str, Any]]


@pytest.fixture
def app_service(service: AuditService) -> AuditService:
    return service


@pytest.fixture
def http(service: AuditService) -> Iterator[Callable[[str | None], ASGIClient]]:
    app = create_app(service)
    opened: list[ASGIClient] = []

    def make(secret: str | None) -> ASGIClient:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        client = ASGIClient(app, headers)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.fixture
def writer(service: AuditService) -> str:
    return service.keys.create("acme", ["events:write"], name="producer")[1]


@pytest.fixture
def reader(service: AuditService) -> str:
    return service.keys.create("acme", ["events:read"], name="analyst")[1]


def post(client: ASGIClient, events: list[dict[str, Any]]) -> Any:
    return client.post("/v1/events", json={"events": events})


def test_ingest_then_search_get_and_page(
    http: Callable[[str | None], ASGIClient], writer: str, reader: str, make_event: MakeEvent
) -> None:
    events = [make_event(actor={"id": f"user-{i}"}) for i in range(5)]
    response = post(http(writer), events)
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 5
    # seqs 0 and 1 record the creation of the two keys.
    assert [e["seq"] for e in body["events"]] == [2, 3, 4, 5, 6]
    read = http(reader)
    page = read.get("/v1/events", params={"operation": "model.create", "limit": 2}).json()
    assert len(page["events"]) == 2
    seen = [e["id"] for e in page["events"]]
    while page["next_cursor"]:
        page = read.get(
            "/v1/events",
            params={"operation": "model.create", "limit": 2, "cursor": page["next_cursor"]},
        ).json()
        seen += [e["id"] for e in page["events"]]
    assert sorted(seen) == sorted(e["id"] for e in body["events"])
    one = read.get(f"/v1/events/{seen[0]}")
    assert one.status_code == 200
    assert one.json()["id"] == seen[0]
    posted = read.post("/v1/events/search", json={"actor": ["user-1", "user-2"], "order": "asc"})
    assert [e["actor"]["id"] for e in posted.json()["events"]] == ["user-1", "user-2"]


def test_query_language_and_parameters_combine_with_and(
    http: Callable[[str | None], ASGIClient], writer: str, reader: str, make_event: MakeEvent
) -> None:
    post(
        http(writer),
        [
            make_event(operation="model.create", source_ip="10.1.1.1"),
            make_event(operation="model.delete", source_ip="10.1.1.2", success=False,
                       error={"code": "DENIED", "message": "permission denied"}),
            make_event(operation="workflow.create", source_ip="192.0.2.1"),
        ],
    )  # fmt: skip
    read = http(reader)
    found = read.get("/v1/events", params={"q": "operation:model.* ip:10.0.0.0/8"}).json()
    assert sorted(e["operation"] for e in found["events"]) == ["model.create", "model.delete"]
    narrowed = read.get(
        "/v1/events", params={"q": "operation:model.*", "operation": "model.delete"}
    ).json()
    assert [e["operation"] for e in narrowed["events"]] == ["model.delete"]
    text = read.get("/v1/events", params={"q": '"permission denied" status:failure'}).json()
    assert [e["operation"] for e in text["events"]] == ["model.delete"]


def test_a_key_never_reads_or_writes_another_org(
    service: AuditService, http: Callable[[str | None], ASGIClient], make_event: MakeEvent
) -> None:
    acme_write = service.keys.create("acme", ["events:write"])[1]
    globex_read = service.keys.create("globex", ["events:read"])[1]
    acme_event = post(http(acme_write), [make_event()]).json()["events"][0]
    other = http(globex_read)
    assert other.get(f"/v1/events/{acme_event['id']}").status_code == 404
    listed = other.get("/v1/events", params={"operation": "model.create"}).json()
    assert listed["events"] == []
    export = other.get("/v1/events/export", params={"format": "jsonl", "operation": "model.*"})
    assert export.text == ""
    refused = post(http(acme_write), [make_event(org_id="globex")])
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "org_id"
    assert not [e for e in service.scan("globex") if e.event.operation == "model.create"]


def test_a_cursor_from_another_org_reveals_nothing(
    service: AuditService, http: Callable[[str | None], ASGIClient], make_event: MakeEvent
) -> None:
    acme = service.keys.create("acme", ["admin"])[1]
    globex = service.keys.create("globex", ["admin"])[1]
    post(http(acme), [make_event() for _ in range(3)])
    cursor = http(acme).get("/v1/events", params={"limit": 1}).json()["next_cursor"]
    page = http(globex).get("/v1/events", params={"limit": 1, "cursor": cursor}).json()
    assert all(e["org_id"] == "globex" for e in page["events"])


def test_an_app_limited_key_sees_only_its_apps(
    service: AuditService,
    http: Callable[[str | None], ASGIClient],
    writer: str,
    make_event: MakeEvent,
) -> None:
    ids = [
        e["id"]
        for e in post(http(writer), [make_event(app_id="main"), make_event(app_id="other")]).json()[
            "events"
        ]
    ]
    limited = http(service.keys.create("acme", ["events:read"], apps=["main"])[1])
    found = limited.get("/v1/events", params={"q": "operation:model.create"}).json()["events"]
    assert [e["app_id"] for e in found] == ["main"]
    assert limited.get(f"/v1/events/{ids[1]}").status_code == 404
    assert [a["app_id"] for a in limited.get("/v1/apps").json()["apps"]] == ["main"]
    export = limited.get("/v1/events/export", params={"format": "jsonl"}).text.splitlines()
    assert {json.loads(line)["app_id"] for line in export} == {"main"}


def test_every_read_is_recorded_in_the_org(
    service: AuditService, http: Callable[[str | None], ASGIClient], reader: str
) -> None:
    read = http(reader)
    read.get("/v1/events", params={"q": "actor:ana"})
    read.get("/v1/events/export", params={"format": "csv"})
    service.store.close  # noqa: B018 - the records are committed by the writer thread
    trail: list[dict[str, Any]] = []
    for _ in range(100):
        trail = [
            e.to_dict() for e in service.scan("acme") if e.event.operation.startswith("audit_log.")
        ]
        if sum(1 for e in trail if e["operation"] in ("audit_log.search", "audit_log.export")) >= 2:
            break
        import time

        time.sleep(0.02)
    operations = [e["operation"] for e in trail]
    assert operations[0] == "audit_log.key.create"
    assert "audit_log.search" in operations
    assert "audit_log.export" in operations
    search = next(e for e in trail if e["operation"] == "audit_log.search")
    assert search["actor"]["type"] == "api_key"
    assert search["metadata"]["request"] == {"q": "actor:ana"}


def test_export_streams_every_match_in_seq_order(
    http: Callable[[str | None], ASGIClient], writer: str, reader: str, make_event: MakeEvent
) -> None:
    post(http(writer), [make_event(details=[f"line {i}"]) for i in range(450)])
    response = http(reader).get(
        "/v1/events/export", params={"format": "csv", "operation": "model.create"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 450
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == sorted(seqs)
    jsonl = http(reader).get(
        "/v1/events/export", params={"format": "jsonl", "q": "operation:model.create"}
    )
    assert len(jsonl.text.splitlines()) == 450


def test_catalogue_apps_activity_health_and_metrics(
    http: Callable[[str | None], ASGIClient], writer: str, reader: str, make_event: MakeEvent
) -> None:
    post(
        http(writer),
        [make_event(), make_event(success=False, error={"code": "X"}), make_event(app_id="b")],
    )
    read = http(reader)
    ops = read.get("/v1/operations").json()["operations"]
    model_create = next(o for o in ops if o["name"] == "model.create")
    assert model_create["clarifai"] == {
        "name": "MODEL_CREATE",
        "number": 300,
        "description": "Models created",
    }
    apps = {a["app_id"]: a["events"] for a in read.get("/v1/apps").json()["apps"]}
    assert apps == {"main": 2, "b": 1}
    window = {"since": "2026-11-26T00:00:00Z", "until": "2026-11-26T12:00:00Z"}
    params = {"bucket": "hour", "operation": "model.create", **window}
    buckets = read.get("/v1/stats/activity", params=params).json()["buckets"]
    assert buckets == [{"start": "2026-11-26T11:00:00+00:00", "events": 3, "failures": 1}]
    assert read.get("/healthz").json() == {"status": "ok"}
    metrics = read.get("/metrics").text
    assert "trailkeeper_ingested_events_total 3" in metrics
    assert 'trailkeeper_request_seconds_count{route="/v1/events"}' in metrics


def test_the_python_client_raises_typed_errors_with_problem_details(
    service: AuditService, reader: str, writer: str
) -> None:
    transport = httpx.ASGITransport(app=create_app(service))

    async def scenario() -> None:
        async with AsyncClient("http://t", writer, transport=transport) as tk:
            recorded = await tk.record("model.create", actor="ana", time="2026-11-26T11:00:00Z")
            assert recorded["duplicate"] is False
            with pytest.raises(ValidationError) as caught:
                await tk.record("model.creat", actor="ana")
            assert caught.value.status == 422
            assert caught.value.errors[0]["field"] == "operation"
        async with AsyncClient("http://t", reader, transport=transport) as tk:
            found = [e["actor"]["id"] async for e in tk.events.list(operation="model.create")]
            assert found == ["ana"]
            with pytest.raises(AuthenticationError) as denied:
                await tk.record("model.create", actor="ana")
            assert denied.value.code == "forbidden"

    asyncio.run(scenario())


def one(**fields: Any) -> dict[str, Any]:
    """A body of one event: a valid one, changed by ``fields``."""
    return {"json": {"events": [{"actor": "a", "operation": "model.create", **fields}]}}


def raw(body: bytes, media: str = "application/json") -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": media}}


HUGE = b'{"events": ["' + b"x" * (5 * 1024 * 1024) + b'"]}'
EVENTS, SEARCH, EXPORT = "POST /v1/events", "GET /v1/events", "GET /v1/events/export"
MANY = {"json": {"events": [{"actor": "a", "operation": "model.create"}] * 1001}}
UNKNOWN_ID = "GET /v1/events/0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f"

BAD_INPUTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    # (name, method and path, request, status, code)
    ("malformed JSON", EVENTS, raw(b"{nope"), 400, "malformed_json"),
    ("not an object", EVENTS, {"json": [1, 2]}, 422, "invalid_body"),
    ("events not a list", EVENTS, {"json": {"events": {"a": 1}}}, 422, "invalid_body"),
    ("no events", EVENTS, {"json": {"events": []}}, 422, "invalid_body"),
    ("unknown body field", EVENTS, {"json": {"events": [], "x": 1}}, 422, "invalid_body"),
    ("too many events", EVENTS, MANY, 422, "too_many_events"),
    ("oversize body", EVENTS, raw(HUGE), 413, "body_too_large"),
    ("wrong media type", EVENTS, raw(b"a=b", "text/plain"), 415, "unsupported_media_type"),
    ("unknown operation", EVENTS, one(operation="model.creat"), 422, "invalid_events"),
    ("bad IP", EVENTS, one(source_ip="1.2.3"), 422, "invalid_events"),
    ("bad time", EVENTS, one(time="yesterday"), 422, "invalid_events"),
    ("wrong types", EVENTS, one(actor=5, operation=["x"], success="yes"), 422, "invalid_events"),
    ("bad cursor", SEARCH, {"params": {"cursor": "garbage"}}, 400, "invalid_query"),
    ("bad query", SEARCH, {"params": {"q": "bogus:1"}}, 400, "invalid_query"),
    ("bad limit", SEARCH, {"params": {"limit": "0"}}, 400, "invalid_query"),
    ("bad CIDR", SEARCH, {"params": {"source_ip": "10.0.0.0/99"}}, 400, "invalid_query"),
    ("bad since", SEARCH, {"params": {"since": "last week"}}, 400, "invalid_query"),
    ("bad export format", EXPORT, {"params": {"format": "xml"}}, 400, "invalid_query"),
    ("unknown event id", UNKNOWN_ID, {}, 404, "not_found"),
]


@pytest.mark.parametrize(
    ("name", "route", "kwargs", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    service: AuditService,
    http: Callable[[str | None], ASGIClient],
    name: str,
    route: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    admin = http(service.keys.create("acme", ["admin"])[1])
    before = service.size("acme")
    method, path = route.split(" ")
    response = admin.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["detail"]
    if method == "POST":
        assert service.size("acme") == before


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing", 401, "missing_key"),
        ("garbage", 401, "invalid_key"),
        ("wrong secret", 401, "invalid_key"),
        ("expired", 401, "expired_key"),
        ("revoked", 401, "revoked_key"),
        ("read key writing", 403, "forbidden"),
    ],
)
def test_key_problems_are_refused_and_change_nothing(
    service: AuditService,
    clock: FakeClock,
    http: Callable[[str | None], ASGIClient],
    make_event: MakeEvent,
    case: str,
    status: int,
    code: str,
) -> None:
    key, secret = service.keys.create("acme", ["events:write"], expires_in=timedelta(hours=1))
    if case == "missing":
        secret = ""
    elif case == "garbage":
        secret = "not-a-key"  # noqa: S105 - a wrong key on purpose
    elif case == "wrong secret":
        secret = secret[:-4] + "AAAA"
    elif case == "expired":
        clock.advance(hours=2)
    elif case == "revoked":
        service.keys.revoke("acme", key.id)
    else:
        secret = service.keys.create("acme", ["events:read"])[1]
    before = service.size("acme")
    response = post(http(secret or None), [make_event()])
    assert response.status_code == status
    assert response.json()["code"] == code
    assert service.size("acme") == before


def test_a_search_with_a_huge_filter_is_answered_and_recorded_with_what_it_asked(
    service: AuditService, http: Callable[[str | None], ASGIClient], reader: str
) -> None:
    actors = [f"user-{i:05d}-" + "x" * 90 for i in range(100)]  # ~10 KB, 100 values: the cap
    padded_q = "permission" + " " * 4000 + "denied"
    padding = ["ci-bot"] * 2000  # the same value again and again
    body = {"actor": actors, "q": padded_q, "app": padding}
    response = http(reader).post("/v1/events/search", json=body)
    assert response.status_code == 200, response.text
    service.flush_reads()
    record = [e for e in service.scan("acme") if e.event.operation == "audit_log.search"][-1]
    request = record.event.metadata["request"]
    # Repeats and runs of blanks go; the text searched for and every filter value stay.
    assert request["q"] == "permission denied"
    assert request["actor"] == actors  # every distinct value: the API caps them at 100
    assert request["app"] == ["ci-bot"]
    assert "truncated" not in record.event.metadata


def test_the_python_client_pages_limits_and_raises_a_bad_query_at_the_call(
    service: AuditService, reader: str, writer: str
) -> None:
    transport = httpx.ASGITransport(app=create_app(service))
    sync_transport = _SyncOverAsync(transport)
    with Client("http://t", writer, transport=sync_transport) as tk:
        tk.record_many([{"operation": "model.create", "actor": f"u{i}"} for i in range(5)])
    with Client("http://t", reader, transport=sync_transport) as tk:
        first = tk.events.page(limit=2, operation="model.create")
        assert isinstance(first, EventPage)
        assert len(first.events) == 2
        assert first.next_cursor is not None
        second = tk.events.page(limit=2, cursor=first.next_cursor, operation="model.create")
        assert {e["id"] for e in first.events}.isdisjoint(e["id"] for e in second.events)
        assert len(list(tk.events.search("operation:model.create", page_size=2, limit=3))) == 3
        assert len(list(tk.events.search("operation:model.create", page_size=2))) == 5
        with pytest.raises(ValidationError):
            tk.events.search("since:yesterday-ish")  # no iteration: raised at the call

    async def scenario() -> None:
        async with AsyncClient("http://t", reader, transport=transport) as tk:
            page = await tk.events.page(limit=4, q="operation:model.create")
            assert len(page.events) == 4
            found = [e async for e in tk.events.search("operation:model.create", limit=3)]
            assert len(found) == 3
            with pytest.raises(ValidationError):
                await tk.events.search("since:yesterday-ish")

    asyncio.run(scenario())


class _SyncOverAsync(httpx.BaseTransport):
    """Drives the ASGI app from the blocking client (httpx has no sync ASGI transport)."""

    def __init__(self, transport: httpx.ASGITransport) -> None:
        self._transport = transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._transport.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(send())


def test_an_async_search_can_be_closed_early_with_aclosing(
    service: AuditService,
    http: Callable[[str | None], ASGIClient],
    writer: str,
    reader: str,
    make_event: MakeEvent,
) -> None:
    import contextlib

    app = create_app(service)
    assert post(http(writer), [make_event(), make_event()]).status_code == 202

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://t", reader, transport=transport) as tk:
            events = tk.events.search("", page_size=1)
            async with contextlib.aclosing(events):
                first = [await anext(aiter(events))]
            return first + [e async for e in events]  # closed: nothing more is fetched

    assert len(asyncio.run(run())) == 1
