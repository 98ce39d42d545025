"""What a search asks the store for: backend-neutral values, already validated."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ..events._ip import ip_key

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Order = Literal["desc", "asc"]


@dataclass(frozen=True, slots=True)
class TargetRef:
    """A target filter: an id, and optionally the type it must have."""

    id: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class Criteria:
    """Field filters. Values of one field combine with OR; fields combine with AND.

    ``operations`` are exact names: the service expands ``model.*`` patterns before a query
    reaches the store.
    """

    operations: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    targets: tuple[TargetRef, ...] = ()
    apps: tuple[str, ...] = ()
    source_ips: tuple[IPNetwork, ...] = ()
    request_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.operations
            or self.actors
            or self.targets
            or self.apps
            or self.source_ips
            or self.request_ids
        )


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the last event's time (µs since the epoch) and seq."""

    time_us: int
    seq: int


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search of one org's log.

    Attributes:
        include: events must match every non-empty field of it.
        exclude: events must match no value of any non-empty field of it.
        success: only successes (``True``), only failures (``False``), or both (``None``).
        since: events at or after this time; until: events before this time.
        text: free-text terms (words or phrases); an event must contain all of them.
        order: ``desc`` newest first (by time, then seq) or ``asc``.
        limit: page size, 1-1000.
        after: continue after this position (from the previous page's last event).
        also: more criteria that events must match too, each like ``include``.
        offset: skip this many matching events (in ``order``) before the page starts; for
            APIs that page by number. The store skips them by position alone, without
            reading their bodies.
    """

    include: Criteria = field(default_factory=Criteria)
    exclude: Criteria = field(default_factory=Criteria)
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: tuple[str, ...] = ()
    order: Order = "desc"
    limit: int = 50
    after: Position | None = None
    also: tuple[Criteria, ...] = ()
    offset: int = 0


_MAPPED_FIRST = b"\x00" * 10 + b"\xff\xff" + b"\x00" * 4
_MAPPED_LAST = b"\x00" * 10 + b"\xff\xff" + b"\xff" * 4


def _step(key: bytes, by: int) -> bytes:
    return (int.from_bytes(key) + by).to_bytes(16)


def network_ranges(network: IPNetwork) -> list[tuple[bytes, bytes]]:
    """The ranges of 16-byte ip keys inside ``network`` (first and last, inclusive).

    IPv4 addresses are kept as keys in ``::ffff:0:0/96``; an IPv6 network wider than that
    block (``::/0``, ``::/64``) must not match them, so the block is cut out of its range.
    """
    first = ip_key(str(network.network_address))
    last = ip_key(str(network.broadcast_address))
    if network.version == 6 and network.prefixlen < 96 and first <= _MAPPED_FIRST <= last:
        ranges = []
        if first < _MAPPED_FIRST:
            ranges.append((first, _step(_MAPPED_FIRST, -1)))
        if last > _MAPPED_LAST:
            ranges.append((_step(_MAPPED_LAST, 1), last))
        return ranges
    return [(first, last)]
