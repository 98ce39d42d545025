"""Key lookups off the event loop: on their own threads, with a short timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import Request

from ..keys import ApiKey
from ._problems import Problem

#: What every 503 for an unreachable (or unanswering) database says: nothing more.
UNREACHABLE = "the database is unreachable; retry"
#: How long authentication may wait for the store before the request gets a 503.
AUTH_TIMEOUT_SECONDS = 2.0
#: Threads that look keys up (a lookup is one indexed read). Fewer than the PostgreSQL
#: store's connections (8 a pool): lookups stuck behind a lock on the keys table must leave
#: connections for ingest, the records of reads and /readyz.
AUTH_THREADS = 4


async def off_loop(request: Request, fn: Callable[[], ApiKey]) -> ApiKey:
    """Run a key lookup on the authentication threads, with ``AUTH_TIMEOUT_SECONDS``.

    Raises:
        Problem: 503 ``store_unavailable`` when the store does not answer in time.
    """
    executor: ThreadPoolExecutor = request.app.state.authenticators
    try:
        return await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(executor, fn), AUTH_TIMEOUT_SECONDS
        )
    except TimeoutError:
        raise Problem(
            503,
            "store_unavailable",
            UNREACHABLE,
            headers={"Retry-After": "1"},
        ) from None
