"""A typed Python client of the HTTP API, on httpx: ``Client`` and ``AsyncClient``.

from trailkeeper import Client

with Client("http://127.0.0.1:8000", key="tk_...") as tk:
    tk.record("model.create", actor="ana", targets=[{"type": "model", "id": "m1"}])
    for event in tk.events.list(operation="model.*", success=False):
        print(event["time"], event["actor"]["id"])
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

Event = dict[str, Any]


class TrailkeeperError(Exception):
    """The server refused a request; carries its RFC 9457 problem details.

    Attributes:
        status: the HTTP status. code: the machine-readable code (``invalid_events``, ...).
        detail: the server's sentence. errors: per-field errors (``index``, ``field``, ``message``).
    """

    def __init__(self, status: int, code: str, detail: str, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        super().__init__(f"{status} {code}: {detail}")


class AuthenticationError(TrailkeeperError):
    """401 or 403: the key is missing, invalid, expired, revoked or lacks a scope."""


class ValidationError(TrailkeeperError):
    """422 (invalid events) or 400 (invalid query, filter or cursor)."""


class ConflictError(TrailkeeperError):
    """409: an event id is already stored with other content."""


class StreamEndedError(TrailkeeperError):
    """The server ended a live stream and said why.

    ``code`` is ``key_revoked`` or ``key_expired`` (status 401: the key can no longer read;
    ``tail`` never reconnects after it), or another reason the server gives (status 503:
    ``shutting_down``, ``store_unavailable``; ``tail`` resumes with ``reconnect=True``).
    """


#: Why a stream may end for good: its key (or the console session) can no longer read.
_FOR_GOOD = ("key_revoked", "key_expired", "session_ended", "session_expired")


def _for_good(exc: Exception) -> bool:
    return isinstance(exc, StreamEndedError) and exc.status == 401


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    cls: type[TrailkeeperError] = TrailkeeperError
    if status in (401, 403):
        cls = AuthenticationError
    elif status in (400, 422):
        cls = ValidationError
    elif status == 409:
        cls = ConflictError
    raise cls(
        status,
        str(body.get("code", "http_error")),
        str(body.get("detail", response.text[:500])),
        list(body.get("errors", [])),
    )


def _event(operation: str, fields: Mapping[str, Any]) -> Event:
    event = {k: v for k, v in fields.items() if v is not None}
    event["operation"] = operation
    return event


Params = list[tuple[str, str | int | float | bool | None]]


def _params(filters: Mapping[str, Any]) -> Params:
    out: Params = []
    for name, value in filters.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            out.append((name, ("true" if v else "false") if isinstance(v, bool) else str(v)))
    return out


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of matching events, as ``events.page`` returns it.

    Attributes:
        events: the page's events, each as the server stores it (a ``dict``).
        next_cursor: pass it as ``cursor`` for the next page; ``None`` on the last page.
    """

    events: list[Event]
    next_cursor: str | None


def _page_params(
    filters: Mapping[str, Any], limit: int, cursor: str | None, q: str | None = None
) -> Params:
    return _params({**filters, "q": q, "limit": limit, "cursor": cursor})


def _first_size(page_size: int, limit: int | None) -> int:
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    return page_size if limit is None else min(page_size, limit)


def _to_page(body: Any) -> EventPage:
    return EventPage(events=list(body["events"]), next_cursor=body["next_cursor"])


class _Events:
    def __init__(self, client: Client) -> None:
        self._client = client

    def page(
        self, *, limit: int = 50, cursor: str | None = None, q: str | None = None, **filters: Any
    ) -> EventPage:
        """One page of matching events: a single request.

        Args:
            limit: the page size, 1 to 1,000.
            cursor: the previous page's ``next_cursor``; ``None`` for the first page.
            q: a query-language string, combined with ``filters`` by AND.
            **filters: the API's filter parameters (``operation``, ``actor``, ``success``, ...).

        Returns:
            An ``EventPage`` with ``events`` and ``next_cursor``.

        Raises:
            ValidationError: a bad query, filter or cursor (400).
        """
        return _to_page(self._client._get("/v1/events", _page_params(filters, limit, cursor, q)))

    def list(
        self, *, page_size: int = 200, limit: int | None = None, **filters: Any
    ) -> Iterator[Event]:
        """Every matching event (or the first ``limit``), page after page.

        The first page is fetched now, so a bad query raises here; later pages are fetched
        lazily as you iterate.

        Args:
            page_size: events per request, 1 to 1,000.
            limit: stop after this many events; ``None`` for every match.
            **filters: the API's filter parameters, and ``q`` for a query-language string.

        Returns:
            An iterator of events (``dict``), newest first unless ``order="asc"``.

        Raises:
            ValidationError: a bad query, filter or cursor (400).
        """
        size = _first_size(page_size, limit)
        first = self.page(limit=size, **filters)
        return self._rest(first, page_size, limit, filters)

    def _rest(
        self, page: EventPage, page_size: int, limit: int | None, filters: Mapping[str, Any]
    ) -> Iterator[Event]:
        left = limit
        while True:
            events = page.events if left is None else page.events[:left]
            yield from events
            if left is not None:
                left -= len(events)
            if page.next_cursor is None or left == 0:
                return
            size = page_size if left is None else min(page_size, left)
            page = self.page(limit=size, cursor=page.next_cursor, **filters)

    def search(
        self, q: str, *, page_size: int = 200, limit: int | None = None, **filters: Any
    ) -> Iterator[Event]:
        """``list`` with a query-language string: the first page is fetched now (a bad
        query raises ``ValidationError`` here), later ones as you iterate.

        Returns:
            An iterator of up to ``limit`` events (every match when ``None``).
        """
        return self.list(q=q, page_size=page_size, limit=limit, **filters)

    def get(self, event_id: str) -> Event:
        result: Event = self._client._get(f"/v1/events/{event_id}", [])
        return result

    def export(self, format: str = "jsonl", **filters: Any) -> Iterator[bytes]:
        """The export stream (CSV or JSON Lines), in chunks, in seq order."""
        params = _params({**filters, "format": format})
        with self._client._http.stream("GET", "/v1/events/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for(response)
            yield from response.iter_bytes()

    def tail(
        self, *, after: int | None = None, backlog: int = 0, reconnect: bool = True, **filters: Any
    ) -> Iterator[Event]:
        """Follow the org's log: matching events in seq order as they are stored, forever.

        Args:
            after: start after this seq; by default only events stored from now on.
            backlog: start with the matching events among the org's last ``backlog``.
            reconnect: when the connection drops, reconnect and resume after the last event
                received (no event is skipped or repeated); otherwise raise.

        Raises:
            StreamEndedError: the server ended the stream for good (its key was revoked or
                expired): never reconnected. A stream the server ended for another reason
                (``shutting_down``, ``store_unavailable``) is resumed like a dropped one.
        """
        sse = _SSE()
        params = _stream_params(after, backlog, filters)
        while True:
            sse.reconnected()
            headers = {"Last-Event-ID": sse.last_id} if sse.last_id is not None else {}
            try:
                with self._client._http.stream(
                    "GET", "/v1/events/stream", params=params, headers=headers,
                    timeout=_STREAM_TIMEOUT,
                ) as response:  # fmt: skip
                    if response.status_code >= 400:
                        response.read()
                        _raise_for(response)
                    lines = _Lines()
                    for chunk in response.iter_bytes():
                        for line in lines.feed(chunk):
                            data = sse.feed(line)
                            if data is not None:
                                yield json.loads(data)
            except (httpx.TransportError, StreamEndedError) as exc:
                if not reconnect or _for_good(exc):
                    raise
                time.sleep(1.0)


#: Longer than the server's keep-alive interval on an idle stream (15 s).
_STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)


class _Lines:
    """The lines of an event stream, split on CR, LF and CRLF only, as the SSE spec says.

    Not ``str.splitlines`` (nor httpx's ``iter_lines``, which follows it): it also splits on
    U+0085, U+2028, U+2029 and other controls, which JSON carries unescaped inside a string,
    so one event stored with such a character would be cut in two, fail to parse, and be
    sent again on every resume. Splitting the bytes is safe: UTF-8 never uses the bytes of
    CR or LF inside another character.
    """

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._rest + chunk
        lines = []
        start = 0
        for found in _LINE_BREAK.finditer(data):
            if found.end() == len(data) and found.group() == b"\r":
                break  # the CR of a CRLF split across chunks: decide with the next chunk
            lines.append(data[start : found.start()].decode("utf-8", "replace"))
            start = found.end()
        self._rest = data[start:]
        return lines


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class _SSE:
    """Server-sent events, parsed line by line: returns each message's data.

    Raises:
        StreamEndedError: for an ``event: error`` message, the server's last.
    """

    def __init__(self) -> None:
        #: The id of the last message dispatched: where a reconnection resumes.
        self.last_id: str | None = None
        self._id: str | None = None
        self._data: list[str] = []
        self._event = ""

    def reconnected(self) -> None:
        """Forget a message cut by a dropped connection: it is sent again, whole."""
        self._id, self._data, self._event = None, [], ""

    def feed(self, line: str) -> str | None:
        if not line:
            data, self._data = self._data, []
            event, self._event = self._event, ""
            # The id counts only once its message is whole (the SSE spec's "last event ID
            # buffer"): a connection cut between `id:` and the blank line must resume
            # before that message, not after it.
            if self._id is not None:
                self.last_id, self._id = self._id, None
            if event == "error":
                _stream_ended("\n".join(data))
            return "\n".join(data) if data else None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        elif field == "event":
            self._event = value
        return None


def _stream_ended(data: str) -> None:
    try:
        said = json.loads(data)
    except ValueError:
        said = {}
    if not isinstance(said, dict):
        said = {}
    code = str(said.get("code") or "stream_ended")
    detail = str(said.get("message") or "the server ended the stream")
    status = 401 if code in _FOR_GOOD else 503
    raise StreamEndedError(status, code, detail, [])


def _stream_params(after: int | None, backlog: int, filters: Mapping[str, Any]) -> Params:
    return _params({**filters, "after": after, "backlog": backlog or None})


class Client:
    """A blocking client. ``key`` is an API key's secret."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=timeout,
            transport=transport,
        )
        self.events = _Events(self)

    def record(self, operation: str, **fields: Any) -> dict[str, Any]:
        """Record one event now; returns ``{"id", "seq", "duplicate"}``."""
        result = self.record_many([_event(operation, fields)])
        entry: dict[str, Any] = result["events"][0]
        return entry

    def record_many(self, events: Sequence[Event]) -> dict[str, Any]:
        """Record up to 1,000 events, all or nothing."""
        response = self._http.post("/v1/events", json={"events": list(events)})
        _raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    def operations(self) -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = self._get("/v1/operations", [])["operations"]
        return ops

    def apps(self) -> list[dict[str, Any]]:
        """Apps seen in the key's org: ``app_id``, ``events``, ``last_activity``."""
        apps: list[dict[str, Any]] = self._get("/v1/apps", [])["apps"]
        return apps

    def activity(self, bucket: str = "hour", **filters: Any) -> list[dict[str, Any]]:
        """Event and failure counts per ``hour`` or ``day`` for matching events."""
        params = _params({**filters, "bucket": bucket})
        buckets: list[dict[str, Any]] = self._get("/v1/stats/activity", params)["buckets"]
        return buckets

    def _get(self, path: str, params: Params) -> Any:
        response = self._http.get(path, params=params)
        _raise_for(response)
        return response.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventIterator:
    """The matching events, for ``async for``; ``await`` it first to fetch the first page now.

    ``events = await tk.events.search(q)`` raises a bad query's ``ValidationError`` at the
    call; ``async for event in tk.events.search(q)`` works too, and raises it at the first
    iteration.
    """

    def __init__(
        self, events: _AsyncEvents, page_size: int, limit: int | None, filters: dict[str, Any]
    ) -> None:
        self._events = events
        self._page_size = page_size
        self._left = limit
        self._filters = filters
        self._buffer: list[Event] = []
        self._cursor: str | None = None
        self._started = False
        self._done = limit == 0

    async def _fetch(self) -> None:
        size = self._page_size if self._left is None else min(self._page_size, self._left)
        page = await self._events.page(limit=size, cursor=self._cursor, **self._filters)
        self._started = True
        self._buffer = page.events if self._left is None else page.events[: self._left]
        if self._left is not None:
            self._left -= len(self._buffer)
        self._cursor = page.next_cursor
        self._done = self._cursor is None or self._left == 0

    async def _start(self) -> AsyncEventIterator:
        if not self._started and not self._done:
            await self._fetch()
        return self

    def __await__(self) -> Generator[Any, None, AsyncEventIterator]:
        return self._start().__await__()

    def __aiter__(self) -> AsyncEventIterator:
        return self

    async def aclose(self) -> None:
        """Stop: no more pages are fetched (``contextlib.aclosing`` calls it)."""
        self._done, self._buffer = True, []

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._done:
                raise StopAsyncIteration
            await self._fetch()
        return self._buffer.pop(0)


class _AsyncEvents:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def page(
        self, *, limit: int = 50, cursor: str | None = None, q: str | None = None, **filters: Any
    ) -> EventPage:
        """One page of matching events (see ``Client.events.page``)."""
        params = _page_params(filters, limit, cursor, q)
        return _to_page(await self._client._get("/v1/events", params))

    def list(
        self, *, page_size: int = 200, limit: int | None = None, **filters: Any
    ) -> AsyncEventIterator:
        """Every matching event (or the first ``limit``), page after page.

        Returns:
            An ``AsyncEventIterator``: ``await`` it to fetch the first page now (a bad query
            raises ``ValidationError`` at the call), then ``async for`` over it.
        """
        _first_size(page_size, limit)
        return AsyncEventIterator(self, page_size, limit, filters)

    def search(
        self, q: str, *, page_size: int = 200, limit: int | None = None, **filters: Any
    ) -> AsyncEventIterator:
        """``list`` with a query-language string (see ``list``)."""
        return self.list(q=q, page_size=page_size, limit=limit, **filters)

    async def get(self, event_id: str) -> Event:
        result: Event = await self._client._get(f"/v1/events/{event_id}", [])
        return result

    async def export(self, format: str = "jsonl", **filters: Any) -> AsyncIterator[bytes]:
        params = _params({**filters, "format": format})
        async with self._client._http.stream("GET", "/v1/events/export", params=params) as response:
            if response.status_code >= 400:
                await response.aread()
                _raise_for(response)
            async for chunk in response.aiter_bytes():
                yield chunk

    async def tail(
        self, *, after: int | None = None, backlog: int = 0, reconnect: bool = True, **filters: Any
    ) -> AsyncIterator[Event]:
        """Follow the org's log (see ``Client.events.tail``)."""
        sse = _SSE()
        params = _stream_params(after, backlog, filters)
        while True:
            sse.reconnected()
            headers = {"Last-Event-ID": sse.last_id} if sse.last_id is not None else {}
            try:
                async with self._client._http.stream(
                    "GET", "/v1/events/stream", params=params, headers=headers,
                    timeout=_STREAM_TIMEOUT,
                ) as response:  # fmt: skip
                    if response.status_code >= 400:
                        await response.aread()
                        _raise_for(response)
                    lines = _Lines()
                    async for chunk in response.aiter_bytes():
                        for line in lines.feed(chunk):
                            data = sse.feed(line)
                            if data is not None:
                                yield json.loads(data)
            except (httpx.TransportError, StreamEndedError) as exc:
                if not reconnect or _for_good(exc):
                    raise
                await asyncio.sleep(1.0)


class AsyncClient:
    """The asyncio twin of ``Client``."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=timeout,
            transport=transport,
        )
        self.events = _AsyncEvents(self)

    async def record(self, operation: str, **fields: Any) -> dict[str, Any]:
        result = await self.record_many([_event(operation, fields)])
        entry: dict[str, Any] = result["events"][0]
        return entry

    async def record_many(self, events: Sequence[Event]) -> dict[str, Any]:
        response = await self._http.post("/v1/events", json={"events": list(events)})
        _raise_for(response)
        result: dict[str, Any] = response.json()
        return result

    async def operations(self) -> list[dict[str, Any]]:
        ops: list[dict[str, Any]] = (await self._get("/v1/operations", []))["operations"]
        return ops

    async def apps(self) -> list[dict[str, Any]]:
        """Apps seen in the key's org: ``app_id``, ``events``, ``last_activity``."""
        apps: list[dict[str, Any]] = (await self._get("/v1/apps", []))["apps"]
        return apps

    async def activity(self, bucket: str = "hour", **filters: Any) -> list[dict[str, Any]]:
        """Event and failure counts per ``hour`` or ``day`` for matching events."""
        params = _params({**filters, "bucket": bucket})
        buckets: list[dict[str, Any]] = (await self._get("/v1/stats/activity", params))["buckets"]
        return buckets

    async def _get(self, path: str, params: Params) -> Any:
        response = await self._http.get(path, params=params)
        _raise_for(response)
        return response.json()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
