"""Search filters as people and programs write them, before the service resolves them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Match:
    """Field filters in their written form. Values of one field combine with OR.

    Attributes:
        operations: exact names, or ``resource.*`` patterns (``model.*`` matches
            ``model.create`` and ``model.version.delete``).
        actors: actor ids.
        targets: ``type:id`` or a bare id (any type).
        apps: app ids.
        source_ips: IP addresses or CIDR networks, IPv4 or IPv6.
        request_ids: request ids.
    """

    operations: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    source_ips: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filters:
    """Everything a search, a tail or an export can filter by. All parts combine with AND.

    Attributes:
        match: events must match each non-empty field.
        exclude: events must match no value of any non-empty field.
        success: ``True`` only successes, ``False`` only failures, ``None`` both.
        since: at or after this time (inclusive); until: before this time (exclusive).
        text: free-text terms (words or phrases) over description, details, names and errors;
            every term must occur.
        also: more field filters that must each hold too (``combine`` puts a second set of
            filters here, so that its values narrow the search instead of widening it).
        relative: ``since`` or ``until`` is a span back from now (``since:7d``): resolved
            once, on a search's first page, and carried by its cursor to the next ones.
    """

    match: Match = field(default_factory=Match)
    exclude: Match = field(default_factory=Match)
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: tuple[str, ...] = ()
    also: tuple[Match, ...] = ()
    relative: bool = False

    def combine(self, other: Filters) -> Filters:
        """Filters that hold where both ``self`` and ``other`` hold (AND)."""
        since = max((t for t in (self.since, other.since) if t is not None), default=None)
        until = min((t for t in (self.until, other.until) if t is not None), default=None)
        if self.success is not None and other.success is not None and self.success != other.success:
            raise ValueError("status is asked to be both success and failure")
        return Filters(
            match=self.match,
            exclude=_union(self.exclude, other.exclude),
            success=self.success if self.success is not None else other.success,
            since=since,
            until=until,
            text=self.text + other.text,
            also=(*self.also, other.match, *other.also),
            relative=self.relative or other.relative,
        )


def _union(a: Match, b: Match) -> Match:
    # Excluding what either excludes: NOT x AND NOT y is NOT (x OR y).
    return Match(
        operations=a.operations + b.operations,
        actors=a.actors + b.actors,
        targets=a.targets + b.targets,
        apps=a.apps + b.apps,
        source_ips=a.source_ips + b.source_ips,
        request_ids=a.request_ids + b.request_ids,
    )
