"""The translation between Clarifai's messages and Trailkeeper, and numbered pages, in-process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from trailkeeper.clarifai import (
    BadRequest,
    clarifai_operations,
    entry_from,
    event_from,
    search_from,
)
from trailkeeper.events import Catalogue
from trailkeeper.service import MAX_WINDOW, AuditService, QueryError

CATALOGUE = Catalogue.default()
MakeEvent = Callable[..., dict[str, Any]]


def _request(**fields: Any) -> Any:
    return service_pb2.PostAuditLogSearchesRequest(**fields)


def test_an_empty_request_searches_every_clarifai_operation_newest_first_128_a_page() -> None:
    search = search_from(_request(), CATALOGUE)
    assert search.filters.match.operations == clarifai_operations(CATALOGUE)
    assert len(clarifai_operations(CATALOGUE)) == 42
    assert (search.order, search.offset, search.limit) == ("desc", 0, 128)
    assert search.filters.success is None
    assert search.filters.since is None
    assert search.filters.until is None


def test_pages_and_order_become_an_offset_window() -> None:
    search = search_from(
        _request(sort_ascending=True, pagination=service_pb2.Pagination(page=3, per_page=20)),
        CATALOGUE,
    )
    assert (search.order, search.offset, search.limit) == ("asc", 40, 20)
    with pytest.raises(BadRequest, match="per_page"):
        search_from(_request(pagination=service_pb2.Pagination(per_page=1001)), CATALOGUE)


def test_timestamps_keep_both_ends_inclusive_at_microsecond_precision() -> None:
    query = resources_pb2.AuditLogQuery(
        timestamp_from=Timestamp(seconds=1_795_000_000, nanos=1),
        timestamp_to=Timestamp(seconds=1_795_000_100, nanos=999),
    )
    filters = search_from(_request(query=query), CATALOGUE).filters
    base = datetime.fromtimestamp(1_795_000_000, UTC)
    assert filters.since == base + timedelta(microseconds=1)  # 1 ns rounds up
    assert filters.until == base + timedelta(seconds=100, microseconds=1)  # exclusive


def test_timestamp_to_at_the_last_representable_instant_means_no_upper_bound() -> None:
    # 9999-12-31T23:59:59.999999999Z: one microsecond later is past datetime's range.
    query = resources_pb2.AuditLogQuery(
        timestamp_to=Timestamp(seconds=253_402_300_799, nanos=999_999_999)
    )
    filters = search_from(_request(query=query), CATALOGUE).filters
    assert filters.until is None


def test_every_field_of_the_query_becomes_a_filter() -> None:
    query = resources_pb2.AuditLogQuery(
        user_ids=["ana"],
        operations=[resources_pb2.MODEL_CREATE, resources_pb2.NODEPOOL_DELETE],
        targets=[
            resources_pb2.AuditLogTarget(model=resources_pb2.Model(id="m1")),
            resources_pb2.AuditLogTarget(compute_cluster=resources_pb2.ComputeCluster(id="c")),
        ],
        success={"value": False},
        source_ips=["10.0.0.0/8"],
    )
    filters = search_from(_request(query=query), CATALOGUE).filters
    assert filters.match.actors == ("ana",)
    assert filters.match.operations == ("model.create", "nodepool.delete")
    assert filters.match.targets == ("model:m1", "compute_cluster:c")
    assert filters.success is False
    assert filters.match.source_ips == ("10.0.0.0/8",)


@pytest.mark.parametrize(
    "query",
    [
        resources_pb2.AuditLogQuery(operations=[0]),
        resources_pb2.AuditLogQuery(operations=[123]),
        resources_pb2.AuditLogQuery(targets=[resources_pb2.AuditLogTarget()]),
        resources_pb2.AuditLogQuery(targets=[resources_pb2.AuditLogTarget(app={})]),
        resources_pb2.AuditLogQuery(timestamp_to=Timestamp(seconds=-(10**12))),
    ],
)
def test_values_that_name_nothing_are_refused(query: Any) -> None:
    with pytest.raises(BadRequest):
        search_from(_request(query=query), CATALOGUE)


def test_an_event_survives_the_trip_to_clarifai_and_back(
    service: AuditService, make_event: MakeEvent
) -> None:
    raw = make_event(
        operation="collaborator.add",
        actor={"id": "ana", "name": "Ana Maria Lima", "email": "ana@example.com"},
        targets=[
            {"type": "app", "id": "main", "name": "Main"},
            {"type": "user", "id": "bob", "name": "Bob Stone"},
            {"type": "role", "id": "editor"},
            {"type": "organization", "id": "acme"},  # no Clarifai kind: left out
        ],
        request_id="req-9",
        details=["one", "two"],
        success=False,
        error={"code": "DENIED", "message": "no"},
    )
    service.ingest("acme", [raw])
    (stored,) = service.search("acme").events
    entry = entry_from(stored, CATALOGUE)
    assert entry.operation == resources_pb2.COLLABORATOR_ADD
    assert (entry.user.first_name, entry.user.last_name) == ("Ana", "Maria Lima")
    assert entry.user.primary_email == "ana@example.com"
    assert [t.WhichOneof("target") for t in entry.targets] == ["app", "user", "role"]

    back = event_from(entry, CATALOGUE, source="acme")
    assert back["operation"] == "collaborator.add"
    assert back["actor"] == {
        "id": "ana", "type": "user", "name": "Ana Maria Lima", "email": "ana@example.com"
    }  # fmt: skip
    assert back["targets"] == [
        {"type": "app", "id": "main", "name": "Main"},
        {"type": "user", "id": "bob", "name": "Bob Stone"},
        {"type": "role", "id": "editor"},
    ]
    assert back["time"] == stored.event.to_dict()["time"]
    assert (back["success"], back["request_id"], back["details"]) == (
        False,
        "req-9",
        ["one", "two"],
    )
    assert back["app_id"] == "main"
    assert back["source_ip"] == stored.event.source_ip
    # The id is the entry's content: the same again, another for another source.
    assert event_from(entry, CATALOGUE, source="acme")["id"] == back["id"]
    assert event_from(entry, CATALOGUE, source="globex")["id"] != back["id"]
    service.ingest("copy", [back])


def test_an_entry_without_a_user_or_a_known_event_type() -> None:
    entry = resources_pb2.AuditLogEntry(operation=resources_pb2.USER_UPDATE)
    assert event_from(entry, CATALOGUE, source="x")["actor"] == {
        "id": "anonymous", "type": "anonymous"
    }  # fmt: skip
    with pytest.raises(BadRequest, match="1234"):
        event_from(resources_pb2.AuditLogEntry(operation=1234), CATALOGUE, source="x")


def test_a_window_is_the_same_slice_of_the_ordered_results(
    service: AuditService, make_event: MakeEvent
) -> None:
    # Pairs of events share a time, so order within a time must come from seq.
    service.ingest(
        "acme",
        [
            make_event(time=f"2026-11-26T10:{i // 2:02d}:00Z", actor={"id": f"u{i}"})
            for i in range(25)
        ],
    )
    everything = [e.event.id for e in service.search("acme", limit=1000).events]
    oldest_first = [e.event.id for e in service.search("acme", limit=1000, order="asc").events]
    for offset, limit in [(0, 1), (0, 25), (3, 7), (24, 5), (25, 5), (100, 1)]:
        got = [e.event.id for e in service.search_window("acme", offset=offset, limit=limit)]
        assert got == everything[offset : offset + limit]
        asc = service.search_window("acme", order="asc", offset=offset, limit=limit)
        assert [e.event.id for e in asc] == oldest_first[offset : offset + limit]


@pytest.mark.parametrize(
    ("offset", "limit", "field"),
    [(MAX_WINDOW - 999, 1000, "offset"), (-1, 10, "offset"), (0, 0, "limit"), (0, 1001, "limit")],
)
def test_a_window_beyond_the_cap_is_refused(
    service: AuditService, offset: int, limit: int, field: str
) -> None:
    with pytest.raises(QueryError) as caught:
        service.search_window("acme", offset=offset, limit=limit)
    assert caught.value.field == field
    assert service.search_window("acme", offset=MAX_WINDOW - 1000, limit=1000) == []


def test_the_rest_json_is_what_protobuf_writes_for_the_same_entry(
    service: AuditService, make_event: MakeEvent
) -> None:
    from google.protobuf import json_format

    from trailkeeper.clarifai import entry_json

    kinds = [
        "user", "role", "team", "app", "workflow", "workflow_version", "model", "model_version",
        "compute_cluster", "nodepool", "deployment", "organization", "secret",
    ]  # fmt: skip
    times = ["2026-11-26T10:00:00Z", "2026-11-26T10:00:00.5Z", "2026-11-26T10:00:00.123456Z",
             "2026-11-26T10:00:00.120Z", "2017-01-01T00:00:00.000001Z"]  # fmt: skip
    names = [None, "Ana", "Ana Maria Lima", "  spaced"]
    raws = []
    for i, kind in enumerate(kinds):
        success = i % 3 != 0
        raws.append(
            make_event(
                time=times[i % len(times)],
                operation="deployment.create" if i % 2 else "collaborator.update",
                actor={"id": f"u{i}", "name": names[i % 4], "email": "a@b.c" if i % 2 else None},
                targets=[
                    {"type": kind, "id": f"t{i}", "name": names[(i + 1) % 4]},
                    {"type": "model", "id": "m", "name": "M"},
                ],
                app_id=None if i % 4 == 0 else "main",
                source_ip=None if i % 5 == 0 else "10.0.0.1",
                request_id=None if i % 2 else f"r{i}",
                details=[] if i % 3 else ["a", "b"],
                success=success,
                **({} if success else {"error": {"code": "E", "message": "m"}}),
            )
        )
    service.ingest("acme", raws)
    stored = service.search("acme", limit=100).events
    assert len(stored) == len(raws)
    for one in stored:
        written = json_format.MessageToDict(
            entry_from(one, CATALOGUE),
            preserving_proto_field_name=True,
            use_integers_for_enums=True,
        )
        assert entry_json(one, CATALOGUE) == written
