"""Hostile sites, class 6: another site can neither sign a browser in or out of the console,
and signing out ends the session on every server sharing the database.

The table runs in-process, one refused request per case; the browser tests run Debian's
chromium against ``trailkeeper serve`` with an attacker's page served from another port.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from conftest import ASGIClient, LiveServer, serving
from trailkeeper.server import create_app
from trailkeeper.server.console._session import COOKIE
from trailkeeper.service import AuditService

CHROMIUM = "/usr/bin/chromium"
SECRET = b"s" * 32
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _token(client: ASGIClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert found
    return found.group(1)


# (name, which form, extra headers, whether the form's token is sent, status, text shown)
CASES: list[tuple[str, str, dict[str, str], bool, int, str]] = [
    ("login from another site (fetch metadata)", "login", {"Sec-Fetch-Site": "cross-site"},
     True, 403, "came from another site"),
    ("login from another port (same-site is not same-origin)", "login",
     {"Sec-Fetch-Site": "same-site"}, True, 403, "came from another site"),
    ("login with another Origin", "login", {"Origin": "http://evil.example"}, True, 403,
     "came from another site"),
    ("login with Origin null", "login", {"Origin": "null"}, True, 403, "came from another site"),
    ("login without the form's token (curl)", "login", {}, False, 403,
     "did not come from this console"),
    ("logout from another site", "logout", {"Sec-Fetch-Site": "cross-site"}, True, 403,
     "came from another site"),
    ("logout with another Origin", "logout", {"Origin": "http://127.0.0.1:1"}, True, 403,
     "came from another site"),
    ("logout without the session's token (curl)", "logout", {}, False, 403,
     "came from another site"),
    ("login from the console itself", "login", {"Sec-Fetch-Site": "same-origin"}, True, 303, ""),
    ("login with its own Origin", "login", {"Origin": "http://trailkeeper.test"}, True, 303, ""),
    ("logout from the console itself", "logout", {"Sec-Fetch-Site": "same-origin"}, True, 303,
     ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("form", "headers", "with_token", "status", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_console_forms_accept_only_their_own_origin(
    service: AuditService,
    form: str,
    headers: dict[str, str],
    with_token: bool,
    status: int,
    text: str,
) -> None:
    _, victim = service.keys.create("acme", ["events:read"])
    _, attacker = service.keys.create("evil", ["events:read"])
    client = ASGIClient(create_app(service, session_secret=SECRET))
    try:
        signed = client.post(
            "/console/login", content=f"key={victim}&csrf={_token(client)}", headers=FORM
        )
        assert signed.status_code == 303
        cookie = signed.cookies[COOKIE]
        client._client.cookies.delete(COOKIE)
        session = {"Cookie": f"{COOKIE}={cookie}"}
        if form == "login":
            token = _token(client) if with_token else ""
            body = f"key={attacker}&next=/console&csrf={token}"
            response = client.post("/console/login", content=body, headers={**FORM, **headers})
        else:
            page = client.get("/console", headers=session).text
            token = re.findall(r'name="csrf" value="([^"]+)"', page)[0] if with_token else ""
            response = client.post(
                "/console/logout", content=f"csrf={token}", headers={**FORM, **session, **headers}
            )
        assert response.status_code == status, response.text
        assert text in response.text
        if status == 403:
            assert COOKIE not in response.headers.get("set-cookie", "")
            # Nothing changed: the victim's session still reads acme's log, nobody else's.
            still = client.get("/console", headers=session)
            assert still.status_code == 200
            assert 'data-org="acme"' in still.text
        assert client.get("/healthz").status_code == 200
    finally:
        client.close()


def test_a_copied_cookie_stops_working_after_sign_out_on_every_server(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {"TRAILKEEPER_SESSION_SECRET": "x" * 40}
    with serving(db, env=env) as one, serving(db, env=env) as two:
        key = one.key("--org", "acme", "--scope", "events:read")
        with httpx.Client(base_url=one.url) as browser:
            page = browser.get("/console/login").text
            token = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
            browser.post("/console/login", data={"key": key, "csrf": token})
            copied = browser.cookies[COOKIE]
            for server in (one, two):
                read = httpx.get(f"{server.url}/v1/events", cookies={COOKIE: copied})
                assert read.status_code == 200
            page = browser.get("/console").text
            token = re.findall(r'name="csrf" value="([^"]+)"', page)[0]
            out = browser.post("/console/logout", data={"csrf": token})
            assert out.status_code == 303
        for server in (one, two):
            refused = httpx.get(f"{server.url}/v1/events", cookies={COOKIE: copied})
            assert refused.status_code == 401
            assert refused.json()["code"] == "ended_session"
            console = httpx.get(f"{server.url}/console", cookies={COOKIE: copied})
            assert console.status_code == 303


class _Attacker(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path, "").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def _auto_submit(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    return (
        f'<form method="post" action="{action}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


@pytest.mark.slow
def test_another_site_can_neither_sign_a_browser_in_nor_out(
    tmp_path: Path, attacker: str, browser: Browser
) -> None:
    with serving(f"sqlite:///{tmp_path / 'csrf.db'}") as live:
        victim = live.key("--org", "acme", "--scope", "events:read")
        evil = live.key("--org", "evil", "--scope", "events:read")
        _Attacker.pages = {
            "/login": _auto_submit(f"{live.url}/console/login", {"key": evil, "next": "/console"}),
            "/logout": _auto_submit(f"{live.url}/console/logout", {}),
        }
        context = browser.new_context()
        page = context.new_page()
        # Login CSRF against a browser that is not signed in.
        page.goto(f"{attacker}/login")
        expect(page.get_by_test_id("login-error")).to_contain_text("came from another site")
        page.goto(f"{live.url}/console")
        expect(page).to_have_url(re.compile(r"/console/login"))
        _sign_in(page, live, victim)
        # Login CSRF against a signed-in browser: it stays in its own org.
        page.goto(f"{attacker}/login")
        expect(page.get_by_test_id("login-error")).to_contain_text("came from another site")
        page.goto(f"{live.url}/console")
        expect(page.get_by_test_id("org")).to_have_text("acme")
        # Logout CSRF.
        page.goto(f"{attacker}/logout")
        expect(page.get_by_test_id("refused")).to_contain_text("came from another site")
        page.goto(f"{live.url}/console")
        expect(page.get_by_test_id("org")).to_have_text("acme")
        # The console's own sign-out works, and a copy of its cookie stops working.
        copied = next(c for c in context.cookies() if c["name"] == COOKIE)
        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("login-notice")).to_contain_text("signed out")
        thief = browser.new_context()
        thief.add_cookies([copied])  # type: ignore[list-item]
        stolen = thief.new_page()
        stolen.goto(f"{live.url}/console")
        expect(stolen).to_have_url(re.compile(r"/console/login"))
        assert stolen.request.get(f"{live.url}/v1/events").status == 401
        thief.close()
        context.close()


def _sign_in(page: object, live: LiveServer, key: str) -> None:
    page.get_by_test_id("login-key").fill(key)  # type: ignore[attr-defined]
    page.get_by_test_id("login-submit").click()  # type: ignore[attr-defined]
    expect(page.get_by_test_id("org")).to_have_text("acme")  # type: ignore[attr-defined]
