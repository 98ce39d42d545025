"""What a second hostile review found after the first round of fixes, each pinned down.

Forged console tokens, IPv6 zones, a stream cut mid-message, secrets in other shapes, and
CSV cells whose formula hides behind a blank or a full-width sign.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import ASGIClient
from trailkeeper.client import Client
from trailkeeper.events import Redactor
from trailkeeper.export import csv_cell
from trailkeeper.server import create_app
from trailkeeper.service import AuditService

REDACTED = "[REDACTED]"


@pytest.fixture
def app_client(service: AuditService) -> Iterator[ASGIClient]:
    read = service.keys.create("acme", ["events:read"])[1]
    client = ASGIClient(create_app(service), {"Authorization": f"Bearer {read}"})
    yield client
    client.close()


@pytest.mark.parametrize("token", ["%C3%A9", "%E2%82%AC" * 20, "%F0%9F%94%91"])
def test_a_console_form_token_with_non_ascii_characters_is_refused_not_a_500(
    service: AuditService, token: str
) -> None:
    client = ASGIClient(create_app(service))
    try:
        client.get("/console/login")
        for path in ("/console/login", "/console/logout"):
            response = client.post(
                path,
                content=f"key=tk_x&csrf={token}",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code in (303, 403), (path, response.status_code)
        assert client.get("/healthz").status_code == 200
    finally:
        client.close()


@pytest.mark.parametrize(
    "request_args",
    [
        {"params": {"source_ip": "fe80::1%eth0"}},
        {"params": {"q": "ip:fe80::1%eth0"}},
        {"params": {"source_ip": "fe80::/64%1"}},
    ],
)
def test_an_ipv6_zone_in_a_filter_is_a_clear_400(
    service: AuditService, app_client: ASGIClient, request_args: dict[str, Any]
) -> None:
    for path in ("/v1/events", "/v1/events/export", "/v1/stats/activity"):
        response = app_client.get(path, **request_args)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == "invalid_query"
        assert "not an IP address" in response.json()["detail"]


def test_a_read_from_a_zoned_link_local_peer_records_its_address(service: AuditService) -> None:
    read = service.keys.create("acme", ["events:read"])[1]
    client = ASGIClient(
        create_app(service, trusted_proxies=["127.0.0.0/8"]),
        {"Authorization": f"Bearer {read}", "X-Forwarded-For": "fe80::1%eth0"},
    )
    try:
        assert client.get("/v1/apps").status_code == 200
    finally:
        client.close()
    service.flush_reads()
    record = [e for e in service.scan("acme") if e.event.operation == "audit_log.search"][-1]
    assert record.event.source_ip == "fe80::1"


def _message(seq: int) -> bytes:
    body = b'{"seq": %d, "operation": "model.create"}' % seq
    return b"id: %d\ndata: " % seq + body + b"\n\n"


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(b"id: 2\n", id="after the id line"),
        pytest.param(b'id: 2\ndata: {"seq": 2', id="inside the data"),
        pytest.param(
            b'id: 2\ndata: {"seq": 2, "operation": "model.create"}\n', id="before the end"
        ),
    ],
)
def test_tail_resumes_before_a_message_its_connection_cut(cut: bytes) -> None:
    resumed_from: list[str | None] = []

    def serve(request: httpx.Request) -> httpx.Response:
        resumed_from.append(request.headers.get("last-event-id"))
        if len(resumed_from) == 1:

            def cut_short() -> Iterator[bytes]:
                yield b"retry: 2000\n\n" + _message(1) + cut
                raise httpx.ReadError("connection reset")

            return httpx.Response(200, content=cut_short())
        after = int(resumed_from[-1] or 0)
        return httpx.Response(200, content=b"".join(_message(s) for s in range(after + 1, 4)))

    client = Client("http://tk.test", "tk_x", transport=httpx.MockTransport(serve))
    try:
        got = []
        for event in client.events.tail():
            got.append(event["seq"])
            if len(got) == 3:
                break
    finally:
        client.close()
    assert got == [1, 2, 3]
    assert resumed_from[:2] == [None, "1"]


REDACTION_CASES = [
    ([{"Name": "API_KEY", "Value": "v1"}], [{"Name": "API_KEY", "Value": REDACTED}]),
    ({"key": "password", "val": "x"}, {"key": "password", "val": REDACTED}),
    ({"k": "token", "v": "y"}, {"k": "token", "v": REDACTED}),
    ("Authorization: Bearer abcdefghijklmnop", "Authorization:" + REDACTED),
    ("token=eyJhbGciOi.eyJzdWIiOi.c2ln", "token=" + REDACTED),
    ("https://u:p4ss@db.internal/x", "https://" + REDACTED + "@db.internal/x"),
    ("/cb?access_token=abc123&x=1", "/cb?" + REDACTED + "&x=1"),
    ("Basic dTpw", REDACTED),
    ({"pass": 1, "pw": 2, "pin": 3, "totp": 4, "mfa_code": 5, "dsn": "x"}, None),
    ({"connection_string": "y", "Passwort": 1, "mot_de_passe": 2, "contraseña": 3}, None),
    ({"pássword": 4, "pass\u3164word": 5}, None),
]


@pytest.mark.parametrize(("value", "expected"), REDACTION_CASES)
def test_secrets_in_other_shapes_are_redacted(value: Any, expected: Any) -> None:
    redacted = Redactor().redact(value)
    if expected is None:  # every value of the dict
        assert set(redacted.values()) == {REDACTED}
    else:
        assert redacted == expected


@pytest.mark.parametrize(
    "kept",
    [
        {"max_tokens": 5, "tokenizer": "bpe", "author": "a", "path": "/x", "passes": 3},
        {"note": "basic settings of the app"},
        {"pinned": True, "pipeline": "p"},
    ],
)
def test_ordinary_names_and_prose_are_kept(kept: dict[str, Any]) -> None:
    assert Redactor().redact(kept) == kept


@pytest.mark.parametrize(
    "cell", [" =1+1", "\u00a0=1+1", "\u3000=1", "\uff1d1+1", "\uff0bcmd", "\uff20SUM(1)"]
)
def test_a_formula_behind_a_blank_or_a_full_width_sign_is_neutralised(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell
