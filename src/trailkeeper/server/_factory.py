"""Serving from settings in the environment: what ``trailkeeper serve --workers N`` runs.

uvicorn starts each worker process by importing an app factory by name, so everything a worker
needs travels in ``TRAILKEEPER_*`` variables (see ``config.Settings``); each worker opens its
own store and connection pools.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ..config import Settings
from ..service import AuditService
from ..store import LogStore, StoreSetupError, StoreUnavailableError, open_store
from ._app import create_app
from ._process import tune_process
from ._protocol import DeadlineProtocol

FACTORY = "trailkeeper.server._factory:app_from_env"
#: What PostgreSQL shows for a server's connections (``pg_stat_activity.application_name``).
APPLICATION_NAME = "trailkeeper-serve"
#: Seconds between the tries to open the store at start: 4 tries over about 7 s, then exit.
STARTUP_WAITS = (1.0, 2.0, 4.0)
#: uvicorn's exit status for a worker that failed before serving: its supervisor then stops
#: instead of starting the worker again (and again).
STARTUP_FAILURE = 3


def open_serving_store(url: str, read_url: str | None) -> LogStore:
    """The store a server serves, tried a few times (a database still starting up).

    Raises:
        StoreUnavailableError: still unreachable after the last try.
        StoreSetupError: the database refused to set up the tables (no use trying again).
    """
    for wait in (*STARTUP_WAITS, None):
        try:
            return open_store(url, read_url=read_url, application_name=APPLICATION_NAME)
        except StoreUnavailableError as exc:
            if wait is None:
                tries = len(STARTUP_WAITS) + 1
                raise StoreUnavailableError(
                    f"{_one_line(exc)} (gave up after {tries} tries)"
                ) from exc
            print(f"{_one_line(exc)}; trying again in {wait:g} s", file=sys.stderr, flush=True)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def app_from_env() -> FastAPI:
    """The API over a service opened from ``TRAILKEEPER_*`` settings; closed at shutdown.

    A worker that can't open its store says why in one line and exits with uvicorn's
    startup-failure status (``serve_processes`` checked the store just before)."""
    settings = Settings.from_env()
    try:
        store = open_store(
            settings.database_url,
            read_url=settings.read_database_url,
            application_name=APPLICATION_NAME,
        )
    except (StoreUnavailableError, StoreSetupError) as exc:
        print(f"trailkeeper: {_one_line(exc)}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)
    service = AuditService(store, rules=settings.rules())
    secret = settings.session_secret
    app = create_app(
        service,
        session_secret=secret.encode() if secret else None,
        trusted_proxies=settings.trusted_proxies,
        metrics_key=settings.metrics_key,
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            tune_process()  # at startup, not when the app is built: only a serving process
            yield state
        service.close()

    app.router.lifespan_context = lifespan
    return app


def serve_processes(
    database_url: str,
    read_database_url: str | None,
    host: str,
    port: int,
    *,
    workers: int,
    log_level: str,
    drain_seconds: int,
) -> None:
    """Run ``workers`` server processes on one port, each with its own store.

    Several processes on one SQLite file work (they take turns writing); PostgreSQL is what
    lets them, and processes on other machines, write at once.

    The caller checks the store first (``open_serving_store``), so that workers don't each
    fail, one traceback each, started again for ever.
    """
    import uvicorn

    if workers < 1:
        raise ValueError("--workers must be at least 1")
    os.environ["TRAILKEEPER_DATABASE_URL"] = database_url
    # One console session secret for every worker: a sign-in served by one must hold on the
    # others (a deployment on several machines sets its own, shared).
    os.environ.setdefault("TRAILKEEPER_SESSION_SECRET", secrets.token_hex(32))
    if read_database_url:
        os.environ["TRAILKEEPER_READ_DATABASE_URL"] = read_database_url
    else:
        os.environ.pop("TRAILKEEPER_READ_DATABASE_URL", None)
    uvicorn.run(
        FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
        timeout_graceful_shutdown=drain_seconds,  # see _drain
        # X-Forwarded-For is read by the app, from TRAILKEEPER_TRUSTED_PROXIES only: uvicorn's
        # own reading of it (trusting 127.0.0.1 by default) would let any local caller pick
        # the source IP recorded for its reads.
        proxy_headers=False,
        http=DeadlineProtocol,  # hangs up on clients too slow to send a request
        limit_concurrency=Settings.from_env().limit_concurrency,
    )  # fmt: skip
