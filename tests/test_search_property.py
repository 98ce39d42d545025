"""Search and scan against a list-comprehension oracle, and the sharp edges of the cursor."""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from trailkeeper.events import StoredEvent
from trailkeeper.filters import Filters, Match
from trailkeeper.service import AuditService, QueryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# -- what events are made of: small pools, so that filters hit and miss -----------------------

ACTORS: list[dict[str, str]] = [
    {"id": "alice", "type": "user", "name": "Alice Zephyr"},
    {"id": "alice", "type": "user"},
    {"id": "bob", "type": "user", "name": "Bob"},
    {"id": "ci-bot", "type": "service", "name": "Quokka deployer"},
    {"id": "key-7", "type": "api_key"},
    {"type": "anonymous"},
]
OPERATIONS = [
    "model.create",
    "model.delete",
    "model.version.create",
    "model.version.delete",
    "model.train",
    "module.version.create",
    "workflow.create",
    "workflow.version.update",
    "application.create",
    "dataset.update",
    "team.member.add",
    "auth.login_failed",
]
APPS = ["main", "staging", "lab"]
REQUEST_IDS = ["req-1", "req-2"]
# The same ids under several types: a `type:id` filter must tell them apart, a bare id not.
TARGET_TYPES = ["model", "model_version", "app", "dataset", "user"]
TARGET_IDS = ["alpha", "beta", "shared"]
TARGET_NAMES = [None, "Falcon detector", "Ember set", "plain"]
TARGETS: list[dict[str, str]] = [
    {"type": kind, "id": target_id} | ({"name": name} if name else {})
    for kind in TARGET_TYPES
    for target_id in TARGET_IDS
    for name in TARGET_NAMES
]
SOURCE_IPS = [
    "10.1.2.3",
    "10.1.200.9",
    "10.2.0.1",
    "192.168.1.20",
    "203.0.113.7",
    "203.0.113.200",
    "::ffff:10.1.2.4",  # IPv4-mapped: stored as 10.1.2.4
    "2001:db8:1::5",
    "2001:db8:1:ff::9",
    "2001:db8:2::1",
    "fd00::1",
]
# Simple alphabetic words, so that how the store tokenises text can't matter.
WORDS = ["zephyr", "quokka", "falcon", "ember", "walrus", "report", "weights", "Rotated"]
SENTENCES = [
    "zephyr report",
    "Rotated the quokka weights.",
    "falcon-ember; walrus",
    "Walrus, zephyr, falcon",
    "ember weights",
    "quokka",
    "report: Falcon & Ember",
]
DETAILS = [(), (), ("zephyr report",), ("weights rotated", "walrus quokka"), ("Ember",)]
OUTCOMES: list[dict[str, Any]] = [
    {},
    {},
    {"success": True},
    {"success": False},
    {"success": False, "error": {"code": "quota_exceeded", "message": "walrus report"}},
    {"success": False, "error": {"code": "PERMISSION_DENIED", "message": "Falcon, quokka."}},
    {"success": False, "error": {"code": "timeout", "message": ""}},
]

BASE = datetime(2026, 10, 27, tzinfo=UTC)  # 30 days before the `clock` fixture's now
SPAN_US = 30 * 86_400 * 1_000_000
# Instants several events share, and that since/until land on exactly.
HOT_TIMES = [
    BASE + timedelta(days=3),
    BASE + timedelta(days=12, microseconds=250_000),
    BASE + timedelta(days=29, hours=23, microseconds=999_999),
]
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]

# -- what filters are made of --------------------------------------------------------------

FILTER_OPERATIONS = [
    *OPERATIONS[::2],
    "model.*",
    "model.version.*",
    "module.*",
    "workflow.*",
    "team.*",
    "auth.*",
    "secret.create",  # in the catalogue, never in the generated events
]
FILTER_ACTORS = ["alice", "bob", "ci-bot", "key-7", "anonymous", "nobody"]
FILTER_APPS = [*APPS, "ghost"]
FILTER_REQUEST_IDS = [*REQUEST_IDS, "req-9"]
FILTER_IPS = [
    "10.1.2.3",
    "10.1.2.4",
    "2001:db8:2::1",
    "fd00::2",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.3/16",  # host bits set: still the network 10.1.0.0/16
    "10.1.2.0/24",
    "192.168.1.0/24",
    "203.0.113.0/25",
    "203.0.113.128/25",
    "2001:db8::/32",
    "2001:db8:1::/48",
    "2001:db8:1::/64",
    "fd00::/8",
    "::/0",  # every IPv6 address, and no IPv4 one
    "::ffff:10.1.2.3",  # IPv4-mapped: means 10.1.2.3
    "::ffff:10.1.0.0/112",  # IPv4-mapped: means 10.1.0.0/16
]
TERMS = [*WORDS, "ZEPHYR", "Quokka", "created", "model", "denied", "quota", "absent"]


# -- the oracle ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ingested:
    """An accepted event as the oracle sees it, built from what the test sent."""

    id: str
    seq: int
    time: datetime
    actor: str
    app: str | None
    operation: str
    targets: frozenset[tuple[str, str]]
    success: bool
    ip: IPAddress | None
    request_id: str | None
    words: frozenset[str]


def ingested(
    raw: Mapping[str, Any], event_id: str, seq: int, now: datetime, service: AuditService
) -> Ingested:
    actor = raw["actor"]
    error = raw.get("error") or {}
    description = raw.get("description") or service.catalogue.get(raw["operation"]).description
    text = [
        description,
        *raw.get("details", ()),
        actor.get("name") or "",
        *(t.get("name") or "" for t in raw.get("targets", ())),
        error.get("code", ""),
        error.get("message", ""),
    ]
    time = raw.get("time")
    ip = raw.get("source_ip")
    address = ipaddress.ip_address(ip) if ip else None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return Ingested(
        id=event_id,
        seq=seq,
        time=datetime.fromisoformat(time) if time else now,
        actor=actor.get("id", "anonymous"),
        app=raw.get("app_id"),
        operation=raw["operation"],
        targets=frozenset((t["type"], t["id"]) for t in raw.get("targets", ())),
        success=raw.get("success", True),
        ip=address,
        request_id=raw.get("request_id"),
        words=frozenset(re.findall(r"[a-z0-9]+", " ".join(text).lower())),
    )


def network(value: str) -> IPNetwork:
    net = ipaddress.ip_network(value, strict=False)
    mapped = net.network_address.ipv4_mapped if isinstance(net, ipaddress.IPv6Network) else None
    if mapped is not None and net.prefixlen >= 96:
        return ipaddress.IPv4Network(f"{mapped}/{net.prefixlen - 96}", strict=False)
    return net


def target_hit(event: Ingested, value: str) -> bool:
    kind, sep, target_id = value.partition(":")
    if sep:
        return (kind, target_id) in event.targets
    return any(target_id == value for _, target_id in event.targets)


def field_hits(event: Ingested, match: Match) -> list[bool]:
    """For each non-empty field of ``match``: does the event match one of its values?"""
    hits = []
    if match.operations:
        hits.append(
            any(
                event.operation == p or (p.endswith(".*") and event.operation.startswith(p[:-1]))
                for p in match.operations
            )
        )
    if match.actors:
        hits.append(event.actor in match.actors)
    if match.targets:
        hits.append(any(target_hit(event, v) for v in match.targets))
    if match.apps:
        hits.append(event.app in match.apps)
    if match.source_ips:
        hits.append(event.ip is not None and any(event.ip in network(v) for v in match.source_ips))
    if match.request_ids:
        hits.append(event.request_id in match.request_ids)
    return hits


def matches(event: Ingested, filters: Filters) -> bool:
    return (
        all(field_hits(event, filters.match))
        and not any(field_hits(event, filters.exclude))
        and (filters.success is None or event.success == filters.success)
        and (filters.since is None or event.time >= filters.since)
        and (filters.until is None or event.time < filters.until)
        and all(term.lower() in event.words for term in filters.text)
        and all(all(field_hits(event, match)) for match in filters.also)
    )


# -- strategies ------------------------------------------------------------------------------

instants = st.one_of(
    st.sampled_from(HOT_TIMES),
    st.integers(0, SPAN_US - 1).map(lambda us: BASE + timedelta(microseconds=us)),
)


def _written(instant: datetime, zone: timezone | None) -> str:
    if zone is None:
        return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return instant.astimezone(zone).isoformat()


@st.composite
def raw_events(draw: st.DrawFn) -> dict[str, Any]:
    # Few draws per event: generating data, not SQLite, is what makes an example slow, and
    # shrinking runs thousands of them.
    event: dict[str, Any] = {
        "actor": draw(st.sampled_from(ACTORS)),
        "operation": draw(st.sampled_from(OPERATIONS)),
        **draw(st.sampled_from(OUTCOMES)),
    }
    instant = draw(instants)
    # Some events leave the time to the server (the receive time, shared by their batch).
    written = draw(st.sampled_from(["Z", *ZONES, None]))
    if written is not None:
        event["time"] = _written(instant, None if written == "Z" else written)
    description = draw(st.sampled_from([None, *SENTENCES]))
    if description is not None:
        event["description"] = description
    details = draw(st.sampled_from(DETAILS))
    if details:
        event["details"] = list(details)
    targets = draw(st.lists(st.sampled_from(TARGETS), max_size=3))
    if targets:
        event["targets"] = targets
    for key, values in (("app_id", APPS), ("source_ip", SOURCE_IPS), ("request_id", REQUEST_IDS)):
        value = draw(st.sampled_from([None, *values]))
        if value is not None:
            event[key] = value
    return event


def sometimes(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in ``one_in`` draws; shrinks to False."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


@st.composite
def matches_of(draw: st.DrawFn) -> Match:
    # Each field is seldom set (and shrinks to unset): AND over many set fields, and over the
    # other parts of Filters, would leave nothing to page through.
    def values(pool: Sequence[str]) -> tuple[str, ...]:
        if not sometimes(draw, 8):
            return ()
        return tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True)))

    target_values = [f"{t}:{i}" for t in TARGET_TYPES for i in TARGET_IDS]
    target_values += [*TARGET_IDS, "missing", "user:nobody"]
    return Match(
        operations=values(FILTER_OPERATIONS),
        actors=values(FILTER_ACTORS),
        targets=values(target_values),
        apps=values(FILTER_APPS),
        source_ips=values(FILTER_IPS),
        request_ids=values(FILTER_REQUEST_IDS),
    )


@st.composite
def any_filters(draw: st.DrawFn) -> Filters:
    def bound() -> datetime | None:
        if not sometimes(draw, 4):
            return None
        return draw(instants).astimezone(draw(st.sampled_from(ZONES)))

    since, until = bound(), bound()
    if since is not None and until is not None:
        if since == until:
            until = None
        elif since > until:
            since, until = until, since
    success = draw(st.booleans()) if sometimes(draw, 3) else None
    text: list[str] = []
    if sometimes(draw, 3):
        text = draw(st.lists(st.sampled_from(TERMS), min_size=1, max_size=2))
    return Filters(
        match=draw(matches_of()),
        exclude=draw(matches_of()),
        success=success,
        since=since,
        until=until,
        text=tuple(text),
        also=tuple(draw(st.lists(matches_of(), max_size=2))) if sometimes(draw, 4) else (),
    )


# The SQLite store reads through the filter whose capped count is under this threshold, or
# walks the time index; small data reaches every access path only when it moves.
THRESHOLDS = [0, 1, 3, 10**9]

queries = st.tuples(
    any_filters(), st.sampled_from(["desc", "asc"]), st.integers(1, 7), st.sampled_from(THRESHOLDS)
)


# -- helpers -----------------------------------------------------------------------------------


def ingest(
    service: AuditService, clock: Any, org: str, batch: list[dict[str, Any]]
) -> list[Ingested]:
    start = service.size(org)
    result = service.ingest(org, batch)
    assert (result.accepted, result.duplicates) == (len(batch), 0)
    assert [e.seq for e in result.events] == list(range(start, start + len(batch)))
    accepted = [
        ingested(raw, appended.id, appended.seq, clock.now, service)
        for raw, appended in zip(batch, result.events, strict=True)
    ]
    for raw, event in zip(batch, accepted, strict=True):
        note(f"{org} seq {event.seq} at {event.time.isoformat()}: {json.dumps(raw)}")
    clock.advance(seconds=1)
    return accepted


def search_all(
    service: AuditService,
    org: str,
    filters: Filters,
    order: Any,
    size: int,
    bound: int,
    cursor: str | None = None,
) -> list[StoredEvent]:
    """Every page of a search, following the cursor; checks the shape of each page."""
    found: list[StoredEvent] = []
    for _ in range(bound + 2):
        page = service.search(org, filters, order=order, limit=size, cursor=cursor)
        if page.next_cursor is not None:
            assert len(page.events) == size
        else:
            assert len(page.events) <= size
        if cursor is not None:
            assert page.events, "a cursor led to an empty page"
        found.extend(page.events)
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError(f"the cursor did not stop after {bound + 2} pages")


def assert_search_and_scan_agree_with_oracle(
    service: AuditService,
    org: str,
    events: list[Ingested],
    filters: Filters,
    order: Any,
    size: int,
) -> None:
    expected = [e for e in events if matches(e, filters)]
    by_time = sorted(expected, key=lambda e: (e.time, e.seq), reverse=order == "desc")
    by_seq = sorted(expected, key=lambda e: e.seq)

    note(f"search {org}: {filters!r}, order={order}, limit={size}")
    note(f"  expected (seq): {[e.seq for e in by_time]}")
    found = search_all(service, org, filters, order, size, bound=len(events))
    assert [(e.event.id, e.seq) for e in found] == [(e.id, e.seq) for e in by_time]
    assert all(e.event.org_id == org for e in found)
    assert [e.event.id for e in service.scan(org, filters)] == [e.id for e in by_seq]


_orgs = itertools.count()


@settings(
    max_examples=300,
    deadline=None,
    # One database for the whole test; each example writes into orgs of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(st.lists(raw_events(), min_size=1, max_size=20), min_size=1, max_size=3),
    other_batch=st.lists(raw_events(), max_size=6),
    copied=st.integers(0, 3),
    resent=st.integers(0, 3),
    searches=st.lists(queries, min_size=1, max_size=5),
)
def test_search_pages_and_scan_return_exactly_what_a_list_comprehension_selects(
    service: AuditService,
    clock: Any,
    batches: list[list[dict[str, Any]]],
    other_batch: list[dict[str, Any]],
    copied: int,
    resent: int,
    searches: list[tuple[Filters, str, int, int]],
) -> None:
    number = next(_orgs)
    org, other_org = f"org-{number}", f"org-{number}.other"
    sent = [raw for batch in batches for raw in batch]

    events: list[Ingested] = []
    for batch in batches:
        events += ingest(service, clock, org, batch)
    # The other org gets events of its own and copies of ours (the same content and ids).
    copies = [dict(raw, id=e.id) for raw, e in zip(sent[:copied], events, strict=False)]
    other_events: list[Ingested] = []
    if copies or other_batch:
        other_events = ingest(service, clock, other_org, copies + other_batch)
    # Sent again, with the id the server gave them, they are duplicates, also when the
    # server chose their time (the clock has moved on since).
    again = [dict(raw, id=e.id) for raw, e in zip(sent[:resent], events, strict=False)]
    if again:
        result = service.ingest(org, again)
        assert (result.accepted, result.duplicates) == (0, len(again))
        assert [a.seq for a in result.events] == [e.seq for e in events[:resent]]
    assert service.size(org) == len(events)

    for filters_, order, size, threshold in searches:
        if hasattr(service.store, "selective"):
            service.store.selective = threshold  # type: ignore[attr-defined]
            note(f"access threshold {threshold}")
        assert_search_and_scan_agree_with_oracle(service, org, events, filters_, order, size)
        assert_search_and_scan_agree_with_oracle(
            service, other_org, other_events, filters_, order, size
        )


# -- cursors: example-based sharp edges ------------------------------------------------------


def at(hour: int) -> str:
    return f"2026-11-20T{hour:02d}:00:00Z"


def ids(events: Sequence[StoredEvent]) -> list[str]:
    return [e.event.id for e in events]


@pytest.fixture
def eight_events(
    service: AuditService, make_event: Callable[..., dict[str, Any]]
) -> dict[str, str]:
    """Eight events in org `acme` at 02:00..08:00, two of them at 05:00; ids by name."""
    names = ["a2", "b3", "c4", "d5", "e5", "f6", "g7", "h8"]
    batch = [make_event(time=at(int(n[1])), description=f"event {n}") for n in names]
    result = service.ingest("acme", batch)
    return {n: a.id for n, a in zip(names, result.events, strict=True)}


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_cursor_continues_exactly_after_its_page_while_newer_and_older_events_arrive(
    service: AuditService,
    make_event: Callable[..., dict[str, Any]],
    eight_events: dict[str, str],
    order: Any,
) -> None:
    first = service.search("acme", order=order, limit=4)
    assert first.next_cursor is not None
    last = first.events[-1]
    assert last.event.time == datetime(2026, 11, 20, 5, tzinfo=UTC)  # d5 asc, e5 desc

    arrived = service.ingest(
        "acme",
        [
            make_event(time=at(23), description="newer than all"),
            make_event(time=at(0), description="older than all"),
            make_event(time=at(5), description="tied with the page's last event"),
        ],
    )
    newer, older, tied = (a.id for a in arrived.events)

    rest = search_all(service, "acme", Filters(), order, 2, bound=11, cursor=first.next_cursor)
    if order == "desc":
        # Newest first: the page ended at (05:00, e5); the tie has a higher seq, so it sorts
        # before e5 and is behind the cursor, like the newer event.
        expected = [eight_events["d5"], eight_events["c4"], eight_events["b3"]]
        expected += [eight_events["a2"], older]
    else:
        # Oldest first: the page ended at (05:00, d5); e5 and the tie come after it.
        expected = [eight_events["e5"], tied, eight_events["f6"], eight_events["g7"]]
        expected += [eight_events["h8"], newer]
    assert ids(rest) == expected
    assert len(set(ids(first.events)) | set(ids(rest))) == len(first.events) + len(rest)


def test_cursor_may_continue_with_another_page_size(
    service: AuditService, eight_events: dict[str, str]
) -> None:
    first = service.search("acme", order="asc", limit=3)
    assert first.next_cursor is not None
    rest = service.search("acme", order="asc", limit=100, cursor=first.next_cursor)
    names = ["a2", "b3", "c4", "d5", "e5", "f6", "g7", "h8"]
    assert ids(first.events) + ids(rest.events) == [eight_events[n] for n in names]
    assert rest.next_cursor is None


@pytest.mark.parametrize(
    ("filters_", "order"),
    [
        (Filters(), "desc"),
        (Filters(match=Match(actors=("alice",))), "asc"),
        (Filters(match=Match(actors=("alice", "bob"))), "desc"),
        (Filters(exclude=Match(actors=("alice",))), "desc"),
        (Filters(match=Match(actors=("alice",)), success=True), "desc"),
        (Filters(match=Match(actors=("alice",)), text=("event",)), "desc"),
        (Filters(match=Match(actors=("alice",)), also=(Match(apps=("main",)),)), "desc"),
        (
            Filters(match=Match(actors=("alice",)), since=datetime(2026, 11, 1, tzinfo=UTC)),
            "desc",
        ),
    ],
)
def test_cursor_is_refused_with_other_filters_or_another_order(
    service: AuditService, eight_events: dict[str, str], filters_: Filters, order: Any
) -> None:
    first = service.search("acme", Filters(match=Match(actors=("alice",))), limit=2)
    assert first.next_cursor is not None
    with pytest.raises(QueryError) as refused:
        service.search("acme", filters_, order=order, limit=2, cursor=first.next_cursor)
    assert refused.value.field == "cursor"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "!!!!",
        "é",
        _b64(b"not json"),
        _b64(b"[1, 2, 3]"),
        _b64(b'{"v": 2, "o": "desc", "t": 0, "s": 0, "f": "0"}'),
        _b64(b'{"v": 1, "o": "desc", "t": "x", "s": 0, "f": "0"}'),
        _b64(b'{"v": 1, "o": "desc", "s": 0, "f": "0"}'),
    ],
)
def test_garbage_cursor_is_refused(
    service: AuditService, eight_events: dict[str, str], cursor: str
) -> None:
    with pytest.raises(QueryError) as refused:
        service.search("acme", cursor=cursor)
    assert refused.value.field == "cursor"


@pytest.mark.parametrize(
    "tamper",
    [
        {"t": "05:00"},
        {"s": 1.5},
        {"s": None},
        {"v": 2},
        # Whole numbers, but beyond what a 64-bit integer column holds.
        {"t": 2**64 - 1},
        {"s": 2**63},
    ],
    ids=["text-time", "float-seq", "null-seq", "version-2", "huge-time", "huge-seq"],
)
def test_tampered_cursor_is_refused(
    service: AuditService, eight_events: dict[str, str], tamper: dict[str, Any]
) -> None:
    cursor = service.search("acme", limit=2).next_cursor
    assert cursor is not None
    data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    with pytest.raises(QueryError) as refused:
        service.search("acme", limit=2, cursor=_b64(json.dumps({**data, **tamper}).encode()))
    assert refused.value.field == "cursor"


@pytest.mark.parametrize(
    ("cidr", "holds_v6"), [("::/0", True), ("::/64", False), ("::ffff:0:0/95", False)]
)
def test_ipv6_network_matches_and_excludes_no_ipv4_address(
    service: AuditService, make_event: Callable[..., dict[str, Any]], cidr: str, holds_v6: bool
) -> None:
    # IPv4 addresses are kept inside ::ffff:0:0/96, which these networks contain; that is a
    # storage detail: no IPv6 network holds an IPv4 address (ipaddress agrees).
    result = service.ingest(
        "acme", [make_event(source_ip="10.0.0.1"), make_event(source_ip="2001:db8::1")]
    )
    v4, v6 = (a.id for a in result.events)
    matched = ids(service.search("acme", Filters(match=Match(source_ips=(cidr,)))).events)
    kept = ids(service.search("acme", Filters(exclude=Match(source_ips=(cidr,)))).events)
    assert (v4 in matched, v4 in kept) == (False, True)
    assert (v6 in matched, v6 in kept) == (holds_v6, not holds_v6)


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_limit_outside_1_to_1000_is_refused(
    service: AuditService, eight_events: dict[str, str], limit: int
) -> None:
    with pytest.raises(QueryError) as refused:
        service.search("acme", limit=limit)
    assert refused.value.field == "limit"


@pytest.mark.parametrize(("limit", "shown"), [(1, 1), (1000, 8)])
def test_limit_of_1_and_1000_is_accepted(
    service: AuditService, eight_events: dict[str, str], limit: int, shown: int
) -> None:
    assert len(service.search("acme", limit=limit).events) == shown
