"""The capture SDK against a real server on a real port: record, operation, @audited,
the ASGI middleware (context, trusted proxies, route map), processors and the test helper."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _live_server import LiveServer
from conftest import ASGIClient, serving
from trailkeeper import capture
from trailkeeper.capture import AuditMiddleware, AuditRoute, Recorder, annotate, audited, bind
from trailkeeper.capture._recorder import _Nowhere
from trailkeeper.events import Catalogue, EventValidationError, UnknownOperationError
from trailkeeper.events import Operation as CatalogueOperation
from trailkeeper.service import AuditService
from trailkeeper.testing import capture_events


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("capture") / "audit.db")
    live.start()
    yield live
    live.stop()


@pytest.fixture
def org(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("_", "-")[:60]


@pytest.fixture
def recorder(server: LiveServer, org: str, tmp_path: Path) -> Iterator[Recorder]:
    opened = Recorder(server.url, server.key(org), spool=tmp_path / "spool.db")
    yield opened
    opened.close()
    assert opened.counters().failed == 0


def by_operation(server: LiveServer, org: str) -> dict[str, dict[str, Any]]:
    return {e.event.operation: e.event.to_dict() for e in server.events(org)}


def test_public_api_is_pinned() -> None:
    assert capture.__all__ == sorted(capture.__all__, key=lambda n: (n[0].islower(), n))
    assert set(capture.__all__) == {
        "AuditMiddleware", "AuditRoute", "Backlog", "Counters", "HttpTransport",
        "LocalTransport", "Operation", "Processor", "Recorder", "RequestContext", "Spool",
        "Transport", "TransportError", "add_metadata", "annotate", "audited", "bind",
        "current_context", "default_spool_dir", "error_of", "operation", "record",
        "redact_secrets", "set_actor", "set_default",
    }  # fmt: skip
    for name in capture.__all__:
        assert hasattr(capture, name)


def test_importing_capture_does_not_import_the_server_stack() -> None:
    code = (
        "import sys, trailkeeper.capture, trailkeeper.testing\n"
        "heavy = {'fastapi', 'starlette', 'uvicorn', 'psycopg', 'httpx', 'pydantic'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_record_returns_the_id_the_server_stores_with_context_fields(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    with bind(actor={"id": "ana", "type": "user"}, source_ip="203.0.113.9", request_id="req-1",
              user_agent="pytest", app_id="main"):  # fmt: skip
        event_id = recorder.record(
            "model.create",
            targets=[{"type": "model", "id": "m1"}],
            metadata={"api_key": "sk-live-123", "size": 3},
        )
        other = recorder.record("model.update", actor="raj", app_id="side")
    assert recorder.flush(10)
    stored = by_operation(server, org)
    created = stored["model.create"]
    assert created["id"] == event_id
    assert created["actor"]["id"] == "ana"
    assert (created["source_ip"], created["request_id"], created["user_agent"]) == (
        "203.0.113.9", "req-1", "pytest"
    )  # fmt: skip
    assert created["app_id"] == "main"
    assert created["metadata"] == {"api_key": "[REDACTED]", "size": 3}
    assert created["success"] is True
    updated = stored["model.update"]
    assert (updated["id"], updated["actor"]["id"], updated["app_id"]) == (other, "raj", "side")
    assert updated["request_id"] == "req-1"
    counters = recorder.counters()
    assert (counters.queued, counters.sent, counters.pending) == (2, 2, 0)


def test_operation_records_success_with_what_the_block_added(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    with recorder.operation("model.update", actor="ana") as op:
        op.add_target("model", "m7", name="Scorer")
        op.change("description", "draft", "ready")
        annotate(details=["from deeper code"])
    assert recorder.flush(10)
    event = by_operation(server, org)["model.update"]
    assert event["id"] == op.id
    assert event["success"] is True
    assert event["error"] is None
    assert event["targets"] == [{"type": "model", "id": "m7", "name": "Scorer"}]
    assert event["changes"] == {"description": {"from": "draft", "to": "ready"}}
    assert event["details"] == ["from deeper code"]


class QuotaExceeded(Exception):
    code = "QUOTA_EXCEEDED"


def test_operation_records_failure_with_the_error_and_the_exception_propagates(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    def train() -> None:
        with recorder.operation("model.train", actor="ana") as op:
            op.add_target("model", "m1")
            raise QuotaExceeded("no GPU hours left this month")

    with pytest.raises(QuotaExceeded):
        train()
    with pytest.raises(ValueError, match="bad"), recorder.operation("team.create", actor="ana"):
        raise ValueError("bad name")
    assert recorder.flush(10)
    stored = by_operation(server, org)
    assert stored["model.train"]["success"] is False
    assert stored["model.train"]["error"] == {
        "code": "QUOTA_EXCEEDED", "message": "no GPU hours left this month"
    }  # fmt: skip
    assert stored["model.train"]["targets"] == [{"type": "model", "id": "m1", "name": None}]
    assert stored["team.create"]["error"] == {"code": "ValueError", "message": "bad name"}


def test_audited_decorates_sync_and_async_functions(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    @audited("model.delete", recorder=recorder, actor="ana", targets=lambda model_id: [
        {"type": "model", "id": model_id}])  # fmt: skip
    def delete(model_id: str) -> str:
        annotate(details=[f"deleted {model_id}"])
        return model_id

    @audited("workflow.publish", recorder=recorder, actor="ci-bot")
    async def publish(workflow_id: str) -> None:
        annotate(targets=[{"type": "workflow", "id": workflow_id}])
        raise PermissionError("ci-bot may not publish")

    assert delete("m9") == "m9"
    with pytest.raises(PermissionError):
        asyncio.run(publish("wf1"))
    assert recorder.flush(10)
    stored = by_operation(server, org)
    assert stored["model.delete"]["targets"][0]["id"] == "m9"
    assert stored["model.delete"]["details"] == ["deleted m9"]
    published = stored["workflow.publish"]
    assert published["success"] is False
    assert published["actor"]["id"] == "ci-bot"
    assert published["targets"][0]["id"] == "wf1"
    assert published["error"]["code"] == "PermissionError"


def test_the_module_level_api_uses_the_default_recorder(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    previous = capture.set_default(recorder)
    try:
        first = capture.record("secret.create", actor="ana")
        with capture.operation("secret.delete", actor="ana") as op:
            pass
    finally:
        capture.set_default(previous)
    assert recorder.flush(10)
    stored = by_operation(server, org)
    assert (stored["secret.create"]["id"], stored["secret.delete"]["id"]) == (first, op.id)


def _app(status: int = 200) -> Any:
    """A bare ASGI app: it records one event with operation(), then answers ``status``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"].endswith("/boom"):
            raise RuntimeError("the handler crashed")
        if scope["path"] == "/inner":
            with capture.operation("workflow.create", targets=[{"type": "workflow", "id": "w"}]):
                pass
            annotate(targets=[{"type": "model", "id": "made-here"}])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_middleware_binds_actor_ip_request_id_user_agent_and_echoes_the_id(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    previous = capture.set_default(recorder)
    app = AuditMiddleware(
        _app(),
        actor=lambda scope: {"id": dict(scope["headers"]).get(b"x-user", b"?").decode()},
        app_id=lambda scope: "main",
    )
    client = ASGIClient(app)
    try:
        given = client.get("/inner", headers={"x-user": "mei", "x-request-id": "abc-123",
                                              "user-agent": "console/1.0"})  # fmt: skip
        made = client.get("/inner", headers={"x-user": "raj", "x-request-id": "bad id!"})
    finally:
        client.close()
        capture.set_default(previous)
    assert given.headers["x-request-id"] == "abc-123"
    generated = made.headers["x-request-id"]
    assert generated != "bad id!"
    assert len(generated) == 36
    assert recorder.flush(10)
    events = {e.event.request_id: e.event for e in server.events(org)}
    first = events["abc-123"]
    assert (first.actor.id, first.user_agent, first.app_id) == ("mei", "console/1.0", "main")
    assert first.source_ip == "127.0.0.1"  # the connection's peer: no proxy is trusted
    assert events[generated].actor.id == "raj"


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        ((), "198.51.100.1", "127.0.0.1"),  # no trusted proxy: the header is ignored
        (("127.0.0.1",), "198.51.100.1", "198.51.100.1"),
        (("127.0.0.0/8", "10.0.0.0/8"), "6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"),
        (("10.0.0.0/8",), "198.51.100.1", "127.0.0.1"),  # the peer itself is not trusted
        (("127.0.0.1",), "not-an-ip", None),
    ],
)
def test_middleware_believes_x_forwarded_for_only_from_trusted_proxies(
    trusted: tuple[str, ...], forwarded: str, expected: str | None
) -> None:
    app = AuditMiddleware(_app(), trusted_proxies=trusted, routes={"GET /x": "model.update"})
    client = ASGIClient(app)
    with capture_events() as events:
        client.get("/x", headers={"x-forwarded-for": forwarded})
    client.close()
    assert [e.get("source_ip") for e in events] == [expected]


def test_middleware_route_map_records_success_and_failure_from_the_status(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    routes: dict[str, str | AuditRoute] = {
        "POST /inner": "application.create",
        "DELETE /apps/{app_id}/models/{model_id}": AuditRoute(
            "model.delete", targets={"app": "app_id", "model": "model_id"}
        ),
        "POST /apps/{app_id}/boom": AuditRoute("application.update", targets={"app": "app_id"}),
    }
    ok = ASGIClient(
        AuditMiddleware(_app(), recorder=recorder, routes=routes, actor=lambda s: "ana")
    )
    denied = ASGIClient(AuditMiddleware(_app(403), recorder=recorder, routes=routes))
    previous = capture.set_default(recorder)
    try:
        ok.post("/inner", headers={"x-request-id": "one-request"})
        ok.get("/inner")  # GET is not in the map: only the inner operation is recorded
        denied.request("DELETE", "/apps/a1/models/m2", headers={"x-request-id": "denied"})
        with pytest.raises(RuntimeError, match="crashed"):
            ok.post("/apps/a1/boom", headers={"x-request-id": "crash"})
    finally:
        ok.close()
        denied.close()
        capture.set_default(previous)
    assert recorder.flush(10)
    events = server.events(org)
    shared = [e.event for e in events if e.event.request_id == "one-request"]
    # One request, two events: the inner operation, then the route's own (its time is the
    # start of the request, so it sorts first by time).
    assert sorted(e.operation for e in shared) == ["application.create", "workflow.create"]
    route_event = next(e for e in shared if e.operation == "application.create")
    assert route_event.success is True
    assert route_event.actor is not None
    assert route_event.actor.id == "ana"
    assert [t.id for t in route_event.targets] == ["made-here"]
    assert route_event.time < next(e for e in shared if e.operation == "workflow.create").time
    assert sum(1 for e in events if e.event.operation == "workflow.create") == 2
    refused = next(e.event for e in events if e.event.request_id == "denied")
    assert refused.operation == "model.delete"
    assert refused.success is False
    assert refused.error is not None
    assert refused.error.code == "FORBIDDEN"
    assert [(t.type, t.id) for t in refused.targets] == [("app", "a1"), ("model", "m2")]
    crashed = next(e.event for e in events if e.event.request_id == "crash")
    assert crashed.success is False
    assert crashed.error is not None
    assert crashed.error.code == "RuntimeError"


def test_middleware_flushes_the_recorder_at_lifespan_shutdown(
    server: LiveServer, org: str, tmp_path: Path
) -> None:
    # A long flush interval: only the shutdown flush can deliver the event in time.
    recorder = Recorder(server.url, server.key(org), spool=tmp_path / "s.db", flush_interval=60)
    app = AuditMiddleware(_lifespan_app(), recorder=recorder)

    async def run() -> None:
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                recorder.record("module.create", actor="ana")

        await app({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert [e.event.operation for e in server.events(org)] == ["module.create"]
    recorder.close()


def _lifespan_app() -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def test_processors_enrich_and_custom_processors_run_in_order(
    server: LiveServer, org: str, tmp_path: Path
) -> None:
    def tag_region(event: dict[str, Any]) -> dict[str, Any]:
        event["details"] = [*event.get("details", []), f"seen by {event['metadata']['service']}"]
        return event

    recorder = Recorder(
        server.url,
        server.key(org),
        spool=tmp_path / "s.db",
        processors=[capture.add_metadata(service="billing"), capture.redact_secrets(), tag_region],
    )
    recorder.record("secret.update", actor="ana", changes={"password": {"from": "a", "to": "b"}})
    assert recorder.flush(10)
    recorder.close()
    event = by_operation(server, org)["secret.update"]
    assert event["metadata"] == {"service": "billing"}
    assert event["changes"] == {"password": {"from": "[REDACTED]", "to": "[REDACTED]"}}
    assert event["details"] == ["seen by billing"]


def test_refused_events_are_counted_logged_and_kept_not_dropped_silently(
    server: LiveServer, org: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(server.url, server.key(org), spool=tmp_path / "s.db")
    good = recorder.record("model.create", actor="ana")
    bad = recorder.record("model.explode", actor="ana")
    assert recorder.flush(10)
    recorder.close()
    assert [e.event.id for e in server.events(org)] == [good]  # the valid one still went in
    counters = recorder.counters()
    assert (counters.sent, counters.failed) == (1, 1)
    assert any(bad in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    reopened = capture.Spool(tmp_path / "s.db")
    [(kept_id, reason)] = reopened.rejected_events()
    reopened.close()
    assert kept_id == bad
    assert "model.explode" in reason


def test_capture_events_collects_without_sending_and_without_a_recorder() -> None:
    with capture_events() as events:
        capture.record("team.create", actor="ana", metadata={"token": "t"})
        with pytest.raises(KeyError), capture.operation("team.delete", actor="ana"):
            raise KeyError("team-1")
    assert [(e["operation"], e["success"]) for e in events] == [
        ("team.create", True), ("team.delete", False)
    ]  # fmt: skip
    assert events[0]["metadata"] == {"token": "[REDACTED]"}
    assert events[0]["time"].endswith("Z")
    with pytest.raises(RuntimeError, match="no recorder"):
        capture.record("team.create", actor="ana")


def test_embedded_recorder_writes_to_a_local_store_without_a_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    with Recorder.embedded(url, "acme") as recorder:
        ids = [recorder.record("model.create", actor=f"u{i}") for i in range(50)]
        recorder.record("dataset.create", actor="ana", org_id="globex")
        bad = recorder.record("model.create", actor="ana", source_ip="999.1.1.1")
        assert recorder.flush(10)
        [(refused, reason)] = recorder.spool.rejected_events()
        assert refused == bad
        assert "source_ip" in reason
    with AuditService.open(url) as service:
        assert [e.event.id for e in service.scan("acme")] == ids
        assert service.size("globex") == 1


def test_the_senders_time_format_matches_the_event_models() -> None:
    import random

    from trailkeeper.capture._encode import format_ns
    from trailkeeper.events import format_time, from_micros

    rng = random.Random(5)
    for _ in range(20_000):
        ns = rng.randrange(0, 4_102_444_800 * 10**9)  # 1970 to 2100
        assert format_ns(ns) == format_time(from_micros(ns // 1000))


def test_a_refused_key_keeps_events_spooled_until_a_right_key_sends_them(
    server: LiveServer, org: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "s.db"
    wrong = Recorder(server.url, "tk_nope_nope", spool=spool, max_backoff=0.1)
    ids = [wrong.record("model.create", actor="ana") for _ in range(20)]
    assert not wrong.flush(0.5)
    counters = wrong.counters()
    assert (counters.sent, counters.failed, counters.pending) == (0, 0, 20)
    assert any("refused the key" in r.getMessage() for r in caplog.records)
    wrong.close(timeout=0.1)
    right = Recorder(server.url, server.key(org), spool=spool)
    assert right.flush(10)
    right.close()
    assert sorted(e.event.id for e in server.events(org)) == sorted(ids)


def test_large_batches_are_split_under_the_servers_body_limit(
    server: LiveServer, recorder: Recorder, org: str
) -> None:
    # 500 events of ~15 KB: over 7 MB, so at least two requests under the 5 MiB limit.
    ids = [
        recorder.record("dataset.update", actor="ana", metadata={"blob": f"{i:05d}" * 3_000})
        for i in range(500)
    ]
    assert recorder.flush(30)
    assert sorted(e.event.id for e in server.events(org)) == sorted(ids)


def test_the_default_spool_lives_in_the_spool_dir_one_per_server_and_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAILKEEPER_SPOOL_DIR", str(tmp_path / "spools"))
    first = Recorder("http://127.0.0.1:9", "tk_a_b", close_at_exit=False)
    second = Recorder("http://127.0.0.1:9", "tk_c_d", close_at_exit=False)
    paths = {Path(first.spool.path), Path(second.spool.path)}  # type: ignore[attr-defined]
    first.close(timeout=0.1)
    second.close(timeout=0.1)
    assert len(paths) == 2
    assert all(p.parent == tmp_path / "spools" and p.exists() for p in paths)


def test_capture_events_gives_each_event_as_the_log_would_store_it() -> None:
    with capture_events() as events:
        capture.record("team.create", actor="ana")
    (event,) = events
    assert event["targets"] == []
    assert event["success"] is True
    assert event["description"] == Catalogue.default().get("team.create").description
    assert event["actor"] == {"id": "ana", "type": "user", "name": None, "email": None}
    assert (event["org_id"], event["error"], event["metadata"]) == (None, None, {})
    with capture_events(validate=False) as raw:
        capture.record("team.create", actor="ana", org_id="acme")
    assert "targets" not in raw[0]
    assert raw[0]["org_id"] == "acme"


def test_capture_events_refuses_at_record_what_the_log_would_refuse() -> None:
    with capture_events() as events, pytest.raises(EventValidationError, match="target type"):
        capture.record("team.create", actor="ana", targets=[{"type": "planet", "id": "p"}])
    assert events == []
    ticket = Catalogue.default(
        [CatalogueOperation("ticket.close", "Ticket closed", ("ticket",))], ["ticket"]
    )
    with capture_events(catalogue=ticket) as events:
        capture.record("ticket.close", actor="ana", targets=[{"type": "ticket", "id": "t1"}])
    assert events[0]["targets"] == [{"type": "ticket", "id": "t1", "name": None}]


def test_a_strict_recorder_raises_for_an_unknown_operation_at_record() -> None:
    with Recorder(transport=_Nowhere(), spool=None, strict=True) as recorder:
        with pytest.raises(UnknownOperationError, match=r"did you mean 'model\.create'"):
            recorder.record("model.creat", actor="ana")
        assert recorder.counters().queued == 0
    own = Catalogue.default([CatalogueOperation("billing.invoice.pay", "Invoice paid", ())])
    with capture_events(), Recorder(transport=_Nowhere(), catalogue=own, strict=True) as r:
        r.record("billing.invoice.pay", actor="ana")


def test_a_lenient_recorder_warns_once_and_sends(caplog: pytest.LogCaptureFixture) -> None:
    with capture_events(validate=False) as events:
        recorder = Recorder(transport=_Nowhere(), spool=None, strict=False, close_at_exit=False)
        recorder.record("model.creat", actor="ana")
        recorder.record("model.creat", actor="bob")
    assert len(events) == 2
    warned = [r for r in caplog.records if "unknown operation 'model.creat'" in r.message]
    assert len(warned) == 1


def test_strict_mode_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAILKEEPER_CAPTURE_STRICT", "1")
    assert Recorder(transport=_Nowhere(), spool=None, close_at_exit=False).strict
    assert not Recorder(transport=_Nowhere(), spool=None, close_at_exit=False, strict=False).strict
    monkeypatch.delenv("TRAILKEEPER_CAPTURE_STRICT")
    assert not Recorder(transport=_Nowhere(), spool=None, close_at_exit=False).strict


def test_a_recorder_checks_names_against_the_servers_catalogue(tmp_path: Path) -> None:
    ops = tmp_path / "ops.json"
    ops.write_text(
        '{"target_types": ["ticket"], "operations": '
        '[{"name": "ticket.close", "description": "Ticket closed", "target_types": ["ticket"]}]}'
    )
    db = f"sqlite:///{tmp_path / 'audit.db'}"
    with (
        serving(db, env={"TRAILKEEPER_OPERATIONS_FILE": str(ops)}) as server,
        Recorder(
            server.url,
            server.key("--org", "acme", "--scope", "events:write"),
            spool=None,
            catalogue="server",
            strict=True,
        ) as recorder,
    ):
        started = time.monotonic()
        recorder.record("ticket.close", actor="ana", targets=[{"type": "ticket", "id": "t"}])
        assert time.monotonic() - started < 0.05  # the fetch is in the background
        deadline = time.monotonic() + 10
        while recorder.catalogue is None:
            assert time.monotonic() < deadline, "the server's catalogue never arrived"
            time.sleep(0.02)
        with pytest.raises(UnknownOperationError, match=r"'ticket\.clos'"):
            recorder.record("ticket.clos", actor="ana")
        assert recorder.flush(10)
        assert recorder.counters().failed == 0
    with AuditService.open(db) as service:
        stored = [e.event.operation for e in service.search("acme").events]
    assert [op for op in stored if op.startswith("ticket.")] == ["ticket.close"]


def test_the_fastapi_example_in_the_docs_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = (Path(__file__).parent.parent / "docs" / "capture.md").read_text()
    example = text.split("### With FastAPI")[1].split("```python\n")[1].split("```")[0]
    monkeypatch.setenv("TRAILKEEPER_SPOOL_DIR", str(tmp_path))
    namespace: dict[str, Any] = {}
    exec(compile(example, "capture.md", "exec"), namespace)  # noqa: S102 - our own docs
    recorder = capture.set_default(None)
    assert recorder is not None
    client = ASGIClient(namespace["app"])
    try:
        with capture_events() as events:
            response = client.request("DELETE", "/apps/demo", headers={"x-user": "ana"})
    finally:
        client.close()
        recorder.close(0.1)
    assert response.status_code == 200
    assert [(e["operation"], e["actor"]["id"], e["targets"]) for e in events] == [
        ("application.delete", "ana", [{"type": "app", "id": "demo", "name": None}])
    ]
