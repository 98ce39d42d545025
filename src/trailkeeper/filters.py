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
    """

    match: Match = field(default_factory=Match)
    exclude: Match = field(default_factory=Match)
    success: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: tuple[str, ...] = ()
