"""Shared fixtures: real stores on real files, one per backend."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trailkeeper.events import EventRules
from trailkeeper.service import AuditService
from trailkeeper.store import LogStore, open_store

BACKENDS = ["sqlite", "postgresql"]

#: The PostgreSQL server the tests use (trust authentication); they fail if it is missing.
PG_SERVER = os.environ.get("TRAILKEEPER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
_pg_database: list[str] = []  # the session's own database, created on first use


def pg_admin_url(database: str) -> str:
    """The test server's URL for ``database``."""
    return PG_SERVER.rsplit("/", 1)[0] + "/" + database


def pg_database() -> str:
    """This session's database on the test server, created on first use (dropped at exit)."""
    if not _pg_database:
        import psycopg

        name = f"tk_test_{os.getpid()}"
        try:
            with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as con:
                con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                con.execute(f"CREATE DATABASE {name}")
        except psycopg.OperationalError as exc:
            pytest.fail(f"the PostgreSQL tests need a server at {PG_SERVER}: {exc}")
        _pg_database.append(name)
    return _pg_database[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _pg_database:
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {_pg_database[0]} WITH (FORCE)")


def store_url(backend: str, tmp_path: Path) -> str:
    """A fresh store for the test that owns ``tmp_path``: a file, or a schema of its own."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'trailkeeper.db'}"
    if backend == "postgresql":
        import psycopg

        url = pg_admin_url(pg_database())
        schema = "t_" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:20]
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        return f"{url}?options=-csearch_path%3D{schema}"
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> Iterator[LogStore]:
    opened = open_store(store_url(backend, tmp_path))
    yield opened
    opened.close()


class FakeClock:
    """A clock the test moves by hand (the receive time of ingests)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 26, 12, 0, tzinfo=UTC))


@pytest.fixture
def service(store: LogStore, clock: FakeClock) -> Iterator[AuditService]:
    opened = AuditService(store, rules=EventRules(), clock=clock)
    yield opened
    opened.close()
    assert opened.read_audit_failures == 0


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    """A valid event as a producer would send it; keyword arguments override fields."""

    def make(**fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "time": "2026-11-26T11:00:00Z",
            "actor": {"id": "alice", "type": "user", "name": "Alice"},
            "operation": "model.create",
            "targets": [{"type": "model", "id": "general-image", "name": "General image"}],
            "app_id": "main",
            "source_ip": "203.0.113.7",
        }
        event.update(fields)
        return event

    return make


class ASGIClient:
    """A blocking HTTP client over an ASGI app in-process (httpx's ASGI transport is async)."""

    def __init__(self, app: Any, headers: dict[str, str] | None = None) -> None:
        import asyncio

        import httpx

        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://trailkeeper.test",
            headers=headers,
        )

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        async def call() -> Any:
            response = await self._client.request(method, url, **kwargs)
            await response.aread()
            return response

        return self._loop.run_until_complete(call())

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The ``trailkeeper`` command in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "trailkeeper.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_key(db: str, *args: str) -> str:
    """A key made by ``trailkeeper keys create``; its secret is alone on the last line."""
    result = run_cli("keys", "create", "--db", db, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@dataclass
class LiveServer:
    url: str
    db: str
    process: subprocess.Popen[str]

    def key(self, *args: str) -> str:
        return new_key(self.db, *args)


def wait_until_up(url: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, f"the server did not come up in {seconds} s"
        time.sleep(0.1)


@contextmanager
def serving(
    db: str, *extra: str, env: dict[str, str] | None = None, seconds: float = 30
) -> Iterator[LiveServer]:
    """``trailkeeper serve`` over ``db`` on a free port (``extra``: more flags), stopped on
    exit."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "trailkeeper.cli", "serve", "--db", db, "--port", str(port),
         "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, seconds)
        yield LiveServer(url, db, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """``trailkeeper serve`` on a real port over a SQLite file."""
    with serving(f"sqlite:///{tmp_path / 'live.db'}") as server:
        yield server
