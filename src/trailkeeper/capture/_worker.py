"""The background sender: batches by size and time, retries with backoff, spools."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ._processors import Processor, run_processors
from ._spool import Backlog, Item
from ._transport import MAX_BODY, MAX_EVENTS, Transport, TransportError

_log = logging.getLogger("trailkeeper.capture")

#: (org, time in ns since the epoch, event) as ``record()`` leaves it for the sender.
Raw = tuple[str | None, int, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Counters:
    """What a recorder has done since it started (all counts of events).

    Attributes:
        queued: accepted by ``record()``. sent: acknowledged by the log (duplicates
        included). spooled: put in the spool (or the memory backlog) to be sent later.
        retried: sent again after a failure, or from a previous process's spool.
        failed: refused for good by the log or by a processor; each was logged as an error
        and kept in the spool's ``rejected`` table. pending: waiting now, in memory or spool.
    """

    queued: int
    sent: int
    spooled: int
    retried: int
    failed: int
    pending: int


_second: tuple[int, str] = (-1, "")


def format_ns(time_ns: int) -> str:
    """``2026-11-26T02:20:09.000123Z`` (the event model's one time format), with the part up
    to the second cached: building a datetime per event cost more than the rest of encode."""
    global _second
    second, micros = divmod(time_ns // 1000, 1_000_000)
    cached, prefix = _second
    if cached != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, prefix)  # one tuple: threads never see a half-updated cache
    return f"{prefix}.{micros:06d}Z"


def encode(raw: Raw, processors: Sequence[Processor]) -> tuple[Item, str | None]:
    """The spool item of a recorded event, and the reason it must be refused (if any)."""
    org, time_ns, event = raw
    event["time"] = format_ns(time_ns)
    try:
        event = run_processors(processors, event)
        return (org, event["id"], orjson.dumps(event)), None
    except Exception as exc:
        _log.exception("trailkeeper: event %s could not be processed", event.get("id"))
        body = orjson.dumps(event, default=repr)
        return (org, str(event.get("id")), body), f"{type(exc).__name__}: {exc}"


class Sender:
    """Owns the memory queue, the backlog and the thread that empties them."""

    def __init__(
        self,
        transport: Transport,
        backlog: Backlog,
        processors: Sequence[Processor],
        *,
        batch_size: int,
        flush_interval: float,
        max_backoff: float,
        min_backoff: float = 0.05,
    ) -> None:
        self.queue: deque[Raw] = deque()
        self.transport = transport
        self.backlog = backlog
        self.processors = tuple(processors)
        self.batch_size = min(batch_size, MAX_EVENTS)
        self.flush_interval = flush_interval
        self.max_backoff = max_backoff
        self.min_backoff = min_backoff
        self.wake = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._urgent = 0
        self._stopping = False
        self._backoff = 0.0
        self._next_try = 0.0
        self._lock = threading.Lock()  # the counters written from callers (overflow)
        self.taken = self.sent = self.spooled = self.retried = self.failed = self.overflowed = 0
        self._thread = threading.Thread(target=self._run, name="trailkeeper-sender", daemon=True)
        self._thread.start()

    # -- called from other threads ------------------------------------------------------------

    def overflow(self, raw: Raw) -> None:
        """The memory queue is full: spool a batch of it, and ``raw``, on the caller's thread.

        One transaction for the whole batch, so a producer that outruns the sender pays a
        share of the sender's work per event (backpressure), not a commit per event.
        """
        raws = [raw]
        try:
            while len(raws) <= self.batch_size:
                raws.append(self.queue.popleft())
        except IndexError:
            pass
        self._encode_and_spool(raws, counted=1)

    def _encode_and_spool(self, raws: list[Raw], counted: int) -> None:
        items: list[Item] = []
        for raw in raws:
            item, reason = encode(raw, self.processors)
            if reason is None:
                items.append(item)
            else:
                self._refuse(item, reason)
        with self._lock:
            self.overflowed += counted
            self.taken += len(raws) - counted
        self._spool(items)

    def counters(self) -> Counters:
        with self._lock:
            return Counters(
                queued=self.taken + len(self.queue) + self.overflowed,
                sent=self.sent,
                spooled=self.spooled,
                retried=self.retried,
                failed=self.failed,
                pending=len(self.queue) + self.backlog.count() + (1 if self._busy else 0),
            )

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued and spooled is delivered; ``False`` at the timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._urgent += 1
            try:
                while self.queue or self._busy or self.backlog.count():
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._thread.is_alive():
                        return False
                    self.wake.set()
                    self._idle.wait(min(left, 0.05))
                return True
            finally:
                self._urgent -= 1

    def stop(self, timeout: float) -> int:
        """Stop the thread; spool what it could not send. Returns how many were left."""
        self._stopping = True
        self.wake.set()
        self._thread.join(timeout)
        left: list[Raw] = []
        while self.queue:
            left.append(self.queue.popleft())
        self._encode_and_spool(left, counted=0)
        return len(left) + self.backlog.count()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self.wake.wait(self._wait_time())
            self.wake.clear()
            try:
                self._cycle()
            except Exception:  # a bug here must not stop delivery for good
                _log.exception("trailkeeper: the sender failed; retrying")
                self._fail_later()
            with self._idle:
                self._idle.notify_all()

    def _wait_time(self) -> float:
        if self.queue and (self._urgent or len(self.queue) >= self.batch_size):
            return 0.0  # in an outage too: the batch goes to the spool, not the caller
        if self.backlog.count():
            return min(max(0.0, self._next_try - time.monotonic()), self.flush_interval)
        return self.flush_interval

    def _cycle(self) -> None:
        while self.queue:
            self._busy = True
            try:
                raws: list[Raw] = []
                while self.queue and len(raws) < self.batch_size:
                    raws.append(self.queue.popleft())
                with self._lock:
                    self.taken += len(raws)
                items: list[Item] = []
                for raw in raws:
                    item, reason = encode(raw, self.processors)
                    if reason is None:
                        items.append(item)
                    else:
                        self._refuse(item, reason)
                if self._backoff:
                    # Down: straight to the spool. (Newer events may then arrive before
                    # older ones; order does not matter, each event carries its time.)
                    self._spool(items)
                else:
                    self._deliver([(None, item) for item in items])
            finally:
                self._busy = False
        while self.backlog.count() and time.monotonic() >= self._next_try and not self._stopping:
            entries = self.backlog.take(self.batch_size)
            if not entries:
                break
            with self._lock:
                self.retried += len(entries)
            if not self._deliver([(n, item) for n, item in entries]):
                break
            if len(self.queue) >= self.batch_size:
                break  # let new events through between backlog batches

    def _deliver(self, entries: list[tuple[int | None, Item]]) -> bool:
        """Send entries (``handle`` is their backlog row, ``None`` if not spooled yet)."""
        groups: dict[str | None, list[tuple[int | None, Item]]] = {}
        for entry in entries:
            groups.setdefault(entry[1][0], []).append(entry)
        chunks = [chunk for group in groups.values() for chunk in _by_size(group)]
        for index, chunk in enumerate(chunks):
            try:
                refused = self.transport.send(chunk[0][1][0], [item[2] for _, item in chunk])
            except Exception as exc:  # TransportError, or a fault of ours: retry, never drop
                if not isinstance(exc, TransportError):
                    _log.exception("trailkeeper: unexpected error while sending")
                unsent = [entry for rest in chunks[index:] for entry in rest]
                self._spool([item for handle, item in unsent if handle is None])
                self._fail_later(exc)
                return False
            for position, reason in refused:
                self._refuse(chunk[position][1], reason)
            handles = [handle for handle, _ in chunk if handle is not None]
            if handles:
                self.backlog.delete(handles)
            with self._lock:
                self.sent += len(chunk) - len(refused)
            self._backoff = 0.0
        return True

    def _spool(self, items: list[Item]) -> None:
        if not items:
            return
        try:
            self.backlog.put(items)
        except Exception:
            # The spool itself failed (disk full, permissions): say so, loudly, with the ids.
            _log.exception(
                "trailkeeper: %d event(s) could not be spooled and are lost: %s",
                len(items), ", ".join(item[1] for item in items),
            )  # fmt: skip
            with self._lock:
                self.failed += len(items)
            return
        with self._lock:
            self.spooled += len(items)

    def _refuse(self, item: Item, reason: str) -> None:
        _log.error("trailkeeper: event %s was refused for good: %s", item[1], reason)
        self.backlog.reject(item, reason)
        with self._lock:
            self.failed += 1

    def _fail_later(self, exc: Exception | None = None) -> None:
        self._backoff = min(self.max_backoff, max(self.min_backoff, self._backoff * 2))
        # Equal jitter: at least half the backoff, so producers that lost the same server
        # do not all come back in the same instant.
        delay = self._backoff / 2 + random.uniform(0, self._backoff / 2)
        self._next_try = time.monotonic() + delay
        if exc is not None:
            _log.warning("trailkeeper: sending failed (%s); next try in %.2f s", exc, delay)


def _by_size(entries: list[tuple[int | None, Item]]) -> list[list[tuple[int | None, Item]]]:
    chunks: list[list[tuple[int | None, Item]]] = []
    size = 0
    for entry in entries:
        length = len(entry[1][2]) + 1
        if not chunks or len(chunks[-1]) >= MAX_EVENTS or size + length > MAX_BODY:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += length
    return chunks
