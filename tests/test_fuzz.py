"""Fuzzing the two parsers that take input from strangers: only their documented errors
come out, whatever the input.

The event validator raises ``EventValidationError`` and nothing else, for any JSON-like
value, and every error it names can be sent back as JSON (valid text, bounded size). The
query parser raises ``QuerySyntaxError`` and nothing else, for any string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailkeeper.events import EventRules, EventValidationError, parse_event
from trailkeeper.events._validate import EVENT_FIELDS, check_event_size
from trailkeeper.query import QUALIFIERS, QuerySyntaxError, parse_query

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULES = EventRules()

# Characters that break naive code: controls, line separators, lone surrogates, non-BMP.
AWKWARD = ["a", "\x00", "\t", "\n", "\r", "\x7f", "\x85", "\x9f", "\u2028", "\u2029",
           "\ud800", "\udfff", "\ufeff", "\u200b", "\U0001f600", ":", '"', "-", " "]  # fmt: skip
WORDS = ["", "model.create", "user", "model", "alice", "0001-01-01T00:00:00+01:00",
         "9999-12-31T23:59:59-01:00", "2026-11-26T11:00:00Z", "::1", "10.0.0.1", "a@b"]  # fmt: skip
QUERY_VALUES = ["0001-01-01", "9999-12-31T23:59:59-01:00", "999999w", "7d", "0m", "10.0.0.0/8",
                "::/0", "1.2.3.4/33", '"quoted"', '"', "model.*"]  # fmt: skip

awkward_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(AWKWARD), max_size=20),
    st.sampled_from(WORDS),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**53, 2**63, -(2**63), 2**64, 1e19, 9.3e18, 1.2e29, -0.0]),
)
json_like = st.recursive(
    st.none() | st.booleans() | numbers | awkward_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(awkward_text, inner, max_size=4),
    max_leaves=30,
)
# Events mostly of event fields, so the fuzzing reaches each field's own rules.
field_names = st.one_of(st.sampled_from(sorted(EVENT_FIELDS | {"seq"})), awkward_text)
events = st.one_of(
    json_like,
    st.dictionaries(field_names, json_like, max_size=10),
    st.fixed_dictionaries(
        {"actor": json_like, "operation": st.just("model.create")},
        optional={
            "targets": st.lists(
                st.dictionaries(st.sampled_from(["type", "id", "name", "x"]), json_like),
                max_size=3,
            ),
            "metadata": json_like,
            "changes": st.dictionaries(awkward_text, json_like, max_size=3),
            "time": json_like,
            "error": json_like,
            "success": json_like,
            "user_agent": json_like,
            "details": json_like,
        },
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_the_validator_raises_only_event_validation_errors(raw: Any) -> None:
    refused: EventValidationError | None = None
    try:
        parsed = parse_event(raw, org_id="acme", received_at=NOW, rules=RULES, index=0)
        canonical = parsed.event.canonical_bytes()
        check_event_size(parsed.event, canonical, RULES.limits, 0)
    except EventValidationError as exc:
        refused = exc
    if refused is None:  # accepted: the canonical bytes read back as the same event
        assert orjson.loads(canonical)["id"] == parsed.event.id
    else:  # refused: the errors can be sent back as JSON, and are small
        assert refused.errors
        assert len(orjson.dumps([e.to_dict() for e in refused.errors])) < 64 * 1024


queries = st.one_of(
    st.text(max_size=40),
    st.lists(
        st.one_of(
            st.builds(
                lambda neg, q, v: f"{neg}{q}:{v}",
                st.sampled_from(["", "-"]),
                st.sampled_from([*QUALIFIERS, "bogus"]),
                st.one_of(awkward_text, st.sampled_from(QUERY_VALUES)),
            ),
            awkward_text,
        ),
        max_size=5,
    ).map(" ".join),
)


@settings(max_examples=400, deadline=None)
@given(queries)
def test_the_query_parser_raises_only_query_syntax_errors(query: str) -> None:
    refused: QuerySyntaxError | None = None
    try:
        parse_query(query, now=lambda: NOW)
    except QuerySyntaxError as exc:
        refused = exc
    assert refused is None or refused.reason
