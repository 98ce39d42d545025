"""The reader threads, shared fairly between orgs.

Searches, gets, charts, stream polls and Clarifai searches run on a few warm threads (each
with its own SQLite connection). Without a rule, one org that sends many slow searches at
once takes every thread, and another org's one-row search waits behind all of them. So:

- an org holds at most ``per_org`` of the threads at once (by default all but one), so a
  thread is always left for the other orgs;
- reads that must wait queue per org, and a thread that frees goes to the next org in
  turn (round robin), not to whichever org queued the most.

Every face calls ``FairReaders.run`` (through ``_routes.read``), so each gets the same rule.
The scheduling happens on the event loop: a read that waits holds no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class FairReaders:
    """A pool of ``threads`` reader threads that no one org can fill.

    Args:
        threads: how many reads run at once, all orgs together.
        per_org: how many of them one org may hold (default ``threads - 1``, at least 1).

    One instance serves one event loop (the server's); ``run`` is called on it.
    """

    def __init__(self, threads: int, per_org: int | None = None) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.threads = threads
        self.per_org = min(max(per_org if per_org is not None else threads - 1, 1), threads)
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tk-reader")
        self._running: dict[str, int] = {}
        #: Orgs with reads waiting, in their turn order; each with its reads in arrival order.
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._busy = 0

    def running(self, org_id: str) -> int:
        """How many threads ``org_id``'s reads hold now."""
        return self._running.get(org_id, 0)

    def waiting(self, org_id: str) -> int:
        """How many of ``org_id``'s reads wait for a thread."""
        return sum(1 for f in self._waiting.get(org_id, ()) if not f.done())

    async def run(self, org_id: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a reader thread, once ``org_id`` may take one.

        The thread counts as ``org_id``'s until ``fn`` returns, even if the caller stops
        waiting (a client that hangs up does not free a thread that is still reading).
        """
        await self._turn(org_id)
        loop = asyncio.get_running_loop()
        try:
            done: Future[T] = self.executor.submit(partial(fn, *args))
        except BaseException:
            self._release(org_id)
            raise
        done.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release, org_id))
        return await asyncio.wrap_future(done)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)

    async def _turn(self, org_id: str) -> None:
        free = self._busy < self.threads and self.running(org_id) < self.per_org
        if free and not self._waiting.get(org_id):
            self._take(org_id)
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(org_id, deque()).append(granted)
        self._dispatch()  # a thread may be free for it already
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(org_id)  # given a thread just as the caller went away
            else:
                granted.cancel()
                self._forget(org_id, granted)
            raise

    def _take(self, org_id: str) -> None:
        self._busy += 1
        self._running[org_id] = self.running(org_id) + 1

    def _release(self, org_id: str) -> None:
        self._busy -= 1
        left = self._running[org_id] - 1
        if left:
            self._running[org_id] = left
        else:
            del self._running[org_id]
        self._dispatch()

    def _dispatch(self) -> None:
        while self._busy < self.threads:
            org_id = next(
                (o for o in self._waiting if self.running(o) < self.per_org),
                None,
            )
            if org_id is None:
                return
            queue = self._waiting.pop(org_id)
            while queue and queue[0].done():
                queue.popleft()  # its caller went away
            if not queue:
                continue
            self._take(org_id)
            queue.popleft().set_result(None)
            if queue:
                self._waiting[org_id] = queue  # back of the line: the next org goes first

    def _forget(self, org_id: str, waiter: asyncio.Future[None]) -> None:
        queue = self._waiting.get(org_id)
        if queue is None:
            return
        with contextlib.suppress(ValueError):  # already taken off by _dispatch
            queue.remove(waiter)
        if not queue:
            del self._waiting[org_id]
