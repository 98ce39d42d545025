"""The log's own trail: the events Trailkeeper records about itself (``audit_log.*``).

Who read the log, from where, and who made or revoked its keys. Producers cannot write these
operations or the actor ids below (``RESERVED_ACTORS``): only this module does, so a record
of a read can always be told from a forgery.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from .events import EventValidationError, canonical_json, format_time
from .events._ip import plain_address
from .events._limits import REFUSED_IN_LINE
from .events._uuid7 import uuid7
from .keys import ApiKey
from .store import Appended, LogStore, PreparedEvent

_log = logging.getLogger("trailkeeper")

#: Records of reads of the log are committed together at most this often.
OWN_FLUSH_SECONDS = 0.2
#: Operations only the server records.
RESERVED_PREFIX = "audit_log."
#: The actor the server records for administration done on the database (the CLI).
ADMIN_ACTOR = {"id": "trailkeeper-admin", "type": "service", "name": "Trailkeeper CLI"}
#: Actor ids that only the server uses for itself: ``trailkeeper-`` and anything after it.
RESERVED_ACTOR_PREFIX = "trailkeeper-"
#: How much of a search's ``q`` text a read record keeps when the request is too large whole.
MAX_RECORDED_Q = 4096
#: How much a read record's description of the request may take in all, as JSON (within the
#: own records' metadata limit, ``service.OWN_METADATA_BYTES``).
MAX_RECORDED_REQUEST = 192 * 1024
_USER_AGENT = 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where a read came from, as the face that took the request saw it.

    Attributes:
        source_ip: the client's address (the first one no trusted proxy vouches for).
        user_agent: the client's ``User-Agent``.
        request_id: the request's id (``X-Request-Id``, or one the server made).
        face: which face took it: ``api``, ``console``, ``clarifai-rest``, ``clarifai-grpc``,
            ``cli`` or ``embedded``.
    """

    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    face: str = "embedded"


def new_request_id() -> str:
    """A fresh request id (a UUIDv7: sortable by when the request came)."""
    return str(uuid7())


def usable_request_id(value: str | None) -> str | None:
    """``value`` if it can be recorded as a request id, else ``None``."""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


def is_reserved_operation(name: object) -> bool:
    return isinstance(name, str) and name.startswith(RESERVED_PREFIX)


def is_reserved_actor(actor: object) -> bool:
    actor_id = actor.get("id") if isinstance(actor, Mapping) else actor  # or the id alone
    return isinstance(actor_id, str) and actor_id.casefold().startswith(RESERVED_ACTOR_PREFIX)


def describe_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """What a read record keeps of a request's parameters: all of them.

    Repeated values are dropped (padding), and runs of blanks in ``q`` are folded into one;
    every distinct value stays, whatever its number (the API caps them: 100 a filter, 500 a
    request) and ``q`` whole (the API takes 4,096 characters at most). Only a request over
    ``MAX_RECORDED_REQUEST`` as JSON, which no API request reaches, keeps ``q`` and the
    parameters' names.
    """
    out: dict[str, Any] = {}
    for name, value in request.items():
        if name == "cursor":
            continue
        if isinstance(value, list):
            value = list(dict.fromkeys(_hashable(v) for v in value))
        out[str(name)] = value
    q = out.get("q")
    if isinstance(q, str):
        out["q"] = " ".join(q.split())
    if len(canonical_json(out)) > MAX_RECORDED_REQUEST:
        kept = {"q": str(out["q"])[:MAX_RECORDED_Q]} if "q" in out else {}
        return {**kept, "parameters": sorted(out)[:100], "truncated": True}
    return out


def _hashable(value: Any) -> Any:
    # JSON values in a search body may be objects or lists; they are compared by their text.
    return value if isinstance(value, str | int | float | bool | None) else canonical_json(value)


def _one_line(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    return REFUSED_IN_LINE.sub("\ufffd", value)[:limit]


class OwnTrail:
    """Makes and stores the log's own events.

    Args:
        store: where they go.
        prepare: validates, encodes and hashes events for an org (the core's own path, which
            allows the reserved operations and actors).
        clock: the time of each record.
    """

    def __init__(
        self,
        store: LogStore,
        prepare: Callable[[str, Sequence[Mapping[str, Any]]], list[PreparedEvent]],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._prepare = prepare
        self._clock = clock
        #: Records of reads that could not be stored (each was logged as an error).
        self.failures = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list[PreparedEvent]] = {}
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()

    def event(
        self,
        operation: str,
        org_id: str,
        *,
        actor: ApiKey | None,
        key: ApiKey,
        metadata: dict[str, Any],
        context: RequestContext | None = None,
    ) -> dict[str, Any]:
        """One of the log's own events: ``actor`` did ``operation`` with or to ``key``."""
        who = (
            {"id": actor.id, "type": "api_key", "name": actor.name or None}
            if actor is not None
            else dict(ADMIN_ACTOR)
        )
        event: dict[str, Any] = {
            # Given here, not defaulted: a defaulted time makes ingest look the id up in the
            # store (to deduplicate a resent event), a read per search for a fresh id.
            "id": str(uuid7()),
            "time": format_time(self._clock()),
            "actor": who,
            "operation": operation,
            "targets": [
                {"type": "organization", "id": org_id},
                {"type": "api_key", "id": key.id, "name": _one_line(key.name, 256)},
            ],
            "metadata": metadata,
        }
        if context is not None:
            event["source_ip"] = plain_address(context.source_ip)
            event["user_agent"] = _one_line(context.user_agent, _USER_AGENT)
            event["request_id"] = usable_request_id(context.request_id)
            event["metadata"] = {**metadata, "face": context.face}
        return event

    def prepare(self, org_id: str, event: Mapping[str, Any]) -> list[PreparedEvent]:
        """Validate one of the log's own events (raises ``EventValidationError``)."""
        return self._prepare(org_id, [event])

    def record(self, org_id: str, event: Mapping[str, Any]) -> None:
        """Store one of the log's own events now, and wait for the commit."""
        self._store.append(org_id, self._prepare(org_id, [event]))

    def record_read(
        self, key: ApiKey, operation: str, request: Mapping[str, Any], context: RequestContext
    ) -> None:
        """Record that ``key`` read the log, without waiting for a commit.

        The record is validated now and committed with the others of the same moment within
        ``OWN_FLUSH_SECONDS`` (and at ``close``): a commit per read would make every search
        wait on the writer. A failure to store it is logged as an error and counted
        (``failures``), never dropped silently.
        """
        event = self.event(
            operation,
            key.org_id,
            actor=key,
            key=key,
            metadata={"request": describe_request(request)},
            context=context,
        )
        try:
            unique = self._prepare(key.org_id, [event])
        except EventValidationError as exc:
            # Never lose the record of a read that happened: keep what can be kept.
            _log.warning("a read's request could not be recorded whole: %s", exc)
            event["metadata"] = {
                "request": {"parameters": sorted(str(n) for n in request)[:100]},
                "unrecordable": str(exc)[:512],
                "face": context.face,
            }
            unique = self._prepare(key.org_id, [event])
        with self._lock:
            self._pending.setdefault(key.org_id, []).extend(unique)
            if self._flusher is None:
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="trailkeeper-read-records", daemon=True
                )
                self._flusher.start()

    def flush(self) -> None:
        """Commit the pending records of reads now, and wait for the commit."""
        for future in self._flush():
            future.exception()  # waits; a failure was logged and counted by the callback

    def close(self) -> None:
        """Stop the background flusher and commit what is pending."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush()

    def _flush_loop(self) -> None:
        while not self._stop.wait(OWN_FLUSH_SECONDS):
            self._flush()

    def _flush(self) -> list[Future[list[Appended]]]:
        with self._lock:
            pending, self._pending = self._pending, {}
        futures = []
        for org_id, batch in pending.items():
            try:
                future = self._store.submit(org_id, batch)
            except Exception as exc:  # counted and logged: the flusher must keep running
                self.failures += len(batch)
                _log.error("could not store %d record(s) of reads of the log: %s", len(batch), exc)
                continue
            future.add_done_callback(partial(self._done, records=len(batch)))
            futures.append(future)
        return futures

    def _done(self, future: Future[list[Appended]], *, records: int) -> None:
        exc = future.exception()
        if exc is not None:
            self.failures += records
            _log.error("could not store %d record(s) of reads of the audit log: %s", records, exc)
