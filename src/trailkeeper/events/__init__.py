"""The event model and the operation catalogue: pure data, no I/O."""

from ._catalogue import (
    BUILTIN_OPERATIONS,
    TARGET_TYPES,
    Catalogue,
    ClarifaiEventType,
    Operation,
    UnknownOperationError,
    operation_from_config,
    target_types_from_config,
)
from ._limits import DEFAULT_LIMITS, ID_RULE, Limits
from ._model import (
    ACTOR_TYPES,
    Actor,
    ErrorInfo,
    Event,
    StoredEvent,
    Target,
    canonical_json,
    format_time,
    from_micros,
    leaf_hash,
    to_micros,
)
from ._redact import DEFAULT_SECRET_KEYS, REDACTED, Redactor
from ._uuid7 import uuid7
from ._validate import (
    EventRules,
    EventValidationError,
    FieldError,
    ParsedEvent,
    check_event_size,
    parse_event,
)

__all__ = [
    "ACTOR_TYPES",
    "BUILTIN_OPERATIONS",
    "DEFAULT_LIMITS",
    "DEFAULT_SECRET_KEYS",
    "ID_RULE",
    "REDACTED",
    "TARGET_TYPES",
    "Actor",
    "Catalogue",
    "ClarifaiEventType",
    "ErrorInfo",
    "Event",
    "EventRules",
    "EventValidationError",
    "FieldError",
    "Limits",
    "Operation",
    "ParsedEvent",
    "Redactor",
    "StoredEvent",
    "Target",
    "UnknownOperationError",
    "canonical_json",
    "check_event_size",
    "format_time",
    "from_micros",
    "leaf_hash",
    "operation_from_config",
    "parse_event",
    "target_types_from_config",
    "to_micros",
    "uuid7",
]
