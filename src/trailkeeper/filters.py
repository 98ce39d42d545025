"""Search filters as people and programs write them, before the service resolves them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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


#: At most this many distinct values in one filter (one parameter, one qualifier of a
#: query, one side of an exclusion, or the free-text terms) ...
MAX_FILTER_VALUES = 100
#: ... and in one request, all filters together. Each value becomes a term of the
#: database's query: thousands make SQLite give up ("Expression tree is too large") and
#: PostgreSQL plan for longer than the search takes. docs/api.md documents both.
MAX_REQUEST_VALUES = 500
#: At most this many operation names from the expansion of the patterns of one filter
#: (``model.*`` expands against the catalogue, which a deployment can extend).
MAX_EXPANDED_OPERATIONS = 1000

#: A ``Match`` field and the name people write it with (the API's parameter).
FIELD_NAMES = {
    "operations": "operation",
    "actors": "actor",
    "targets": "target",
    "apps": "app",
    "source_ips": "source_ip",
    "request_ids": "request_id",
}


class TooManyValuesError(ValueError):
    """A filter, or a whole request, has more distinct values than the caps above allow."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def deduplicated(match: Match) -> Match:
    """``match`` with each field's repeated values once, in first-seen order."""
    return Match(**{name: tuple(dict.fromkeys(getattr(match, name))) for name in FIELD_NAMES})


def check_size(filters: Filters) -> Filters:
    """``filters`` de-duplicated, if within ``MAX_FILTER_VALUES`` and ``MAX_REQUEST_VALUES``.

    Raises:
        TooManyValuesError: naming the first filter over its cap, or ``request``.
    """
    parts = [("", deduplicated(filters.match)), ("-", deduplicated(filters.exclude))]
    parts += [("", deduplicated(m)) for m in filters.also]
    text = tuple(dict.fromkeys(filters.text))
    total = len(text)
    if len(text) > MAX_FILTER_VALUES:
        raise TooManyValuesError("q", _over(len(text), "free-text terms"))
    for prefix, match in parts:
        for name, label in FIELD_NAMES.items():
            values = getattr(match, name)
            if len(values) > MAX_FILTER_VALUES:
                raise TooManyValuesError(prefix + label, _over(len(values), "values"))
            total += len(values)
    if total > MAX_REQUEST_VALUES:
        raise TooManyValuesError(
            "request",
            f"has {total} filter values; at most {MAX_REQUEST_VALUES} in one request "
            "(docs/api.md, Filters)",
        )
    return replace(  # replace, not a new Filters: every other part is kept as it was
        filters,
        match=parts[0][1],
        exclude=parts[1][1],
        text=text,
        also=tuple(m for _, m in parts[2:]),
    )


def _over(count: int, what: str) -> str:
    return (
        f"has {count} distinct {what}; at most {MAX_FILTER_VALUES} in one filter "
        "(docs/api.md, Filters)"
    )
