"""The trust boundary: every read goes through the core's key-scoped reader.

Over real servers on real ports (both backends): each read route records exactly one read
with where it came from; a stream ends when its key does; producers cannot forge the log's
own records; app-limited keys write only their apps; a key and its record are stored
together; a locked keys table does not freeze the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ASGIClient, LiveServer, free_port, run_cli, serving, store_url
from trailkeeper.client import Client, StreamEndedError
from trailkeeper.events import StoredEvent
from trailkeeper.server import create_app
from trailkeeper.service import AuditService
from trailkeeper.store import ConflictError

MakeEvent = Callable[..., dict[str, Any]]
AGENT = "trust-test/1.0"
READ_OPERATIONS = ("audit_log.search", "audit_log.export", "audit_log.stream")


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    with serving(store_url(backend, tmp_path)) as live:
        yield live


def _records(db: str, org: str = "acme") -> list[StoredEvent]:
    with AuditService.open(db) as service:
        return [e for e in service.scan(org) if e.event.operation in READ_OPERATIONS]


def _new_records(db: str, before: int, expected: int = 1) -> list[StoredEvent]:
    """The read records stored after the first ``before``, once ``expected`` are there
    (committed within 200 ms) and a little more has passed, so that extra ones show."""
    deadline = time.monotonic() + 10
    while len(_records(db)) < before + expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return _records(db)[before:]


def _event(**fields: Any) -> dict[str, Any]:
    event = {
        "time": "2026-11-26T11:00:00Z",
        "actor": {"id": "alice", "type": "user"},
        "operation": "model.create",
        "targets": [{"type": "model", "id": "m1"}],
        "app_id": "main",
    }
    event.update(fields)
    return event


def _stream_open(client: httpx.Client, url: str, **params: Any) -> int:
    with client.stream("GET", url, params=params) as response:
        for line in response.iter_lines():
            if line.startswith("retry:"):
                break
        return response.status_code


def _read_calls(server: LiveServer, event_id: str) -> dict[tuple[str, str], Callable[..., int]]:
    """Every read route, called as a client would; keyed by (method, OpenAPI path)."""

    def get(path: str, **params: Any) -> Callable[[httpx.Client], int]:
        return lambda c: c.get(path, params=params).status_code

    return {
        ("get", "/v1/events"): get("/v1/events", q="since:7d model"),
        ("post", "/v1/events/search"): lambda c: (
            c.post("/v1/events/search", json={"actor": ["alice"], "q": "model"}).status_code
        ),
        ("get", "/v1/events/export"): get("/v1/events/export", format="csv"),
        ("get", "/v1/events/{event_id}"): get(f"/v1/events/{event_id}"),
        ("get", "/v1/events/stream"): lambda c: _stream_open(c, "/v1/events/stream", after=-1),
        ("get", "/v1/apps"): get("/v1/apps"),
        ("get", "/v1/stats/activity"): get("/v1/stats/activity", bucket="day"),
        ("post", "/v2/users/{user_id}/audit_log/searches"): lambda c: (
            c.post(
                "/v2/users/me/audit_log/searches",
                json={"query": {}},
                headers={"Authorization": c.headers["x-clarifai-key"]},
            ).status_code
        ),
    }


#: Routes that read nothing of any org's log.
NOT_READS = {
    ("post", "/v1/events"),  # ingest: a write
    ("get", "/v1/operations"),  # the catalogue: the same for everyone
    ("get", "/healthz"),
    ("get", "/readyz"),  # asks the store one trivial query, reads no log
    ("get", "/metrics"),
}


def test_every_read_route_records_exactly_one_read_with_where_it_came_from(
    server: LiveServer,
) -> None:
    write = server.key("--org", "acme", "--scope", "events:write")
    read = server.key("--org", "acme", "--scope", "events:read")
    with Client(server.url, write) as producer:
        event_id = producer.record("model.create", actor="alice", targets=[{"type": "model",
                                   "id": "m1"}], app_id="main")["id"]  # fmt: skip
    calls = _read_calls(server, event_id)
    document = httpx.get(f"{server.url}/openapi.json").json()
    routes = {(m, p) for p, ops in document["paths"].items() for m in ops}
    # A route added later must be listed here: as a read (recorded) or as not a read.
    assert routes - NOT_READS == set(calls), "a route is neither a recorded read nor excluded"
    headers = {
        "Authorization": f"Bearer {read}",
        "User-Agent": AGENT,
        "x-clarifai-key": f"Key {read}",
    }
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for route, call in sorted(calls.items()):
            before = len(_records(server.db))
            request_id = f"req-{route[0]}-{len(route[1])}"
            client.headers["X-Request-Id"] = request_id
            assert call(client) == 200, route
            new = _new_records(server.db, before)
            assert len(new) == 1, (route, [e.event.operation for e in new])
            record = new[0].event
            assert record.source_ip == "127.0.0.1", route
            assert record.user_agent == AGENT, route
            assert record.request_id == request_id, route
            assert record.actor.type == "api_key", route
            expected = {
                "/v1/events/export": "audit_log.export",
                "/v1/events/stream": "audit_log.stream",
            }.get(route[1], "audit_log.search")
            assert record.operation == expected, route


def test_the_clarifai_grpc_search_records_one_read_with_the_peer_address(
    tmp_path: Path,
) -> None:
    from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
    from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc

    db = f"sqlite:///{tmp_path / 'grpc.db'}"
    grpc_port = free_port()
    with serving(db, "--grpc-port", str(grpc_port)) as server:
        read = server.key("--org", "acme", "--scope", "events:read")
        before = len(_records(db))
        channel = ClarifaiChannel.get_insecure_grpc_channel(base="127.0.0.1", port=grpc_port)
        stub = service_pb2_grpc.V2Stub(channel)
        response = stub.PostAuditLogSearches(
            service_pb2.PostAuditLogSearchesRequest(),
            metadata=(("authorization", f"Key {read}"), ("x-request-id", "grpc-req-1")),
        )
        assert response.status.code == 10000
        new = _new_records(db, before)
    assert len(new) == 1
    record = new[0].event
    assert record.source_ip == "127.0.0.1"
    assert record.request_id == "grpc-req-1"
    assert record.user_agent is not None
    assert "grpc" in record.user_agent
    assert record.metadata["face"] == "clarifai-grpc"


def test_a_request_id_is_made_and_returned_when_the_client_sends_none(
    server: LiveServer,
) -> None:
    read = server.key("--org", "acme", "--scope", "events:read")
    before = len(_records(server.db))
    response = httpx.get(f"{server.url}/v1/apps", headers={"Authorization": f"Bearer {read}"})
    assert response.status_code == 200
    sent_back = response.headers["x-request-id"]
    assert len(sent_back) == 36
    (record,) = _new_records(server.db, before)
    assert record.event.request_id == sent_back


def test_a_read_behind_a_trusted_proxy_records_the_forwarded_client(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'proxy.db'}"
    env = {"TRAILKEEPER_TRUSTED_PROXIES": "127.0.0.1"}
    with serving(db, env=env) as server:
        read = server.key("--org", "acme", "--scope", "events:read")
        before = len(_records(db))
        headers = {"Authorization": f"Bearer {read}", "X-Forwarded-For": "198.51.100.9"}
        assert httpx.get(f"{server.url}/v1/apps", headers=headers).status_code == 200
        (record,) = _new_records(db, before)
    assert record.event.source_ip == "198.51.100.9"


def test_without_trusted_proxies_a_forwarded_header_is_not_believed(
    server: LiveServer,
) -> None:
    read = server.key("--org", "acme", "--scope", "events:read")
    before = len(_records(server.db))
    headers = {"Authorization": f"Bearer {read}", "X-Forwarded-For": "198.51.100.9"}
    assert httpx.get(f"{server.url}/v1/apps", headers=headers).status_code == 200
    (record,) = _new_records(server.db, before)
    assert record.event.source_ip == "127.0.0.1"


# -- a stream ends with its key ------------------------------------------------------------


def _sse_lines(response: httpx.Response) -> Iterator[str]:
    yield from response.iter_lines()


@pytest.mark.parametrize("ending", ["revoked", "expired"])
def test_an_open_stream_ends_within_a_second_of_its_key_ending(
    server: LiveServer, ending: str
) -> None:
    write = server.key("--org", "acme", "--scope", "events:write")
    with AuditService.open(server.db) as service:
        key, read = service.keys.create(
            "acme",
            ["events:read"],
            expires_in=timedelta(seconds=3) if ending == "expired" else None,
        )
    headers = {"Authorization": f"Bearer {read}"}
    got: list[str] = []
    with (
        Client(server.url, write) as producer,
        httpx.stream(
            "GET",
            f"{server.url}/v1/events/stream",
            params={"q": "-operation:audit_log.stream"},
            headers=headers,
            timeout=30,
        ) as response,
    ):
        assert response.status_code == 200
        lines = _sse_lines(response)
        producer.record("model.create", actor="before", targets=[{"type": "model", "id": "m"}])
        for line in lines:
            got.append(line)
            if line.startswith("data:") and '"before"' in line:
                break
        if ending == "revoked":
            with AuditService.open(server.db) as service:
                service.keys.revoke("acme", key.id)
        else:
            assert key.expires_at is not None
            time.sleep(max(0.0, (key.expires_at - key.created_at).total_seconds() - 0.5))
            time.sleep(0.6)  # now expired
        ended_at = time.monotonic()
        producer.record("model.create", actor="after", targets=[{"type": "model", "id": "m"}])
        rest = list(lines)  # the server closes the stream
        took = time.monotonic() - ended_at
    assert took < 1.5
    assert not any('"after"' in line for line in rest)
    code = "key_revoked" if ending == "revoked" else "key_expired"
    assert "event: error" in rest
    data = json.loads(rest[rest.index("event: error") + 1].removeprefix("data: "))
    assert data["code"] == code
    assert data["message"]


def _wait_for_stream(db: str) -> None:
    """Until a stream has opened (its record is stored): a slow start must not make the
    revocation come first."""
    deadline = time.monotonic() + 30
    while not any(e.event.operation == "audit_log.stream" for e in _records(db)):
        assert time.monotonic() < deadline, "the stream did not open"
        time.sleep(0.1)


def test_tail_stops_with_the_servers_reason_and_does_not_reconnect(
    server: LiveServer,
) -> None:
    with AuditService.open(server.db) as service:
        key, read = service.keys.create("acme", ["events:read"])
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            with Client(server.url, read) as client:
                for _ in client.events.tail(reconnect=True):
                    pass
        except BaseException as exc:  # the test reads it
            failure.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    _wait_for_stream(server.db)
    with AuditService.open(server.db) as service:
        service.keys.revoke("acme", key.id)
    thread.join(10)
    assert not thread.is_alive(), "tail kept following after its key was revoked"
    (error,) = failure
    assert isinstance(error, StreamEndedError)
    assert (error.status, error.code) == (401, "key_revoked")


def test_the_cli_tail_exits_with_the_revocation(server: LiveServer) -> None:
    import subprocess
    import sys

    with AuditService.open(server.db) as service:
        key, read = service.keys.create("acme", ["events:read"])
    process = subprocess.Popen(
        [sys.executable, "-m", "trailkeeper.cli", "tail", "--url", server.url, "--key", read],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_stream(server.db)
    with AuditService.open(server.db) as service:
        service.keys.revoke("acme", key.id)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 2, (out, err)
    assert "key_revoked" in err
    assert "Traceback" not in err


# -- what producers may write ---------------------------------------------------------------


@pytest.fixture
def http(service: AuditService) -> Iterator[Callable[[str], ASGIClient]]:
    app = create_app(service)
    opened: list[ASGIClient] = []

    def make(secret: str) -> ASGIClient:
        client = ASGIClient(app, {"Authorization": f"Bearer {secret}"})
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"operation": "audit_log.key.revoke"}, "reserved_operation", "operation"),
        ({"operation": "audit_log.search"}, "reserved_operation", "operation"),
        ({"operation": "audit_log.export"}, "reserved_operation", "operation"),
        ({"operation": "audit_log.stream"}, "reserved_operation", "operation"),
        ({"actor": {"id": "trailkeeper-admin", "type": "service"}}, "reserved_actor", "actor.id"),
        ({"actor": {"id": "Trailkeeper-Admin", "type": "user"}}, "reserved_actor", "actor.id"),
        ({"actor": "trailkeeper-reader"}, "reserved_actor", "actor.id"),
    ],
)
def test_producers_cannot_write_the_logs_own_records(
    service: AuditService,
    http: Callable[[str], ASGIClient],
    fields: dict[str, Any],
    code: str,
    field: str,
) -> None:
    writer = service.keys.create("acme", ["events:write"])[1]
    before = service.size("acme")
    response = http(writer).post("/v1/events", json={"events": [_event(), _event(**fields)]})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == code
    assert {"index": 1, "field": field} == {k: problem["errors"][0][k] for k in ("index", "field")}
    assert service.size("acme") == before
    assert http(writer).post("/v1/events", json={"events": [_event()]}).status_code == 202


def test_imports_keep_their_own_path_for_the_logs_own_records(
    service: AuditService,
) -> None:
    result = service.ingest("acme", [_event(operation="audit_log.search")], allow_reserved=True)
    assert result.accepted == 1


@pytest.mark.parametrize(
    ("app_id", "status"),
    [("app1", 202), ("app2", 403), (None, 403), ("", 403), (["app1"], 403)],
)
def test_an_app_limited_write_key_writes_only_its_apps(
    service: AuditService, http: Callable[[str], ASGIClient], app_id: Any, status: int
) -> None:
    writer = service.keys.create("acme", ["events:write"], apps=["app1"])[1]
    event = _event(app_id=app_id)
    if app_id is None:
        del event["app_id"]
    before = service.size("acme")
    response = http(writer).post("/v1/events", json={"events": [_event(app_id="app1"), event]})
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["code"] == "app_not_allowed"
        assert "event 1" in response.json()["detail"]
        assert service.size("acme") == before
    else:
        assert service.size("acme") == before + 2


# -- keys and their records -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad\nname", "tab\there", "c1\x85name", "ls\u2028name"])
def test_a_refused_key_name_leaves_no_key_and_no_record(tmp_path: Path, name: str) -> None:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    result = run_cli("keys", "create", "--db", db, "--org", "acme", "--scope", "events:read",
                     "--name", name)  # fmt: skip
    assert result.returncode == 2, result.stdout
    assert "control characters" in result.stderr
    with AuditService.open(db) as service:
        assert service.keys.list("acme") == []
        assert service.size("acme") == 0


def test_a_key_and_its_record_are_stored_in_one_transaction(
    service: AuditService,
) -> None:
    key, _ = service.keys.create("acme", ["events:read"], name="analyst")
    (record,) = [e for e in service.scan("acme") if e.event.operation == "audit_log.key.create"]
    assert record.event.targets[1].id == key.id
    # A record the store refuses (its id is taken, with other content): no key either.
    other, _ = service.keys.create("acme", ["events:read"], name="second")
    event = service.trail.event("audit_log.key.create", "acme", actor=None, key=key, metadata={})
    event["id"] = str(record.event.id)
    prepared = service.trail.prepare("acme", event)
    size = service.size("acme")
    newcomer = replace(other, id="a1b2c3d4e5f6", name="never stored")
    with pytest.raises(ConflictError):
        service.store.append("acme", prepared, key=newcomer)
    assert service.size("acme") == size
    assert "a1b2c3d4e5f6" not in {k.id for k in service.keys.list("acme")}


def test_a_revocation_and_its_record_are_stored_together_once(service: AuditService) -> None:
    key, _ = service.keys.create("acme", ["events:read"])
    first = service.keys.revoke("acme", key.id)
    again = service.keys.revoke("acme", key.id)
    assert first.revoked_at is not None
    assert again.revoked_at == first.revoked_at
    revokes = [e for e in service.scan("acme") if e.event.operation == "audit_log.key.revoke"]
    assert len(revokes) == 1
    assert service.keys.list("acme")[0].revoked_at == first.revoked_at


# -- relative spans keep their window --------------------------------------------------------


def test_a_relative_span_pages_through_its_first_window(
    service: AuditService, make_event: MakeEvent
) -> None:
    writer = service.keys.create("acme", ["events:write"])[1]
    reader_key = service.keys.create("acme", ["events:read"])[1]
    app = create_app(service)
    producer = ASGIClient(app, {"Authorization": f"Bearer {writer}"})
    client = ASGIClient(app, {"Authorization": f"Bearer {reader_key}"})
    try:
        events = [make_event(time=f"2026-11-26T10:{m:02d}:00Z") for m in range(7)]
        assert producer.post("/v1/events", json={"events": events}).status_code == 202
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params: dict[str, Any] = {"q": "since:30d operation:model.create", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            time.sleep(0.01)  # "now" moves between pages, as it does for a person paging
            response = client.get("/v1/events", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [e["id"] for e in page["events"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 7
    finally:
        producer.close()
        client.close()


# -- no blocking I/O on the event loop --------------------------------------------------------


def test_a_locked_keys_table_does_not_freeze_the_server(tmp_path: Path) -> None:
    import psycopg

    db = store_url("postgresql", tmp_path)
    with serving(db) as server:
        read = server.key("--org", "acme", "--scope", "events:read")
        schema = db.rsplit("%3D", 1)[1]
        admin = db.split("?", 1)[0]
        outcome: list[httpx.Response] = []
        with psycopg.connect(admin) as locker:
            locker.execute(f"LOCK TABLE {schema}.api_keys IN ACCESS EXCLUSIVE MODE")
            thread = threading.Thread(
                target=lambda: outcome.append(
                    httpx.get(
                        f"{server.url}/v1/apps",
                        headers={"Authorization": f"Bearer {read}"},
                        timeout=30,
                    )
                ),
                daemon=True,
            )
            thread.start()
            time.sleep(0.3)  # the search is waiting on the lock now
            took = []
            with httpx.Client(base_url=server.url, timeout=5) as health:
                for _ in range(7):
                    started = time.monotonic()
                    assert health.get("/healthz").status_code == 200
                    took.append(time.monotonic() - started)
            # Blocked, it would wait the whole lookup (2 s); the median bounds it tightly,
            # the maximum leaves room for a busy 2-core machine.
            assert sorted(took)[3] < 0.1, took
            assert max(took) < 0.5, took
            thread.join(10)
            started = time.monotonic()
            clarifai = httpx.post(
                f"{server.url}/v2/users/me/audit_log/searches",
                json={},
                headers={"Authorization": f"Key {read}"},
                timeout=30,
            )
            assert time.monotonic() - started < 5
            assert clarifai.status_code == 503
            ready = httpx.get(f"{server.url}/readyz", timeout=30)
            assert ready.status_code in (200, 503)  # answers: never hangs on a lookup
            locker.rollback()
        (response,) = outcome
        assert response.status_code == 503
        assert response.json()["code"] == "store_unavailable"
        assert response.headers["retry-after"]
        # And once the lock is gone, the key works again.
        ok = httpx.get(f"{server.url}/v1/apps", headers={"Authorization": f"Bearer {read}"})
        assert ok.status_code == 200


# -- what a record keeps, whatever the request ----------------------------------------------


def _last_read(service: AuditService) -> StoredEvent:
    service.flush_reads()
    reads = [e for e in service.scan("acme") if e.event.operation in READ_OPERATIONS]
    return reads[-1]


def test_padding_cannot_push_a_filter_out_of_its_record(
    service: AuditService, http: Callable[[str], ASGIClient]
) -> None:
    read = service.keys.create("acme", ["events:read"])[1]
    dummies = [f"dummy-{i:03d}-" + "x" * 110 for i in range(99)]
    body = {
        "actor": [*dummies, "victim"],
        "target": [*dummies, "victim-model"],
        "app": [*dummies, "victim-app"],
        "q": " ".join(f"app:pad-{i}" for i in range(90)),
    }
    assert http(read).post("/v1/events/search", json=body).status_code == 200
    request = _last_read(service).event.metadata["request"]
    assert request["actor"][-1] == "victim"
    assert len(request["actor"]) == 100
    assert request["target"][-1] == "victim-model"
    assert request["app"][-1] == "victim-app"
    assert request["q"] == body["q"]


@pytest.mark.parametrize("q", ["\x01" * 4000, "\u2028" * 4000, "a" + " " * 4000 + "b"])
def test_any_accepted_q_is_recorded_whole(
    service: AuditService, http: Callable[[str], ASGIClient], q: str
) -> None:
    read = service.keys.create("acme", ["events:read"])[1]
    response = http(read).get("/v1/events", params={"q": q})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        recorded = _last_read(service).event.metadata["request"]["q"]
        assert recorded == " ".join(q.split())


def test_a_console_stream_ends_when_its_session_is_signed_out(service: AuditService) -> None:
    from trailkeeper.keys import AuthError

    key, _ = service.keys.create("acme", ["events:read"])
    later = datetime.now(UTC) + timedelta(hours=1)
    follow = service.reader(key, session=("session-1", later)).follow()
    assert follow.poll() == []
    service.keys.end_session("session-1", later)
    with pytest.raises(AuthError) as ended:
        follow.poll()
    assert ended.value.code == "ended_session"


def test_a_console_stream_ends_when_its_session_is_over(service: AuditService, clock: Any) -> None:
    from trailkeeper.keys import AuthError

    key, _ = service.keys.create("acme", ["events:read"])
    follow = service.reader(key, session=("s2", clock() + timedelta(minutes=5))).follow()
    assert follow.poll() == []
    clock.advance(minutes=6)
    with pytest.raises(AuthError) as ended:
        follow.poll()
    assert ended.value.code == "expired_session"


def test_a_stream_record_says_where_it_starts(server: LiveServer) -> None:
    read = server.key("--org", "acme", "--scope", "events:read")
    before = len(_records(server.db))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {read}"}) as c:
        assert _stream_open(c, "/v1/events/stream", after=-1, backlog=5) == 200
    (record,) = _new_records(server.db, before)
    request = record.event.metadata["request"]
    assert (request["after"], request["backlog"], request["resumed"]) == (-1, 5, False)


def test_a_relative_window_carried_by_a_cursor_is_recorded(
    service: AuditService, http: Callable[[str], ASGIClient], make_event: MakeEvent
) -> None:
    writer = service.keys.create("acme", ["events:write"])[1]
    read = service.keys.create("acme", ["events:read"])[1]
    events = [make_event(time=f"2026-11-26T10:{m:02d}:00Z") for m in range(3)]
    assert http(writer).post("/v1/events", json={"events": events}).status_code == 202
    page = http(read).get("/v1/events", params={"q": "since:30d", "limit": 1}).json()
    assert page["next_cursor"]
    http(read).get(
        "/v1/events", params={"q": "since:30d", "limit": 1, "cursor": page["next_cursor"]}
    )
    window = _last_read(service).event.metadata["request"]["window"]
    assert window[0] is not None
    assert window[1] is None
