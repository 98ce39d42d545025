"""Trailkeeper: a tamper-evident, searchable audit log for AI platforms.

The public API is what ``__all__`` lists; everything in a module whose name starts with an
underscore is private.
"""

from .events import EventValidationError, FieldError, StoredEvent
from .filters import Filters, Match
from .service import AuditService, IngestResult, Page, QueryError
from .store import ConflictError

__version__ = "0.1.0.dev0"

__all__ = [
    "AuditService",
    "ConflictError",
    "EventValidationError",
    "FieldError",
    "Filters",
    "IngestResult",
    "Match",
    "Page",
    "QueryError",
    "StoredEvent",
    "__version__",
]
