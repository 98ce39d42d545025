"""The JSON API under /v1: ingest, search, get, export, catalogue, apps, activity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ..events import EventValidationError, StoredEvent
from ..events._validate import MAX_ERRORS
from ..export import MEDIA_TYPES, encode
from ..keys import AuthError
from ..service import QueryError, Reader, ReservedError
from ..store import ConflictError
from . import _schemas as schemas
from ._access import ReadAccess, WriteKey, service_of
from ._fair import FairReaders
from ._params import (
    BUCKET,
    EXPORT_FORMAT,
    FILTER_PARAMETERS,
    FILTER_PARAMS,
    PAGE_PARAMETERS,
    PAGE_PARAMS,
    filters_from,
    multi_params,
    page_from,
)
from ._problems import PROBLEM_SCHEMA, Problem

MAX_BODY = 5 * 1024 * 1024
MAX_EVENTS = 1000
_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422)
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys(_STATUSES, PROBLEM_SCHEMA)

router = APIRouter(prefix="/v1")


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


T = TypeVar("T")


async def read(request: Request, org_id: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a short read of ``org_id``'s log on the readers' own small pool of threads.

    Each thread keeps its own SQLite connection, with its prepared statements and page
    cache; a few threads that stay warm answer faster than the forty of the general pool,
    which ingest (waiting on the disk) and exports (long) keep using. One org's reads hold
    at most all but one of them (``_fair``), so other orgs' reads always find a thread.
    """
    readers: FairReaders = request.app.state.readers
    return await readers.run(org_id, fn, *args)


def _query_error(exc: QueryError) -> Problem:
    return Problem(
        400, "invalid_query", str(exc), errors=[{"field": exc.field, "message": exc.message}]
    )


@router.post(
    "/events",
    status_code=202,
    responses={
        202: {
            **schemas.json_response(schemas.INGESTED, "Stored (or already stored)"),
            # OpenAPI links: what a client (and schemathesis's stateful run) may do next.
            "links": {
                "GetFirstEvent": {
                    "operationId": "get_event_v1_events__event_id__get",
                    "parameters": {"event_id": "$response.body#/events/0/id"},
                    "description": "The first event of the batch, as stored",
                }
            },
        },
        **_ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "properties": {
                            "events": {
                                "type": "array",
                                "maxItems": MAX_EVENTS,
                                "items": {"type": "object"},
                            }
                        },
                    }
                }
            },
        }
    },
)
async def ingest(request: Request, key: WriteKey) -> Response:
    """Ingest up to 1,000 events (5 MiB), all or nothing. The org comes from the key."""
    body = await _read_body(request)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise Problem(
            422,
            "invalid_body",
            'the body must be a JSON object {"events": [event, ...]}',
            errors=[{"field": "events", "message": "must be an array of events"}],
        )
    if len(payload) > 1:
        raise _unknown_fields(payload)
    events = payload["events"]
    if not events:
        raise Problem(
            422,
            "invalid_body",
            "events is empty",
            errors=[{"field": "events", "message": "is empty"}],
        )
    if len(events) > MAX_EVENTS:
        raise Problem(
            422,
            "too_many_events",
            f"{len(events):,} events in one request; the limit is {MAX_EVENTS:,}",
            errors=[{"field": "events", "message": f"has more than {MAX_EVENTS} events"}],
        )
    service = service_of(request)
    metrics = request.app.state.metrics
    try:
        result = await run_in_threadpool(service.ingest_as, key, events)
    except AuthError as exc:
        raise Problem(exc.status, exc.code, exc.message) from None
    except EventValidationError as exc:
        metrics.inc("trailkeeper_ingest_rejected_total", len(events))
        raise Problem(
            422,
            exc.code if isinstance(exc, ReservedError) else "invalid_events",
            f"{exc.event_count:,} event(s) are invalid; nothing was stored",
            errors=[e.to_dict() for e in exc.errors],
            members={"error_count": exc.error_count},
        ) from None
    except ConflictError as exc:
        raise Problem(
            409,
            "id_conflict",
            f"{exc}; nothing was stored",
            errors=[
                {"index": i, "field": "id", "message": f"{event_id} is stored with other content"}
                for i, event_id in exc.conflicts
            ],
        ) from None
    except QueryError as exc:
        raise _query_error(exc) from None
    metrics.inc("trailkeeper_ingested_events_total", result.accepted)
    metrics.inc("trailkeeper_duplicate_events_total", result.duplicates)
    return json(
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "events": [{"id": e.id, "seq": e.seq, "duplicate": e.duplicate} for e in result.events],
        },
        202,
    )


def _unknown_fields(payload: dict[str, Any]) -> Problem:
    # Bounded as invalid_events is: a body of a million made-up fields gets a short answer.
    extra = [name[:64] for name in payload if name != "events"]
    more = f" and {len(extra) - 5:,} more" if len(extra) > 5 else ""
    return Problem(
        422,
        "invalid_body",
        f"unknown field(s) {extra[:5]}{more}; the body has only 'events'",
        errors=[
            {"field": name, "message": "is not a field of the body"} for name in extra[:MAX_ERRORS]
        ],
        members={"error_count": len(extra)},
    )


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise Problem(413, "body_too_large", f"the body is over {MAX_BODY // 1024 // 1024} MiB")
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media not in ("application/json", ""):
        raise Problem(415, "unsupported_media_type", "send the events as application/json")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Problem(413, "body_too_large", f"the body is over {MAX_BODY // 1024 // 1024} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _page(reader: Reader, values: dict[str, Any]) -> bytes:
    filters = filters_from(values, allowed=set(FILTER_PARAMS) | set(PAGE_PARAMS))
    order, limit, cursor = page_from(values)
    try:
        page = reader.search(filters, order=order, limit=limit, cursor=cursor, request=values)
    except QueryError as exc:
        raise _query_error(exc) from None
    # The stored canonical bytes go out as they are: no decoding and encoding again.
    return (
        b'{"events":['
        + b",".join(e.to_json() for e in page.events)
        + b'],"next_cursor":'
        + orjson.dumps(page.next_cursor)
        + b"}"
    )


@router.get(
    "/events",
    responses={200: schemas.json_response(schemas.PAGE, "One page of events"), **_ERRORS},
    openapi_extra={"parameters": [*FILTER_PARAMETERS, *PAGE_PARAMETERS]},
)
async def search(request: Request, reader: ReadAccess) -> Response:
    """Search the key's org: filters combine with AND, values of one filter with OR."""
    values = multi_params(list(request.query_params.multi_items()))
    body = await read(request, reader.org_id, _page, reader, values)
    return Response(body, media_type="application/json")


@router.post(
    "/events/search",
    responses={200: schemas.json_response(schemas.PAGE, "One page of events"), **_ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def search_post(request: Request, reader: ReadAccess) -> Response:
    """The same search with the filters as a JSON object (for long lists)."""
    try:
        values = orjson.loads(await _read_body(request))
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(values, dict):
        raise Problem(400, "invalid_query", "the body must be a JSON object of filters")
    body = await read(request, reader.org_id, _page, reader, values)
    return Response(body, media_type="application/json")


@router.get(
    "/events/export",
    responses={
        200: {
            "description": "Every matching event in seq order",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        **_ERRORS,
    },
    openapi_extra={"parameters": [EXPORT_FORMAT, *FILTER_PARAMETERS]},
)
async def export(request: Request, reader: ReadAccess) -> Response:
    """Every matching event in seq order, streamed (constant memory at any size)."""
    values = multi_params(list(request.query_params.multi_items()))
    format = values.pop("format", "jsonl")
    if format not in MEDIA_TYPES:
        raise Problem(400, "invalid_query", "format: must be csv or jsonl",
                      errors=[{"field": "format", "message": "must be csv or jsonl"}])  # fmt: skip
    filters = filters_from(values, allowed=set(FILTER_PARAMS))
    try:
        events = await run_in_threadpool(
            partial(reader.export, filters, format=format, request={**values, "format": format})
        )
        first = await run_in_threadpool(next, events, None)
    except QueryError as exc:
        raise _query_error(exc) from None

    def chained() -> Iterator[StoredEvent]:
        if first is not None:
            yield first
            yield from events

    media = MEDIA_TYPES[format]
    name = f"trailkeeper-{reader.org_id}.{format}"
    return StreamingResponse(
        iterate_in_threadpool(encode(chained(), format)),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/events/{event_id}",
    responses={200: schemas.json_response(schemas.EVENT, "The event"), **_ERRORS},
)
async def get_event(request: Request, event_id: str, reader: ReadAccess) -> Response:
    """One event of the key's org by id."""
    stored = await read(request, reader.org_id, reader.get, event_id)
    if stored is None:
        raise Problem(404, "not_found", f"no event {event_id[:64]!r} in this org")
    return Response(stored.to_json(), media_type="application/json")


@router.get(
    "/operations", responses={200: schemas.json_response(schemas.OPERATIONS, "The catalogue")}
)
async def operations(request: Request) -> Response:
    """The operation catalogue, with Clarifai's EventType for each that has one, and every
    target type an event may name (built in and registered by the deployment)."""
    ops = []
    for op in service_of(request).catalogue:
        clarifai = (
            {
                "name": op.clarifai.name,
                "number": op.clarifai.number,
                "description": op.clarifai.description,
            }
            if op.clarifai
            else None
        )
        ops.append(
            {
                "name": op.name,
                "description": op.description,
                "resource": op.resource,
                "target_types": list(op.target_types),
                "clarifai": clarifai,
            }
        )
    return json(
        {"operations": ops, "target_types": sorted(service_of(request).catalogue.target_types)}
    )


@router.get("/apps", responses={200: schemas.json_response(schemas.APPS, "Apps"), **_ERRORS})
async def apps(request: Request, reader: ReadAccess) -> Response:
    """Apps seen in the key's org, with event counts and last activity."""
    visible = await read(request, reader.org_id, reader.apps)
    return json(
        {
            "apps": [
                {"app_id": a.app_id, "events": a.events, "last_activity": a.last_time.isoformat()}
                for a in visible
            ]
        }
    )


@router.get(
    "/stats/activity",
    responses={200: schemas.json_response(schemas.ACTIVITY, "Counts per bucket"), **_ERRORS},
    openapi_extra={"parameters": [BUCKET, *FILTER_PARAMETERS]},
)
async def activity(request: Request, reader: ReadAccess) -> Response:
    """Event and failure counts per hour or day, for charts."""
    values = multi_params(list(request.query_params.multi_items()))
    bucket = values.pop("bucket", "hour")
    filters = filters_from(values, allowed=set(FILTER_PARAMS))
    try:
        buckets = await read(
            request,
            reader.org_id,
            partial(reader.activity, filters, bucket=bucket, request={**values, "bucket": bucket}),
        )
    except QueryError as exc:
        raise _query_error(exc) from None
    return json(
        {
            "bucket": bucket,
            "buckets": [
                {"start": b.start.isoformat(), "events": b.events, "failures": b.failures}
                for b in buckets
            ],
        }
    )
