"""``PostAuditLogSearches``: one handler behind both the REST route and the gRPC method."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2
from google.protobuf import json_format

from ..events import StoredEvent
from ..keys import ApiKey, AuthError
from ..service import AuditService, QueryError, Reader, RequestContext
from ._convert import BadRequest, entry_from, search_from
from ._rest import entries_response, entry_json

_log = logging.getLogger("trailkeeper")

#: Trailkeeper's authentication failures as Clarifai status codes.
_AUTH_CODES = {
    "missing_key": status_code_pb2.CONN_KEY_INVALID,
    "invalid_key": status_code_pb2.CONN_KEY_NOT_FOUND,
    "expired_key": status_code_pb2.CONN_KEY_INVALID,
    "revoked_key": status_code_pb2.CONN_KEY_INVALID,
    "forbidden": status_code_pb2.CONN_INSUFFICIENT_SCOPES,
}
#: The HTTP status the REST route answers with for each Clarifai status code.
HTTP_STATUS = {
    status_code_pb2.SUCCESS: 200,
    status_code_pb2.CONN_KEY_INVALID: 401,
    status_code_pb2.CONN_KEY_NOT_FOUND: 401,
    status_code_pb2.CONN_INSUFFICIENT_SCOPES: 403,
    status_code_pb2.CONN_BAD_REQUEST_FORMAT: 400,
    status_code_pb2.CONN_INVALID_REQUEST: 400,
    status_code_pb2.CONN_INVALID_RANGE: 400,
    status_code_pb2.INTERNAL_SERVER_ISSUE: 500,
    status_code_pb2.RPC_SERVER_UNAVAILABLE: 503,
}


_NO_KEY = "this request needs an API key: authorization: Key <your Trailkeeper API key>"


class Failure(Exception):
    """A request answered with a Clarifai failure status instead of entries."""

    def __init__(self, code: int, description: str, details: str = "") -> None:
        self.code = code
        self.description = description
        self.details = details
        super().__init__(f"{code} {description}: {details}")


def key_secret(authorization: str | None) -> str | None:
    """The secret of an ``authorization: Key <secret>`` header, as Clarifai clients send it."""
    if not authorization:
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "key" or not secret.strip():
        raise Failure(
            status_code_pb2.CONN_KEY_INVALID,
            "Invalid API key or Invalid API key/application pair",
            "authenticate with the header 'authorization: Key <your Trailkeeper API key>'",
        )
    return secret.strip()


class ClarifaiSearches:
    """Answers ``PostAuditLogSearches`` from an ``AuditService``.

    Both faces call ``search``: the gRPC servicer with the request message, the REST route
    through ``search_json`` with the body.
    """

    def __init__(self, service: AuditService) -> None:
        self.service = service

    def search(
        self, request: Any, authorization: str | None, user_id: str, context: RequestContext
    ) -> Any:
        """The ``MultiAuditLogEntryResponse`` to a request; failures become its ``status``.

        ``context``: where the request came from, for the record of the read.
        """
        req_id = context.request_id or uuid.uuid4().hex
        try:
            key = self._authenticate(authorization, user_id)
            events = self._events(request, self._reader(key, context), req_id)
        except Failure as failure:
            return failure_response(failure, req_id)
        catalogue = self.service.catalogue
        response = service_pb2.MultiAuditLogEntryResponse(
            entries=[entry_from(stored, catalogue) for stored in events]
        )
        response.status.code = status_code_pb2.SUCCESS
        response.status.description = "Ok"
        response.status.req_id = req_id
        return response

    def search_json(
        self, body: bytes, key: ApiKey | Failure, context: RequestContext
    ) -> tuple[int, bytes]:
        """The REST route's answer: HTTP status and JSON body, as Clarifai's gateway gives them.

        ``key``: what ``authenticate`` gave (the route runs it first, off the event loop,
        with a timeout), or the ``Failure`` it raised: a caller without a key learns nothing
        about what it sent, because the body is read only after.
        """
        req_id = context.request_id or uuid.uuid4().hex
        try:
            if isinstance(key, Failure):
                raise key
            events = self._events(parse_json(body), self._reader(key, context), req_id)
        except Failure as failure:
            return failure_json(failure, req_id)
        catalogue = self.service.catalogue
        return 200, entries_response([entry_json(e, catalogue) for e in events], req_id)

    def authenticate(self, authorization: str | None, user_id: str) -> ApiKey:
        """The read key of ``authorization: Key <secret>`` for ``user_id`` (``me`` or the org).

        Raises:
            Failure: no key, a key that doesn't work, or another org's user id.
        """
        return self._authenticate(authorization, user_id)

    def _authenticate(self, authorization: str | None, user_id: str) -> ApiKey:
        try:
            key = self.service.keys.authenticate(key_secret(authorization), "events:read")
        except AuthError as exc:
            description = "Insufficient scopes" if exc.code == "forbidden" else "Invalid API key"
            # The core's message names the JSON API's Bearer scheme; Clarifai clients use Key.
            message = _NO_KEY if exc.code == "missing_key" else exc.message
            raise Failure(_AUTH_CODES[exc.code], description, message) from None
        if user_id not in ("me", "", key.org_id):
            raise Failure(
                status_code_pb2.CONN_INSUFFICIENT_SCOPES,
                "Insufficient scopes",
                f"the key belongs to {key.org_id!r}, not {user_id[:64]!r}; use 'me' or "
                f"{key.org_id!r} as the user id",
            )
        return key

    def _reader(self, key: ApiKey, context: RequestContext) -> Reader:
        try:
            return self.service.reader(key, context)
        except AuthError as exc:
            raise Failure(_AUTH_CODES[exc.code], "Invalid API key", exc.message) from None

    def _events(self, request: Any, reader: Reader, req_id: str) -> list[StoredEvent]:
        try:
            search = search_from(request, self.service.catalogue)
            events = reader.search_window(
                search.filters,
                order=search.order,
                offset=search.offset,
                limit=search.limit,
                request={"api": "clarifai", **_described(request)},
            )
        except (BadRequest, QueryError) as exc:
            code = status_code_pb2.CONN_INVALID_REQUEST
            if isinstance(exc, QueryError) and exc.field == "offset":
                code = status_code_pb2.CONN_INVALID_RANGE
            raise Failure(code, "Invalid request", str(exc)) from None
        except Exception:  # a store failure: a status for the client, a traceback for us
            _log.exception("a Clarifai audit log search failed (req_id %s)", req_id)
            raise Failure(
                status_code_pb2.INTERNAL_SERVER_ISSUE, "Internal server issue", f"req_id {req_id}"
            ) from None
        return events


def _described(request: Any) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json_format.MessageToDict(request, preserving_proto_field_name=True)
    except json_format.SerializeToJsonError:  # a value JSON can't hold; the search ran anyway
        return {"unwritable": True}
    return found


def parse_json(body: bytes) -> Any:
    """A ``PostAuditLogSearchesRequest`` from the JSON the Clarifai JSON channel sends.

    Raises:
        Failure: ``CONN_BAD_REQUEST_FORMAT`` for JSON that isn't such a request (an unknown
            field or ``EventType`` name, a timestamp that isn't RFC 3339, …).
    """
    request = service_pb2.PostAuditLogSearchesRequest()
    if body.strip()[:1] not in (b"{", b""):
        # json_format.Parse takes ``[]`` (it iterates an empty list as if it were fields).
        raise Failure(
            status_code_pb2.CONN_BAD_REQUEST_FORMAT,
            "Bad request format",
            "the body must be a JSON object (a PostAuditLogSearchesRequest)",
        )
    try:
        json_format.Parse(body or b"{}", request)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        raise Failure(
            status_code_pb2.CONN_BAD_REQUEST_FORMAT, "Bad request format", str(exc)[:1024]
        ) from None
    return request


def failure_json(failure: Failure, req_id: str) -> tuple[int, bytes]:
    """A failure as the REST route answers it: the HTTP status and the JSON body."""
    return HTTP_STATUS.get(failure.code, 400), to_json(failure_response(failure, req_id))


#: The database did not answer a key lookup in time (the REST route's timeout).
UNAVAILABLE = Failure(
    status_code_pb2.RPC_SERVER_UNAVAILABLE,
    "Service unavailable",
    "the database is unreachable; retry",
)


def failure_response(failure: Failure, req_id: str) -> Any:
    response = service_pb2.MultiAuditLogEntryResponse()
    response.status.code = failure.code
    response.status.description = failure.description
    response.status.details = failure.details
    response.status.req_id = req_id
    return response


def to_json(response: Any) -> bytes:
    """The response as Clarifai's REST API writes it: proto field names, enums as numbers."""
    text: str = json_format.MessageToJson(
        response, preserving_proto_field_name=True, use_integers_for_enums=True, indent=None
    )
    return text.encode()
