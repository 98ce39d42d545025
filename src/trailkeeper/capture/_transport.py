"""The ``Transport`` port and its two adapters: HTTP to a server, or a local store."""

from __future__ import annotations

import http.client
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from ..service import AuditService

_log = logging.getLogger("trailkeeper.capture")
#: The server's limits per request (docs/api.md); kept a little under the 5 MiB body limit.
MAX_EVENTS = 1_000
MAX_BODY = 5 * 1024 * 1024 - 4096


class TransportError(Exception):
    """The events could not be delivered now, but may be later (outage, overload, auth)."""


class Transport(ABC):
    """Delivers batches of encoded events to one audit log.

    ``send`` either delivers the batch (returning the events the log refused for good, by
    index, with the reason) or raises ``TransportError`` having delivered none of it. Sending
    an event twice is harmless: the log deduplicates by id.
    """

    @abstractmethod
    def send(self, org_id: str | None, events: Sequence[bytes]) -> list[tuple[int, str]]:
        """Deliver ``events`` (each the JSON of one event) to ``org_id``'s log (``None``: the
        transport's default org). Returns ``(index, reason)`` of each refused event."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def after_fork(self) -> None:  # noqa: B027 (optional hook: most transports need nothing)
        """In a forked child: drop connections shared with the parent (reconnect lazily)."""


class HttpTransport(Transport):
    """``POST /v1/events`` over one kept-alive HTTP/1.1 connection (standard library only).

    Args:
        url: the server's base URL (``http://host:port``; ``https`` works too).
        key: an ``events:write`` key. ``keys`` maps org ids to keys for multi-tenant
            producers; an event's org picks its key, ``None`` picks ``key``.
    """

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        keys: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r}: expected http://host[:port] or https://host[:port]")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + "/v1/events"
        self._keys = dict(keys or {})
        self._default = key
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def send(self, org_id: str | None, events: Sequence[bytes]) -> list[tuple[int, str]]:
        key = self._keys.get(org_id, self._default) if org_id is not None else self._default
        if key is None:
            return [(i, f"no key for org {org_id!r}") for i in range(len(events))]
        refused: list[tuple[int, str]] = []
        live = list(range(len(events)))
        # A refused batch stores nothing; resend the rest without the refused events.
        while live:
            status, body = self._post(key, [events[i] for i in live])
            if status < 300:
                return refused
            if status in (409, 422) and isinstance(body, dict):
                reasons: dict[int, str] = {}
                for error in body.get("errors", []):
                    index = error.get("index") if isinstance(error, dict) else None
                    if isinstance(index, int) and 0 <= index < len(live):
                        said = f"{error.get('field', '')}: {error.get('message', '')}"
                        reasons[index] = f"{reasons[index]}; {said}" if index in reasons else said
                if reasons:
                    refused.extend((live[i], reasons[i]) for i in sorted(reasons))
                    live = [n for i, n in enumerate(live) if i not in reasons]
                    continue
            if status in (400, 409, 413, 422):
                reason = f"{status} {body.get('code') if isinstance(body, dict) else body}"
                return refused + [(n, reason) for n in live]
            detail = body.get("detail") if isinstance(body, dict) else body
            if status in (401, 403):
                _log.error("trailkeeper: the server refused the key (%s): %s", status, detail)
            raise TransportError(f"HTTP {status}: {detail}")
        return refused

    def _post(self, key: str, events: Sequence[bytes]) -> tuple[int, Any]:
        body = b'{"events":[' + b",".join(events) + b"]}"
        headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        }
        for attempt in (1, 2):
            conn = self._conn or self._connect()
            try:
                conn.request("POST", self._path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._conn = None
                # A kept-alive connection the server closed fails once; try a fresh one.
                if attempt == 2 or isinstance(exc, ConnectionRefusedError | TimeoutError):
                    raise TransportError(f"{type(exc).__name__}: {exc}") from exc
                continue
            if response.getheader("connection", "").lower() == "close":
                conn.close()
                self._conn = None
            try:
                parsed: Any = orjson.loads(data) if data else {}
            except orjson.JSONDecodeError:
                parsed = data[:200].decode(errors="replace")
            return response.status, parsed
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def after_fork(self) -> None:
        self.close()  # closes the child's copy of the socket; the parent's stays open


class LocalTransport(Transport):
    """Writes straight into a local store through ``AuditService`` (no server).

    Args:
        service: an open service (the caller closes it), or a database URL to open (closed
            with the transport).
        org_id: the org of events recorded without one.
    """

    def __init__(self, service: AuditService | str, org_id: str) -> None:
        if isinstance(service, str):
            from ..service import AuditService

            self._service = AuditService.open(service)
            self._owned = True
        else:
            self._service = service
            self._owned = False
        self._org = org_id

    def send(self, org_id: str | None, events: Sequence[bytes]) -> list[tuple[int, str]]:
        from ..events import EventValidationError
        from ..store import ConflictError, StoreClosedError

        refused: list[tuple[int, str]] = []
        live = list(range(len(events)))
        decoded = [orjson.loads(e) for e in events]
        while live:
            try:
                self._service.ingest(org_id or self._org, [decoded[i] for i in live])
                return refused
            except EventValidationError as exc:
                bad = {e.index for e in exc.errors if e.index is not None}
                reasons = {e.index: f"{e.field}: {e.message}" for e in exc.errors}
            except ConflictError as exc:
                bad = {i for i, _ in exc.conflicts}
                reasons = {i: f"id {e} is stored with other content" for i, e in exc.conflicts}
            except StoreClosedError as exc:
                raise TransportError(str(exc)) from exc
            if not bad:
                return refused + [(n, "refused by the store") for n in live]
            refused.extend((live[i], reasons[i]) for i in sorted(bad))
            live = [n for i, n in enumerate(live) if i not in bad]
        return refused

    def close(self) -> None:
        if self._owned:
            self._service.close()
