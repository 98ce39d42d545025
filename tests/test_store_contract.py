"""The storage contract: every backend runs these unchanged (see conftest.BACKENDS)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trailkeeper.events import EventRules, leaf_hash, parse_event, to_micros
from trailkeeper.store import (
    ConflictError,
    Criteria,
    LogStore,
    Position,
    PreparedEvent,
    SearchQuery,
    StoreClosedError,
    Tail,
    TargetRef,
)

RULES = EventRules()
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def prepare(raw: dict[str, Any], org: str = "acme") -> PreparedEvent:
    event = parse_event(raw, org_id=org, received_at=NOW, rules=RULES).event
    canonical = event.canonical_bytes()
    return PreparedEvent(event, canonical, leaf_hash(canonical))


def minutes(n: int) -> str:
    return (NOW - timedelta(hours=2) + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_append_gives_each_org_its_own_dense_seq(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    a = store.append("acme", [prepare(make_event()) for _ in range(3)])
    b = store.append("globex", [prepare(make_event(), "globex") for _ in range(2)])
    c = store.append("acme", [prepare(make_event())])
    assert [x.seq for x in a] == [0, 1, 2]
    assert [x.seq for x in b] == [0, 1]
    assert [x.seq for x in c] == [3]
    assert store.size("acme") == 4
    assert store.size("globex") == 2
    assert store.size("nobody") == 0
    assert store.orgs() == ["acme", "globex"]


def test_same_id_and_content_is_a_duplicate_that_stores_nothing(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    event = prepare(make_event())
    first = store.append("acme", [event])
    again = store.append("acme", [event, prepare(make_event())])
    assert first[0].duplicate is False
    assert again[0].duplicate is True
    assert again[0].seq == first[0].seq
    assert again[1].seq == 1
    assert store.size("acme") == 2


def test_same_id_with_other_content_is_refused_and_nothing_of_the_batch_is_stored(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    event = prepare(make_event())
    store.append("acme", [event])
    changed = prepare(make_event(id=event.event.id, operation="model.delete"))
    fresh = prepare(make_event())
    with pytest.raises(ConflictError) as caught:
        store.append("acme", [fresh, changed])
    assert caught.value.conflicts == [(1, event.event.id)]
    assert store.size("acme") == 1
    assert store.get("acme", fresh.event.id) is None


def test_the_same_id_in_two_orgs_is_two_events(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    raw = make_event(id="0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f")
    store.append("acme", [prepare(raw)])
    store.append("globex", [prepare(raw, "globex")])
    assert store.get("acme", raw["id"]) is not None
    assert store.get("globex", raw["id"]) is not None
    assert store.get("acme", raw["id"]).event.org_id == "acme"  # type: ignore[union-attr]


def test_get_returns_the_event_exactly_as_stored(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    prepared = prepare(make_event(metadata={"k": [1, 2.5, None, "é"]}, details=["one", "two"]))
    [appended] = store.append("acme", [prepared])
    stored = store.get("acme", prepared.event.id)
    assert stored is not None
    assert stored.event == prepared.event
    assert stored.seq == appended.seq
    assert stored.leaf_hash == prepared.leaf_hash
    assert stored.event.canonical_bytes() == prepared.canonical
    assert stored.received_at.tzinfo is not None
    assert store.get("globex", prepared.event.id) is None


def test_get_many_finds_only_existing_ids_of_the_org(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    events = [prepare(make_event()) for _ in range(3)]
    store.append("acme", events)
    missing = "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f"
    found = store.get_many("acme", [events[0].event.id, events[2].event.id, missing])
    assert set(found) == {events[0].event.id, events[2].event.id}
    assert store.get_many("globex", [events[0].event.id]) == {}


def _ids(rows: list[Any]) -> list[str]:
    return [r.event.id for r in rows]


@pytest.fixture
def populated(store: LogStore, make_event: Callable[..., dict[str, Any]]) -> list[PreparedEvent]:
    events = [
        prepare(make_event(time=minutes(0), actor={"id": "alice"}, source_ip="10.1.2.3")),
        prepare(
            make_event(
                time=minutes(1),
                actor={"id": "bob"},
                operation="model.delete",
                success=False,
                error={"code": "PERMISSION_DENIED", "message": "bob may not delete models"},
                source_ip="2001:db8::5",
                app_id="other",
            )
        ),
        prepare(
            make_event(
                time=minutes(1),
                actor={"id": "alice"},
                operation="team.member.add",
                targets=[{"type": "team", "id": "ops"}, {"type": "user", "id": "bob"}],
                source_ip=None,
                app_id=None,
                request_id="req-1",
            )
        ),
        prepare(
            make_event(
                time=minutes(2),
                actor={"id": "carol"},
                operation="application.create",
                targets=[{"type": "app", "id": "bob", "name": "Bob's sandbox"}],
                details=["Created from template quickstart"],
                request_id="req-1",
                source_ip="192.168.0.9",
            )
        ),
    ]
    store.append("acme", events)
    store.append("globex", [prepare(make_event(time=minutes(3)), "globex")])
    return events


def search(store: LogStore, **kwargs: Any) -> list[str]:
    return _ids(store.search("acme", SearchQuery(**kwargs)))


def test_search_orders_by_time_then_seq_newest_first_by_default(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    assert search(store) == [ids[3], ids[2], ids[1], ids[0]]
    assert search(store, order="asc") == ids


def test_search_filters_by_each_field(store: LogStore, populated: list[PreparedEvent]) -> None:
    ids = [p.event.id for p in populated]
    assert search(store, include=Criteria(actors=("alice",))) == [ids[2], ids[0]]
    assert search(store, include=Criteria(operations=("model.delete", "team.member.add"))) == [
        ids[2],
        ids[1],
    ]
    assert search(store, include=Criteria(apps=("other",))) == [ids[1]]
    assert search(store, include=Criteria(request_ids=("req-1",))) == [ids[3], ids[2]]
    assert search(store, success=False) == [ids[1]]
    assert search(store, include=Criteria(targets=(TargetRef("bob"),))) == [ids[3], ids[2]]
    assert search(store, include=Criteria(targets=(TargetRef("bob", "user"),))) == [ids[2]]
    since = datetime.fromisoformat(minutes(1))
    until = datetime.fromisoformat(minutes(2))
    assert search(store, since=since, until=until) == [ids[2], ids[1]]


def test_search_by_cidr_matches_only_addresses_inside(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    net = ipaddress.ip_network
    assert search(store, include=Criteria(source_ips=(net("10.0.0.0/8"),))) == [ids[0]]
    assert search(store, include=Criteria(source_ips=(net("10.1.2.3/32"),))) == [ids[0]]
    assert search(store, include=Criteria(source_ips=(net("10.1.2.4/32"),))) == []
    assert search(store, include=Criteria(source_ips=(net("2001:db8::/32"),))) == [ids[1]]
    both = (net("192.168.0.0/16"), net("2001:db8::/32"))
    assert search(store, include=Criteria(source_ips=both)) == [ids[3], ids[1]]


def test_exclusions_keep_events_that_lack_the_excluded_field(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    assert search(store, exclude=Criteria(apps=("other",))) == [ids[3], ids[2], ids[0]]
    net = ipaddress.ip_network("10.0.0.0/8")
    assert search(store, exclude=Criteria(source_ips=(net,))) == [ids[3], ids[2], ids[1]]
    assert search(store, exclude=Criteria(actors=("alice", "bob"))) == [ids[3]]


def test_free_text_matches_description_details_names_and_errors(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    assert search(store, text=("quickstart",)) == [ids[3]]
    assert search(store, text=("sandbox",)) == [ids[3]]
    assert search(store, text=("permission", "delete")) == [ids[1]]
    assert search(store, text=("may not delete",)) == [ids[1]]
    assert search(store, text=("not may delete",)) == []
    assert search(store, text=('quote " inside',)) == []


def test_search_continues_after_a_position_in_either_order(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    tie = populated[2].event  # same time as populated[1]; seq breaks the tie
    after = Position(to_micros(tie.time), 2)
    assert search(store, after=after) == [ids[1], ids[0]]
    assert search(store, after=after, order="asc") == [ids[3]]


def test_search_skips_offset_matching_events_in_either_order_and_with_text(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    newest_first = [ids[3], ids[2], ids[1], ids[0]]
    for offset in range(5):
        for limit in (1, 2, 10):
            window = slice(offset, offset + limit)
            assert search(store, offset=offset, limit=limit) == newest_first[window]
            assert search(store, offset=offset, limit=limit, order="asc") == ids[window]
    alice = Criteria(actors=("alice",))
    assert search(store, include=alice, offset=1, limit=5) == [ids[0]]
    # Free text newest first takes its own path through the full-text index.
    model = ("model",)
    assert search(store, text=model) == [ids[1], ids[0]]
    assert search(store, text=model, offset=1, limit=1) == [ids[0]]
    assert search(store, text=model, offset=2) == []


def test_search_never_crosses_into_another_org(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    assert len(store.search("globex", SearchQuery())) == 1
    assert store.search("nobody", SearchQuery()) == []


def test_scan_reads_in_seq_order_and_sees_late_events(
    store: LogStore, populated: list[PreparedEvent], make_event: Callable[..., dict[str, Any]]
) -> None:
    seen = [s.seq for s in store.scan("acme", SearchQuery(), batch=2)]
    assert seen == [0, 1, 2, 3]
    late = prepare(make_event(time=minutes(-600)))  # arrives now with an old time
    store.append("acme", [late])
    after = [s.event.id for s in store.scan("acme", SearchQuery(), after_seq=3)]
    assert after == [late.event.id]
    filtered = store.scan("acme", SearchQuery(include=Criteria(actors=("alice",))), batch=1)
    assert [s.seq for s in filtered] == [0, 2, 4]


def test_tail_reads_matching_events_after_a_seq_with_the_head_it_saw(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    everything = store.tail("acme", SearchQuery(), after_seq=-1, limit=10)
    assert (everything.head, [s.seq for s in everything.events]) == (4, [0, 1, 2, 3])
    first = store.tail("acme", SearchQuery(), after_seq=0, limit=2)
    assert [s.seq for s in first.events] == [1, 2]
    alice = store.tail("acme", SearchQuery(include=Criteria(actors=("alice",))), 0, 10)
    assert (alice.head, [s.seq for s in alice.events]) == (4, [2])
    caught_up = store.tail("acme", SearchQuery(), after_seq=3, limit=10)
    assert (caught_up.head, caught_up.events) == (4, [])
    assert store.tail("nobody", SearchQuery(), after_seq=-1, limit=10) == Tail(0, [])


def test_a_closed_store_refuses_appends(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    store.close()
    with pytest.raises(StoreClosedError):
        store.append("acme", [prepare(make_event())])
    store.close()  # closing twice is harmless


def test_reopening_keeps_every_event_and_continues_seq(
    backend: str, tmp_path: Any, make_event: Callable[..., dict[str, Any]]
) -> None:
    from conftest import store_url
    from trailkeeper.store import open_store

    url = store_url(backend, tmp_path)
    with open_store(url) as first:
        first.append("acme", [prepare(make_event()) for _ in range(5)])
    with open_store(url) as second:
        assert second.size("acme") == 5
        [more] = second.append("acme", [prepare(make_event())])
        assert more.seq == 5


def test_leaf_hash_stays_with_the_event(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    prepared = prepare(make_event())
    store.append("acme", [prepared])
    stored = store.get("acme", prepared.event.id)
    assert stored is not None
    assert stored.leaf_hash == leaf_hash(stored.event.canonical_bytes())
    tampered = replace(stored.event, operation="model.delete")
    assert leaf_hash(tampered.canonical_bytes()) != stored.leaf_hash


def test_free_text_with_a_nul_or_only_punctuation_finds_nothing_and_does_not_fail(
    store: LogStore, populated: list[PreparedEvent]
) -> None:
    ids = [p.event.id for p in populated]
    assert search(store, text=("quick\x00start",)) == []
    assert search(store, text=("quickstart\x00",)) == [ids[3]]
    assert search(store, text=("!!",), order="asc") == []


# SQLite's store picks its access path itself, by a threshold this test moves; PostgreSQL's
# planner picks its own, and tests/test_postgres_store.py forces each of its plans instead.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_access_path_gives_the_same_answers(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    """The store may read through a filter's index, the time index or by rowid; a search's
    answer must not depend on which (forced here by moving the selectivity threshold)."""
    events = [
        prepare(
            make_event(
                time=minutes(i % 17),
                actor={"id": f"user-{i % 4}"},
                operation=("model.create", "model.delete", "team.create")[i % 3],
                app_id=("main", "other")[i % 2],
                source_ip=f"10.0.{i % 3}.{i % 7 + 1}" if i % 5 else None,
                targets=[{"type": "model", "id": f"m{i % 6}"}],
                request_id=f"req-{i % 9}",
                details=["quota" if i % 4 == 0 else "fine"],
            )
        )
        for i in range(120)
    ]
    store.append("acme", events)
    net = ipaddress.ip_network
    queries = [
        SearchQuery(include=Criteria(actors=("user-1",))),
        SearchQuery(include=Criteria(actors=("user-1",), request_ids=("req-3",))),
        SearchQuery(include=Criteria(operations=("model.create", "team.create")), order="asc"),
        SearchQuery(include=Criteria(source_ips=(net("10.0.1.0/24"),), apps=("main",))),
        SearchQuery(include=Criteria(targets=(TargetRef("m2", "model"),)), success=True),
        SearchQuery(text=("quota",), order="asc"),
        SearchQuery(text=("quota",), include=Criteria(actors=("user-0",))),
        SearchQuery(
            include=Criteria(operations=("model.delete",)),
            since=datetime.fromisoformat(minutes(3)),
            until=datetime.fromisoformat(minutes(12)),
            limit=5,
        ),
    ]
    answers = []
    for threshold in (10**9, 1, 3):  # every filter selective; none; some
        store.selective = threshold  # type: ignore[attr-defined]
        answers.append([_ids(store.search("acme", q)) for q in queries])
    assert answers[0] == answers[1] == answers[2]
    assert all(answers[0])  # every query finds something


def test_free_text_ignores_case_and_accents_and_splits_on_punctuation(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    cafe = prepare(make_event(details=["Ärger im Café, build-42.7 (user@example.com)"]))
    other = prepare(make_event(details=["nothing to see"]))
    store.append("acme", [cafe, other])
    for term in ("cafe", "CAFÉ", "arger", "build 42", "42", "example com", "user@example.com"):
        assert search(store, text=(term,)) == [cafe.event.id], term
    assert search(store, text=("build 7",)) == []


# One normalisation on every backend (store/_text.py, docs/events.md): NFKC, full case
# folding, accents removed, words of letters and digits.
@pytest.mark.parametrize(
    ("stored", "term"),
    [
        ("\uff3a\uff25\uff22\uff32\uff21 crossing", "zebra"),  # full-width letters
        ("zebra crossing", "\uff3a\uff25\uff22\uff32\uff21"),
        ("\uff3a\uff25\uff22\uff32\uff21 crossing", "\uff3aebra CROSSING"),
        ("\ufb01le upload", "file"),  # the ligature fi
        ("file upload", "\ufb01le"),
        ("Straße", "STRASSE"),  # full case folding: ß is ss
        ("STRASSE", "straße"),
        ("Crème brûlée", "creme brulee"),  # accents removed
        ("creme brulee", "CRÈME BRÛLÉE"),
        ("Cafe\u0301", "café"),  # a combining accent, as a precomposed one
        ("x² quota", "x2"),  # compatibility digits
        ("ΣΊΣΥΦΟΣ", "σισυφος"),  # final sigma folds with the others
        ("build_42.7", "build 42 7"),  # "_" and punctuation separate words
    ],
)
def test_free_text_normalises_the_same_way_on_every_backend(
    store: LogStore, make_event: Callable[..., dict[str, Any]], stored: str, term: str
) -> None:
    hit = prepare(make_event(details=[stored]))
    miss = prepare(make_event(details=["nothing to see"]))
    store.append("acme", [hit, miss])
    assert search(store, text=(term,)) == [hit.event.id]
    assert search(store, text=(term,), order="asc") == [hit.event.id]


def test_free_text_finds_only_the_searching_orgs_events(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    theirs = [prepare(make_event(details=["zebra crossing"]), "globex") for _ in range(2)]
    store.append("globex", theirs)
    own = prepare(make_event(details=["a zebra"]))
    store.append("acme", [own, prepare(make_event(details=["crossing"]))])
    assert search(store, text=("zebra",)) == [own.event.id]
    assert search(store, text=("zebra crossing",)) == []
    assert search(store, text=("zebra", "crossing"), order="asc") == []
    assert search(store, text=("zebra",), include=Criteria(actors=("alice",))) == [own.event.id]
    assert _ids(store.search("globex", SearchQuery(text=("a zebra",)))) == []
    assert len(store.search("globex", SearchQuery(text=("zebra crossing",)))) == 2


def test_free_text_finds_the_newest_matches_behind_a_burst_of_late_arrivals(
    store: LogStore, make_event: Callable[..., dict[str, Any]]
) -> None:
    # Stored last, with the oldest times: the newest-stored matches are not the newest in
    # time, so a search cannot stop at the first matches it reads.
    recent = [prepare(make_event(time=minutes(60 + i), details=["quota exceeded"]))
              for i in range(40)]  # fmt: skip
    late = [prepare(make_event(time=minutes(i % 30), details=["quota exceeded"]))
            for i in range(60)]  # fmt: skip
    store.append("acme", recent)
    store.append("acme", late)
    newest = [p.event.id for p in reversed(recent)]
    assert search(store, text=("quota",), limit=10) == newest[:10]
    assert search(store, text=("quota",), limit=10, offset=35) == (
        newest[35:]
        + [p.event.id for _, p in sorted(enumerate(late), key=lambda ip: (ip[1].event.time, ip[0]),
                                         reverse=True)][:5]
    )  # fmt: skip
