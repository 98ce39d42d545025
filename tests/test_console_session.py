"""The console's session: signed cookies, and what the API lets them do (in-process)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from conftest import ASGIClient
from trailkeeper.filters import Filters, Match
from trailkeeper.server import create_app
from trailkeeper.server.console._session import COOKIE, LIFETIME_SECONDS, sign, verify
from trailkeeper.service import AuditService

SECRET = b"s" * 32


def test_a_signed_value_verifies_to_its_key_id() -> None:
    session = verify(SECRET, sign(SECRET, "abc123", now=1000), now=1001)
    assert session is not None
    assert (session.key_id, session.expires) == ("abc123", 1000 + LIFETIME_SECONDS)
    assert session.id != verify(SECRET, sign(SECRET, "abc123", now=1000), now=1001).id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda v: v.replace(v.split(".")[0], sign(SECRET, "other", now=1000).split(".")[0]),
        lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),
        lambda v: v.split(".")[0],
        lambda v: "",
        lambda v: "x" * 600,
        lambda v: "not-base64!.@@@",
    ],
)
def test_a_forged_or_garbled_value_does_not_verify(tamper: object) -> None:
    value = sign(SECRET, "abc123", now=1000)
    assert verify(SECRET, tamper(value), now=1001) is None  # type: ignore[operator]


def test_another_servers_secret_or_an_old_value_does_not_verify() -> None:
    value = sign(SECRET, "abc123", now=1000)
    assert verify(b"t" * 32, value, now=1001) is None
    assert verify(SECRET, value, now=1000 + LIFETIME_SECONDS) is None


@pytest.fixture
def browser(service: AuditService) -> Iterator[ASGIClient]:
    client = ASGIClient(create_app(service, session_secret=SECRET))
    yield client
    client.close()


def form_token(browser: ASGIClient) -> str:
    """The sign-in form's token (its nonce cookie stays in the client's jar)."""
    page = browser.get("/console/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def signed_in(browser: ASGIClient, secret: str) -> str:
    response = browser.post(
        "/console/login",
        content=f"key={secret}&next=/console&csrf={form_token(browser)}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    browser._client.cookies.clear()  # each request below says which cookie it sends
    return str(response.cookies[COOKIE])


def test_the_session_reads_but_never_writes(
    service: AuditService, browser: ASGIClient, make_event: object
) -> None:
    _, secret = service.keys.create("acme", ["events:read", "events:write"], name="both")
    cookie = signed_in(browser, secret)
    assert browser.get("/v1/events", headers={"Cookie": f"{COOKIE}={cookie}"}).status_code == 200
    write = browser.post(
        "/v1/events",
        json={"events": [make_event()]},
        headers={"Cookie": f"{COOKIE}={cookie}"},  # type: ignore[operator]
    )
    assert write.status_code == 401
    assert write.json()["code"] == "missing_key"
    stored = service.search("acme", Filters(match=Match(operations=("model.create",))))
    assert stored.events == []


def test_revoking_the_key_ends_its_sessions(service: AuditService, browser: ASGIClient) -> None:
    key, secret = service.keys.create("acme", ["events:read"])
    cookie = signed_in(browser, secret)
    service.keys.revoke("acme", key.id)
    refused = browser.get("/v1/events", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "revoked_key"
    page = browser.get("/console", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login")


def test_a_forged_cookie_is_refused_with_its_own_code(browser: ASGIClient) -> None:
    refused = browser.get("/v1/events", headers={"Cookie": f"{COOKIE}=e30.AAAA"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_session"


def test_sign_in_sends_people_back_only_inside_the_console(
    service: AuditService, browser: ASGIClient
) -> None:
    _, secret = service.keys.create("acme", ["events:read"])
    for target, expected in [
        ("/console?status=failure", "/console?status=failure"),
        ("https://evil.example/", "/console"),
        ("//evil.example/console", "/console"),
        ("/console//evil.example", "/console"),
    ]:
        response = browser.post(
            "/console/login",
            content=f"key={secret}&next={target}&csrf={form_token(browser)}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.headers["location"] == expected


def test_console_pages_forbid_outside_scripts_and_framing(browser: ASGIClient) -> None:
    page = browser.get("/console/login")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script" not in page.text  # the sign-in page runs no script at all


def test_an_oversized_sign_in_form_is_refused_unread(browser: ASGIClient) -> None:
    token = form_token(browser)
    response = browser.post(
        "/console/login",
        content=f"csrf={token}&key=" + "x" * 100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert "did not come from this console" in response.text
