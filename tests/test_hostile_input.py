"""Hostile input over HTTP: each class of bad value is refused with a 4xx naming the field,
nothing is stored, and the server answers the next good request (issue #13).

One table per class. Every case is sent as raw JSON bytes, so what the server parses is
exactly what a stranger can send (big integers, escapes), not what a Python client would
make of it.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import ASGIClient, FakeClock, LiveServer, run_cli
from trailkeeper.capture import Recorder
from trailkeeper.client import Client
from trailkeeper.events import (
    Actor,
    EventRules,
    EventValidationError,
    Target,
    leaf_hash,
    parse_event,
)
from trailkeeper.server import create_app
from trailkeeper.service import AuditService
from trailkeeper.store import PreparedEvent, open_store
from trailkeeper.testing import capture_events

GOOD = b'{"actor": "alice", "operation": "model.create"}'


@pytest.fixture
def client(service: AuditService) -> Iterator[ASGIClient]:
    opened = ASGIClient(
        create_app(service),
        {"Authorization": f"Bearer {service.keys.create('acme', ['admin'])[1]}"},
    )
    yield opened
    opened.close()


def send(client: ASGIClient, events: bytes) -> Any:
    return client.post(
        "/v1/events",
        content=b'{"events": [' + events + b"]}",
        headers={"content-type": "application/json"},
    )


def event(**fields: str) -> bytes:
    """A valid event with ``fields`` added, each given as the raw JSON of its value."""
    extra = b"".join(f', "{name}": {value}'.encode() for name, value in fields.items())
    return GOOD[:-1] + extra + b"}"


def assert_refused(
    service: AuditService,
    client: ASGIClient,
    events: bytes,
    status: int,
    code: str,
    field: str | None,
    message: str,
) -> dict[str, Any]:
    """The batch is refused as said, nothing is stored, and a good batch then goes in."""
    before = service.size("acme")
    response = send(client, events)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code
    if field is None:
        assert message in problem["detail"], problem
    else:
        assert any(e["field"] == field and message in e["message"] for e in problem["errors"]), (
            problem["errors"]
        )
    assert service.size("acme") == before
    assert send(client, GOOD).status_code == 202  # the server is still up and taking events
    assert service.size("acme") == before + 1
    return problem


# -- class 2: values at the edge of a type -----------------------------------------------------

BIG = "123456789012345678901234567890"
DEEP = "[" * 9 + "1" + "]" * 9
EDGES: list[tuple[str, bytes, int, str, str | None, str]] = [
    # (id, events, status, code, field, message)
    ("year 1 east of UTC", event(time='"0001-01-01T00:00:00+01:00"'), 422, "invalid_events",
     "time", "outside the years 1-9999 once converted to UTC"),
    ("year 1 just before UTC midnight", event(time='"0001-01-01T00:59:59.999999+01:00"'), 422,
     "invalid_events", "time", "outside the years 1-9999"),
    ("year 9999 west of UTC", event(time='"9999-12-31T23:59:59-01:00"'), 422, "invalid_events",
     "time", "outside the years 1-9999 once converted to UTC"),
    ("year 9999 far west", event(time='"9999-12-31T12:00:00-23:59"'), 422, "invalid_events",
     "time", "outside the years 1-9999"),
    ("2**64 in metadata", event(metadata='{"n": 18446744073709551616}'), 422, "invalid_events",
     "metadata.n", "outside the signed 64-bit range"),
    ("below -2**63 in metadata", event(metadata='{"n": -9223372036854775809}'), 422,
     "invalid_events", "metadata.n", "outside the signed 64-bit range"),
    ("huge integer deep in metadata", event(metadata=f'{{"a": {{"b": [1, {BIG}]}}}}'), 422,
     "invalid_events", "metadata.a.b[1]", "send it as a string"),
    ("huge integer in changes", event(changes=f'{{"quota": {{"from": 1, "to": {BIG}}}}}'), 422,
     "invalid_events", "changes.quota.to", "outside the signed 64-bit range"),
    ("2**53 in changes", event(changes='{"quota": {"to": 9007199254740992}}'), 422,
     "invalid_events", "changes.quota.to", "beyond ±(2**53 - 1)"),
    ("huge exponent in metadata", event(metadata='{"x": 1e300}'), 422, "invalid_events",
     "metadata.x", "outside the signed 64-bit range"),
    ("nested too deep", event(metadata=f'{{"a": {DEEP}}}'), 422, "invalid_events",
     "metadata.a[0][0][0][0][0][0][0]", "nests more than 8 levels deep"),
    ("deeply nested actor type", event(actor=f'{{"id": "a", "type": {DEEP}}}'), 422,
     "invalid_events", "actor.type", "got an array"),
    ("deeply nested target type", event(targets=f'[{{"type": {DEEP}, "id": "a"}}]'), 422,
     "invalid_events", "targets[0].type", "an array is not a target type"),
    ("huge integer as success", event(success=BIG), 422, "invalid_events", "success",
     "must be true or false"),
    ("beyond JSON's depth limit", event(metadata="[" * 2000 + "]" * 2000), 400,
     "malformed_json", None, "depth limit exceeded"),
    ("infinite number", event(metadata='{"x": 1e400}'), 400, "malformed_json", None,
     "number is infinity"),
    ("NaN", event(metadata='{"x": NaN}'), 400, "malformed_json", None, "not valid JSON"),
    ("lone surrogate", event(description='"\\ud800"'), 400, "malformed_json", None,
     "surrogate"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "status", "code", "field", "message"),
    [case[1:] for case in EDGES],
    ids=[case[0] for case in EDGES],
)
def test_values_at_the_edge_of_a_type_are_refused_with_a_field_error(
    service: AuditService,
    client: ASGIClient,
    events: bytes,
    status: int,
    code: str,
    field: str | None,
    message: str,
) -> None:
    assert_refused(service, client, events, status, code, field, message)


def test_values_just_inside_the_edges_are_stored_as_sent(
    service: AuditService, client: ASGIClient
) -> None:
    # Year 1 is inside the type, but past TRAILKEEPER_MAX_PAST_DAYS: raise it, as an import
    # of an old log would.
    limits = replace(service.rules.limits, max_past=timedelta(days=3_700_000))
    service.rules = replace(service.rules, limits=limits)
    inside = event(
        time='"0001-01-01T00:00:00Z"',
        metadata='{"max": 9007199254740991, "min": -9007199254740991, "f": 9.2e18}',
    )
    response = send(client, inside)
    assert response.status_code == 202, response.text
    stored = client.get(f"/v1/events/{response.json()['events'][0]['id']}").json()
    assert stored["time"] == "0001-01-01T00:00:00.000000Z"
    assert stored["metadata"] == {"max": 2**53 - 1, "min": -(2**53 - 1), "f": 9.2e18}


# -- class 1: characters that break line-based readers -----------------------------------------

LINE_BREAKERS: list[tuple[str, bytes, str, str]] = [
    # (id, events, field, message); each character written as a JSON escape
    ("NEL in the actor name", event(actor='{"id": "a", "name": "Al\\u0085ice"}'), "actor.name",
     "must not contain control characters (U+0085 at position 2)"),
    ("line separator in the user agent", event(user_agent='"curl\\u2028/8"'), "user_agent",
     "must not contain line or paragraph separators (U+2028 at position 4)"),
    ("paragraph separator in a target name",
     event(targets='[{"type": "model", "id": "m", "name": "x\\u2029"}]'), "targets[0].name",
     "must not contain line or paragraph separators (U+2029 at position 1)"),
    ("first C1 control in the email", event(actor='{"id": "a", "email": "a\\u0080@b.c"}'),
     "actor.email", "must not contain control characters (U+0080"),
    ("last C1 control in the description", event(description='"ok\\u009f"'), "description",
     "must not contain control characters (U+009F"),
    ("line separator in a multi-line description", event(description='"a\\nb\\u2028c"'),
     "description", "must not contain line or paragraph separators (U+2028 at position 3)"),
    ("NEL in a details line", event(details='["fine", "bad\\u0085"]'), "details[1]",
     "must not contain control characters (U+0085"),
    ("paragraph separator in an error message",
     event(success="false", error='{"code": "e", "message": "m\\u2029"}'), "error.message",
     "must not contain line or paragraph separators (U+2029"),
    ("NEL in a changes field name", event(changes='{"na\\u0085me": {"to": 1}}'), "changes",
     "must not contain control characters (U+0085"),
    ("C0 control still refused", event(user_agent='"a\\u001bb"'), "user_agent",
     "must not contain control characters (U+001B"),
    ("unknown field named with a line separator", event(**{"x\\u2028": "1"}), "x\\u2028",
     "is not an event field"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "field", "message"),
    [case[1:] for case in LINE_BREAKERS],
    ids=[case[0] for case in LINE_BREAKERS],
)
def test_text_fields_refuse_characters_that_break_lines(
    service: AuditService, client: ASGIClient, events: bytes, field: str, message: str
) -> None:
    assert_refused(service, client, events, 422, "invalid_events", field, message)


# Every character str.splitlines splits on besides CR and LF, and CR LF themselves.
BREAKERS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
PLANTED = f"Mozilla/5.0 {BREAKERS} \r\n end"


def plant(db: str, count: int) -> list[str]:
    """Store ``count`` events holding every line breaker, straight into the store (as a
    version that did not refuse them would have), bypassing validation; returns their ids."""
    store = open_store(db)
    try:
        prepared = []
        for i in range(count):
            raw = {"actor": "mallory", "operation": "model.create", "time": "2026-01-01T00:00:00Z"}
            event = parse_event(
                raw, org_id="acme", received_at=datetime.now(UTC), rules=EventRules()
            ).event
            event = replace(
                event,
                user_agent=PLANTED,
                actor=Actor("mallory", "user", f"Mal{BREAKERS}lory", None),
                description=f"line one{BREAKERS}line two {i}",
                targets=(Target("model", "m1", f"x{BREAKERS}y"),),
                details=(BREAKERS, "tail\r"),
                metadata={f"k{BREAKERS}": BREAKERS},
            )
            canonical = event.canonical_bytes()
            prepared.append(PreparedEvent(event, canonical, leaf_hash(canonical)))
        store.append("acme", prepared)
    finally:
        store.close()
    return [p.event.id for p in prepared]


@pytest.fixture
def planted(live_server: LiveServer) -> tuple[LiveServer, str, list[str]]:
    ids = plant(live_server.db, 3)
    return live_server, live_server.key("--org", "acme", "--scope", "events:read"), ids


def test_the_stream_never_has_a_raw_line_break_inside_a_message(
    planted: tuple[LiveServer, str, list[str]],
) -> None:
    server, key, ids = planted
    with httpx.stream(
        "GET", f"{server.url}/v1/events/stream", params={"backlog": 10},
        headers={"Authorization": f"Bearer {key}"}, timeout=10,
    ) as response:  # fmt: skip
        raw = b""
        for chunk in response.iter_bytes():
            raw += chunk
            if raw.count(b"\ndata: ") == len(ids) and raw.endswith(b"\n\n"):
                break
    assert b"\r" not in raw
    messages = [m for m in raw.split(b"\n\n") if m.startswith(b"id: ")]
    assert len(messages) == len(ids)
    for message in messages:
        id_line, data_line = message.split(b"\n")  # exactly two lines: nothing else broke
        assert id_line.startswith(b"id: ")
        event = json.loads(data_line.removeprefix(b"data: "))
        assert event["user_agent"] == PLANTED
    assert "\u2028".encode() in raw  # sent as it is stored: only JSON's escapes are applied


def test_the_client_and_cli_tail_events_stored_with_line_breakers(
    planted: tuple[LiveServer, str, list[str]],
) -> None:
    server, key, ids = planted
    with Client(server.url, key) as client:
        tail = client.events.tail(backlog=10, operation="model.create")
        tailed = [e for _, e in zip(range(len(ids)), tail, strict=False)]
        jsonl = b"".join(client.events.export("jsonl", operation="model.create"))
        exported_csv = b"".join(client.events.export("csv", operation="model.create")).decode()
    assert [e["id"] for e in tailed] == ids
    assert all(e["user_agent"] == PLANTED for e in tailed)
    assert tailed[0]["actor"]["name"] == f"Mal{BREAKERS}lory"
    assert tailed[0]["metadata"] == {f"k{BREAKERS}": BREAKERS}

    lines = jsonl.split(b"\n")  # JSON Lines: one event per LF, whatever the text holds
    assert lines[-1] == b""
    assert [json.loads(line)["id"] for line in lines[:-1]] == ids
    rows = list(csv.DictReader(io.StringIO(exported_csv, newline="")))
    assert [r["id"] for r in rows] == ids
    assert rows[0]["description"] == f"line one{BREAKERS}line two 0"

    result = run_cli(
        "tail", "operation:model.create", "--url", server.url, "--key", key,
        "--count", str(len(ids)),
        "--format", "jsonl", timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.split("\n") if line]
    assert [e["id"] for e in printed] == ids


def test_the_async_client_tails_events_stored_with_line_breakers(
    planted: tuple[LiveServer, str, list[str]],
) -> None:
    import asyncio

    from trailkeeper.client import AsyncClient

    server, key, ids = planted

    async def follow() -> list[dict[str, Any]]:
        got = []
        async with AsyncClient(server.url, key) as client:
            async for event in client.events.tail(backlog=10, operation="model.create"):
                got.append(event)
                if len(got) == len(ids):
                    break
        return got

    got = asyncio.run(follow())
    assert [e["id"] for e in got] == ids
    assert got[-1]["description"] == f"line one{BREAKERS}line two 2"


CAPTURED_TEXT: list[tuple[str, dict[str, Any], str, Any]] = [
    # (id, what record() is given, the field, what the event then holds)
    ("NEL in the user agent", {"user_agent": "curl\x85/8"}, "user_agent", "curl\ufffd/8"),
    ("separators in the user agent", {"user_agent": "a\u2028b\u2029c"}, "user_agent",
     "a\ufffdb\ufffdc"),
    ("tab and C0 in the user agent", {"user_agent": "a\tb\x00c\x1b"}, "user_agent",
     "a\ufffdb\ufffdc\ufffd"),
    ("lone surrogate in the user agent", {"user_agent": "a\ud800"}, "user_agent", "a\ufffd"),
    ("C1 in the actor name", {"actor": {"id": "a", "name": "Bob\x9b"}}, "actor",
     {"id": "a", "name": "Bob\ufffd"}),
    ("separator in a target name", {"targets": [{"type": "model", "id": "m", "name": "x\u2028"}]},
     "targets", [{"type": "model", "id": "m", "name": "x\ufffd"}]),
    ("line breaks kept in a description", {"description": "a\nb\r\n\tc\u2029"},
     "description", "a\nb\r\n\tc\ufffd"),
    ("NEL in details", {"details": ["ok", "x\x85\ny"]}, "details", ["ok", "x\ufffd\ny"]),
    ("separator in an error message", {"error": {"code": "e", "message": "m\u2028"}}, "error",
     {"code": "e", "message": "m\ufffd"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "field", "expected"),
    [case[1:] for case in CAPTURED_TEXT],
    ids=[case[0] for case in CAPTURED_TEXT],
)
def test_the_capture_sdk_replaces_refused_characters_and_the_log_takes_the_event(
    service: AuditService, clock: FakeClock, given: dict[str, Any], field: str, expected: Any
) -> None:
    before = json.dumps(given)
    with capture_events(validate=False) as captured:  # as the SDK sends it
        Recorder.embedded(service, "acme").record("model.create", **given)
    assert captured[0][field] == expected
    assert json.dumps(given) == before  # the caller's values are left as they were
    now_ns = int(clock.now.timestamp()) * 10**9
    with Recorder.embedded(service, "acme", clock=lambda: now_ns) as recorder:
        recorder.record("model.create", **given)
        assert recorder.flush(10)
        assert recorder.counters().failed == 0
    stored = service.search("acme").events[0].event.to_dict()[field]
    assert holds(stored, expected), stored


def holds(stored: Any, expected: Any) -> bool:
    """Whether ``stored`` has everything ``expected`` has (the log adds absent fields)."""
    if isinstance(expected, dict):
        return all(holds(stored.get(k), v) for k, v in expected.items())
    if isinstance(expected, list):
        return len(stored) == len(expected) and all(map(holds, stored, expected))
    return bool(stored == expected)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"evil\x85agent", "evil\ufffdagent"),  # NEL as latin-1 decodes it
        (b"a\x80b\x9fc", "a\ufffdb\ufffdc"),
        (b"tab\there", "tab\ufffdhere"),
        (b"curl/8.0", "curl/8.0"),
    ],
)
def test_the_middleware_keeps_an_event_whose_user_agent_holds_controls(
    service: AuditService, clock: FakeClock, header: bytes, expected: str
) -> None:
    from trailkeeper.capture import AuditMiddleware

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    now_ns = int(clock.now.timestamp()) * 10**9
    with Recorder.embedded(service, "acme", clock=lambda: now_ns) as recorder:
        client = ASGIClient(
            AuditMiddleware(app, recorder=recorder, routes={"GET /x": "model.update"})
        )
        try:
            assert client.get("/x", headers=[(b"user-agent", header)]).status_code == 200
        finally:
            client.close()
        assert recorder.flush(10)
        assert recorder.counters().failed == 0
    stored = service.search("acme").events
    assert [e.event.user_agent for e in stored] == [expected]


# -- class 5: responses that amplify -----------------------------------------------------------

UNKNOWN_KEYS = b", ".join(b'"k%d": 0' % i for i in range(500))
AMPLIFIERS: list[tuple[str, bytes, int, int, str]] = [
    # (id, events, errors found, invalid events, the detail)
    ("1,000 invalid events", b", ".join([b'{"actor": 5}'] * 1000), 2000, 1000,
     "1,000 event(s) are invalid"),
    ("1,000 events of five problems", b", ".join([b'{"actor": 5, "operation": 1, "time": 2, '
     b'"success": 3, "source_ip": 4}'] * 1000), 5000, 1000, "1,000 event(s)"),
    ("one event with 500 unknown fields", b"{" + UNKNOWN_KEYS + b"}", 502, 1,
     "1 event(s) are invalid"),
    ("one actor with 500 unknown fields", event(actor=b'{"id": "a", ' .decode()
     + UNKNOWN_KEYS.decode() + "}"), 500, 1, "1 event(s)"),
    ("valid and invalid mixed", b", ".join([GOOD, b'{"actor": 5}'] * 300), 600, 300,
     "300 event(s)"),
    ("just under the cap", b", ".join([b'{"operation": "model.create"}'] * 100), 100, 100,
     "100 event(s)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "found", "invalid", "detail"),
    [case[1:] for case in AMPLIFIERS],
    ids=[case[0] for case in AMPLIFIERS],
)
def test_an_invalid_batch_lists_at_most_100_errors_and_counts_them_all(
    service: AuditService, client: ASGIClient, events: bytes, found: int, invalid: int,
    detail: str,
) -> None:  # fmt: skip
    problem = assert_refused(service, client, events, 422, "invalid_events", None, detail)
    assert problem["error_count"] == found
    assert len(problem["errors"]) == min(found, 100)
    if found > 100:  # the first 99 problems, then a note of how many more
        assert problem["errors"][-1]["field"] == "(more)"
        assert (
            problem["errors"][-1]["message"]
            == f"{found - 99:,} more problem(s) found and not listed"
        )
        assert isinstance(problem["errors"][-1]["index"], int)
    assert {e["index"] for e in problem["errors"]} <= set(range(2000))
    assert all(e["message"] and e["field"] for e in problem["errors"])
    assert len(json.dumps(problem)) < 32 * 1024


@pytest.mark.parametrize("fields", [1, 100, 101, 20_000])
def test_unknown_top_level_fields_are_listed_at_most_100_and_all_counted(
    service: AuditService, client: ASGIClient, fields: int
) -> None:
    before = service.size("acme")
    body = b"{" + b"".join(b'"x%d": 0, ' % i for i in range(fields)) + b'"events": [' + GOOD + b"]}"
    response = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "invalid_body"
    assert problem["error_count"] == fields
    assert [e["field"] for e in problem["errors"]] == [f"x{i}" for i in range(min(fields, 100))]
    assert problem["detail"].startswith("unknown field(s) ['x0'")
    assert ("more" in problem["detail"]) == (fields > 5)
    assert len(json.dumps(problem)) < 16 * 1024
    assert service.size("acme") == before
    assert send(client, GOOD).status_code == 202


def test_a_batch_of_many_bad_events_keeps_only_100_errors_while_validating(
    service: AuditService,
) -> None:
    # A thousand events of a hundred problems each: 100,000 problems found, 100 kept.
    bad = {f"k{i}": 0 for i in range(100)}
    batch = [{**bad, "n": n} for n in range(1000)]
    before = service.size("acme")
    tracemalloc.start()
    try:
        with pytest.raises(EventValidationError) as refused:
            service.ingest("acme", batch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.error_count == 1000 * 103  # 101 unknown fields, actor, operation
    assert refused.value.event_count == 1000
    assert len(refused.value.errors) == 100
    assert peak < 4 * 1024 * 1024, peak  # a list of every problem took ~14 MiB
    assert service.size("acme") == before
