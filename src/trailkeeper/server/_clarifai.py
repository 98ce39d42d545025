"""Clarifai's REST audit log search, ``POST /v2/users/{user_id}/audit_log/searches``.

A thin route: the ``clarifai`` package (the ``clarifai`` extra) does the work, and is
imported on the first request, so the rest of the API runs without that extra.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from ..keys import ApiKey
from ._access import request_context, service_of
from ._lookup import off_loop
from ._problems import Problem
from ._routes import MAX_BODY, read

router = APIRouter()

_NOT_INSTALLED = orjson.dumps(
    {
        "status": {
            "code": 10040,  # NOT_IMPLEMENTED
            "description": "Not implemented",
            "details": "this server lacks the clarifai extra: pip install 'trailkeeper[clarifai]'",
        }
    }
)

_TOO_LARGE = orjson.dumps(
    {
        "status": {
            "code": 11100,  # CONN_BAD_REQUEST_FORMAT
            "description": "Bad request format",
            "details": f"the body is over {MAX_BODY // 1024 // 1024} MiB",
        }
    }
)


_STATUS_BODY = {
    "description": "A MultiAuditLogEntryResponse; status.code 10000 on success",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {
                        "type": "object",
                        "required": ["code"],
                        "properties": {
                            "code": {"type": "integer"},
                            "description": {"type": "string"},
                            "details": {"type": "string"},
                            "req_id": {"type": "string"},
                        },
                    },
                    "entries": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}


@router.post(
    "/v2/users/{user_id}/audit_log/searches",
    tags=["clarifai"],
    responses=dict.fromkeys((200, 400, 401, 403, 413, 500, 501, 503), _STATUS_BODY),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def post_audit_log_searches(request: Request, user_id: str) -> Response:
    """Clarifai's ``PostAuditLogSearches`` (see docs/clarifai.md); ``authorization: Key <key>``.

    Answers as Clarifai does: a JSON ``MultiAuditLogEntryResponse`` whose ``status.code`` is
    10000 on success, or a Clarifai failure code with a description.
    """
    try:
        from ..clarifai import ClarifaiSearches
        from ..clarifai._api import UNAVAILABLE, Failure
    except ImportError:
        return Response(_NOT_INSTALLED, status_code=501, media_type="application/json")
    searches = getattr(request.app.state, "clarifai", None)
    if searches is None:
        searches = request.app.state.clarifai = ClarifaiSearches(service_of(request))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return Response(_TOO_LARGE, status_code=413, media_type="application/json")
        chunks.append(chunk)
    body = b"".join(chunks)
    authorization = request.headers.get("authorization")
    key: Any
    try:
        key = await off_loop(request, partial(searches.authenticate, authorization, user_id))
    except Failure as failure:
        key = failure
    except Problem:  # the key lookup timed out
        key = UNAVAILABLE
    # The org whose turn the search takes on the reader threads (_fair); "" for every
    # search without a usable key (the search itself then answers why).
    org = key.org_id if isinstance(key, ApiKey) else ""
    status, payload = await read(
        request, org, searches.search_json, body, key, request_context(request, "clarifai-rest")
    )
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(payload, status_code=status, media_type="application/json", headers=headers)
