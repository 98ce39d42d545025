"""The key-scoped reader: every read of the log, by any face, goes through one.

A ``Reader`` belongs to one key and one request. It applies the key's org and app limits,
checks that the key is still usable (again on every poll of a long read, such as a stream),
and records the read in the org's log with where it came from. The HTTP API, the console,
the Clarifai faces and the CLI only build a ``RequestContext`` and call it; none of them
authorizes or records on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from ._keyring import Keyring
from ._results import Page
from ._trail import OwnTrail, RequestContext
from .events import StoredEvent
from .filters import Filters, Match
from .keys import ApiKey
from .store import AppActivity, Bucket, Order, SearchQuery, Tail

__all__ = ["Follow", "Reader", "RequestContext"]

#: Events a stream reads from the store per poll.
FOLLOW_BATCH = 500
#: The most events a stream may replay from before it opened (``backlog``).
MAX_BACKLOG = 1000

READ = "events:read"


class Core(Protocol):
    """What a reader needs of the core: its unscoped reads (``AuditService`` has them)."""

    def search(
        self,
        org_id: str,
        filters: Filters | None = None,
        *,
        order: Order = "desc",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page: ...

    def search_window(
        self,
        org_id: str,
        filters: Filters | None = None,
        *,
        order: Order = "desc",
        offset: int = 0,
        limit: int = 50,
    ) -> list[StoredEvent]: ...

    def get(self, org_id: str, event_id: str) -> StoredEvent | None: ...

    def scan(
        self, org_id: str, filters: Filters | None = None, *, after_seq: int = -1
    ) -> Iterator[StoredEvent]: ...

    def tail(self, org_id: str, filters: Filters, *, after_seq: int, limit: int) -> Tail: ...

    def apps(self, org_id: str) -> list[AppActivity]: ...

    def activity(self, org_id: str, filters: Filters, *, bucket: str = "hour") -> list[Bucket]: ...

    def size(self, org_id: str) -> int: ...

    def compile(
        self, filters: Filters, *, order: Order = "desc", limit: int = 50
    ) -> SearchQuery: ...


class Reader:
    """Reads of one org's log with one key, for one request; each read is recorded once.

    Made by ``AuditService.reader``, which checks that the key may read. Every method may
    raise ``QueryError`` for a bad filter, limit or cursor (and then records nothing).

    ``request``, where a method takes it, is the request's parameters as the face received
    them: the record keeps them (``q`` whole up to 4 KiB, every filter; see
    ``describe_request``). Without it, the filters are described from ``Filters``.
    """

    def __init__(
        self,
        core: Core,
        keyring: Keyring,
        trail: OwnTrail,
        key: ApiKey,
        context: RequestContext,
        session: tuple[str, datetime] | None = None,
    ) -> None:
        self._core = core
        self._keyring = keyring
        self._trail = trail
        self.key = key
        self.context = context
        self._session = session

    @property
    def org_id(self) -> str:
        return self.key.org_id

    def search(
        self,
        filters: Filters | None = None,
        *,
        order: Order = "desc",
        limit: int = 50,
        cursor: str | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> Page:
        """One page of the org's matching events the key may see (``AuditService.search``)."""
        page = self._core.search(
            self.org_id, self._limited(filters), order=order, limit=limit, cursor=cursor
        )
        extra: dict[str, Any] = {} if request is not None else {"order": order, "limit": limit}
        if page.window is not None:
            extra["window"] = [t.isoformat() if t is not None else None for t in page.window]
        self._record("audit_log.search", request, filters, **extra)
        return page

    def search_window(
        self,
        filters: Filters | None = None,
        *,
        order: Order = "desc",
        offset: int = 0,
        limit: int = 50,
        request: Mapping[str, Any] | None = None,
    ) -> list[StoredEvent]:
        """A numbered page of matching events (``AuditService.search_window``)."""
        events = self._core.search_window(
            self.org_id, self._limited(filters), order=order, offset=offset, limit=limit
        )
        self._record("audit_log.search", request, filters, offset=offset, limit=limit)
        return events

    def get(self, event_id: str) -> StoredEvent | None:
        """The event with this id, or ``None`` if the org has none the key may see.

        The read is recorded whether or not the event was found.
        """
        stored = self._core.get(self.org_id, event_id)
        if stored is not None and self.key.apps and stored.event.app_id not in self.key.apps:
            stored = None
        self._record("audit_log.search", {"id": event_id[:128], "found": stored is not None})
        return stored

    def export(
        self,
        filters: Filters | None = None,
        *,
        format: str = "jsonl",
        request: Mapping[str, Any] | None = None,
    ) -> Iterator[StoredEvent]:
        """Every matching event the key may see, in seq order; recorded as an export."""
        events = self._core.scan(self.org_id, self._limited(filters))
        self._record("audit_log.export", request, filters, format=format)
        return events

    def apps(self) -> list[AppActivity]:
        """The apps of the org the key may see, with event counts and last activity."""
        found = self._core.apps(self.org_id)
        self._record("audit_log.search", {"apps": True})
        return [a for a in found if not self.key.apps or a.app_id in self.key.apps]

    def activity(
        self,
        filters: Filters | None = None,
        *,
        bucket: str = "hour",
        request: Mapping[str, Any] | None = None,
    ) -> list[Bucket]:
        """Event and failure counts per bucket (``AuditService.activity``)."""
        buckets = self._core.activity(self.org_id, self._limited(filters), bucket=bucket)
        self._record("audit_log.search", request, filters, activity=bucket)
        return buckets

    def follow(
        self,
        filters: Filters | None = None,
        *,
        after: int | None = None,
        backlog: int = 0,
        request: Mapping[str, Any] | None = None,
    ) -> Follow:
        """Follow the log from ``after`` (default: its head less ``backlog``), in seq order.

        Recorded once, as ``audit_log.stream``, when it opens. Every ``Follow.poll`` checks
        again that the key is usable.

        Raises:
            QueryError: a bad filter. ValueError: ``backlog`` out of 0-1000.
        """
        if not 0 <= backlog <= MAX_BACKLOG:
            raise ValueError(f"backlog must be from 0 to {MAX_BACKLOG}")
        limited = self._limited(filters)
        self._core.compile(limited)  # a bad filter fails here, before anything is recorded
        if after is None:
            after = max(self._core.size(self.org_id) - 1 - backlog, -1)
        self._record("audit_log.stream", request, filters, after=after)
        return Follow(self, limited, after)

    def recheck(self) -> ApiKey:
        """The key as stored now, if it may still read.

        Raises:
            AuthError: revoked, expired or gone since the reader was made, or the console
                session it was made in was signed out or is over.
        """
        return self._keyring.recheck(self.key, READ, session=self._session)

    def _limited(self, filters: Filters | None) -> Filters:
        filters = filters or Filters()
        if self.key.apps:
            return filters.combine(Filters(match=Match(apps=self.key.apps)))
        return filters

    def _record(
        self,
        operation: str,
        request: Mapping[str, Any] | None,
        filters: Filters | None = None,
        **extra: Any,
    ) -> None:
        # What the face received, and what the core made of it (the seq a stream starts
        # after, a relative span's window carried by a cursor): the record says both.
        described = {**request, **extra} if request is not None else _described(filters, extra)
        self._trail.record_read(self.key, operation, described, self.context)


class Follow:
    """A long read of the log in seq order: poll it for what was stored since.

    Made by ``Reader.follow``. ``position`` is the last seq handled: every event up to it
    was returned or does not match.
    """

    def __init__(self, reader: Reader, filters: Filters, after: int) -> None:
        self._reader = reader
        self._filters = filters
        self.position = after

    def poll(self) -> list[StoredEvent]:
        """The next matching events after ``position`` (at most ``FOLLOW_BATCH``).

        An empty list means nothing new yet. The key is checked after the events are read and
        before they are returned, so no event stored after a revocation or expiry is ever
        returned.

        Raises:
            AuthError: the key was revoked or expired (``revoked_key``/``expired_key``).
        """
        reader = self._reader
        tail = reader._core.tail(
            reader.org_id, self._filters, after_seq=self.position, limit=FOLLOW_BATCH
        )
        reader.recheck()
        batch = tail.events
        if len(batch) == FOLLOW_BATCH:
            self.position = batch[-1].seq
        else:
            # The read saw every event below its own head: with a replica, the replica's
            # head, so an event the primary holds and the replica does not yet is never passed.
            self.position = max(self.position, tail.head - 1)
        return batch


def _described(filters: Filters | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """A request's description from ``Filters``, for callers without raw parameters."""
    out: dict[str, Any] = {}
    if filters is not None:
        for prefix, match in (("", filters.match), ("-", filters.exclude)):
            for name in ("operations", "actors", "targets", "apps", "source_ips", "request_ids"):
                values = getattr(match, name)
                if values:
                    out[prefix + name] = list(values)
        if filters.success is not None:
            out["success"] = filters.success
        for name in ("since", "until"):
            moment = getattr(filters, name)
            if moment is not None:
                out[name] = moment.isoformat()
        if filters.text:
            out["q"] = " ".join(filters.text)
    out.update(extra)
    return out
