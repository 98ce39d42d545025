"""The background sender: batches by size and time, retries with backoff, spools."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ._encode import Raw, encode
from ._processors import Processor
from ._spool import Backlog, Item
from ._transport import MAX_BODY, MAX_EVENTS, Transport, TransportError

_log = logging.getLogger("trailkeeper.capture")


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


class Sender:
    """Owns the memory queue, the backlog and the thread that empties them.

    Every event taken off the queue is, at any moment, in exactly one of: the batch the
    thread is encoding (``_taking``) or sending (``_inflight``), the events a caller is
    spooling (``_overflowing``), the events the spool could not take yet (``_held``), the
    backlog, the log, or the ``rejected`` table. ``stop()`` takes over what the thread
    holds, so a hung send cannot lose its batch.
    """

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
        self._urgent = 0
        self._stopping = False
        self._backoff = 0.0
        self._next_try = 0.0
        # Guards the counters and the hand-over of events between the thread and stop().
        self._lock = threading.Lock()
        self._taking: list[Raw] = []
        self._inflight: dict[str, Item] = {}
        self._held: list[Item] = []
        self._overflowing = 0
        self._abandoned = False  # stop() took over what the thread held
        self._exited = False
        self._close_on_exit = False
        self.taken = self.sent = self.spooled = self.retried = self.failed = self.overflowed = 0
        self._thread = threading.Thread(target=self._run, name="trailkeeper-sender", daemon=True)
        self._thread.start()

    def after_fork(self) -> Sender:
        """A new sender for a forked child: own thread, connection and locks, empty queue
        (the parent delivers what it had queued)."""
        self.transport.after_fork()
        return Sender(
            self.transport,
            self.backlog.after_fork(),
            self.processors,
            batch_size=self.batch_size,
            flush_interval=self.flush_interval,
            max_backoff=self.max_backoff,
            min_backoff=self.min_backoff,
        )

    # -- called from other threads ------------------------------------------------------------

    def overflow(self, raw: Raw) -> None:
        """The memory queue is full: spool a batch of it, and ``raw``, on the caller's thread.

        One transaction for the whole batch, so a producer that outruns the sender pays a
        share of the sender's work per event (backpressure), not a commit per event.
        """
        raws = [raw]
        with self._lock:  # popped and counted at once: flush() never sees them nowhere
            while self.queue and len(raws) <= self.batch_size:
                raws.append(self.queue.popleft())
            self._overflowing += len(raws)
            self.overflowed += 1
            self.taken += len(raws) - 1
        try:
            self._spool(self._encode(raws))
        finally:
            with self._lock:
                self._overflowing -= len(raws)

    def _local(self) -> int:
        """Events in this process's hands, not in the backlog (call with ``_lock`` held)."""
        held = len(self._taking) + len(self._inflight) + len(self._held) + self._overflowing
        return len(self.queue) + held

    def counters(self) -> Counters:
        with self._lock:
            local = self._local()
            return Counters(
                queued=self.taken + len(self.queue) + self.overflowed,
                sent=self.sent,
                spooled=self.spooled,
                retried=self.retried,
                failed=self.failed,
                pending=local + self.backlog.count(),
            )

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued and spooled is delivered; ``False`` at the timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            self._urgent += 1
            try:
                while True:
                    with self._lock:
                        waiting = self._local()
                    if not waiting and not self.backlog.count():
                        return True
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._thread.is_alive():
                        return False
                    self.wake.set()
                    self._idle.wait(min(left, 0.05))
            finally:
                self._urgent -= 1

    def stop(self, timeout: float) -> int:
        """Stop the thread, waiting for it at most ``timeout`` seconds; spool what it could
        not send, including the batch it may still be sending (the log deduplicates if that
        send succeeds after all). Returns how many events wait in the backlog."""
        self._stopping = True
        self.wake.set()
        self._thread.join(max(0.0, timeout))
        with self._lock:
            self._abandoned = True
            raws = self._taking + list(self.queue)
            self.taken += len(self.queue)
            self.queue.clear()
            items = [*self._inflight.values(), *self._held]
            self._taking, self._inflight, self._held = [], {}, []
        self._spool([*items, *self._encode(raws)])
        refresh = getattr(self.backlog, "refresh", None)
        return int(refresh()) if refresh is not None else self.backlog.count()

    def release(self) -> None:
        """Close the transport and the backlog now, or when the thread ends if it still runs."""
        with self._lock:
            if not self._exited:
                self._close_on_exit = True
                return
        self._close()

    def _close(self) -> None:
        for resource in (self.transport, self.backlog):
            try:
                resource.close()
            except Exception:
                _log.exception("trailkeeper: closing %r failed", resource)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
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
        finally:
            with self._lock:
                self._exited = True
                close = self._close_on_exit
            if close:
                self._close()

    def _wait_time(self) -> float:
        if self.queue and (self._urgent or len(self.queue) >= self.batch_size):
            return 0.0  # in an outage too: the batch goes to the spool, not the caller
        if self.backlog.count() or self._held:
            return min(max(0.0, self._next_try - time.monotonic()), self.flush_interval)
        return self.flush_interval

    def _cycle(self) -> None:
        if self._held and time.monotonic() >= self._next_try:
            # The spool failed for these (locked, disk full): send them, else spool again.
            with self._lock:
                held, self._held = self._held, []
                self._inflight.update((item[1], item) for item in held)
            self._deliver([(None, item) for item in held])
        while self.queue and not self._stopping:
            items = self._take()
            if items is None:
                return
            if self._backoff:
                # Down: straight to the spool. (Newer events may then arrive before
                # older ones; order does not matter, each event carries its time.)
                if self._release([(None, item) for item in items]):
                    self._spool(items)
            else:
                self._deliver([(None, item) for item in items])
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

    def _take(self) -> list[Item] | None:
        """A batch off the queue, encoded and in flight (``None``: stop() took over)."""
        with self._lock:
            if self._abandoned:
                return None
            raws: list[Raw] = []
            while self.queue and len(raws) < self.batch_size:
                raws.append(self.queue.popleft())
            self.taken += len(raws)
            self._taking = raws
        encoded = [encode(raw, self.processors) for raw in raws]
        with self._lock:
            if self._taken_over():
                return None
            self._taking = []
            items = [item for item, reason in encoded if reason is None]
            self._inflight.update((item[1], item) for item in items)
        for item, reason in encoded:
            if reason is not None:
                self._refuse(item, reason)
        return items

    def _taken_over(self) -> bool:
        return self._abandoned  # (a method: a field read would stay narrowed for mypy)

    def _release(self, entries: list[tuple[int | None, Item]]) -> bool:
        """Take back events from the in-flight set; ``False`` if stop() took them over."""
        with self._lock:
            if self._abandoned:
                return False
            for handle, item in entries:
                if handle is None:
                    self._inflight.pop(item[1], None)
        return True

    def _encode(self, raws: list[Raw]) -> list[Item]:
        items: list[Item] = []
        for raw in raws:
            item, reason = encode(raw, self.processors)
            if reason is None:
                items.append(item)
            else:
                self._refuse(item, reason)
        return items

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
                if self._release(unsent):
                    self._spool([item for handle, item in unsent if handle is None])
                self._fail_later(exc)
                return False
            if not self._release(chunk):
                return False  # stop() spooled it meanwhile; sent twice is harmless
            for position, reason in refused:
                self._refuse(chunk[position][1], reason)
            handles = [handle for handle, _ in chunk if handle is not None]
            if handles:
                try:
                    self.backlog.delete(handles)
                except Exception:  # the rows stay; sending them again is harmless
                    _log.exception("trailkeeper: could not delete sent events from the spool")
            with self._lock:
                self.sent += len(chunk) - len(refused)
            self._backoff = 0.0
        return True

    def _spool(self, items: list[Item]) -> None:
        if not items:
            return
        try:
            self.backlog.put(items)
        except Exception as exc:
            with self._lock:
                if not self._abandoned:
                    # The spool failed (locked, disk full): keep them in memory, try again.
                    self._held.extend(items)
                    _log.warning("trailkeeper: %d event(s) could not be spooled (%s); "
                                 "kept in memory, retrying", len(items), exc)  # fmt: skip
                    return
                self.failed += len(items)
            # Stopping, and the spool refuses them: say so, loudly, with the ids.
            _log.exception(
                "trailkeeper: %d event(s) could not be spooled and are lost: %s",
                len(items), ", ".join(item[1] for item in items),
            )  # fmt: skip
            return
        with self._lock:
            self.spooled += len(items)

    def _refuse(self, item: Item, reason: str) -> None:
        _log.error("trailkeeper: event %s was refused for good: %s", item[1], reason)
        try:
            self.backlog.reject(item, reason)
        except Exception:  # the rejected table is out of reach: the log keeps the event
            _log.exception("trailkeeper: could not keep refused event %s: %r", item[1], item[2])
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
