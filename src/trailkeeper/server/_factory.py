"""Serving from settings in the environment: what ``trailkeeper serve --workers N`` runs.

uvicorn starts each worker process by importing an app factory by name, so everything a worker
needs travels in ``TRAILKEEPER_*`` variables (see ``config.Settings``); each worker opens its
own store and connection pools.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ..config import Settings
from ..service import AuditService
from ..store import open_store
from ._app import create_app
from ._process import tune_process
from ._protocol import DeadlineProtocol

FACTORY = "trailkeeper.server._factory:app_from_env"


def app_from_env() -> FastAPI:
    """The API over a service opened from ``TRAILKEEPER_*`` settings; closed at shutdown."""
    settings = Settings.from_env()
    store = open_store(settings.database_url, read_url=settings.read_database_url)
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
) -> None:
    """Run ``workers`` server processes on one port, each with its own store.

    Several processes on one SQLite file work (they take turns writing); PostgreSQL is what
    lets them, and processes on other machines, write at once.
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
        timeout_graceful_shutdown=3,  # open live streams never end by themselves
        # X-Forwarded-For is read by the app, from TRAILKEEPER_TRUSTED_PROXIES only: uvicorn's
        # own reading of it (trusting 127.0.0.1 by default) would let any local caller pick
        # the source IP recorded for its reads.
        proxy_headers=False,
        http=DeadlineProtocol,  # hangs up on clients too slow to send a request
        limit_concurrency=Settings.from_env().limit_concurrency,
    )  # fmt: skip
