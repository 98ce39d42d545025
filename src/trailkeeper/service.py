"""``AuditService``: the one core that the API, the console and the CLI all call."""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from ._keyring import Keyring
from ._reader import Reader
from ._results import IngestResult, Page, QueryError
from ._trail import RESERVED_PREFIX, OwnTrail, RequestContext, is_reserved_actor
from .events import (
    ID_RULE,
    Catalogue,
    EventRules,
    EventValidationError,
    FieldError,
    StoredEvent,
    UnknownOperationError,
    check_event_size,
    from_micros,
    leaf_hash,
    parse_event,
    to_micros,
)
from .events._limits import ID_PATTERN
from .events._validate import BatchErrors
from .filters import MAX_EXPANDED_OPERATIONS, Filters, Match
from .keys import ApiKey, AuthError
from .store import (
    AppActivity,
    Appended,
    Bucket,
    ConflictError,
    Criteria,
    LogStore,
    Order,
    Position,
    PreparedEvent,
    SearchQuery,
    Tail,
    TargetRef,
    open_store,
)

__all__ = [
    "MAX_PAGE",
    "MAX_WINDOW",
    "AppNotAllowedError",
    "AuditService",
    "IngestResult",
    "Page",
    "QueryError",
    "Reader",
    "RequestContext",
    "ReservedError",
]

MAX_PAGE = 1000
#: How deep numbered pages reach: offset + page size of ``search_window`` at most.
MAX_WINDOW = 100_000
_log = logging.getLogger("trailkeeper")
#: How large the log's own records may be (a read's full request; see ``OwnTrail``).
OWN_METADATA_BYTES = 256 * 1024
OWN_EVENT_BYTES = 288 * 1024
#: Ingests validate in turn, this many events at a time (~2 ms): see ``_validating``.
VALIDATE_CHUNK = 64
# Cursor positions must lie where event times can (years 1-9999) and seqs are 64-bit.
_MIN_TIME_US = -62_135_596_800_000_000
_MAX_TIME_US = 253_402_300_800_000_000


class ReservedError(EventValidationError):
    """An ingest of what only Trailkeeper itself records: ``audit_log.*`` operations
    (``code`` ``reserved_operation``) or its own actor ids (``reserved_actor``)."""

    def __init__(self, code: str, errors: list[FieldError]) -> None:
        super().__init__(errors)
        self.code = code


class AppNotAllowedError(AuthError):
    """A write key limited to some apps sent an event for another app, or for none."""

    def __init__(self, message: str) -> None:
        super().__init__("app_not_allowed", message)


class AuditService:
    """Ingest, search and read audit events, over any ``LogStore``.

    Reads on behalf of a caller go through ``reader(key, context)``, which applies the
    key's limits and records the read. The unscoped reads (``search``, ``get``, ``scan``, …)
    are for embedded and administrative use: they check nothing and record nothing.

    Attributes:
        keys: the API keys (``Keyring``): make, list, revoke, authenticate.
        trail: the log's own trail (``OwnTrail``): records of reads and key changes.

    Args:
        store: the storage backend; the service closes it in ``close``.
        rules: validation rules (catalogue, limits, redaction).
        clock: the receive-time clock; tests may pass a fake one.
    """

    def __init__(
        self,
        store: LogStore,
        *,
        rules: EventRules | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.rules = rules or EventRules()
        # Validation is pure Python: the interpreter runs one thread of it at a time whatever
        # the lock. Queued here, ingest threads leave the interpreter to the few that hold a
        # database lock (PostgreSQL's org head) and wait on the network; contending for it
        # instead, they delay each of those round trips and so every ingest of that org.
        # Held for VALIDATE_CHUNK events at a time, so no one waits long for it; the records
        # of reads (a few events each, some on the event loop) don't take it.
        self._validating = threading.Lock()
        self._clock = clock or (lambda: datetime.now(UTC))
        # A record of a read keeps every filter it was asked with (up to 500 values, 4 KiB of
        # text): more than a producer's metadata may hold. Only the server writes these.
        limits = replace(
            self.rules.limits, metadata_bytes=OWN_METADATA_BYTES, event_bytes=OWN_EVENT_BYTES
        )
        self._own_rules = replace(self.rules, limits=limits)
        self.trail = OwnTrail(store, self._prepare_own, self._clock)
        self.keys = Keyring(store, self.trail, self._clock)

    def reader(
        self,
        key: ApiKey,
        context: RequestContext | None = None,
        *,
        session: tuple[str, datetime] | None = None,
    ) -> Reader:
        """A reader of ``key``'s org, limited to its apps, recording each read with
        ``context`` (where the request came from).

        ``session``: the console session (id, end) the reads are made in; long reads end
        when it is signed out or over, as when the key is revoked or expires.

        Raises:
            AuthError: the key is revoked, expired, or lacks the ``events:read`` scope.
        """
        self.keys.usable(key, "events:read")
        return Reader(self, self.keys, self.trail, key, context or RequestContext(), session)

    @property
    def read_audit_failures(self) -> int:
        """Records of reads that could not be stored (each was logged as an error)."""
        return self.trail.failures

    @classmethod
    def open(cls, url: str, *, rules: EventRules | None = None) -> AuditService:
        """A service over the store that ``url`` names (see ``trailkeeper.store.open_store``)."""
        return cls(open_store(url), rules=rules)

    @property
    def catalogue(self) -> Catalogue:
        return self.rules.catalogue

    def flush_reads(self) -> None:
        """Commit the pending records of reads of the log now, and wait for the commit."""
        self.trail.flush()

    def close(self) -> None:
        """Store the pending records of reads, then close the store."""
        self.trail.close()
        self.store.close()

    def __enter__(self) -> AuditService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest -------------------------------------------------------------------------------

    def ingest(
        self,
        org_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        allow_reserved: bool = False,
    ) -> IngestResult:
        """Validate, redact, deduplicate, sequence and durably store a batch, all or nothing.

        Returns once the batch is committed.

        Args:
            allow_reserved: accept the operations and actors only Trailkeeper records
                (``audit_log.*``, ``trailkeeper-*``): for imports of a log, never for
                producers.

        Raises:
            EventValidationError: one or more events are invalid (each named by index and
                field), or an id repeats in the batch with other content; nothing was stored.
                ``ReservedError`` (a subclass) for reserved operations or actors.
            trailkeeper.store.ConflictError: an id is already stored with other content;
                nothing was stored.
        """
        if not allow_reserved:
            _refuse_reserved(events)
        unique, position = self._prepare(org_id, events, queued=True)
        try:
            appended = self.store.append(org_id, unique)
        except ConflictError as conflict:
            appended = self._append_retimed(org_id, events, unique, position, conflict)
        results: list[Appended] = []
        taken: set[int] = set()
        for slot in position:
            result = appended[slot]
            if slot in taken and not result.duplicate:
                result = Appended(result.id, result.seq, True)
            taken.add(slot)
            results.append(result)
        duplicates = sum(1 for r in results if r.duplicate)
        return IngestResult(len(results) - duplicates, duplicates, results)

    def _prepare(
        self,
        org_id: str,
        events: Sequence[Mapping[str, Any]],
        *,
        queued: bool = False,
        rules: EventRules | None = None,
    ) -> tuple[list[PreparedEvent], list[int]]:
        """Validate a batch; return its distinct events and, per input, its slot among them.

        ``queued``: validate in turn with other ingests (see ``_validating``). ``rules``:
        other rules than the service's (the log's own records)."""
        _check_org(org_id)
        received_at = self._clock()
        errors = BatchErrors()
        prepared: list[PreparedEvent] = []
        defaulted: list[int] = []
        if queued:
            for start in range(0, len(events), VALIDATE_CHUNK):
                chunk = events[start : start + VALIDATE_CHUNK]
                with self._validating:
                    self._validate(
                        org_id, chunk, start, received_at, prepared, defaulted, errors, self.rules
                    )
        else:
            self._validate(
                org_id, events, 0, received_at, prepared, defaulted, errors, rules or self.rules
            )
        if errors:
            raise errors.fail()
        if defaulted:
            self._reuse_stored_times(org_id, prepared, defaulted)

        # An id twice in one batch: the same content is one event; other content is an error.
        unique: list[PreparedEvent] = []
        first_at: dict[str, int] = {}
        position: list[int] = []
        for index, item in enumerate(prepared):
            seen = first_at.get(item.event.id)
            if seen is None:
                first_at[item.event.id] = len(unique)
                position.append(len(unique))
                unique.append(item)
            elif unique[seen].leaf_hash == item.leaf_hash:
                position.append(seen)
            else:
                message = "appears earlier in this batch with other content"
                errors.add(EventValidationError([FieldError("id", message, index)]))
        if errors:
            raise errors.fail()

        return unique, position

    def _validate(
        self,
        org_id: str,
        events: Sequence[Mapping[str, Any]],
        first: int,
        received_at: datetime,
        prepared: list[PreparedEvent],
        defaulted: list[int],
        errors: BatchErrors,
        rules: EventRules,
    ) -> None:
        """Parse, encode and hash each event into ``prepared``, or its problems into
        ``errors`` (``first``: the batch index of ``events[0]``); ``defaulted``: the
        positions in ``prepared`` of events whose time was defaulted."""
        for index, raw in enumerate(events, first):
            try:
                parsed = parse_event(
                    raw, org_id=org_id, received_at=received_at, rules=rules, index=index
                )
                canonical = parsed.event.canonical_bytes()
                check_event_size(parsed.event, canonical, rules.limits, index)
            except EventValidationError as exc:
                errors.add(exc)
                continue
            if parsed.time_defaulted:
                defaulted.append(len(prepared))
            prepared.append(PreparedEvent(parsed.event, canonical, leaf_hash(canonical)))

    def ingest_as(self, key: ApiKey, events: Sequence[Mapping[str, Any]]) -> IngestResult:
        """``ingest`` on behalf of a write key: into its org, and only for its apps if it is
        limited to some.

        Raises:
            AuthError: the key lacks ``events:write``, is revoked or expired;
                ``AppNotAllowedError`` for an event of an app the key may not write.
            EventValidationError, ConflictError: as ``ingest``.
        """
        self.keys.usable(key, "events:write")
        if key.apps:
            allowed = set(key.apps)
            for index, raw in enumerate(events):
                app = raw.get("app_id") if isinstance(raw, Mapping) else None
                if not isinstance(app, str) or app not in allowed:
                    shown = f"app {str(app)[:64]!r}" if app is not None else "no app_id"
                    raise AppNotAllowedError(
                        f"event {index} has {shown}; the API key {key.id} may write only "
                        f"events of {', '.join(key.apps)}"
                    )
        return self.ingest(key.org_id, events)

    def _prepare_own(self, org_id: str, events: Sequence[Mapping[str, Any]]) -> list[PreparedEvent]:
        unique, _ = self._prepare(org_id, events, rules=self._own_rules)
        return unique

    def _append_retimed(
        self,
        org_id: str,
        events: Sequence[Mapping[str, Any]],
        unique: list[PreparedEvent],
        position: list[int],
        conflict: ConflictError,
    ) -> list[Appended]:
        # Sent at once to several servers, an event without `time` whose id is not a UUIDv7
        # got each server's receive time: the copy stored first decides, and this one, given
        # its time, is its duplicate. A conflict of an event that has its time stays one.
        untimed = {position[i] for i, raw in enumerate(events) if raw.get("time") is None}
        slots = [slot for slot, _ in conflict.conflicts]
        if not set(slots) <= untimed:
            raise conflict
        self._reuse_stored_times(org_id, unique, slots)
        return self.store.append(org_id, unique)

    def _reuse_stored_times(
        self, org_id: str, prepared: list[PreparedEvent], defaulted: list[int]
    ) -> None:
        # A resent event that left `time` to the server must still deduplicate: give it the
        # time its first copy was stored with, so the two encode identically.
        stored = self.store.get_many(org_id, [prepared[i].event.id for i in defaulted])
        for i in defaulted:
            first = stored.get(prepared[i].event.id)
            if first is None:
                continue
            event = replace(prepared[i].event, time=first.event.time)
            canonical = event.canonical_bytes()
            prepared[i] = PreparedEvent(event, canonical, leaf_hash(canonical))

    # -- reading ------------------------------------------------------------------------------

    def get(self, org_id: str, event_id: str) -> StoredEvent | None:
        """The event with this id in this org, or ``None`` (also for a malformed id)."""
        _check_org(org_id)
        try:
            event_id = str(uuid.UUID(event_id))
        except ValueError:
            return None
        return self.store.get(org_id, event_id)

    def search(
        self,
        org_id: str,
        filters: Filters | None = None,
        *,
        order: Order = "desc",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """One page of the org's events that match ``filters``, by time then seq.

        The cursor continues exactly after the last event of the previous page, also while new
        events arrive; it is bound to the filters and order it was made with.

        Raises:
            QueryError: a filter, the limit or the cursor is invalid.
        """
        _check_org(org_id)
        if order not in ("desc", "asc"):
            raise QueryError("order", f"must be 'desc' or 'asc', not {order!r}")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise QueryError("limit", f"must be a whole number from 1 to {MAX_PAGE}")
        filters = filters or Filters()
        query = self.compile(filters, order=order, limit=limit + 1)
        if cursor is not None:
            after, window, fingerprint = _decode_cursor(cursor, order)
            if filters.relative and window is not None:
                # A span back from now ("since:7d") was resolved on the first page; every
                # page continues that window instead of one that moved since.
                query = replace(query, since=window[0], until=window[1])
            if fingerprint != _fingerprint(query):
                raise _other_search()
            query = replace(query, after=after)
        rows = self.store.search(org_id, query)
        carried = (query.since, query.until) if filters.relative else None
        if len(rows) <= limit:
            return Page(rows, None, carried)
        rows = rows[:limit]
        last = rows[-1]
        cursor = _encode_cursor(
            order, to_micros(last.event.time), last.seq, _fingerprint(query), carried
        )
        return Page(rows, cursor, carried)

    def search_window(
        self,
        org_id: str,
        filters: Filters | None = None,
        *,
        order: Order = "desc",
        offset: int = 0,
        limit: int = 50,
    ) -> list[StoredEvent]:
        """Up to ``limit`` matching events from position ``offset`` (0-based) in ``order``.

        For APIs that page by number (Clarifai's ``page``/``per_page``). The store skips the
        first ``offset`` events by their index keys, without reading their bodies. Unlike a
        cursor, a numbered page shifts when events arrive meanwhile.

        Raises:
            QueryError: a filter is invalid, ``limit`` is not 1-1000, or ``offset + limit``
                is over ``MAX_WINDOW`` (narrow the search by time instead).
        """
        _check_org(org_id)
        if order not in ("desc", "asc"):
            raise QueryError("order", f"must be 'desc' or 'asc', not {order!r}")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise QueryError("limit", f"must be a whole number from 1 to {MAX_PAGE}")
        if not isinstance(offset, int) or offset < 0 or offset + limit > MAX_WINDOW:
            raise QueryError(
                "offset",
                f"pages reach the first {MAX_WINDOW:,} matching events at most; "
                "narrow the search (by time) to read further",
            )
        query = replace(self.compile(filters or Filters(), order=order, limit=limit), offset=offset)
        return self.store.search(org_id, query)

    def scan(
        self, org_id: str, filters: Filters | None = None, *, after_seq: int = -1
    ) -> Iterator[StoredEvent]:
        """Every matching event after ``after_seq``, in seq order (for tail and export).

        Seq order never skips an event that arrives late with an old ``time``.
        """
        _check_org(org_id)
        return self.store.scan(org_id, self.compile(filters or Filters()), after_seq)

    def tail(self, org_id: str, filters: Filters, *, after_seq: int, limit: int) -> Tail:
        """The next matching events after ``after_seq`` and the head they were read against.

        For followers of the log: see ``LogStore.tail`` for how far they may move on.
        """
        _check_org(org_id)
        return self.store.tail(org_id, self.compile(filters), after_seq, limit)

    def apps(self, org_id: str) -> list[AppActivity]:
        """The apps seen in the org's log, with event counts and last activity."""
        _check_org(org_id)
        return self.store.apps(org_id)

    def activity(self, org_id: str, filters: Filters, *, bucket: str = "hour") -> list[Bucket]:
        """Event and failure counts per hour or day for matching events, oldest first.

        Raises:
            QueryError: an unknown bucket, or a range of more than 5,000 buckets.
        """
        _check_org(org_id)
        sizes = {"hour": 3_600_000_000, "day": 86_400_000_000}
        if bucket not in sizes:
            raise QueryError("bucket", f"must be 'hour' or 'day', not {bucket!r}")
        since = filters.since
        until = filters.until or self._clock()
        if since is not None and (to_micros(until) - to_micros(since)) // sizes[bucket] > 5000:
            raise QueryError("bucket", "the range holds more than 5,000 buckets; use 'day'")
        return self.store.activity(org_id, self.compile(filters), sizes[bucket])

    def size(self, org_id: str) -> int:
        """How many events the org's log holds."""
        _check_org(org_id)
        return self.store.size(org_id)

    def compile(self, filters: Filters, *, order: Order = "desc", limit: int = 50) -> SearchQuery:
        """Resolve written filters into the store's query: expand patterns, parse IPs.

        Raises:
            QueryError: a value is malformed or names nothing known.
        """
        if filters.since and filters.until and filters.since >= filters.until:
            raise QueryError("until", "must be later than since")
        for name, value in (("since", filters.since), ("until", filters.until)):
            if value is not None and value.tzinfo is None:
                raise QueryError(name, "must have a time zone")
        text = tuple(t for t in (s.strip() for s in filters.text) if t)
        return SearchQuery(
            include=self._criteria(filters.match, ""),
            exclude=self._criteria(filters.exclude, "-"),
            success=filters.success,
            since=filters.since,
            until=filters.until,
            text=text,
            order=order,
            limit=limit,
            also=tuple(c for c in (self._criteria(m, "") for m in filters.also) if c),
        )

    def _criteria(self, match: Match, prefix: str) -> Criteria:
        operations: dict[str, None] = {}
        for pattern in match.operations:
            try:
                operations.update(dict.fromkeys(self.catalogue.matching(pattern)))
            except UnknownOperationError as exc:
                raise QueryError(prefix + "operation", str(exc)) from None
            if len(operations) > MAX_EXPANDED_OPERATIONS:
                # Each name is a term of the database's query (see filters.MAX_REQUEST_VALUES).
                raise QueryError(
                    prefix + "operation",
                    f"the patterns match more than {MAX_EXPANDED_OPERATIONS:,} operations; "
                    "name fewer or narrower ones (docs/api.md, Filters)",
                )
        for name, values in (
            ("actor", match.actors),
            ("app", match.apps),
            ("request_id", match.request_ids),
        ):
            for value in values:
                if not ID_PATTERN.fullmatch(value):
                    raise QueryError(prefix + name, f"{value[:64]!r} is not an id ({ID_RULE})")
        return Criteria(
            operations=tuple(operations),
            actors=match.actors,
            targets=tuple(
                _target_ref(t, prefix, self.catalogue.target_types) for t in match.targets
            ),
            apps=match.apps,
            source_ips=tuple(_network(v, prefix) for v in match.source_ips),
            request_ids=match.request_ids,
        )


def _refuse_reserved(events: Sequence[object]) -> None:
    operations: list[FieldError] = []
    actors: list[FieldError] = []
    for index, raw in enumerate(events):
        if not isinstance(raw, Mapping):
            continue
        operation = raw.get("operation")
        if isinstance(operation, str) and operation.startswith(RESERVED_PREFIX):
            message = f"{RESERVED_PREFIX}* operations are recorded only by Trailkeeper itself"
            operations.append(FieldError("operation", message, index))
        if is_reserved_actor(raw.get("actor")):
            message = "actor ids starting with 'trailkeeper-' are Trailkeeper's own"
            actors.append(FieldError("actor.id", message, index))
    if operations:
        raise ReservedError("reserved_operation", operations + actors)
    if actors:
        raise ReservedError("reserved_actor", actors)


def _check_org(org_id: str) -> None:
    if not isinstance(org_id, str) or not ID_PATTERN.fullmatch(org_id):
        raise QueryError("org_id", f"{str(org_id)[:64]!r} is not an org id ({ID_RULE})")


def _target_ref(value: str, prefix: str, known: frozenset[str]) -> TargetRef:
    kind, sep, target_id = value.partition(":")
    if sep and kind in known:
        ref = TargetRef(target_id, kind)
    elif sep and kind.isidentifier() and kind.islower():
        raise QueryError(
            prefix + "target",
            f"{kind!r} is not a target type; known types: {', '.join(sorted(known))}",
        )
    else:
        ref = TargetRef(value)
    if not ID_PATTERN.fullmatch(ref.id):
        raise QueryError(prefix + "target", f"{value[:64]!r}: the id is not valid ({ID_RULE})")
    return ref


def _network(value: str, prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        if "%" in value:  # an IPv6 zone (fe80::1%eth0) names a local interface, no address
            raise ValueError(value)
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise QueryError(
            prefix + "source_ip",
            f"{value[:64]!r} is not an IP address or CIDR network (like 10.0.0.0/8)",
        ) from None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def _fingerprint(query: SearchQuery) -> str:
    parts = (query.include, query.also, query.exclude, query.success, query.since, query.until)
    basis = repr((*parts, query.text))
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def _encode_cursor(
    order: Order,
    time_us: int,
    seq: int,
    fingerprint: str,
    window: tuple[datetime | None, datetime | None] | None,
) -> str:
    data: dict[str, Any] = {"v": 1, "o": order, "t": time_us, "s": seq, "f": fingerprint}
    if window is not None:
        data["w"] = [to_micros(t) if t is not None else None for t in window]
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


_BAD_CURSOR = "is not a cursor this server issued; start again without one"


def _decode_cursor(
    cursor: str, order: Order
) -> tuple[Position, tuple[datetime | None, datetime | None] | None, object]:
    """Where the cursor's page ended, the time window it carries (relative spans), and the
    fingerprint of the search it belongs to."""
    bad = QueryError("cursor", _BAD_CURSOR)
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise bad from None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise bad
    time_us, seq, window = data.get("t"), data.get("s"), data.get("w")
    if type(time_us) is not int or type(seq) is not int:
        raise bad
    if not (_MIN_TIME_US <= time_us <= _MAX_TIME_US and 0 <= seq < 2**63):
        raise bad
    carried: tuple[datetime | None, datetime | None] | None = None
    if window is not None:
        if not isinstance(window, list) or len(window) != 2:
            raise bad
        bounds: list[datetime | None] = []
        for value in window:
            if value is None:
                bounds.append(None)
            elif type(value) is int and _MIN_TIME_US <= value <= _MAX_TIME_US:
                bounds.append(from_micros(value))
            else:
                raise bad
        carried = (bounds[0], bounds[1])
    if data.get("o") != order:
        raise _other_search()
    return Position(time_us, seq), carried, data.get("f")


def _other_search() -> QueryError:
    return QueryError(
        "cursor",
        "belongs to a search with other filters or another order; "
        "use it with the same ones, or start again without a cursor",
    )
