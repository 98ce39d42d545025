"""Hostile input over HTTP: each class of bad value is refused with a 4xx naming the field,
nothing is stored, and the server answers the next good request (issue #13).

One table per class. Every case is sent as raw JSON bytes, so what the server parses is
exactly what a stranger can send (big integers, escapes), not what a Python client would
make of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ASGIClient
from trailkeeper.server import create_app
from trailkeeper.service import AuditService

GOOD = b'{"actor": "alice", "operation": "model.create"}'


@pytest.fixture
def client(service: AuditService) -> Iterator[ASGIClient]:
    opened = ASGIClient(
        create_app(service),
        {"Authorization": f"Bearer {service.create_key('acme', ['admin'])[1]}"},
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
