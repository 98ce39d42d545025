"""The query language: the parser, its errors, Filters.combine, and queries run end to end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import FakeClock
from trailkeeper.events import BUILTIN_OPERATIONS, TARGET_TYPES
from trailkeeper.filters import Filters, Match
from trailkeeper.query import QuerySyntaxError, parse_query
from trailkeeper.service import AuditService

MakeEvent = Callable[..., dict[str, Any]]

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # the `clock` fixture's start
ISSUE_EXAMPLE = (
    'operation:model.* -actor:ci-bot status:failure ip:10.0.0.0/8 since:7d "permission denied"'
)


def fixed_now() -> datetime:
    return NOW


# -- each qualifier lands in its field ----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("operation:model.create", Filters(match=Match(operations=("model.create",)))),
        ("operation:model.*", Filters(match=Match(operations=("model.*",)))),
        ("actor:ana", Filters(match=Match(actors=("ana",)))),
        ("target:model:general-image", Filters(match=Match(targets=("model:general-image",)))),
        ("target:general-image", Filters(match=Match(targets=("general-image",)))),
        ("app:main", Filters(match=Match(apps=("main",)))),
        ("ip:10.1.2.3", Filters(match=Match(source_ips=("10.1.2.3",)))),
        ("ip:10.0.0.0/8", Filters(match=Match(source_ips=("10.0.0.0/8",)))),
        ("ip:2001:db8::/32", Filters(match=Match(source_ips=("2001:db8::/32",)))),
        ("request:req-1", Filters(match=Match(request_ids=("req-1",)))),
        ("status:success", Filters(success=True)),
        ("status:failure", Filters(success=False)),
        ("since:2026-11-01", Filters(since=datetime(2026, 11, 1, tzinfo=UTC))),
        ("until:2026-11-01", Filters(until=datetime(2026, 11, 1, tzinfo=UTC))),
    ],
)
def test_each_qualifier_lands_in_its_own_field(query: str, expected: Filters) -> None:
    assert parse_query(query, now=fixed_now) == expected


def test_an_empty_query_filters_nothing() -> None:
    assert parse_query("", now=fixed_now) == Filters()
    assert parse_query(" \t\n ", now=fixed_now) == Filters()


def test_a_repeated_qualifier_accumulates_its_values_in_order() -> None:
    filters = parse_query(
        "actor:ana operation:model.* actor:bob ip:10.0.0.0/8 actor:ci-bot ip:fd00::1",
        now=fixed_now,
    )
    assert filters.match == Match(
        operations=("model.*",),
        actors=("ana", "bob", "ci-bot"),
        source_ips=("10.0.0.0/8", "fd00::1"),
    )


def test_the_same_status_twice_is_allowed() -> None:
    assert parse_query("status:failure status:failure", now=fixed_now).success is False


@pytest.mark.parametrize(
    ("qualifier", "field"),
    [
        ("operation", "operations"),
        ("actor", "actors"),
        ("target", "targets"),
        ("app", "apps"),
        ("ip", "source_ips"),
        ("request", "request_ids"),
    ],
)
def test_a_negated_qualifier_goes_to_exclude(qualifier: str, field: str) -> None:
    filters = parse_query(f"-{qualifier}:x1 {qualifier}:y2 -{qualifier}:z3", now=fixed_now)
    assert filters.exclude == Match(**{field: ("x1", "z3")})
    assert filters.match == Match(**{field: ("y2",)})


# -- quoting and free text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('actor:"svc account"', Filters(match=Match(actors=("svc account",)))),
        ('-actor:"svc account"', Filters(exclude=Match(actors=("svc account",)))),
        ('actor:"say \\"hi\\" twice"', Filters(match=Match(actors=('say "hi" twice',)))),
        ('app:"back\\\\slash"', Filters(match=Match(apps=("back\\slash",)))),
        ('actor:"a:b c"', Filters(match=Match(actors=("a:b c",)))),
        ('"permission denied"', Filters(text=("permission denied",))),
        ('"the \\"x\\" word"', Filters(text=('the "x" word',))),
        ('"actor:ana"', Filters(text=("actor:ana",))),
        ('"-rf"', Filters(text=("-rf",))),
        ("permission denied", Filters(text=("permission", "denied"))),
        ("ci-bot", Filters(text=("ci-bot",))),
    ],
)
def test_quoted_values_quoted_phrases_and_bare_words(query: str, expected: Filters) -> None:
    assert parse_query(query, now=fixed_now) == expected


def test_free_text_keeps_its_order_among_qualifiers() -> None:
    filters = parse_query('weights actor:ana "rotated key" app:main report', now=fixed_now)
    assert filters.text == ("weights", "rotated key", "report")
    assert filters.match == Match(actors=("ana",), apps=("main",))


# -- since and until ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:30:00Z", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00+01:00", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00.250-08:00", datetime(2026, 11, 1, 17, 30, 0, 250_000, tzinfo=UTC)),
        ("15m", NOW - timedelta(minutes=15)),
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
    ],
)
@pytest.mark.parametrize("qualifier", ["since", "until"])
def test_since_and_until_read_dates_date_times_and_spans(
    qualifier: str, value: str, expected: datetime
) -> None:
    moment = getattr(parse_query(f"{qualifier}:{value}", now=fixed_now), qualifier)
    assert moment == expected
    assert moment.utcoffset() is not None


def test_a_date_means_utc_midnight() -> None:
    since = parse_query("since:2026-11-01", now=fixed_now).since
    assert since == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert since is not None
    assert since.utcoffset() == timedelta(0)


def test_an_offset_date_time_keeps_its_instant() -> None:
    since = parse_query("since:2026-11-01T09:30:00+01:00", now=fixed_now).since
    assert since is not None
    assert since.utcoffset() == timedelta(hours=1)
    assert since == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def test_spans_count_back_from_the_injected_clock(clock: FakeClock) -> None:
    assert parse_query("since:24h", now=clock).since == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    clock.advance(days=3)
    assert parse_query("since:24h", now=clock).since == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "query", ["since:7d since:2026-11-24", "since:2026-11-24 since:7d", "since:2w since:2026-11-24"]
)
def test_two_sinces_keep_the_later(query: str) -> None:
    assert parse_query(query, now=fixed_now).since == datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    "query",
    ["until:1d until:2026-11-20", "until:2026-11-20 until:1d", "until:2026-11-20 until:15m"],
)
def test_two_untils_keep_the_earlier(query: str) -> None:
    assert parse_query(query, now=fixed_now).until == datetime(2026, 11, 20, tzinfo=UTC)


def test_the_issue_example_parses_exactly(clock: FakeClock) -> None:
    assert parse_query(ISSUE_EXAMPLE, now=clock) == Filters(
        match=Match(operations=("model.*",), source_ips=("10.0.0.0/8",)),
        exclude=Match(actors=("ci-bot",)),
        success=False,
        since=datetime(2026, 11, 19, 12, 0, tzinfo=UTC),
        until=None,
        text=("permission denied",),
        relative=True,  # since:7d: the cursor carries the window it was resolved to
    )


# -- errors name the term and where it is ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "token", "position", "fragment"),
    [
        pytest.param(
            "actor:ana bogus:1", "bogus:1", 10, "unknown qualifier 'bogus'", id="unknown-qualifier"
        ),
        pytest.param(
            "  actor:ana\t  user:ana", "user:ana", 14, "unknown qualifier 'user'", id="after-tabs"
        ),
        pytest.param("stat:failure", "stat:failure", 0, "did you mean status:?", id="suggestion"),
        pytest.param("app:main -bogus:1", "-bogus:1", 9, "unknown qualifier", id="negated-unknown"),
        pytest.param("app:main actor:", "actor:", 9, "actor: needs a value", id="empty-value"),
        pytest.param(
            'app:main actor:"svc account',
            'actor:"svc account',
            9,
            "never closed",
            id="unclosed-quote",
        ),
        pytest.param('"permission denied', '"permission denied', 0, "never closed", id="phrase"),
        pytest.param(
            "app:main -status:failure",
            "-status:failure",
            9,
            "status: can't be negated",
            id="negated-status",
        ),
        pytest.param("-since:7d", "-since:7d", 0, "since: can't be negated", id="negated-since"),
        pytest.param(
            "app:main -until:2026-11-01",
            "-until:2026-11-01",
            9,
            "until: can't be negated",
            id="negated-until",
        ),
        pytest.param(
            "app:main status:maybe", "status:maybe", 9, "success or failure", id="status-maybe"
        ),
        pytest.param(
            "status:success status:failure",
            "status:failure",
            15,
            "given twice with different values",
            id="conflicting-status",
        ),
        pytest.param(
            "actor:ana since:yesterday",
            "since:yesterday",
            10,
            "since: takes a date (2026-11-01)",
            id="bad-since",
        ),
        pytest.param("since:2026-13-01", "since:2026-13-01", 0, "since: takes", id="bad-date"),
        pytest.param("until:7y", "until:7y", 0, "a span like 15m, 24h, 7d, 2w", id="bad-span"),
        pytest.param(
            "app:main until:2026-11-01T09:30:00",
            "until:2026-11-01T09:30:00",
            9,
            "needs a time zone",
            id="no-time-zone",
        ),
        pytest.param(
            "app:main -hello", "-hello", 9, "free text can't be negated", id="negated-text"
        ),
        pytest.param("-", "-", 0, "free text can't be negated", id="lone-dash"),
    ],
)
def test_a_bad_term_raises_naming_its_token_and_position(
    query: str, token: str, position: int, fragment: str
) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query, now=fixed_now)
    error = caught.value
    assert error.token == token
    assert error.position == position
    assert query[position:].startswith(token)
    assert fragment in error.reason
    assert str(error).startswith(f"at position {position} ({token!r}): ")
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("query", "token", "position"),
    [
        ('app:main status:"maybe"', 'status:"maybe"', 9),
        ('bogus:"a b"', 'bogus:"a b"', 0),
        ('actor:ana app:""', 'app:""', 10),
    ],
)
def test_the_token_of_a_quoted_bad_term_is_written_as_in_the_query(
    query: str, token: str, position: int
) -> None:
    # QuerySyntaxError promises that position is the offset of token, so that a console can
    # underline query[position:position + len(token)].
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query, now=fixed_now)
    assert caught.value.position == position
    assert caught.value.token == token


def test_a_negated_quoted_phrase_is_refused_like_negated_free_text() -> None:
    # Otherwise -"permission denied" silently searches FOR the phrase, the opposite of intended.
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query('app:main -"permission denied"', now=fixed_now)
    assert caught.value.position == 9
    assert "can't be negated" in caught.value.reason


@pytest.mark.parametrize(
    ("query", "position"),
    [("since:999999d", 0), ("until:999999w", 0), ("app:main since:999999d", 9)],
)
def test_a_span_reaching_before_year_one_is_a_syntax_error(query: str, position: int) -> None:
    # Today this escapes as OverflowError, which the HTTP API does not turn into a 400.
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query, now=fixed_now)
    assert caught.value.position == position


# -- Filters.combine narrows -------------------------------------------------------------------


def ingest_labelled(service: AuditService, events: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Ingest events and map each stored id back to the test's label for it."""
    result = service.ingest("acme", list(events.values()))
    return {appended.id: label for appended, label in zip(result.events, events, strict=True)}


def labels_found(service: AuditService, filters: Filters, labels: dict[str, str]) -> list[str]:
    page = service.search("acme", filters, limit=1000)
    return sorted(labels[stored.event.id] for stored in page.events)


def test_combine_narrows_a_pattern_with_an_exact_operation(
    service: AuditService, make_event: MakeEvent
) -> None:
    labels = ingest_labelled(
        service,
        {
            "create": make_event(operation="model.create"),
            "delete": make_event(operation="model.delete"),
            "version": make_event(operation="model.version.delete"),
            "workflow": make_event(operation="workflow.create"),
        },
    )
    written = parse_query("operation:model.*", now=fixed_now)
    exact = Filters(match=Match(operations=("model.create",)))
    assert labels_found(service, written.combine(exact), labels) == ["create"]
    assert labels_found(service, exact.combine(written), labels) == ["create"]
    assert labels_found(service, written, labels) == ["create", "delete", "version"]


def test_combine_keeps_both_match_sets_apart() -> None:
    first = parse_query("actor:alice operation:model.*", now=fixed_now)
    second = Filters(match=Match(actors=("bob",)))
    combined = first.combine(second)
    assert combined.match == Match(actors=("alice",), operations=("model.*",))
    assert combined.also == (Match(actors=("bob",)),)
    third = Filters(match=Match(apps=("main",)))
    assert combined.combine(third).also == (Match(actors=("bob",)), Match(apps=("main",)))


def test_combining_two_actors_finds_events_of_neither_alone(
    service: AuditService, make_event: MakeEvent
) -> None:
    bob = {"id": "bob", "type": "user"}
    labels = ingest_labelled(service, {"alice": make_event(), "bob": make_event(actor=bob)})
    either = parse_query("actor:alice actor:bob", now=fixed_now)
    both = parse_query("actor:alice", now=fixed_now).combine(parse_query("actor:bob"))
    assert labels_found(service, either, labels) == ["alice", "bob"]
    assert labels_found(service, both, labels) == []


def test_combine_unions_exclusions(service: AuditService, make_event: MakeEvent) -> None:
    labels = ingest_labelled(
        service,
        {
            "alice": make_event(),
            "bob": make_event(actor={"id": "bob", "type": "user"}),
            "ci": make_event(actor={"id": "ci-bot", "type": "service"}),
            "lab": make_event(app_id="lab"),
        },
    )
    first = parse_query("-actor:bob", now=fixed_now)
    second = Filters(exclude=Match(actors=("ci-bot",), apps=("lab",)))
    combined = first.combine(second)
    assert combined.exclude == Match(actors=("bob", "ci-bot"), apps=("lab",))
    assert labels_found(service, combined, labels) == ["alice"]


def test_combine_takes_the_tighter_since_and_until() -> None:
    wide = parse_query("since:2026-11-01 until:2026-11-25", now=fixed_now)
    narrow = parse_query("since:2026-11-05 until:2026-11-20", now=fixed_now)
    for combined in (wide.combine(narrow), narrow.combine(wide)):
        assert combined.since == datetime(2026, 11, 5, tzinfo=UTC)
        assert combined.until == datetime(2026, 11, 20, tzinfo=UTC)
    open_ended = Filters()
    assert open_ended.combine(wide).since == wide.since
    assert wide.combine(open_ended).until == wide.until
    assert open_ended.combine(open_ended).since is None


def test_combine_keeps_the_one_status_given_and_concatenates_text() -> None:
    failures = parse_query('status:failure "permission denied"', now=fixed_now)
    plain = parse_query("quota", now=fixed_now)
    assert failures.combine(plain).success is False
    assert plain.combine(failures).success is False
    assert failures.combine(failures).success is False
    assert plain.combine(failures).text == ("quota", "permission denied")


def test_combine_refuses_success_with_failure() -> None:
    with pytest.raises(ValueError, match="both success and failure"):
        parse_query("status:success").combine(parse_query("status:failure"))


# -- end to end through the service ------------------------------------------------------------


@pytest.fixture
def acme(service: AuditService, make_event: MakeEvent) -> dict[str, str]:
    """A small log for acme; returns stored id -> label."""
    denied = {"code": "PERMISSION_DENIED", "message": "Permission denied for this resource"}
    ci_bot = {"id": "ci-bot", "type": "service", "name": "Deployer"}
    bob = {"id": "bob", "type": "user", "name": "Bob"}
    login = make_event(
        operation="auth.login",
        time="2026-11-26T10:00:00Z",
        targets=[{"type": "user", "id": "alice"}],
    )
    del login["source_ip"]
    events = {
        "create": make_event(time="2026-11-26T11:00:00Z"),
        "delete": make_event(
            operation="model.delete",
            time="2026-11-25T09:00:00Z",
            actor=ci_bot,
            success=False,
            error=denied,
            source_ip="10.1.2.3",
        ),
        "train": make_event(
            operation="model.train",
            time="2026-11-20T10:00:00Z",
            actor=bob,
            success=False,
            error=denied,
            source_ip="10.20.0.5",
            app_id="staging",
            request_id="req-1",
        ),
        "old": make_event(
            time="2026-11-10T08:00:00Z",
            actor=bob,
            success=False,
            error=denied,
            source_ip="10.9.9.9",
        ),
        "workflow": make_event(
            operation="workflow.create",
            time="2026-11-24T15:00:00Z",
            success=False,
            error=denied,
            source_ip="10.0.0.1",
            targets=[{"type": "workflow", "id": "wf-1"}],
        ),
        "dataset": make_event(
            operation="dataset.update",
            time="2026-11-22T00:00:00Z",
            actor=ci_bot,
            source_ip="192.168.1.20",
            app_id="staging",
            targets=[{"type": "dataset", "id": "ds-1"}],
        ),
        "login": login,
    }
    return ingest_labelled(service, events)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(ISSUE_EXAMPLE, ["train"], id="issue-example"),
        ("operation:model.*", ["create", "delete", "old", "train"]),
        ("-operation:model.* -operation:auth.*", ["dataset", "workflow"]),
        ("-actor:ci-bot -actor:bob", ["create", "login", "workflow"]),
        ('actor:"ci-bot" status:success', ["dataset"]),
        ("ip:10.0.0.0/8", ["delete", "old", "train", "workflow"]),
        pytest.param("-ip:10.0.0.0/8", ["create", "dataset", "login"], id="no-ip-is-not-excluded"),
        ("ip:10.1.0.0/16 ip:192.168.1.20", ["dataset", "delete"]),
        ("ip:10.0.0.0/8 -ip:10.1.0.0/16 -ip:10.9.9.9", ["train", "workflow"]),
        ("status:failure since:7d", ["delete", "train", "workflow"]),
        pytest.param(
            "since:2026-11-22 until:2026-11-25T10:00:00+01:00",
            ["dataset", "workflow"],
            id="since-inclusive-until-exclusive",
        ),
        ("until:2026-11-20", ["old"]),
        ("since:24h", ["create", "login"]),
        ("target:dataset:ds-1", ["dataset"]),
        ("target:general-image", ["create", "delete", "old", "train"]),
        ("-target:model:general-image status:success", ["dataset", "login"]),
        ("app:staging request:req-1", ["train"]),
        ("-app:main", ["dataset", "train"]),
        ('"permission denied" -operation:workflow.create', ["delete", "old", "train"]),
        ("permission resource", ["delete", "old", "train", "workflow"]),
        ("deployer", ["dataset", "delete"]),
        ("", ["create", "dataset", "delete", "login", "old", "train", "workflow"]),
    ],
)
def test_queries_find_exactly_the_matching_events(
    service: AuditService, clock: FakeClock, acme: dict[str, str], query: str, expected: list[str]
) -> None:
    assert labels_found(service, parse_query(query, now=clock), acme) == expected


def test_a_query_narrowed_by_form_filters_finds_their_intersection(
    service: AuditService, clock: FakeClock, acme: dict[str, str]
) -> None:
    form = Filters(match=Match(apps=("staging",)), exclude=Match(operations=("model.train",)))
    combined = form.combine(parse_query("ip:10.0.0.0/8 ip:192.168.0.0/16", now=clock))
    assert labels_found(service, combined, acme) == ["dataset"]


# -- property: generated queries round-trip -------------------------------------------------------

IDS = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)
OPERATION_NAMES = sorted(op.name for op in BUILTIN_OPERATIONS)
OPERATIONS = st.sampled_from(
    OPERATION_NAMES + sorted({name.split(".")[0] + ".*" for name in OPERATION_NAMES})
)
TARGETS = IDS | st.builds(lambda t, i: f"{t}:{i}", st.sampled_from(sorted(TARGET_TYPES)), IDS)
ADDRESSES = st.ip_addresses().map(str)
NETWORKS = st.builds(
    lambda addr, bits: f"{addr}/{bits % (32 if addr.version == 4 else 128) + 1}",
    st.ip_addresses(),
    st.integers(0, 127),
)
FIELD_VALUES = {
    "operation": ("operations", OPERATIONS),
    "actor": ("actors", IDS),
    "target": ("targets", TARGETS),
    "app": ("apps", IDS),
    "ip": ("source_ips", ADDRESSES | NETWORKS),
    "request": ("request_ids", IDS),
}
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SPANS = st.builds(
    lambda n, unit: (f"{n}{unit}", NOW - timedelta(**{SPAN_UNITS[unit]: n})),
    st.integers(0, 9999),
    st.sampled_from("mhdw"),
)
DATES = st.dates(date(2000, 1, 1), date(2099, 12, 31)).map(
    lambda d: (d.isoformat(), datetime(d.year, d.month, d.day, tzinfo=UTC))
)
DATE_TIMES = st.datetimes(
    datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.sampled_from(ZONES)
).map(lambda t: (t.isoformat(), t))
MOMENTS = SPANS | DATES | DATE_TIMES
WORDS = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)
PHRASES = st.text(st.sampled_from('ab -:"\\'), min_size=1, max_size=12)


@dataclass(frozen=True, slots=True)
class Generated:
    terms: list[str]
    expected: Filters


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def queries(draw: st.DrawFn) -> Generated:
    status = draw(st.sampled_from([None, "success", "failure"]))
    kinds = [*FIELD_VALUES, "since", "until", "word", "phrase"] + (["status"] if status else [])
    terms: list[str] = []
    include: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    since: list[datetime] = []
    until: list[datetime] = []
    text: list[str] = []
    relative = False
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=12)):
        if kind in FIELD_VALUES:
            field, values = FIELD_VALUES[kind]
            value = draw(values)
            negate = draw(st.booleans())
            written = quote(value) if draw(st.booleans()) else value
            terms.append(f"{'-' if negate else ''}{kind}:{written}")
            (exclude if negate else include).setdefault(field, []).append(value)
        elif kind in ("since", "until"):
            written, moment = draw(MOMENTS)
            terms.append(f"{kind}:{written}")
            (since if kind == "since" else until).append(moment)
            relative = relative or written[-1] in "mhdw"  # a span back from now
        elif kind == "status":
            terms.append(f"status:{status}")
        elif kind == "word":
            terms.append(draw(WORDS))
            text.append(terms[-1])
        else:
            phrase = draw(PHRASES)
            terms.append(quote(phrase))
            text.append(phrase)
    expected = Filters(
        match=Match(**{k: tuple(v) for k, v in include.items()}),
        exclude=Match(**{k: tuple(v) for k, v in exclude.items()}),
        success=None if f"status:{status}" not in terms else status == "success",
        since=max(since, default=None),
        until=min(until, default=None),
        text=tuple(text),
        relative=relative,
    )
    return Generated(terms, expected)


@given(queries(), st.sampled_from([" ", "  ", "\t", " \n "]))
def test_generated_queries_round_trip_every_value_into_its_field(
    generated: Generated, separator: str
) -> None:
    assert parse_query(separator.join(generated.terms), now=fixed_now) == generated.expected
