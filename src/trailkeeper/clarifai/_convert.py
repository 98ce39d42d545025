"""Translation between Clarifai's audit log messages and Trailkeeper's filters and events.

Pure functions over the ``clarifai-grpc`` message classes: no I/O, no service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from ..events import Catalogue, StoredEvent, format_time, from_micros, to_micros
from ..filters import Filters, Match, TooManyValuesError, check_size
from ..store import Order

#: The kinds of ``AuditLogTarget``; each is the Trailkeeper target type of the same name.
TARGET_KINDS: tuple[str, ...] = (
    "user",
    "role",
    "team",
    "app",
    "workflow",
    "workflow_version",
    "model",
    "model_version",
    "compute_cluster",
    "nodepool",
    "deployment",
)
#: Kinds whose message has a ``name`` field (a user's name goes to first and last name).
NAMED = frozenset({"role", "team", "app", "model"})
#: Kinds whose message has an ``app_id`` field.
IN_APP = frozenset({"model", "model_version", "workflow", "workflow_version"})

DEFAULT_PER_PAGE = 128
MAX_PER_PAGE = 1000
# Ids of imported events: uuid5 in this namespace of the entry's content, so that importing
# the same entry again is a duplicate, not a second event.
_IMPORT_NAMESPACE = uuid.UUID("5d1f6c8e-3a51-4c5e-9a0e-7f1b2d3c4e5f")


class BadRequest(ValueError):
    """A request Trailkeeper can't run; ``field`` names the culprit (``query.operations``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Search:
    """A ``PostAuditLogSearchesRequest`` as a service search: filters, order and window."""

    filters: Filters
    order: Order
    offset: int
    limit: int


def clarifai_operations(catalogue: Catalogue) -> tuple[str, ...]:
    """The names of the operations that have a Clarifai ``EventType``, in catalogue order."""
    return tuple(op.name for op in catalogue if op.clarifai is not None)


#: Trailkeeper's filter names as the request's fields, for the message of a capped filter.
_QUERY_FIELDS = {
    "operation": "operations",
    "actor": "user_ids",
    "target": "targets",
    "source_ip": "source_ips",
}


def search_from(request: Any, catalogue: Catalogue) -> Search:
    """Read a ``PostAuditLogSearchesRequest`` into filters, order and page window.

    Only events whose operation has a Clarifai ``EventType`` are searched: with no
    ``operations`` in the query, the filter is every such operation.

    Raises:
        BadRequest: an unknown ``EventType``, an empty target, a timestamp out of range, a
            ``per_page`` over 1,000, more values than the caps of ``filters.check_size``.
    """
    query = request.query
    by_number = catalogue.by_clarifai_number()
    operations: list[str] = []
    for number in query.operations:
        operation = by_number.get(number)
        if operation is None:
            raise BadRequest("query.operations", f"{number} is not an EventType Trailkeeper knows")
        operations.append(operation.name)
    since = (
        _time(query.timestamp_from, "query.timestamp_from", 999)
        if query.HasField("timestamp_from")
        else None
    )
    until = (
        _time(query.timestamp_to, "query.timestamp_to", 0)
        if query.HasField("timestamp_to")
        else None
    )
    if until is not None:
        # timestamp_to is inclusive, Trailkeeper's until exclusive (to the microsecond). The
        # last instant datetime can hold has no instant after it: that is no upper bound.
        try:
            until = from_micros(to_micros(until) + 1)
        except OverflowError:
            until = None
    success = query.success.value if query.HasField("success") else None
    per_page = request.pagination.per_page or DEFAULT_PER_PAGE
    if per_page > MAX_PER_PAGE:
        raise BadRequest("pagination.per_page", f"is {per_page}; at most {MAX_PER_PAGE}")
    page = request.pagination.page or 1
    filters = Filters(
        match=Match(
            operations=tuple(operations) or clarifai_operations(catalogue),
            actors=tuple(query.user_ids),
            targets=tuple(_target_filter(t) for t in query.targets),
            source_ips=tuple(query.source_ips),
        ),
        success=success,
        since=since,
        until=until,
    )
    try:
        filters = check_size(filters)
    except TooManyValuesError as exc:
        raise BadRequest("query." + _QUERY_FIELDS.get(exc.field, exc.field), exc.message) from None
    return Search(
        filters=filters,
        order="asc" if request.sort_ascending else "desc",
        offset=(page - 1) * per_page,
        limit=per_page,
    )


def _time(stamp: Timestamp, field: str, round_up: int) -> datetime:
    # Trailkeeper keeps microseconds: timestamp_from rounds up, timestamp_to down, so that
    # both stay inclusive of exactly the events a nanosecond reading would include.
    if not 0 <= stamp.nanos < 1_000_000_000:
        raise BadRequest(field, "nanos must be from 0 to 999,999,999")
    micros = stamp.seconds * 1_000_000 + (stamp.nanos + round_up) // 1000
    try:
        return from_micros(micros)
    except OverflowError:
        raise BadRequest(field, "is outside the years 1 to 9999") from None


def _target_filter(target: Any) -> str:
    kind = target.WhichOneof("target")
    if kind is None:
        raise BadRequest("query.targets", f"each target needs one of: {', '.join(TARGET_KINDS)}")
    target_id = getattr(target, kind).id
    if not target_id:
        raise BadRequest("query.targets", f"the {kind} target has no id")
    return f"{kind}:{target_id}"


def entry_from(stored: StoredEvent, catalogue: Catalogue) -> Any:
    """The ``AuditLogEntry`` of a stored event whose operation has a Clarifai ``EventType``.

    Targets of types Clarifai has no kind for (organization, invitation, api_key, …) are
    left out; ``name`` is kept where the kind's message has one.
    """
    # Read from the stored JSON: decoding into an ``Event`` first cost a third of the time.
    event = orjson.loads(stored.canonical)
    operation = catalogue.get(event["operation"])
    entry = resources_pb2.AuditLogEntry(
        operation=operation.clarifai.number if operation.clarifai else 0,
        description=event["description"],
        details=event["details"],
        success=event["success"],
        req_id=event["request_id"] or "",
        source_ip=event["source_ip"] or "",
    )
    entry.timestamp.FromMicroseconds(to_micros(datetime.fromisoformat(event["time"])))
    actor = event["actor"]
    _set_user(entry.user, actor["id"], actor["name"], actor["email"])
    app_id = event["app_id"]
    for target in event["targets"]:
        kind = target["type"]
        if kind not in TARGET_KINDS:
            continue
        message = getattr(entry.targets.add(), kind)
        if kind == "user":
            _set_user(message, target["id"], target["name"], None)
            continue
        message.id = target["id"]
        if target["name"] and kind in NAMED:
            message.name = target["name"]
        if app_id and kind in IN_APP:
            message.app_id = app_id
    return entry


def _set_user(user: Any, user_id: str, name: str | None, email: str | None) -> None:
    user.id = user_id
    if name:
        first, _, last = name.partition(" ")
        user.first_name, user.last_name = first, last
    if email:
        user.primary_email = email


def event_from(entry: Any, catalogue: Catalogue, *, source: str) -> dict[str, Any]:
    """A Trailkeeper event (as a producer would send it) from a Clarifai ``AuditLogEntry``.

    Its id is derived from the entry's content and ``source`` (the remote user), so that
    importing the same entry twice stores it once.

    Raises:
        BadRequest: the entry's ``EventType`` has no Trailkeeper operation.
    """
    operation = catalogue.by_clarifai_number().get(entry.operation)
    if operation is None:
        raise BadRequest("operation", f"EventType {entry.operation} has no Trailkeeper operation")
    digest = entry.SerializeToString(deterministic=True).hex()
    user = entry.user
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or None
    actor: dict[str, Any] = (
        {"id": user.id, "type": "user", "name": name, "email": user.primary_email or None}
        if user.id
        else {"id": "anonymous", "type": "anonymous"}
    )
    targets: list[dict[str, Any]] = []
    app_id: str | None = None
    for target in entry.targets:
        kind = target.WhichOneof("target")
        if kind is None:
            continue
        message = getattr(target, kind)
        if not message.id:
            continue
        item: dict[str, Any] = {"type": kind, "id": message.id}
        if kind == "user":
            item["name"] = " ".join(p for p in (message.first_name, message.last_name) if p)
        elif kind in NAMED:
            item["name"] = message.name
        if not item.get("name"):
            item.pop("name", None)
        targets.append(item)
        if kind == "app" and app_id is None:
            app_id = message.id
        elif kind in IN_APP and message.app_id and app_id is None:
            app_id = message.app_id
    event: dict[str, Any] = {
        "id": str(uuid.uuid5(_IMPORT_NAMESPACE, f"{source}\n{digest}")),
        "time": format_time(from_micros(entry.timestamp.ToMicroseconds())),
        "actor": actor,
        "operation": operation.name,
        "targets": targets,
        "success": entry.success,
        "details": list(entry.details),
        "metadata": {"imported_from": "clarifai"},
    }
    optional = {
        "description": entry.description,
        "app_id": app_id,
        "source_ip": entry.source_ip,
        "request_id": entry.req_id,
    }
    event.update({k: v for k, v in optional.items() if v})
    return event
