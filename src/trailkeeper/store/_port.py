"""The storage port: the handful of operations every backend provides.

The service is the only caller. A backend must pass ``tests/test_store_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from itertools import islice, takewhile

from ..events import Event, StoredEvent
from ..keys import ApiKey
from ._query import SearchQuery


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """A valid event ready to append: its canonical bytes and leaf hash already computed."""

    event: Event
    canonical: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class Appended:
    """What became of one event of an append."""

    id: str
    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class AppActivity:
    """An app's share of an org's log."""

    app_id: str
    events: int
    last_time: datetime


@dataclass(frozen=True, slots=True)
class Bucket:
    """Counts of one time bucket: ``start`` is its first instant."""

    start: datetime
    events: int
    failures: int


@dataclass(frozen=True, slots=True)
class Tail:
    """What one read of an org's log in seq order saw (``LogStore.tail``).

    ``head`` is the log's size as that read saw it: every event below it was visible, so a
    reader that got fewer events than it asked for has now seen, matching or not, every
    event up to ``head - 1``. ``events`` are the matching ones among them, in seq order.
    """

    head: int
    events: list[StoredEvent]


class ConflictError(Exception):
    """Ids already stored in the org with different content; the whole append was refused."""

    def __init__(self, conflicts: list[tuple[int, str]]) -> None:
        self.conflicts = conflicts  # (index in the batch, event id)
        ids = ", ".join(event_id for _, event_id in conflicts[:5])
        super().__init__(f"{len(conflicts)} event id(s) already stored with other content: {ids}")


class StoreClosedError(RuntimeError):
    """The store was closed; nothing more can be written."""


class StoreUnavailableError(RuntimeError):
    """The database can't be reached (down, restarting, out of connections) right now.

    An append that fails with it may or may not have been stored; sending the same events
    again is safe, because ids deduplicate.
    """


class StoreSetupError(RuntimeError):
    """The database answers but refused to set up Trailkeeper's tables (privileges, a newer
    schema); the message says what to do. Retrying does not help."""


class LogStore(ABC):
    """Append-only, per-org event logs.

    Implementations are thread-safe: many threads may append and read at once.
    """

    @abstractmethod
    def append(
        self, org_id: str, batch: Sequence[PreparedEvent], *, key: ApiKey | None = None
    ) -> list[Appended]:
        """Append a batch to an org's log, atomically, and return once it is durable.

        New events get the org's next seqs in batch order. An id already in the org with the
        same leaf hash is a duplicate (stored nothing, keeps its old seq); with another leaf
        hash it is a conflict. Ids within ``batch`` are distinct (the service checks).
        ``key``: an API key stored in the same transaction (``batch`` records it): a new
        key, or a revocation of a stored one (its ``revoked_at``; a first revocation time
        is kept), so that a key change and its record are stored together or not at all.

        Raises:
            ConflictError: nothing of the batch was stored.
        """

    def submit(self, org_id: str, batch: Sequence[PreparedEvent]) -> Future[list[Appended]]:
        """Like ``append``, but returns at once; the future completes when it is durable.

        The default runs ``append`` now; a backend with a writer queue returns earlier.
        """
        future: Future[list[Appended]] = Future()
        try:
            future.set_result(self.append(org_id, batch))
        except Exception as exc:  # handed to the caller through the future
            future.set_exception(exc)
        return future

    @abstractmethod
    def apps(self, org_id: str) -> list[AppActivity]:
        """Every app seen in the org's log, with its event count and last event time."""

    @abstractmethod
    def activity(self, org_id: str, query: SearchQuery, bucket_us: int) -> list[Bucket]:
        """Event and failure counts of matching events per time bucket (oldest first).

        Buckets are ``bucket_us`` long, aligned to the Unix epoch; empty ones are left out.
        """

    @abstractmethod
    def get(self, org_id: str, event_id: str) -> StoredEvent | None:
        """The event with this id in this org, or ``None``."""

    @abstractmethod
    def get_many(self, org_id: str, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        """The events of these ids that exist in this org, keyed by id."""

    @abstractmethod
    def search(self, org_id: str, query: SearchQuery) -> list[StoredEvent]:
        """Up to ``query.limit`` matching events in ``query.order`` (time, then seq).

        The first ``query.offset`` matching events (after ``query.after``) are skipped.
        """

    @abstractmethod
    def scan(
        self, org_id: str, query: SearchQuery, after_seq: int = -1, batch: int = 1000
    ) -> Iterator[StoredEvent]:
        """Every matching event with seq > ``after_seq`` in seq order (for tail and export).

        ``query.order``, ``query.limit`` and ``query.after`` are ignored. The iterator reads in
        batches; it sees events appended while it runs if it has not passed their seq yet.
        """

    def tail(self, org_id: str, query: SearchQuery, after_seq: int, limit: int) -> Tail:
        """The first ``limit`` matching events with ``after_seq < seq < head``, and ``head``.

        What a follower of the log polls: it may move on to ``head - 1`` when it got fewer
        than ``limit`` events, and never further. Both come from the database that serves the
        events (a replica, if there is one), so ``head`` never counts an event the read could
        not see yet, however far the replica lags.

        This default, for a store with one database, reads the head first and then the events:
        later reads of one database see at least what earlier ones saw.
        """
        head = self.size(org_id)
        if head - 1 <= after_seq:
            return Tail(head, [])
        events = self.scan(org_id, query, after_seq, batch=limit)
        try:
            found = list(takewhile(lambda e: e.seq < head, islice(events, limit)))
        finally:
            # Closed at once: a SQLite read transaction held open would hold back checkpoints.
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return Tail(head, found)

    @abstractmethod
    def size(self, org_id: str) -> int:
        """How many events the org's log holds (its next seq)."""

    @abstractmethod
    def orgs(self) -> list[str]:
        """Every org that has a log."""

    @abstractmethod
    def get_key(self, key_id: str) -> ApiKey | None:
        """The API key with this id, in any org, or ``None``."""

    @abstractmethod
    def list_keys(self, org_id: str) -> list[ApiKey]:
        """The org's API keys, oldest first, revoked ones included."""

    @abstractmethod
    def end_session(self, session_id: str, expires: datetime) -> None:
        """Record that the console session ``session_id`` was signed out; the record may be
        forgotten after ``expires``, when the session's cookie stops working anyway."""

    @abstractmethod
    def session_ended(self, session_id: str) -> bool:
        """Whether the console session ``session_id`` was signed out (on any server)."""

    @abstractmethod
    def ping(self) -> None:
        """Return once the store has answered a trivial query (what ``/readyz`` asks).

        Raises:
            StoreUnavailableError: the database can't be reached now.
            StoreClosedError: the store was closed.
        """

    @abstractmethod
    def close(self) -> None:
        """Finish pending appends and release every connection and thread."""

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
