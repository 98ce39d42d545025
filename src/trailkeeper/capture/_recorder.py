"""``Recorder``: the object an application records audit events through."""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ..events import Catalogue, EventRules, parse_event
from ._context import Actor, _request
from ._encode import Raw, encode
from ._ids import new_id
from ._known import CatalogueSource, KnownOperations, strict_from_env
from ._operation import Operation
from ._processors import Processor, redact_secrets
from ._spool import Backlog, Spool
from ._transport import HttpTransport, LocalTransport, Transport
from ._worker import Counters, Sender

if TYPE_CHECKING:
    from ..service import AuditService

_log = logging.getLogger("trailkeeper.capture")
_ANONYMOUS = {"id": "anonymous", "type": "anonymous"}
# Strong references: a recorder the application dropped still has events to deliver.
_live: set[Recorder] = set()
#: Every recorder, for a forked child to give each its own sender (see ``_after_fork``).
_every: weakref.WeakSet[Recorder] = weakref.WeakSet()
_default: Recorder | None = None
#: Active ``trailkeeper.testing.capture_events`` lists, innermost last.
_captures: list[Capture] = []
_captures_lock = threading.Lock()


def default_spool_dir() -> Path:
    """``$TRAILKEEPER_SPOOL_DIR``, else ``$XDG_CACHE_HOME/trailkeeper`` (``~/.cache``)."""
    explicit = os.environ.get("TRAILKEEPER_SPOOL_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "trailkeeper"


class Recorder:
    """Records audit events without making the caller wait.

    ``record()`` puts the event in a memory queue and returns; a background thread runs the
    processors, batches, sends, retries with exponential backoff and jitter, and spools to
    SQLite when the log cannot be reached or the queue is full. Events leave the spool only
    once acknowledged, also by a later process that opens the same spool.

    Args:
        url: the Trailkeeper server (``http://host:port``); with ``key`` (an
            ``events:write`` key) or ``keys`` (org id -> key, for multi-tenant producers).
        transport: another transport instead of ``url`` (see ``Recorder.embedded``).
        spool: the spool file; by default one per server and key under
            ``default_spool_dir()``; ``None`` keeps waiting events in memory only.
        processors: the pipeline (default: ``[redact_secrets()]``).
        app_id, org_id: defaults for events whose context gives none.
        batch_size: events per request (at most 1,000). flush_interval: seconds an event
            may wait for its batch to fill. max_queue: events held in memory before
            ``record()`` spools on the caller's thread. max_backoff: longest wait between
            retries, in seconds.
        clock: nanoseconds since the Unix epoch (``time.time_ns``); the event time.
        catalogue: the operations ``record()`` checks names against: ``None`` for the
            built-in catalogue, a ``Catalogue`` (with the deployment's own operations), or
            ``"server"`` to fetch the server's (``GET /v1/operations``) once, when first
            needed; until it is fetched, names go unchecked.
        strict: raise ``UnknownOperationError`` at ``record()`` for a name not in the
            catalogue (for development and tests); otherwise log a warning once per name
            and send the event, which the log refuses. ``None`` reads
            ``$TRAILKEEPER_CAPTURE_STRICT`` (``1``/``true`` turns it on).
        close_at_exit: flush (up to ``exit_timeout`` seconds) and spool the rest at exit.
    """

    def __init__(
        self,
        url: str | None = None,
        key: str | None = None,
        *,
        keys: dict[str, str] | None = None,
        transport: Transport | None = None,
        spool: str | os.PathLike[str] | Literal["auto"] | None = "auto",
        processors: Sequence[Processor] | None = None,
        app_id: str | None = None,
        org_id: str | None = None,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
        max_backoff: float = 30.0,
        clock: Callable[[], int] = time.time_ns,
        close_at_exit: bool = True,
        exit_timeout: float = 5.0,
        catalogue: CatalogueSource = None,
        strict: bool | None = None,
    ) -> None:
        self._known = KnownOperations(
            catalogue, strict=strict_from_env() if strict is None else strict, url=url
        )
        if transport is None:
            if url is None:
                raise ValueError("give the server's url (and a key), or a transport")
            transport = HttpTransport(url, key, keys=keys)
        if spool == "auto":
            if url is None:
                spool = None
            else:
                name = hashlib.sha256(f"{url}|{key}|{sorted((keys or {}).items())}".encode())
                spool = default_spool_dir() / f"spool-{name.hexdigest()[:16]}.sqlite3"
        backlog = Spool(spool) if spool is not None else Backlog()
        self.app_id = app_id
        self.org_id = org_id
        self.clock = clock
        self.max_queue = max_queue
        self.exit_timeout = exit_timeout
        self.closed = False
        # record() appends and close() closes under this lock: no event slips in after the
        # queue was drained for the last time.
        self._gate = threading.Lock()
        self._processors = tuple(processors if processors is not None else [redact_secrets()])
        self._sender = Sender(
            transport,
            backlog,
            self._processors,
            batch_size=batch_size,
            flush_interval=flush_interval,
            max_backoff=max_backoff,
        )
        self._queue = self._sender.queue
        self._batch = self._sender.batch_size
        if close_at_exit:
            _live.add(self)
        _every.add(self)

    @classmethod
    def embedded(cls, store: AuditService | str, org_id: str, **options: Any) -> Recorder:
        """A recorder that writes into a local store (an ``AuditService`` or a database URL)
        with no server; events of other orgs name theirs with ``org_id=``."""
        options.setdefault("spool", None)
        return cls(transport=LocalTransport(store, org_id), org_id=org_id, **options)

    @property
    def strict(self) -> bool:
        """Whether ``record()`` raises for an operation not in the catalogue."""
        return self._known.strict

    @property
    def catalogue(self) -> Catalogue | None:
        """The catalogue names are checked against; with ``catalogue="server"``, ``None``
        until the background fetch has brought it (names go unchecked until then)."""
        return self._known.catalogue

    @property
    def spool(self) -> Backlog:
        """Where events wait (a ``Spool`` file, or memory)."""
        return self._sender.backlog

    def record(
        self,
        operation: str,
        *,
        actor: Actor | None = None,
        targets: list[dict[str, Any]] | None = None,
        success: bool | None = None,
        error: str | dict[str, Any] | BaseException | None = None,
        details: list[str] | None = None,
        changes: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        app_id: str | None = None,
        org_id: str | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        user_agent: str | None = None,
        description: str | None = None,
        time_ns: int | None = None,
    ) -> str:
        """Record one event and return its id at once (the id is made here, so retries and
        spool replays deduplicate on the server).

        ``actor``, ``targets``, ``details``, ``changes`` and ``metadata`` are copied (one level
        deep) before this returns; values nested in them must not be changed afterwards.

        Fields not given come from the request context (actor, source IP, request id, user
        agent, app, org), then from the recorder's defaults; with no actor anywhere the event
        is recorded as the ``anonymous`` actor. ``success`` defaults to
        ``error is None``; ``error`` may be a message, ``{"code", "message"}`` or an
        exception.

        The operation name is checked against the recorder's catalogue: an unknown one
        raises in strict mode, and is logged (once) otherwise.

        Raises:
            RuntimeError: the recorder was closed.
            UnknownOperationError: strict, and ``operation`` is not in the catalogue.
            EventValidationError: inside ``trailkeeper.testing.capture_events``, the log
                would refuse the event.
        """
        if self.closed:
            raise RuntimeError("this recorder is closed; the event was not recorded")
        self._known.check(operation)
        event: dict[str, Any] = {"id": new_id(), "operation": operation}
        context = _request.get()
        if context is not None:
            actor = actor if actor is not None else context.actor
            source_ip = source_ip or context.source_ip
            request_id = request_id or context.request_id
            user_agent = user_agent or context.user_agent
            app_id = app_id or context.app_id
            org_id = org_id or context.org_id
        # The log requires an actor; one nobody named is recorded as such, not refused.
        if actor is None:
            actor = _ANONYMOUS
        event["actor"] = dict(actor) if isinstance(actor, dict) else actor
        # Copies: the event is encoded later, on the sender's thread, and must say what the
        # caller passed now, whatever the caller does with its lists and dicts afterwards.
        if targets:
            event["targets"] = list(targets)
        if error is not None:
            event["error"] = _error(error)
        event["success"] = (error is None) if success is None else success
        if details:
            event["details"] = list(details)
        if changes:
            event["changes"] = dict(changes)
        if metadata:
            event["metadata"] = dict(metadata)
        app_id = app_id or self.app_id
        if app_id:
            event["app_id"] = app_id
        if source_ip:
            event["source_ip"] = source_ip
        if request_id:
            event["request_id"] = request_id
        if user_agent:
            event["user_agent"] = user_agent
        if description:
            event["description"] = description
        raw: Raw = (org_id or self.org_id, time_ns or self.clock(), event)
        if _captures:
            _capture(raw, self._processors, self._known.catalogue)
            return event["id"]  # type: ignore[no-any-return]
        with self._gate:
            if self.closed:
                raise RuntimeError("this recorder is closed; the event was not recorded")
            queue = self._queue
            if len(queue) >= self.max_queue:
                self._sender.overflow(raw)
            else:
                queue.append(raw)
                if len(queue) == self._batch:
                    self._sender.wake.set()
        return event["id"]  # type: ignore[no-any-return]

    def operation(self, name: str, **fields: Any) -> Operation:
        """A context manager that records ``name`` when its block ends (see ``Operation``)."""
        return Operation(self, name, **fields)

    def counters(self) -> Counters:
        """Counts of what the recorder did (queued, sent, spooled, retried, failed, pending)."""
        return self._sender.counters()

    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver everything queued and spooled; ``False`` if some is still waiting at the
        timeout (it stays queued or spooled and keeps being retried)."""
        return self._sender.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Flush, then stop, within ``timeout`` seconds in all; events not delivered (also a
        batch still being sent) stay in the spool for the next process (logged as an error
        if there is no spool)."""
        with self._gate:
            if self.closed:
                return
            self.closed = True
        _live.discard(self)
        deadline = time.monotonic() + timeout
        self._sender.flush(timeout)
        left = self._sender.stop(deadline - time.monotonic())
        if left:
            if self._sender.backlog.durable:
                path = getattr(self._sender.backlog, "path", "")
                _log.warning("trailkeeper: %d event(s) wait in the spool %s", left, path)
            else:
                _log.error("trailkeeper: %d event(s) could not be delivered and are lost", left)
                with self._sender._lock:
                    self._sender.failed += left
        self._sender.release()

    def _after_fork(self) -> None:
        # In a forked child: the parent's lock may be held, its thread does not exist here,
        # and its SQLite connection and socket must not be shared.
        self._gate = threading.Lock()
        if not self.closed:
            self._sender = self._sender.after_fork()
            self._queue = self._sender.queue

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(error: str | dict[str, Any] | BaseException) -> dict[str, Any]:
    if isinstance(error, BaseException):
        from ._operation import error_of

        return error_of(error)
    if isinstance(error, str):
        return {"code": "error", "message": error}
    return error


def _capture(raw: Raw, processors: Sequence[Processor], catalogue: Catalogue | None) -> None:
    item, reason = encode(raw, processors)
    if reason is not None:
        raise RuntimeError(f"a processor failed on event {item[1]}: {reason}")
    sent = orjson.loads(item[2])
    with _captures_lock:
        captures = list(_captures)
    stored: dict[str, Any] | None = None
    for capture in captures:
        if not capture.validate:
            event = dict(sent)
            if raw[0] is not None:
                event["org_id"] = raw[0]
        else:
            if stored is None:
                stored = _as_stored(sent, raw, capture.catalogue or catalogue)
            event = dict(stored)
        with _captures_lock:
            capture.events.append(event)


def _as_stored(sent: dict[str, Any], raw: Raw, catalogue: Catalogue | None) -> dict[str, Any]:
    # What the log would store: its own validation, defaults and normalisation. The time
    # limits are measured from the event's own time: a test's fake clock is no error.
    rules = EventRules(catalogue=catalogue or Catalogue.default())
    received = datetime.fromtimestamp(raw[1] / 1e9, UTC)
    parsed = parse_event(sent, org_id=raw[0] or "unnamed", received_at=received, rules=rules)
    event = parsed.event.to_dict()
    if raw[0] is None:
        event["org_id"] = None
    return event


@dataclass(slots=True)
class Capture:
    """One ``capture_events`` block: where its events go and how they are shown."""

    events: list[dict[str, Any]]
    validate: bool = True
    catalogue: Catalogue | None = None


def set_default(recorder: Recorder | None) -> Recorder | None:
    """Make ``recorder`` the one module-level ``record()``, ``operation()`` and ``@audited``
    use; returns the previous one."""
    global _default
    previous, _default = _default, recorder
    return previous


def resolve(recorder: Recorder | None) -> Recorder:
    """``recorder``, else the default; while ``capture_events`` runs, a capturing one."""
    if recorder is not None:
        return recorder
    if _default is not None:
        return _default
    if _captures:
        return _capturing()
    raise RuntimeError(
        "no recorder: create trailkeeper.capture.Recorder(...) and pass it to set_default()"
    )


_capture_only: Recorder | None = None


def _capturing() -> Recorder:
    global _capture_only
    if _capture_only is None:
        _capture_only = Recorder(transport=_Nowhere(), spool=None, close_at_exit=False)
    return _capture_only


class _Nowhere(Transport):
    def send(self, org_id: str | None, events: Sequence[bytes]) -> list[tuple[int, str]]:
        return [(i, "no recorder is configured") for i in range(len(events))]

    def close(self) -> None:
        pass


def record(operation: str, **fields: Any) -> str:
    """``Recorder.record`` on the default recorder."""
    return resolve(None).record(operation, **fields)


def operation(name: str, **fields: Any) -> Operation:
    """``Recorder.operation`` on the default recorder (looked up when the block starts)."""
    return Operation(None, name, **fields)


def _after_fork_in_child() -> None:
    for recorder in list(_every):
        try:
            recorder._after_fork()
        except Exception:
            _log.exception("trailkeeper: a recorder could not be set up in the forked child")


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_at_exit() -> None:
    for recorder in list(_live):
        try:
            recorder.close(recorder.exit_timeout)
        except Exception:
            _log.exception("trailkeeper: closing a recorder at exit failed")
