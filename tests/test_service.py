"""AuditService: all-or-nothing ingest, deduplication, redaction, filters as written."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from conftest import FakeClock
from trailkeeper.events import REDACTED, EventValidationError
from trailkeeper.filters import Filters, Match
from trailkeeper.service import VALIDATE_CHUNK, AuditService, QueryError
from trailkeeper.store import ConflictError, LogStore

MakeEvent = Callable[..., dict[str, Any]]


def test_ingest_returns_ids_and_seqs_in_input_order(
    service: AuditService, make_event: MakeEvent
) -> None:
    result = service.ingest("acme", [make_event(), make_event(operation="model.delete")])
    assert result.accepted == 2
    assert result.duplicates == 0
    assert [e.seq for e in result.events] == [0, 1]
    assert service.get("acme", result.events[1].id).event.operation == "model.delete"  # type: ignore[union-attr]


def test_one_invalid_event_refuses_the_batch_and_names_each_bad_event(
    service: AuditService, make_event: MakeEvent
) -> None:
    batch = [make_event(), make_event(source_ip="999.1.1.1"), make_event(operation="nope")]
    with pytest.raises(EventValidationError) as caught:
        service.ingest("acme", batch)
    assert [(e.index, e.field) for e in caught.value.errors] == [(1, "source_ip"), (2, "operation")]
    assert service.size("acme") == 0


def test_a_batch_longer_than_a_validation_chunk_names_and_stores_every_event_in_order(
    service: AuditService, make_event: MakeEvent, clock: FakeClock
) -> None:
    # Ingest validates in chunks of VALIDATE_CHUNK events: indexes, errors, defaulted times
    # and ids repeated across chunks are as for one pass over the batch.
    size = VALIDATE_CHUNK * 2 + 7
    bad = [3, VALIDATE_CHUNK, VALIDATE_CHUNK * 2 + 1]
    batch = [make_event(source_ip="999.1.1.1" if i in bad else None) for i in range(size)]
    with pytest.raises(EventValidationError) as caught:
        service.ingest("acme", batch)
    assert [(e.index, e.field) for e in caught.value.errors] == [(i, "source_ip") for i in bad]
    assert service.size("acme") == 0

    batch = [make_event(id=f"0192f0c8-7d2e-7c3a-9f1e-{i:012d}") for i in range(size)]
    batch[VALIDATE_CHUNK + 5] = dict(batch[2])  # the same event again, in the next chunk
    untimed = batch[VALIDATE_CHUNK * 2 + 3]
    untimed["id"] = "6f1c1a52-3f7e-4b9a-9c1d-0a2b3c4d5e6f"  # not a UUIDv7: no time of its own
    del untimed["time"]  # defaulted to the receive time
    result = service.ingest("acme", batch)
    assert (result.accepted, result.duplicates) == (size - 1, 1)
    assert result.events[VALIDATE_CHUNK + 5] == replace(result.events[2], duplicate=True)
    stored = service.get("acme", result.events[VALIDATE_CHUNK * 2 + 3].id)
    assert stored is not None
    assert stored.event.time == clock()
    assert [e.seq for e in result.events if not e.duplicate] == list(range(size - 1))


def test_records_of_reads_do_not_wait_for_ingests_validating(service: AuditService) -> None:
    # Behind a batch's validation, every read would wait for whole ingests.
    key, _ = service.keys.create("acme", ["events:read"])
    reader = service.reader(key)
    recorded = threading.Event()
    with service._validating:  # as while an ingest validates a chunk
        threading.Thread(
            target=lambda: (reader.search(), recorded.set()),
            daemon=True,
        ).start()
        assert recorded.wait(10)


def test_resending_a_batch_reports_duplicates_and_keeps_seqs(
    service: AuditService, make_event: MakeEvent
) -> None:
    batch = [make_event(id=f"0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8{i}") for i in range(3)]
    first = service.ingest("acme", batch)
    again = service.ingest("acme", batch)
    assert again.accepted == 0
    assert again.duplicates == 3
    assert [e.seq for e in again.events] == [e.seq for e in first.events]
    assert service.size("acme") == 3


def test_a_resent_event_without_time_is_still_a_duplicate(
    service: AuditService, make_event: MakeEvent, clock: FakeClock
) -> None:
    event = make_event(id="0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f")
    del event["time"]
    first = service.ingest("acme", [event])
    clock.advance(seconds=30)
    again = service.ingest("acme", [event])
    assert again.duplicates == 1
    assert again.events[0].seq == first.events[0].seq


def _send_at_once(
    server: AuditService,
    batch: list[dict[str, Any]],
    barrier: threading.Barrier,
    outcomes: list[object],
) -> None:
    barrier.wait()
    try:
        outcomes.append(server.ingest("acme", batch).events[1].seq)
    except ConflictError as exc:
        outcomes.append(exc)


@pytest.mark.parametrize(
    "event_id",
    [
        "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f",  # a UUIDv7: its own time is the default
        "6f1c1a52-3f7e-4b9a-9c1d-0a2b3c4d5e6f",  # a UUIDv4: the first copy stored decides
    ],
)
def test_an_event_without_time_sent_to_servers_at_once_is_one_event_and_duplicates(
    store: LogStore, make_event: MakeEvent, clock: FakeClock, event_id: str
) -> None:
    # Three servers with their own clocks (a second apart), one database, the same batch at
    # the same moment: never a conflict, one event stored.
    servers = [
        AuditService(store, clock=lambda n=n: clock.now + timedelta(seconds=n)) for n in range(3)
    ]
    for round_ in range(10):
        untimed = make_event(id=event_id[:-2] + f"{round_:02d}")
        del untimed["time"]
        batch = [make_event(), untimed]
        barrier = threading.Barrier(3)
        outcomes: list[object] = []
        threads = [
            threading.Thread(target=_send_at_once, args=(s, batch, barrier, outcomes))
            for s in servers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not [o for o in outcomes if isinstance(o, ConflictError)], outcomes
        assert len(set(outcomes)) == 1


def test_same_id_with_other_content_is_a_conflict_and_nothing_is_stored(
    service: AuditService, make_event: MakeEvent
) -> None:
    event_id = "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f"
    service.ingest("acme", [make_event(id=event_id)])
    with pytest.raises(ConflictError):
        service.ingest("acme", [make_event(), make_event(id=event_id, success=False)])
    assert service.size("acme") == 1


def test_an_id_twice_in_one_batch(service: AuditService, make_event: MakeEvent) -> None:
    event = make_event(id="0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f")
    result = service.ingest("acme", [event, event])
    assert (result.accepted, result.duplicates) == (1, 1)
    assert result.events[0].seq == result.events[1].seq == 0
    with pytest.raises(EventValidationError) as caught:
        service.ingest(
            "acme",
            [
                make_event(id=event["id"][:-1] + "0"),
                make_event(id=event["id"][:-1] + "0", operation="model.delete"),
            ],
        )
    assert caught.value.errors[0].index == 1
    assert "earlier in this batch" in caught.value.errors[0].message


def test_secrets_in_metadata_and_changes_are_redacted_before_storage(
    service: AuditService, make_event: MakeEvent
) -> None:
    result = service.ingest(
        "acme",
        [
            make_event(
                metadata={"headers": {"Authorization": "Bearer abc"}, "region": "eu"},
                changes={"api_key": {"from": "old", "to": "new"}, "name": {"to": "x"}},
            )
        ],
    )
    stored = service.get("acme", result.events[0].id)
    assert stored is not None
    assert stored.event.metadata == {"headers": {"Authorization": REDACTED}, "region": "eu"}
    assert stored.event.changes == {
        "api_key": {"from": REDACTED, "to": REDACTED},
        "name": {"to": "x"},
    }
    assert b"Bearer abc" not in stored.event.canonical_bytes()


def test_operation_patterns_expand_through_the_catalogue(
    service: AuditService, make_event: MakeEvent
) -> None:
    service.ingest(
        "acme",
        [
            make_event(operation="model.create"),
            make_event(operation="model.version.delete"),
            make_event(operation="workflow.create"),
        ],
    )
    page = service.search("acme", Filters(match=Match(operations=("model.*",))))
    assert sorted(e.event.operation for e in page.events) == [
        "model.create",
        "model.version.delete",
    ]
    page = service.search("acme", Filters(exclude=Match(operations=("model.*",))))
    assert [e.event.operation for e in page.events] == ["workflow.create"]


@pytest.mark.parametrize(
    ("filters", "field", "fragment"),
    [
        (Filters(match=Match(operations=("model.creat",))), "operation", "did you mean"),
        (Filters(match=Match(operations=("nothing.*",))), "operation", "unknown operation"),
        (Filters(exclude=Match(source_ips=("10.0.0.300",))), "-source_ip", "CIDR"),
        (Filters(match=Match(targets=("modle:m1",))), "target", "not a target type"),
        (Filters(match=Match(actors=("a b",))), "actor", "not an id"),
    ],
)
def test_bad_filters_are_refused_naming_the_filter(
    service: AuditService, filters: Filters, field: str, fragment: str
) -> None:
    with pytest.raises(QueryError) as caught:
        service.search("acme", filters)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_since_must_be_before_until(service: AuditService) -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(QueryError, match="later than since"):
        service.search("acme", Filters(since=moment, until=moment))


def test_get_with_a_malformed_id_finds_nothing(service: AuditService) -> None:
    assert service.get("acme", "not-a-uuid") is None


def test_bad_org_id_is_refused(service: AuditService, make_event: MakeEvent) -> None:
    with pytest.raises(QueryError) as caught:
        service.ingest("bad org", [make_event()])
    assert caught.value.field == "org_id"


def test_records_of_reads_that_fail_to_be_stored_are_counted_one_by_one(
    store: LogStore, make_event: MakeEvent
) -> None:
    service = AuditService(store)
    taken = "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f"
    service.ingest("acme", [make_event(id=taken)])
    # Two records pending in one batch, one of them refused (its id is taken): the batch
    # fails. (Records of reads get fresh ids; a taken one stands in for any store failure.)
    pending = service._prepare_own("acme", [make_event(), make_event(id=taken, success=False)])
    service.trail._pending.setdefault("acme", []).extend(pending)
    service.flush_reads()
    assert service.read_audit_failures == 2
