"""Running on PostgreSQL as an operator does: starting, losing the database, getting it back.

The machine's PostgreSQL server; the restart test restarts it (see test_postgres_servers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import PG_SERVER, ASGIClient, pg_admin_url, run_cli, store_url
from conftest import new_key as make_key
from test_postgres_servers import RESTART, _server_answers, batch, serving
from trailkeeper.events import uuid7
from trailkeeper.server import create_app
from trailkeeper.service import AuditService
from trailkeeper.store import open_store

UNREACHABLE = "the database is unreachable; retry"


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of this test's own, which the test may close to connections."""
    name = f"tk_ops_{os.getpid()}"
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.execute(f"CREATE DATABASE {name}")
    yield name
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _close_to_connections(name: str, closed: bool) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {str(not closed).lower()}")
        if closed:
            con.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


@pytest.mark.slow
def test_a_lost_database_is_a_plain_503_and_the_server_is_ready_again_when_it_is_back(
    own_database: str,
) -> None:
    service = AuditService(open_store(pg_admin_url(own_database)))
    _, secret = service.keys.create("acme", ["events:read"])
    client = ASGIClient(create_app(service), headers={"Authorization": f"Bearer {secret}"})
    try:
        assert client.get("/readyz").status_code == 200
        _close_to_connections(own_database, closed=True)
        for response in (client.get("/readyz"), client.get("/v1/events")):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            problem = response.json()
            assert problem["code"] == "store_unavailable"
            # The driver's text (here: the database's name) stays in the server's log.
            assert problem["detail"] == UNREACHABLE
            assert own_database not in response.text
        _close_to_connections(own_database, closed=False)
        started = time.monotonic()
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/events").status_code == 200
        assert time.monotonic() - started < 3
    finally:
        client.close()
        service.close()


def test_connections_say_they_are_trailkeeper_and_what_they_serve(own_database: str) -> None:
    url = pg_admin_url(own_database)
    with open_store(url, application_name="trailkeeper-serve") as store:
        store.size("acme")
        with psycopg.connect(PG_SERVER) as con:
            names = {
                r[0]
                for r in con.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE datname = %s",
                    (own_database,),
                )
            }
    assert names == {"trailkeeper-serve"}
    with open_store(f"{url}?application_name=audit") as store:
        store.size("acme")
        with psycopg.connect(PG_SERVER) as con:
            rows = con.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = %s",
                (own_database,),
            ).fetchall()
    assert {r[0] for r in rows} == {"audit"}


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_gives_up_on_an_unreachable_database_with_one_clear_line(workers: str) -> None:
    started = time.monotonic()
    result = run_cli(
        "serve", "--db", "postgresql://postgres@127.0.0.1:1/trailkeeper", "--port", "0",
        "--workers", workers, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("trailkeeper: can't reach PostgreSQL"), result.stderr
    assert "gave up after 4 tries" in last


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_without_the_privilege_to_create_tables_says_so_in_one_line(
    own_database: str, workers: str
) -> None:
    role = f"tk_noperm_{os.getpid()}"
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP ROLE IF EXISTS {role}")
        con.execute(f"CREATE ROLE {role} LOGIN")
    try:
        url = PG_SERVER.split("://")[0] + f"://{role}@" + pg_admin_url(own_database).split("@")[1]
        result = run_cli("serve", "--db", url, "--port", "0", "--workers", workers, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "permission denied for schema public" in lines[0]
        assert "docs/deploying.md" in lines[0]
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {own_database} WITH (FORCE)")
            con.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.slow
def test_the_first_request_after_a_database_restart_succeeds(tmp_path: Path) -> None:
    if shutil.which(RESTART[0]) is None:
        pytest.fail(f"{RESTART[0]!r} is missing: set TRAILKEEPER_TEST_PG_RESTART to a command")
    db = store_url("postgresql", tmp_path)
    key = make_key(db, "--org", "acme", "--scope", "events:write")
    headers = {"Authorization": f"Bearer {key}"}
    with serving(db) as url:

        def ingest() -> None:
            httpx.post(f"{url}/v1/events", json={"events": batch(300)}, headers=headers, timeout=60)

        # Several requests at once: the server's pool holds several connections, all idle
        # (and, once the database restarts, all dead).
        for _ in range(3):
            threads = [threading.Thread(target=ingest) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        try:
            subprocess.run(RESTART, check=True, capture_output=True, timeout=120)
        finally:
            assert _server_answers(60), "PostgreSQL did not come back"
        time.sleep(1.5)  # every pooled connection is idle long enough to be checked
        timings = []
        for _ in range(5):
            started = time.monotonic()
            response = httpx.post(
                f"{url}/v1/events", json={"events": batch(5)}, headers=headers, timeout=60
            )
            timings.append(time.monotonic() - started)
            assert response.status_code == 202, response.text
    assert timings[0] < 2.5, timings
    assert max(timings[1:]) < 1, timings


@pytest.mark.slow
def test_a_batch_sent_to_three_servers_at_once_is_never_a_conflict(tmp_path: Path) -> None:
    db = store_url("postgresql", tmp_path)
    key = make_key(db, "--org", "acme", "--scope", "events:write")
    headers = {"Authorization": f"Bearer {key}"}
    statuses: list[tuple[int, str]] = []
    with serving(db) as a, serving(db) as b, serving(db) as c:
        for _ in range(8):
            events = batch(3)
            del events[1]["time"]  # a UUIDv4 id: the copy stored first gives the time
            events[2]["id"] = str(uuid7())
            del events[2]["time"]  # a UUIDv7 id: its own time
            barrier = threading.Barrier(3)

            def send(url: str, events: list[dict[str, object]] = events) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
                    http.get("/healthz")  # connected before the barrier: sent at once
                    barrier.wait()  # noqa: B023 - each round's own, joined below
                    response = http.post("/v1/events", json={"events": events})
                statuses.append((response.status_code, response.text))

            threads = [threading.Thread(target=send, args=(u,)) for u in (a, b, c)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert [s for s in statuses if s[0] != 202] == []
