"""What the core's calls return or raise: pages, ingest results, query errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .events import StoredEvent
from .store import Appended

__all__ = ["IngestResult", "Page", "QueryError"]


class QueryError(ValueError):
    """A search, filter or cursor that can't be run; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What an ingest did: ``events`` has one entry per input event, in input order."""

    accepted: int
    duplicates: int
    events: list[Appended]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results and the cursor of the next (``None`` on the last page).

    ``window``: for a search with a span back from now (``since:7d``), the (since, until)
    it was run with, as resolved on its first page and carried by its cursors.
    """

    events: list[StoredEvent]
    next_cursor: str | None
    window: tuple[datetime | None, datetime | None] | None = None
