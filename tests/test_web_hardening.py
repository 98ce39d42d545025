"""Hostile clients, class 9: slow and greedy connections, sniffing, crashes, open metrics.

Each case asserts the answer (status, code, message), that nothing stored changed, and that
the server still answers. Connection behaviour runs against ``trailkeeper serve`` on a real
port; the rest against the app in-process.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from conftest import ASGIClient, serving
from trailkeeper.server import create_app
from trailkeeper.service import AuditService

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def secrets(service: AuditService) -> dict[str, str]:
    return {
        scope: service.keys.create("acme", [scope])[1]
        for scope in ("events:read", "events:write", "admin")
    }


@pytest.fixture
def app_client(service: AuditService) -> Iterator[ASGIClient]:
    app = create_app(service, metrics_key="admin")

    @app.get("/v1/boom", include_in_schema=False)
    async def boom() -> None:  # a bug: what a crash looks like from outside
        raise RuntimeError("database password is hunter2")

    client = ASGIClient(app)
    yield client
    client.close()


# (name, method, path, key scope or a raw authorization header, status, code, detail part)
CASES: list[tuple[str, str, str, str | None, int, str | None, str | None]] = [
    ("health says nosniff", "GET", "/healthz", None, 200, None, None),
    ("JSON says nosniff", "GET", "/v1/events", "events:read", 200, None, None),
    ("exports say nosniff", "GET", "/v1/events/export?format=csv", "events:read", 200, None, None),
    ("problems say nosniff", "GET", "/v1/nothing", None, 404, "not_found", "Not Found"),
    ("a crash is a problem with an id to quote", "GET", "/v1/boom", None,
     500, "internal_error", "the server failed to answer; quote "),
    ("metrics need a key", "GET", "/metrics", None, 401, "missing_key", "needs an API key"),
    ("metrics need an admin key", "GET", "/metrics", "events:read", 403, "forbidden",
     "lacks the 'admin' scope"),
    ("an admin key reads metrics", "GET", "/metrics", "admin", 200, None, None),
    ("the Clarifai face asks for Key, not Bearer", "POST", "/v2/users/me/audit_log/searches",
     None, 401, None, "authorization: Key <your Trailkeeper API key>"),
    ("the docs are served from here", "GET", "/docs", None, 200, None, None),
    ("Swagger UI's script is served from here", "GET", "/docs/static/swagger-ui-bundle.js", None,
     200, None, None),
    ("no ReDoc page that loads from a CDN", "GET", "/redoc", None, 404, "not_found", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "scope", "status", "code", "detail"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_response_is_hardened(
    app_client: ASGIClient,
    service: AuditService,
    secrets: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    scope: str | None,
    status: int,
    code: str | None,
    detail: str | None,
) -> None:
    service.flush_reads()
    before = service.size("acme")
    headers = {"Authorization": f"Bearer {secrets[scope]}"} if scope else {}
    with caplog.at_level(logging.ERROR, logger="trailkeeper"):
        response = app_client.request(method, path, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    if code is not None:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    if detail is not None:
        assert detail in response.text
    if status == 500:
        problem = response.json()
        assert "hunter2" not in response.text
        assert "RuntimeError" not in response.text
        assert problem["request_id"] == response.headers["x-request-id"]
        assert problem["request_id"] in problem["detail"]
        logged = [r for r in caplog.records if problem["request_id"] in r.getMessage()]
        assert logged, caplog.text
        assert logged[0].exc_info is not None  # the traceback, for the operator only
    if path == "/docs":
        assert "/docs/static/swagger-ui-bundle.js" in response.text
        assert "https://" not in response.text
        assert "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
    if "Clarifai" in path or path.startswith("/v2/"):
        assert "Bearer" not in response.text
    service.flush_reads()
    recorded = status == 200 and path.startswith("/v1/")  # the read's own audit record
    assert service.size("acme") == before + recorded
    assert app_client.get("/healthz").status_code == 200


def _half_requests(port: int, count: int, data: bytes) -> list[socket.socket]:
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if data:
            sock.sendall(data)
        opened.append(sock)
    return opened


def _answer(sock: socket.socket) -> bytes:
    """What the server sends before it closes the connection (b"" if it just closes)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


# (name, what each slow client sends, how many, the answer it gets before the server hangs up)
SLOW: list[tuple[str, bytes, int, bytes]] = [
    ("half a request line", b"GET /v1/eve", 200, b"HTTP/1.1 408 Request Timeout"),
    ("headers without their end", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n", 100,
     b'"code":"request_timeout"'),
    ("nothing at all", b"", 50, b"HTTP/1.1 408"),
    ("half a body", b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 100\r\n\r\n{\"events\": [", 20, b""),
]  # fmt: skip


@pytest.mark.slow
def test_slow_clients_are_disconnected_and_the_server_stays_up(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'slow.db'}"
    env = {"TRAILKEEPER_HEADER_TIMEOUT": "1", "TRAILKEEPER_LIMIT_CONCURRENCY": "1000"}
    with serving(db, env=env) as live:
        port = int(live.url.rsplit(":", 1)[1])
        writer = live.key("--org", "acme", "--scope", "events:write")
        for name, data, count, answer in SLOW:
            started = time.monotonic()
            held = _half_requests(port, count, data)
            answers = [_answer(sock) for sock in held]
            waited = time.monotonic() - started
            assert waited < 8, (name, waited)  # 1 s each, all at once: not 1 s in turn
            assert all(answer in a for a in answers), (name, answers[:1])
            if answer:
                assert all(b"nosniff" in a for a in answers), name
            assert httpx.get(f"{live.url}/healthz", timeout=5).status_code == 200, name
        # The half-sent body stored nothing; a whole request still works.
        reader = live.key("--org", "acme", "--scope", "events:read")
        events = httpx.get(
            f"{live.url}/v1/events",
            headers={"Authorization": f"Bearer {reader}"},
            params={"operation": "model.create"},
            timeout=5,
        ).json()["events"]
        assert events == []
        event = {"actor": {"id": "ana", "type": "user"}, "operation": "model.create"}
        stored = httpx.post(
            f"{live.url}/v1/events",
            json={"events": [event]},
            headers={"Authorization": f"Bearer {writer}"},
            timeout=5,
        )
        assert stored.status_code == 202, stored.text


@pytest.mark.slow
def test_a_body_trickled_a_byte_at_a_time_is_cut_off(tmp_path: Any) -> None:
    # Each byte comes well within the gap allowed between pieces (1 s): only the whole
    # body's deadline (BODY_GAPS = 6 gaps) ends it, instead of 5 MiB taking weeks.
    db = f"sqlite:///{tmp_path / 'trickle.db'}"
    with serving(db, env={"TRAILKEEPER_HEADER_TIMEOUT": "1"}) as live:
        port = int(live.url.rsplit(":", 1)[1])
        head = (
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        (sock,) = _half_requests(port, 1, head)
        started = time.monotonic()
        closed_after = None
        sock.settimeout(0.3)
        while time.monotonic() - started < 20:
            try:
                sock.sendall(b" ")
                if sock.recv(65536) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        sock.close()
        assert closed_after is not None, "the trickled body was never cut off"
        assert 5 < closed_after < 10, closed_after
        assert httpx.get(f"{live.url}/healthz", timeout=5).status_code == 200


@pytest.mark.slow
def test_connections_over_the_limit_are_refused_until_slow_ones_are_gone(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'limit.db'}"
    env = {"TRAILKEEPER_HEADER_TIMEOUT": "2", "TRAILKEEPER_LIMIT_CONCURRENCY": "5"}
    with serving(db, env=env, seconds=30) as live:
        port = int(live.url.rsplit(":", 1)[1])
        held = _half_requests(port, 8, b"GET /healthz HTTP/1.1\r\n")
        refused = httpx.get(f"{live.url}/healthz", timeout=5)
        assert refused.status_code == 503
        assert refused.headers.get("x-content-type-options") in (None, "nosniff")
        for sock in held:
            _answer(sock)
        deadline = time.monotonic() + 10
        while httpx.get(f"{live.url}/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the server did not take requests again"
            time.sleep(0.1)


@pytest.mark.slow
def test_the_api_docs_load_without_any_request_leaving_the_machine(tmp_path: Any) -> None:
    with serving(f"sqlite:///{tmp_path / 'docs.db'}") as live, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page()
            requested: list[str] = []
            problems: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{live.url}/docs")
            page.locator(".opblock").first.wait_for(timeout=15_000)
            assert page.locator(".opblock").count() > 10
            assert "Trailkeeper" in page.locator(".title").first.inner_text()
            elsewhere = [url for url in requested if not url.startswith((live.url, "data:"))]
            assert elsewhere == []
            assert problems == []
        finally:
            browser.close()
