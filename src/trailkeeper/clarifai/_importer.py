"""``trailkeeper import clarifai``: copy an existing Clarifai audit log into Trailkeeper.

Reads the remote log with the official ``clarifai-grpc`` client over its JSON channel, oldest
first, page by page, and ingests each page. Event ids derive from each entry's content, so
running the import again stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel
from clarifai_grpc.grpc.api import service_pb2, service_pb2_grpc
from clarifai_grpc.grpc.api.status import status_code_pb2

from ..events import EventValidationError
from ..service import AuditService
from ._convert import MAX_PER_PAGE, BadRequest, event_from


class RemoteError(RuntimeError):
    """The remote refused a search; carries its Clarifai status code and description."""

    def __init__(self, code: int, description: str) -> None:
        self.code = code
        self.description = description
        super().__init__(f"the Clarifai API answered {code}: {description}")


@dataclass(slots=True)
class ImportResult:
    """What an import did: entries read, events stored, ones already there, and skipped ones
    (each with its reason)."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped: list[str] = field(default_factory=list)


def import_clarifai(
    service: AuditService,
    org_id: str,
    *,
    url: str,
    pat: str,
    user_id: str,
    per_page: int = MAX_PER_PAGE,
    progress: Callable[[ImportResult], None] | None = None,
) -> ImportResult:
    """Copy the audit log of Clarifai user (or org) ``user_id`` at ``url`` into ``org_id``.

    Entries whose ``EventType`` Trailkeeper doesn't know, or that aren't valid events, are
    skipped and listed in the result; the rest are stored.

    Raises:
        RemoteError: the remote answered a search with a failure status (a bad PAT, …).
    """
    stub = service_pb2_grpc.V2Stub(ClarifaiChannel.get_json_channel(base_url=url.rstrip("/")))
    metadata = (("authorization", f"Key {pat}"),)
    result = ImportResult()
    page = 1
    while True:
        request = service_pb2.PostAuditLogSearchesRequest(sort_ascending=True)
        request.user_app_id.user_id = user_id
        request.pagination.page = page
        request.pagination.per_page = per_page
        response = stub.PostAuditLogSearches(request, metadata=metadata)
        if response.status.code != status_code_pb2.SUCCESS:
            detail = response.status.details or response.status.description
            raise RemoteError(response.status.code, detail)
        _store(service, org_id, user_id, list(response.entries), result)
        if progress is not None:
            progress(result)
        if len(response.entries) < per_page:
            return result
        page += 1


def _store(
    service: AuditService, org_id: str, source: str, entries: list[object], result: ImportResult
) -> None:
    events = []
    for entry in entries:
        result.read += 1
        try:
            events.append(event_from(entry, service.catalogue, source=source))
        except BadRequest as exc:
            result.skipped.append(f"entry {result.read}: {exc.message}")
    while events:
        try:
            ingested = service.ingest(org_id, events, allow_reserved=True)
        except EventValidationError as exc:
            # Leave out the invalid ones, say why, and store the rest.
            bad = {e.index for e in exc.errors}
            if None in bad:  # an error of the batch as a whole: nothing of it can be kept
                bad = set(range(len(events)))
            for error in exc.errors:
                where = events[error.index]["id"] if error.index is not None else "batch"
                result.skipped.append(f"event {where}: {error.field}: {error.message}")
            events = [e for i, e in enumerate(events) if i not in bad]
            continue
        result.accepted += ingested.accepted
        result.duplicates += ingested.duplicates
        return
