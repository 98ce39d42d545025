"""The console in a real browser: Debian's chromium driven by Playwright, against
``trailkeeper serve`` on a real port. Needs /usr/bin/chromium (``make test`` installs it);
without it these tests fail, they do not skip."""

from __future__ import annotations

import csv
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from conftest import LiveServer, serving
from trailkeeper.client import Client
from trailkeeper.service import AuditService

CHROMIUM = "/usr/bin/chromium"
APPS = ["fraud-detect", "general", "ocr"]
USERS = [("ana", "Ana Lima"), ("raj", "Raj Patel"), ("zoe", "Zoe Adams"), ("ci-bot", None)]
OPERATIONS = [
    ("model.create", "model"), ("model.update", "model"), ("workflow.create", "workflow"),
    ("application.update", "app"), ("deployment.create", "deployment"),
    ("organization.member.add", "user"),
]  # fmt: skip
HIDE_READS = "-operation:audit_log.search -operation:audit_log.export"

pytestmark = pytest.mark.slow


def _events(now: datetime) -> list[dict[str, Any]]:
    """150 events over the last ten days: three apps, four users, failures, shared requests."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    events = []
    for i in range(150):
        operation, target_type = OPERATIONS[i % len(OPERATIONS)]
        user, name = USERS[i % len(USERS)]
        when = today - timedelta(days=i % 10) + timedelta(hours=(i * 7) % 24, minutes=i % 60)
        when = min(when, now - timedelta(minutes=1))
        failed = i % 9 == 4
        events.append(
            {
                "time": when.isoformat(),
                "actor": {"id": user, "type": "service" if name is None else "user", "name": name},
                "operation": operation,
                "app_id": APPS[i % len(APPS)],
                "targets": [{"type": target_type, "id": f"{target_type}-{i % 7}",
                             "name": f"The {target_type} {i % 7}"}],
                "success": not failed,
                "error": {"code": "PERMISSION_DENIED", "message": "needs the admin role"}
                if failed else None,
                "source_ip": f"10.{i % 3}.0.{i % 250 + 1}" if i % 4 else f"2001:db8::{i:x}",
                "user_agent": "clarifai-python/11.0",
                "request_id": f"req-{i // 2:04d}",
                "details": [f"step {i}"],
                "changes": {"visibility": {"from": "private", "to": "public"}} if i % 5 == 0
                else {},
                "metadata": {"region": "eu-west-1", "attempt": i % 3},
            }
        )  # fmt: skip
    return events


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = f"sqlite:///{tmp_path_factory.mktemp('console') / 'console.db'}"
    with serving(db) as live:
        yield live


@pytest.fixture(scope="module")
def keys(server: LiveServer) -> dict[str, str]:
    made = {
        "read": server.key("--org", "acme", "--scope", "events:read", "--name", "analyst"),
        "write": server.key("--org", "acme", "--scope", "events:write"),
    }
    with Client(server.url, made["write"]) as producer:
        producer.record_many(_events(datetime.now(UTC)))
    return made


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        viewport={"width": 1280, "height": 800}, timezone_id="UTC", accept_downloads=True
    )
    yield opened
    opened.close()


def sign_in(page: Page, server: LiveServer, key: str, path: str = "/console") -> None:
    page.goto(server.url + path)
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.get_by_test_id("login-key").fill(key)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("org")).to_have_text("acme")


@pytest.fixture
def page(context: BrowserContext, server: LiveServer, keys: dict[str, str]) -> Page:
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(opened, server, keys["read"])
    wait_loaded(opened)
    yield opened  # type: ignore[misc]
    assert errors == [], errors


def wait_loaded(page: Page) -> None:
    expect(page.locator("#events tbody")).not_to_have_attribute("aria-busy", "true")


def row_ids(page: Page) -> list[str]:
    wait_loaded(page)
    return [
        str(row.get_attribute("data-event-id")) for row in page.get_by_test_id("event-row").all()
    ]


def api_ids(server: LiveServer, key: str, **filters: Any) -> list[str]:
    with Client(server.url, key) as client:
        return [e["id"] for e in client.events.list(**{"q": HIDE_READS, **filters})]


def test_filtering_by_apps_and_a_date_range_shows_what_the_api_returns(
    page: Page, server: LiveServer, keys: dict[str, str]
) -> None:
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=5), today - timedelta(days=3)
    page.get_by_test_id("filter-apps").locator("summary").click()
    page.locator('[data-testid="app-option"][value="fraud-detect"]').check()
    page.locator('[data-testid="app-option"][value="ocr"]').check()
    page.get_by_test_id("filter-range").select_option("custom")
    page.get_by_test_id("filter-from").fill(first.isoformat())
    page.get_by_test_id("filter-to").fill(last.isoformat())
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("filter-apps").locator(".summary-value")).to_have_text("2 apps")
    shown = row_ids(page)
    expected = api_ids(
        server, keys["read"], app=["fraud-detect", "ocr"],
        since=f"{first}T00:00:00Z", until=f"{last + timedelta(days=1)}T00:00:00Z",
    )  # fmt: skip
    assert 0 < len(expected) < 50
    assert shown == expected
    # The filter is in the address: a shared link opens the same view.
    query = parse_qs(urlparse(page.url).query)
    assert query["app"] == ["fraud-detect", "ocr"]
    assert (query["range"], query["from"], query["to"]) == (
        ["custom"],
        [first.isoformat()],
        [last.isoformat()],
    )
    other = page.context.new_page()
    other.goto(page.url)
    assert row_ids(other) == expected
    other.close()


def test_every_filter_lives_in_the_url_and_the_back_button_restores_it(
    page: Page, server: LiveServer, keys: dict[str, str]
) -> None:
    everything = row_ids(page)
    page.get_by_test_id("filter-status").select_option("failure")
    expect(page).to_have_url(re.compile(r"status=failure"))
    failures = row_ids(page)
    assert failures == api_ids(server, keys["read"], success=False, since=_week_start())
    page.get_by_test_id("filter-user").fill("raj")
    page.get_by_test_id("filter-ip").fill("10.0.0.0/8")
    page.get_by_test_id("filter-operations").locator("summary").click()
    page.locator('[data-testid="operation-option"][value="model.*"]').check()
    page.get_by_test_id("apply-filters").click()
    expect(page).to_have_url(re.compile(r"actor=raj.*ip=10\.0\.0\.0%2F8"))
    narrowed = row_ids(page)
    assert narrowed == api_ids(
        server, keys["read"], success=False, actor="raj", source_ip="10.0.0.0/8",
        operation="model.*", since=_week_start(),
    )  # fmt: skip
    page.go_back()
    expect(page.get_by_test_id("filter-user")).to_have_value("")
    assert row_ids(page) == failures
    page.go_back()
    expect(page.get_by_test_id("filter-status")).to_have_value("")
    assert row_ids(page) == everything


def _week_start() -> str:
    return f"{datetime.now(UTC).date() - timedelta(days=6)}T00:00:00Z"


def test_the_default_range_is_the_last_seven_days_including_today(page: Page) -> None:
    expect(page.get_by_test_id("filter-range")).to_have_value("7d")
    today = datetime.now(UTC).date().isoformat()
    first_time = page.get_by_test_id("event-row").first.locator("time").get_attribute("datetime")
    assert first_time is not None
    assert first_time.startswith(today)


def test_a_row_expands_to_targets_and_details_and_its_request_link(
    page: Page, server: LiveServer, keys: dict[str, str]
) -> None:
    row = page.get_by_test_id("event-row").filter(has_text="Raj Patel").first
    event_id = row.get_attribute("data-event-id")
    row.get_by_test_id("event-expand").click()
    with Client(server.url, keys["read"]) as client:
        event = client.events.get(str(event_id))
    details = page.get_by_test_id("event-details")
    target = event["targets"][0]
    expect(details.get_by_test_id("event-targets")).to_contain_text(
        f"{target['type']}: {target['id']} — {target['name']}"
    )
    expect(details.get_by_test_id("event-detail-lines")).to_have_text(event["details"][0])
    expect(details.get_by_test_id("event-metadata")).to_contain_text('"region": "eu-west-1"')
    expect(details).to_contain_text(event["user_agent"])
    expect(details).to_contain_text(event["leaf_hash"])
    details.get_by_test_id("request-link").click()
    expect(page.get_by_test_id("chip-request")).to_contain_text(event["request_id"])
    shown = row_ids(page)
    assert shown == api_ids(server, keys["read"], request_id=event["request_id"])
    assert len(shown) == 2  # the pair of events that request made


def test_clicking_a_target_shows_the_history_of_that_resource(
    page: Page, server: LiveServer, keys: dict[str, str]
) -> None:
    page.get_by_test_id("event-expand").first.click()
    link = page.get_by_test_id("target-link").first
    type_, _, id_ = str(link.text_content()).partition(": ")
    link.click()
    expect(page.get_by_test_id("chip-target")).to_contain_text(f"{type_}:{id_}")
    assert row_ids(page) == api_ids(server, keys["read"], target=f"{type_}:{id_}")
    page.get_by_test_id("chip-target").get_by_role("button").click()
    expect(page.get_by_test_id("chip-target")).to_have_count(0)


def test_a_row_opens_from_the_keyboard(page: Page) -> None:
    button = page.get_by_test_id("event-expand").first
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("event-details")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("event-details")).to_have_count(0)


def test_export_downloads_a_csv_of_the_tables_filter(
    page: Page, server: LiveServer, keys: dict[str, str], tmp_path: Path
) -> None:
    page.get_by_test_id("filter-status").select_option("failure")
    page.get_by_test_id("filter-search").fill("app:general")
    page.get_by_test_id("apply-filters").click()
    shown = row_ids(page)
    assert shown
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(saved.read_text().splitlines()))
    assert sorted(r["id"] for r in rows) == sorted(shown)
    assert {r["app_id"] for r in rows} == {"general"}
    assert {r["success"] for r in rows} == {"false"}


def test_paging_by_cursor_and_the_order_toggle(
    page: Page, server: LiveServer, keys: dict[str, str]
) -> None:
    page.get_by_test_id("filter-range").select_option("all")
    first = row_ids(page)
    page.get_by_test_id("pagination-next").click()
    expect(page.get_by_test_id("pagination-page")).to_have_text("Page 2")
    second = row_ids(page)
    every = api_ids(server, keys["read"])
    assert first + second == every[:100]
    page.get_by_test_id("pagination-first").click()
    assert row_ids(page) == first
    page.get_by_test_id("filter-order").click()
    expect(page.get_by_test_id("filter-order")).to_have_text("Oldest first")
    assert row_ids(page) == api_ids(server, keys["read"], order="asc")[:50]


def test_live_mode_shows_a_new_event_within_two_seconds(
    page: Page, server: LiveServer, keys: dict[str, str]
) -> None:
    page.get_by_test_id("live-toggle").check()
    expect(page.get_by_test_id("live-status")).to_have_text("Live: waiting for new events")
    with Client(server.url, keys["write"]) as producer:
        stored = producer.record(
            "model.delete", actor={"id": "mia", "name": "Mia Live"},
            targets=[{"type": "model", "id": "old-model"}], app_id="general",
        )  # fmt: skip
    started = time.monotonic()
    row = page.locator(f'[data-testid="event-row"][data-event-id="{stored["id"]}"]')
    expect(row).to_be_visible(timeout=2000)
    assert time.monotonic() - started < 2.0
    expect(row).to_contain_text("Mia Live")
    expect(page.get_by_test_id("live-status")).to_have_text("Live: 1 new")
    assert "live=1" in page.url


def test_live_mode_stops_and_says_so_when_the_key_is_revoked(
    context: BrowserContext, server: LiveServer
) -> None:
    with AuditService.open(server.db) as service:
        key, secret = service.keys.create("acme", ["events:read"], name="soon revoked")
    page = context.new_page()
    sign_in(page, server, secret)
    page.get_by_test_id("live-toggle").check()
    expect(page.get_by_test_id("live-status")).to_have_text("Live: waiting for new events")
    with AuditService.open(server.db) as service:
        service.keys.revoke("acme", key.id)
    status = page.get_by_test_id("live-status")
    expect(status).to_contain_text("signed out: the key was revoked", timeout=3000)
    expect(page.get_by_test_id("status-message")).to_have_attribute("role", "alert")
    page.wait_for_timeout(3000)  # EventSource would have retried by now (retry: 2000)
    expect(status).to_contain_text("signed out: the key was revoked")


def test_empty_and_error_states(page: Page) -> None:
    page.get_by_test_id("filter-user").fill("nobody-at-all")
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("No events match these filters")
    page.get_by_test_id("filter-search").fill("status:maybe")
    page.get_by_test_id("apply-filters").click()
    expect(page.get_by_test_id("error-state")).to_be_visible()
    expect(page.get_by_test_id("status-message")).to_contain_text("status")
    expect(page.get_by_test_id("status-message")).to_have_attribute("role", "alert")


def test_a_wrong_key_is_refused_with_a_clear_message(
    context: BrowserContext, server: LiveServer, keys: dict[str, str]
) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/console")
    page.get_by_test_id("login-key").fill("tk_000000000000_not-a-real-key")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text(
        "That key is not valid. Check that you pasted the whole key."
    )
    page.get_by_test_id("login-key").fill(keys["write"])
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("lacks the events:read scope")
    page.goto(f"{server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_signing_out_ends_the_session(page: Page, server: LiveServer) -> None:
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("login-notice")).to_have_text("You are signed out.")
    response = page.request.get(f"{server.url}/v1/events")
    assert response.status == 401
    page.goto(f"{server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_the_session_cookie_is_httponly_and_samesite_strict(page: Page) -> None:
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "tk_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""


def test_screenshots_at_desktop_and_phone_sizes(
    browser: Browser, page: Page, server: LiveServer, tmp_path: Path
) -> None:
    # `make screenshots` sets the variable to docs/ to refresh the README's pictures; an
    # ordinary run leaves the working tree alone.
    shots = Path(os.environ.get("TRAILKEEPER_SCREENSHOTS", tmp_path))
    page.get_by_test_id("event-row").nth(1).get_by_test_id("event-expand").click()
    page.screenshot(path=str(shots / "console-desktop.png"))
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, timezone_id="UTC", is_mobile=True,
        device_scale_factor=2,
    )  # fmt: skip
    phone.add_cookies(page.context.cookies())
    small = phone.new_page()
    small.goto(f"{server.url}/console")
    wait_loaded(small)
    expect(small.get_by_test_id("event-row").first).to_be_visible()
    # Usable at 390 px: nothing wider than the screen, the filters one tap away.
    assert small.evaluate("document.documentElement.scrollWidth") <= 390
    expect(small.get_by_test_id("filter-search")).to_be_visible()
    small.get_by_test_id("filters-toggle").click()
    expect(small.get_by_test_id("filter-status")).to_be_visible()
    small.get_by_test_id("filters-toggle").click()
    small.screenshot(path=str(shots / "console-phone.png"))
    phone.close()
    for name in ("console-desktop.png", "console-phone.png"):
        assert (shots / name).stat().st_size > 20_000
