"""Every rule of ``parse_event``: the field it names and the message a person reads."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from trailkeeper.events import (
    DEFAULT_LIMITS,
    DEFAULT_SECRET_KEYS,
    REDACTED,
    Event,
    EventRules,
    EventValidationError,
    FieldError,
    Limits,
    ParsedEvent,
    Redactor,
    canonical_json,
    check_event_size,
    leaf_hash,
    parse_event,
)
from trailkeeper.events import _validate as _validate_module

MakeEvent = Callable[..., dict[str, Any]]

RECEIVED_AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RULES = EventRules()
VALID_UUID = "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8f"


def validate(
    raw: object,
    *,
    org_id: str | None = "acme",
    rules: EventRules = RULES,
    index: int | None = None,
) -> ParsedEvent:
    """What ingest does to one event: parse it, then hold its encoding to the size limits."""
    parsed = parse_event(raw, org_id=org_id, received_at=RECEIVED_AT, rules=rules, index=index)
    check_event_size(parsed.event, parsed.event.canonical_bytes(), rules.limits, index)
    return parsed


def parse(
    raw: object,
    *,
    org_id: str | None = "acme",
    rules: EventRules = RULES,
    index: int | None = None,
) -> Event:
    return validate(raw, org_id=org_id, rules=rules, index=index).event


def refusal(
    raw: object,
    *,
    org_id: str | None = "acme",
    rules: EventRules = RULES,
    index: int | None = None,
) -> list[FieldError]:
    with pytest.raises(EventValidationError) as info:
        validate(raw, org_id=org_id, rules=rules, index=index)
    return info.value.errors


def assert_refused(raw: object, field: str, message: str, **kwargs: Any) -> FieldError:
    """Exactly one error, on ``field``, whose message contains ``message``."""
    errors = refusal(raw, **kwargs)
    assert [e.field for e in errors] == [field], errors
    assert message in errors[0].message, errors[0].message
    return errors[0]


def assert_refused_within(raw: object, field: str, message: str) -> FieldError:
    """Exactly one error, on ``field`` or a path inside it, whose message contains ``message``."""
    errors = refusal(raw)
    assert len(errors) == 1, errors
    name = errors[0].field
    assert name == field or name.startswith((f"{field}.", f"{field}[")), errors
    assert message in errors[0].message, errors[0].message
    return errors[0]


# -- the event as a whole ---------------------------------------------------------------------


def test_a_valid_event_parses_with_its_fields_kept(make_event: MakeEvent) -> None:
    event = parse(make_event(id=VALID_UUID, request_id="req-1", user_agent="curl/8.5"))
    assert event.id == VALID_UUID
    assert event.org_id == "acme"
    assert event.app_id == "main"
    assert event.actor.id == "alice"
    assert event.actor.name == "Alice"
    assert event.operation == "model.create"
    assert [(t.type, t.id, t.name) for t in event.targets] == [
        ("model", "general-image", "General image")
    ]
    assert event.success is True
    assert event.error is None
    assert event.source_ip == "203.0.113.7"
    assert event.request_id == "req-1"
    assert event.user_agent == "curl/8.5"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [([], "an array"), ("model.create", "a string"), (None, "null"), (7, "a number")],
)
def test_an_event_that_is_not_an_object_is_refused(raw: object, kind: str) -> None:
    assert_refused(raw, "(event)", f"must be a JSON object, not {kind}")


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("operaton", "did you mean 'operation'?"),
        ("target", "did you mean 'targets'?"),
        ("meta_data", "did you mean 'metadata'?"),
        ("user-agent", "did you mean 'user_agent'?"),
    ],
)
def test_an_unknown_field_is_refused_with_a_did_you_mean(
    make_event: MakeEvent, key: str, hint: str
) -> None:
    error = assert_refused(make_event(**{key: "x"}), key, "is not an event field")
    assert error.message.endswith(hint)


def test_an_unknown_field_far_from_any_known_one_gets_no_hint(make_event: MakeEvent) -> None:
    error = assert_refused(make_event(colour="red"), "colour", "is not an event field")
    assert "did you mean" not in error.message


@pytest.mark.parametrize("key", ["seq", "received_at", "leaf_hash"])
def test_server_assigned_fields_are_refused(make_event: MakeEvent, key: str) -> None:
    assert_refused(make_event(**{key: "1"}), key, "is assigned by the server; leave it out")


def test_all_problems_of_one_event_are_reported_together(make_event: MakeEvent) -> None:
    raw = make_event(
        id="nope",
        time="soon",
        operation="model.creat",
        success="yes",
        source_ip="1.2.3",
        colour="red",
    )
    errors = refusal(raw)
    assert [e.field for e in errors] == [
        "colour",
        "id",
        "time",
        "operation",
        "success",
        "source_ip",
    ]


def test_the_error_text_shows_five_problems_and_counts_the_rest(make_event: MakeEvent) -> None:
    raw = make_event(**{f"extra{i}": 1 for i in range(7)})
    with pytest.raises(EventValidationError) as info:
        parse_event(raw, org_id="acme", received_at=RECEIVED_AT, rules=RULES)
    assert len(info.value.errors) == 7
    text = str(info.value)
    assert text.startswith("invalid event: extra0: is not an event field")
    assert "extra4" in text
    assert "extra5" not in text
    assert text.endswith("(and 2 more)")


def test_the_batch_index_is_carried_into_every_error(make_event: MakeEvent) -> None:
    errors = refusal(make_event(id="nope", time="soon"), index=7)
    assert [(e.field, e.index) for e in errors] == [("id", 7), ("time", 7)]
    assert errors[0].to_dict() == {"field": "id", "message": errors[0].message, "index": 7}
    with pytest.raises(EventValidationError, match=r"^invalid event: event 7: id: "):
        parse_event(
            make_event(id="nope"), org_id="acme", received_at=RECEIVED_AT, rules=RULES, index=7
        )


def test_an_error_without_an_index_leaves_index_out_of_its_dict(make_event: MakeEvent) -> None:
    (error,) = refusal(make_event(id="nope"))
    assert error.index is None
    assert set(error.to_dict()) == {"field", "message"}


# -- id ---------------------------------------------------------------------------------------


def test_a_missing_id_is_generated_as_a_uuid_v7(make_event: MakeEvent) -> None:
    event = parse(make_event())
    generated = uuid.UUID(event.id)
    assert generated.version == 7
    assert event.id[14] == "7"
    assert generated.variant == uuid.RFC_4122
    assert str(generated) == event.id


def test_generated_ids_are_distinct_and_ordered(make_event: MakeEvent) -> None:
    ids = [parse(make_event()).id for _ in range(50)]
    assert len(set(ids)) == 50
    assert ids == sorted(ids)


def test_an_upper_case_uuid_is_kept_in_lower_case(make_event: MakeEvent) -> None:
    assert parse(make_event(id=VALID_UUID.upper())).id == VALID_UUID


@pytest.mark.parametrize("value", ["nope", "0192f0c8-7d2e-7c3a-9f1e-3b5a2c4d6e8", "g" * 36])
def test_an_id_that_is_not_a_uuid_is_refused(make_event: MakeEvent, value: str) -> None:
    assert_refused(make_event(id=value), "id", f"{value!r} is not a UUID")


def test_an_id_that_is_not_a_string_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(id=12), "id", "must be a UUID string, not a number")


def test_the_nil_uuid_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(id="00000000-0000-0000-0000-000000000000")
    assert_refused(raw, "id", "not the nil UUID")


@pytest.mark.parametrize(
    "value",
    [
        VALID_UUID.replace("-", ""),
        f"urn:uuid:{VALID_UUID}",
        f"{{{VALID_UUID}}}",
        # 36 characters, but not the hyphenated form.
        "{0192f0c8-7d2e7c3a-9f1e3b5a2c4d6e8f}",
        "0192f0c87-d2e-7c3a-9f1e-3b5a2c4d6e8f",
    ],
)
def test_a_uuid_not_in_its_hyphenated_36_character_form_is_refused(
    make_event: MakeEvent, value: str
) -> None:
    assert_refused(make_event(id=value), "id", "36-character hyphenated form")


# -- time -------------------------------------------------------------------------------------


def test_a_missing_time_is_the_receive_time_and_marked_defaulted(make_event: MakeEvent) -> None:
    raw = make_event()
    del raw["time"]
    parsed = parse_event(raw, org_id="acme", received_at=RECEIVED_AT, rules=RULES)
    assert parsed.event.time == RECEIVED_AT
    assert parsed.time_defaulted is True


def test_a_given_time_is_not_marked_defaulted(make_event: MakeEvent) -> None:
    parsed = parse_event(make_event(), org_id="acme", received_at=RECEIVED_AT, rules=RULES)
    assert parsed.event.time == datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    assert parsed.time_defaulted is False


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-11-26T11:00Z",
        "2026-11-26T11:00:00+0100",
        "26/11/2026 11:00:00Z",
        "2026-11-26T11:00:00.1234567890Z",
    ],
)
def test_a_time_that_is_not_rfc_3339_is_refused(make_event: MakeEvent, value: str) -> None:
    assert_refused(make_event(time=value), "time", f"{value!r} is not an RFC 3339 date-time")


def test_a_time_without_a_time_zone_is_refused(make_event: MakeEvent) -> None:
    error = assert_refused(make_event(time="2026-11-26T11:00:00"), "time", "is not an RFC 3339")
    assert "with a time zone" in error.message


def test_a_date_without_a_time_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(time="2026-11-26"), "time", "'2026-11-26' is not an RFC 3339")


def test_a_time_that_does_not_exist_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(time="2026-02-30T11:00:00Z")
    assert_refused(raw, "time", "is not a real date and time")


def test_a_time_that_is_not_a_string_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(time=1_764_154_800)
    assert_refused(raw, "time", "must be an RFC 3339 string, not a number")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-26T12:05:01Z", "301 s"),
        ("2026-11-26T12:06:00Z", "6 min"),
        ("2026-11-26T14:00:00Z", "2 h"),
    ],
)
def test_time_more_than_five_minutes_ahead_is_refused(
    make_event: MakeEvent, value: str, shown: str
) -> None:
    error = assert_refused(make_event(time=value), "time", f"is {shown} in the future")
    assert "at most 5 min ahead of the server clock" in error.message


@pytest.mark.parametrize("value", ["2026-11-26T12:04:00Z", "2026-11-26T12:05:00Z"])
def test_time_up_to_five_minutes_ahead_is_accepted(make_event: MakeEvent, value: str) -> None:
    assert parse(make_event(time=value)).time > RECEIVED_AT


def test_a_time_years_past_but_within_ten_years_is_accepted(make_event: MakeEvent) -> None:
    event = parse(make_event(time="2017-01-01T00:00:00Z"))
    assert event.time == datetime(2017, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "microsecond"),
    [
        ("2026-11-26T11:00:00.25Z", 250_000),
        ("2026-11-26T11:00:00.123456Z", 123_456),
        ("2026-11-26T11:00:00.1234569Z", 123_456),
        ("2026-11-26T11:00:00.123456999+00:00", 123_456),
    ],
)
def test_fractional_seconds_beyond_microseconds_are_dropped(
    make_event: MakeEvent, value: str, microsecond: int
) -> None:
    event = parse(make_event(time=value))
    assert event.time.microsecond == microsecond
    assert event.time.second == 0


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-26T12:30:00+01:00",
        "2026-11-26T07:30:00-04:00",
        "2026-11-26T11:30:00z",
        "2026-11-26t11:30:00Z",
        "2026-11-26 11:30:00Z",
    ],
)
def test_time_is_stored_in_utc(make_event: MakeEvent, value: str) -> None:
    event = parse(make_event(time=value))
    assert event.time == datetime(2026, 11, 26, 11, 30, tzinfo=UTC)
    assert event.time.utcoffset() == timedelta(0)


def test_a_datetime_with_a_time_zone_is_accepted_and_stored_in_utc(make_event: MakeEvent) -> None:
    given = datetime(2026, 11, 26, 13, 30, tzinfo=timezone(timedelta(hours=2)))
    event = parse(make_event(time=given))
    assert event.time == given
    assert event.time.utcoffset() == timedelta(0)
    assert event.time.hour == 11


def test_a_datetime_without_tzinfo_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(time=datetime(2026, 11, 26, 11, 0))
    assert_refused(raw, "time", "must have a time zone")


# -- org_id and the other ids -----------------------------------------------------------------


def test_the_org_comes_from_the_batch(make_event: MakeEvent) -> None:
    assert parse(make_event()).org_id == "acme"


def test_an_org_id_equal_to_the_batch_org_is_accepted(make_event: MakeEvent) -> None:
    assert parse(make_event(org_id="acme")).org_id == "acme"


def test_an_org_id_other_than_the_batch_org_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(org_id="globex")
    assert_refused(raw, "org_id", "is 'globex', but this batch is for org 'acme'")


def test_without_a_batch_org_the_event_names_its_own(make_event: MakeEvent) -> None:
    assert parse(make_event(org_id="globex"), org_id=None).org_id == "globex"


def test_without_a_batch_org_an_event_without_org_id_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(), "org_id", "is required", org_id=None)


ID_FIELDS: dict[str, Callable[[object], dict[str, Any]]] = {
    "org_id": lambda v: {"org_id": v},
    "app_id": lambda v: {"app_id": v},
    "actor.id": lambda v: {"actor": {"id": v, "type": "user"}},
    "targets[0].id": lambda v: {"targets": [{"type": "model", "id": v}]},
    "request_id": lambda v: {"request_id": v},
}


@pytest.mark.parametrize("field", list(ID_FIELDS))
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a b#c", "has characters outside the allowed set"),
        ("caf\u00e9", "has characters outside the allowed set"),
        ("line\nbreak", "has characters outside the allowed set"),
        ("", "must not be empty"),
        ("x" * 129, "is 129 characters; the limit is 128"),
        (5, "must be a string, not a number"),
    ],
)
def test_a_bad_id_is_refused(
    make_event: MakeEvent, field: str, value: object, message: str
) -> None:
    raw = make_event(**ID_FIELDS[field](value))
    if field == "org_id":
        assert_refused(raw, field, message, org_id=None)
    else:
        assert_refused(raw, field, message)


@pytest.mark.parametrize("field", list(ID_FIELDS))
def test_a_bad_id_message_names_the_characters_and_the_rule(
    make_event: MakeEvent, field: str
) -> None:
    org = None if field == "org_id" else "acme"
    raw = make_event(**ID_FIELDS[field]("a b#c"))
    error = assert_refused(raw, field, "[' ', '#']", org_id=org)
    assert "letters A-Z a-z, digits, and . _ ~ @ + : / = -" in error.message


@pytest.mark.parametrize("field", list(ID_FIELDS))
@pytest.mark.parametrize("value", ["x" * 128, "a", "projects/p1/keys=a+b~c:d_e-f.g@example.com"])
def test_an_id_of_allowed_characters_up_to_128_is_accepted(
    make_event: MakeEvent, field: str, value: str
) -> None:
    event = parse(
        make_event(**ID_FIELDS[field](value)), org_id=None if field == "org_id" else "acme"
    )
    kept = {
        "org_id": event.org_id,
        "app_id": event.app_id,
        "actor.id": event.actor.id,
        "targets[0].id": event.targets[0].id,
        "request_id": event.request_id,
    }
    assert kept[field] == value


# -- actor ------------------------------------------------------------------------------------


def test_a_missing_actor_is_refused(make_event: MakeEvent) -> None:
    raw = make_event()
    del raw["actor"]
    assert_refused(raw, "actor", "is required: an object with at least an 'id'")


def test_an_actor_given_as_a_string_is_a_user_with_that_id(make_event: MakeEvent) -> None:
    actor = parse(make_event(actor="alice")).actor
    assert (actor.id, actor.type, actor.name, actor.email) == ("alice", "user", None, None)


@pytest.mark.parametrize(("value", "kind"), [(5, "a number"), (["alice"], "an array")])
def test_an_actor_that_is_not_an_object_is_refused(
    make_event: MakeEvent, value: object, kind: str
) -> None:
    error = assert_refused(
        make_event(actor=value), "actor", "must be an object like {'id': 'alice'"
    )
    assert error.message.endswith(f"not {kind}")


@pytest.mark.parametrize("kind", ["user", "api_key", "service", "anonymous"])
def test_each_actor_type_is_accepted(make_event: MakeEvent, kind: str) -> None:
    assert parse(make_event(actor={"id": "a1", "type": kind})).actor.type == kind


@pytest.mark.parametrize("kind", ["robot", "User", None, 3])
def test_an_unknown_actor_type_is_refused(make_event: MakeEvent, kind: object) -> None:
    raw = make_event(actor={"id": "a1", "type": kind})
    error = assert_refused(raw, "actor.type", "must be one of user, api_key, service, anonymous")
    assert error.message.endswith(f"got {kind!r}")


def test_an_anonymous_actor_without_an_id_gets_the_id_anonymous(make_event: MakeEvent) -> None:
    actor = parse(make_event(actor={"type": "anonymous"})).actor
    assert (actor.id, actor.type) == ("anonymous", "anonymous")


def test_a_non_anonymous_actor_without_an_id_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(actor={"type": "service"}), "actor.id", "is required")


def test_an_actor_email_is_kept(make_event: MakeEvent) -> None:
    raw = make_event(actor={"id": "alice", "email": "alice@example.com"})
    assert parse(raw).actor.email == "alice@example.com"


@pytest.mark.parametrize("email", ["alice", "alice@", "@example.com", "a b@example.com", "a@b@c"])
def test_an_actor_email_that_is_not_an_address_is_refused(
    make_event: MakeEvent, email: str
) -> None:
    raw = make_event(actor={"id": "alice", "email": email})
    assert_refused(raw, "actor.email", f"{email!r} is not an email address")


def test_an_unknown_actor_field_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(actor={"id": "alice", "role": "admin"})
    assert_refused(raw, "actor.role", "is not an actor field (id, type, name, email)")


def test_an_actor_name_over_the_limit_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(actor={"id": "alice", "name": "A" * 257})
    assert_refused(raw, "actor.name", "is 257 characters; the limit is 256")


def test_an_actor_name_with_a_line_break_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(actor={"id": "alice", "name": "Alice\nBob"})
    assert_refused(raw, "actor.name", "must not contain control characters")


# -- operation and description ----------------------------------------------------------------


def test_a_missing_operation_is_refused(make_event: MakeEvent) -> None:
    raw = make_event()
    del raw["operation"]
    assert_refused(raw, "operation", "is required")


def test_an_operation_that_is_not_a_string_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(operation=300), "operation", "must be a string")


def test_an_unknown_operation_is_refused_with_a_did_you_mean(make_event: MakeEvent) -> None:
    error = assert_refused(
        make_event(operation="model.creat"), "operation", "unknown operation 'model.creat'"
    )
    assert "did you mean 'model.create'" in error.message


def test_the_description_defaults_to_the_catalogue_text(make_event: MakeEvent) -> None:
    assert parse(make_event()).description == "Model created"
    assert parse(make_event(description="")).description == "Model created"
    assert parse(make_event(operation="auth.login")).description == "Signed in"


def test_a_given_description_is_kept_including_line_breaks(make_event: MakeEvent) -> None:
    text = "Created from the template\n\tby the nightly job"
    assert parse(make_event(description=text)).description == text


def test_a_description_over_the_limit_is_refused(make_event: MakeEvent) -> None:
    assert parse(make_event(description="d" * 1024)).description == "d" * 1024
    raw = make_event(description="d" * 1025)
    assert_refused(raw, "description", "is 1,025 characters; the limit is 1,024")


def test_a_description_with_a_nul_character_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(description="a\x00b")
    assert_refused(raw, "description", "must not contain control characters")


# -- targets ----------------------------------------------------------------------------------


def test_targets_may_be_left_out(make_event: MakeEvent) -> None:
    raw = make_event()
    del raw["targets"]
    assert parse(raw).targets == ()


@pytest.mark.parametrize(
    ("value", "kind"), [({"type": "model", "id": "m"}, "an object"), ("m", "a string")]
)
def test_targets_that_are_not_a_list_are_refused(
    make_event: MakeEvent, value: object, kind: str
) -> None:
    raw = make_event(targets=value)
    assert_refused(raw, "targets", f"must be an array of {{type, id, name?}} objects, not {kind}")


def test_more_targets_than_the_limit_are_refused(make_event: MakeEvent) -> None:
    many = [{"type": "model", "id": f"m{i}"} for i in range(65)]
    assert len(parse(make_event(targets=many[:64])).targets) == 64
    assert_refused(make_event(targets=many), "targets", "has 65 entries; the limit is 64")


def test_a_target_that_is_not_an_object_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(targets=["model:m1"])
    assert_refused(raw, "targets[0]", "must be an object with 'type' and 'id', not a string")


def test_a_target_of_an_unknown_type_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(targets=[{"type": "model", "id": "m"}, {"type": "widget", "id": "w"}])
    error = assert_refused(raw, "targets[1].type", "'widget' is not a target type")
    assert "known types: agent, api_key, app, compute_cluster" in error.message


def test_a_target_without_a_type_is_refused(make_event: MakeEvent) -> None:
    error = assert_refused(make_event(targets=[{"id": "m"}]), "targets[0].type", "is required")
    assert "known types:" in error.message


@pytest.mark.parametrize("kind", [["model"], {"name": "model"}, 7])
def test_a_target_type_of_the_wrong_json_type_is_refused(
    make_event: MakeEvent, kind: object
) -> None:
    raw = make_event(targets=[{"type": kind, "id": "m"}])
    assert_refused(raw, "targets[0].type", "is not a target type")


def test_a_target_without_an_id_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(targets=[{"type": "model"}])
    assert_refused(raw, "targets[0].id", "is required")


def test_an_unknown_target_field_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(targets=[{"type": "model", "id": "m", "owner": "alice"}])
    assert_refused(raw, "targets[0].owner", "is not a target field (type, id, name)")


def test_a_target_name_over_the_limit_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(targets=[{"type": "model", "id": "m", "name": "n" * 257}])
    assert_refused(raw, "targets[0].name", "is 257 characters; the limit is 256")


# -- success and error ------------------------------------------------------------------------


def test_success_defaults_to_true(make_event: MakeEvent) -> None:
    assert parse(make_event()).success is True


@pytest.mark.parametrize("value", ["yes", "false", 1, 0])
def test_success_that_is_not_a_boolean_is_refused(make_event: MakeEvent, value: object) -> None:
    assert_refused(make_event(success=value), "success", "must be true or false")


def test_a_failed_event_keeps_its_error(make_event: MakeEvent) -> None:
    raw = make_event(success=False, error={"code": "QUOTA_EXCEEDED", "message": "Over quota"})
    event = parse(raw)
    assert event.success is False
    assert event.error is not None
    assert (event.error.code, event.error.message) == ("QUOTA_EXCEEDED", "Over quota")


def test_a_failed_event_needs_no_error(make_event: MakeEvent) -> None:
    event = parse(make_event(success=False))
    assert (event.success, event.error) == (False, None)


def test_an_error_message_defaults_to_empty(make_event: MakeEvent) -> None:
    event = parse(make_event(success=False, error={"code": "denied"}))
    assert event.error is not None
    assert (event.error.code, event.error.message) == ("denied", "")


@pytest.mark.parametrize("success", [True, None])
def test_an_error_is_only_allowed_when_success_is_false(
    make_event: MakeEvent, success: bool | None
) -> None:
    raw = make_event(error={"code": "denied", "message": "no"})
    if success is not None:
        raw["success"] = success
    assert_refused(raw, "error", "is only for failed events; set success to false")


def test_an_error_that_is_not_an_object_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(success=False, error="denied")
    assert_refused(raw, "error", "must be an object {code, message}, not a string")


@pytest.mark.parametrize(
    "error",
    [
        {"message": "no code"},
        {"code": ""},
        {"code": "not allowed"},
        {"code": "denied!"},
        {"code": "c" * 129},
        {"code": 403},
    ],
)
def test_a_missing_or_malformed_error_code_is_refused(
    make_event: MakeEvent, error: dict[str, Any]
) -> None:
    raw = make_event(success=False, error=error)
    assert_refused(raw, "error.code", "is required: 1-128 letters, digits, '.', '_' or '-'")


@pytest.mark.parametrize("code", ["c" * 128, "PERMISSION_DENIED", "quota.exceeded-2"])
def test_an_error_code_of_allowed_characters_is_accepted(make_event: MakeEvent, code: str) -> None:
    event = parse(make_event(success=False, error={"code": code}))
    assert event.error is not None
    assert event.error.code == code


def test_an_unknown_error_field_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(success=False, error={"code": "denied", "detail": "x"})
    assert_refused(raw, "error.detail", "is not an error field (code, message)")


def test_an_error_message_over_the_limit_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(success=False, error={"code": "denied", "message": "m" * 2049})
    assert_refused(raw, "error.message", "is 2,049 characters; the limit is 2,048")


@pytest.mark.parametrize(("message", "kind"), [(None, "null"), (404, "a number")])
def test_an_error_message_that_is_not_a_string_is_refused(
    make_event: MakeEvent, message: object, kind: str
) -> None:
    raw = make_event(success=False, error={"code": "denied", "message": message})
    assert_refused(raw, "error.message", f"must be a string, not {kind}")


# -- source_ip and user_agent -----------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.2.3", "999.1.1.1", "localhost", "2001:db8::g", ""])
def test_a_source_ip_that_is_not_an_address_is_refused(make_event: MakeEvent, value: str) -> None:
    raw = make_event(source_ip=value)
    assert_refused(raw, "source_ip", f"{value!r} is not an IPv4 or IPv6 address")


def test_a_source_ip_that_is_not_a_string_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(source_ip=3232235777), "source_ip", "must be a string, not a number")


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:DB8::0001", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::FFFF:cb00:7107", "203.0.113.7"),
        ("::1", "::1"),
    ],
)
def test_source_ip_is_stored_in_normal_form(make_event: MakeEvent, value: str, stored: str) -> None:
    assert parse(make_event(source_ip=value)).source_ip == stored


def test_a_user_agent_up_to_the_limit_is_kept(make_event: MakeEvent) -> None:
    assert parse(make_event(user_agent="u" * 1024)).user_agent == "u" * 1024


def test_a_user_agent_over_the_limit_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(user_agent="u" * 1025)
    assert_refused(raw, "user_agent", "is 1,025 characters; the limit is 1,024")


@pytest.mark.parametrize("value", ["curl\n8.5", "curl\t8.5", "curl\r8.5", "curl\x7f", "\x1b[31m"])
def test_a_user_agent_with_control_characters_is_refused(make_event: MakeEvent, value: str) -> None:
    assert_refused(
        make_event(user_agent=value), "user_agent", "must not contain control characters"
    )


# -- details ----------------------------------------------------------------------------------


def test_details_given_as_a_string_are_one_line(make_event: MakeEvent) -> None:
    assert parse(make_event(details="Retrained on v2")).details == ("Retrained on v2",)


def test_details_given_as_a_list_are_kept_in_order(make_event: MakeEvent) -> None:
    lines = ["first", "second\nwith a break", "third"]
    assert parse(make_event(details=lines)).details == tuple(lines)


def test_details_that_are_not_a_list_are_refused(make_event: MakeEvent) -> None:
    assert_refused(
        make_event(details={"a": 1}), "details", "must be an array of strings, not an object"
    )


def test_more_detail_lines_than_the_limit_are_refused(make_event: MakeEvent) -> None:
    assert len(parse(make_event(details=["x"] * 32)).details) == 32
    assert_refused(make_event(details=["x"] * 33), "details", "has 33 lines; the limit is 32")


def test_a_detail_line_over_the_limit_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(details=["ok", "l" * 1025])
    assert_refused(raw, "details[1]", "is 1,025 characters; the limit is 1,024")


def test_a_detail_line_that_is_not_a_string_is_refused(make_event: MakeEvent) -> None:
    assert_refused(make_event(details=["ok", 3]), "details[1]", "must be a string, not a number")


# -- changes ----------------------------------------------------------------------------------


def test_changes_of_the_from_to_shape_are_kept(make_event: MakeEvent) -> None:
    changes = {
        "name": {"from": "a", "to": "b"},
        "visibility": {"to": "public"},
        "labels": {"from": ["cat"]},
        "config": {"from": {"lr": 0.1}, "to": {"lr": 0.01}},
    }
    assert parse(make_event(changes=changes)).changes == changes


@pytest.mark.parametrize("changes", [["name"], "name: a -> b", 3])
def test_changes_that_are_not_an_object_are_refused(make_event: MakeEvent, changes: object) -> None:
    raw = make_event(changes=changes)
    assert_refused(raw, "changes", 'must be an object like {"name": {"from": "a", "to": "b"}}')


@pytest.mark.parametrize(
    "change",
    [
        "b",
        {},
        {"from": "a", "old": "b"},
        {"before": "a", "after": "b"},
        ["a", "b"],
    ],
)
def test_a_change_not_of_the_from_to_shape_is_refused(
    make_event: MakeEvent, change: object
) -> None:
    raw = make_event(changes={"name": change})
    assert_refused(raw, "changes.name", 'must be an object with "from", "to" or both')


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must be 1-128 characters"),
        ("n" * 129, "must be 1-128 characters"),
        ("bad\nname", "must not contain control characters (U+000A at position 3)"),
    ],
)
def test_a_change_field_name_that_is_empty_long_or_has_control_characters_is_refused(
    make_event: MakeEvent, name: str, message: str
) -> None:
    raw = make_event(changes={name: {"to": 1}})
    assert_refused(raw, "changes", message)


def test_more_changed_fields_than_the_limit_are_refused(make_event: MakeEvent) -> None:
    changes = {f"f{i}": {"to": i} for i in range(65)}
    assert len(parse(make_event(changes=dict(list(changes.items())[:64]))).changes or {}) == 64
    assert_refused(make_event(changes=changes), "changes", "has 65 fields; the limit is 64")


def test_changes_over_the_size_limit_are_refused(make_event: MakeEvent) -> None:
    raw = make_event(changes={"prompt": {"from": "a" * 9000, "to": "b" * 9000}})
    error = assert_refused(raw, "changes", "bytes encoded; the limit is 16,384 bytes")
    assert re.match(r"is 18,0\d\d bytes encoded", error.message)


def test_a_change_value_is_held_to_the_json_rules(make_event: MakeEvent) -> None:
    raw = make_event(changes={"threshold": {"from": 0.5, "to": float("nan")}})
    assert_refused_within(raw, "changes.threshold", "numbers must be finite")


# -- metadata ---------------------------------------------------------------------------------


def test_metadata_of_plain_json_is_kept(make_event: MakeEvent) -> None:
    metadata = {"region": "eu", "count": 3, "ratio": 0.5, "ok": True, "none": None, "l": [1, "a"]}
    assert parse(make_event(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize(
    ("value", "kind"), [([1, 2], "an array"), ("x", "a string"), (1, "a number")]
)
def test_metadata_that_is_not_an_object_is_refused(
    make_event: MakeEvent, value: object, kind: str
) -> None:
    assert_refused(make_event(metadata=value), "metadata", f"must be a JSON object, not {kind}")


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_metadata_with_a_non_finite_number_is_refused(make_event: MakeEvent, number: float) -> None:
    raw = make_event(metadata={"scores": [0.5, number]})
    assert_refused_within(raw, "metadata", "numbers must be finite (no NaN or Infinity)")


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**30])
def test_metadata_with_an_integer_beyond_2_53_is_refused(
    make_event: MakeEvent, number: int
) -> None:
    raw = make_event(metadata={"big": {"n": number}})
    assert_refused_within(raw, "metadata", f"integer {number} is beyond ±(2**53 - 1)")


@pytest.mark.parametrize("number", [2**53 - 1, -(2**53 - 1)])
def test_metadata_with_an_integer_up_to_2_53_minus_1_is_accepted(
    make_event: MakeEvent, number: int
) -> None:
    assert parse(make_event(metadata={"n": number})).metadata == {"n": number}


def test_metadata_with_a_non_string_key_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(metadata={"a": {1: "x"}})
    assert_refused_within(raw, "metadata", "object keys must be strings")


def test_metadata_with_a_value_that_is_not_json_is_refused(make_event: MakeEvent) -> None:
    raw = make_event(metadata={"when": {1, 2}})
    assert_refused_within(raw, "metadata", "is not a JSON value")


def nested(levels: int) -> dict[str, Any]:
    """``levels`` objects, one inside the other, the innermost holding a number."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_metadata_nested_up_to_the_depth_limit_is_accepted(make_event: MakeEvent) -> None:
    metadata = nested(DEFAULT_LIMITS.json_depth)
    assert parse(make_event(metadata=metadata)).metadata == metadata


@pytest.mark.parametrize("levels", [DEFAULT_LIMITS.json_depth + 1, 50])
def test_metadata_nested_too_deep_is_refused(make_event: MakeEvent, levels: int) -> None:
    assert_refused_within(make_event(metadata=nested(levels)), "metadata", "nests")


def test_metadata_nested_in_lists_too_deep_is_refused(make_event: MakeEvent) -> None:
    deep: list[Any] = [1]
    for _ in range(DEFAULT_LIMITS.json_depth):
        deep = [deep]
    assert_refused_within(make_event(metadata={"l": deep}), "metadata", "nests")


def test_metadata_over_the_size_limit_is_refused(make_event: MakeEvent) -> None:
    assert parse(make_event(metadata={"blob": "x" * 16_000})).metadata is not None
    raw = make_event(metadata={"blob": "x" * 16_384})
    assert_refused(raw, "metadata", "is 16,395 bytes encoded; the limit is 16,384 bytes")


def test_metadata_size_counts_utf8_bytes_not_characters(make_event: MakeEvent) -> None:
    raw = make_event(metadata={"blob": "\u00e9" * 9000})  # 9,000 characters, 18,000 bytes
    assert_refused(raw, "metadata", "is 18,011 bytes encoded; the limit is 16,384 bytes")


# -- whole-event size -------------------------------------------------------------------------


def event_of_size(make_event: MakeEvent, size: int) -> Event:
    """A valid event whose canonical encoding is exactly ``size`` bytes, mostly details."""
    lines = ["d" * 1024] * 31

    def build(last: str) -> Event:
        raw = make_event(id=VALID_UUID, details=[*lines, last])
        return parse_event(raw, org_id="acme", received_at=RECEIVED_AT, rules=RULES).event

    pad = size - len(build("").canonical_bytes())
    assert 0 <= pad <= DEFAULT_LIMITS.detail_line
    event = build("d" * pad)
    assert len(event.canonical_bytes()) == size
    return event


def test_an_event_over_32_kib_encoded_is_refused(make_event: MakeEvent) -> None:
    event = event_of_size(make_event, 32 * 1024 + 1)
    with pytest.raises(EventValidationError) as info:
        check_event_size(event, event.canonical_bytes(), DEFAULT_LIMITS, 4)
    (error,) = info.value.errors
    assert (error.field, error.index) == ("(event)", 4)
    assert error.message == "is 32,769 bytes encoded; the limit is 32,768 bytes"


def test_an_event_of_exactly_32_kib_is_accepted(make_event: MakeEvent) -> None:
    event = event_of_size(make_event, 32 * 1024)
    check_event_size(event, event.canonical_bytes(), DEFAULT_LIMITS, 4)


def test_the_event_size_limit_counts_encoded_bytes(make_event: MakeEvent) -> None:
    raw = make_event(details=["\u00e9" * 1000] * 17)  # 17,000 characters, 34,000 bytes
    event = parse_event(raw, org_id="acme", received_at=RECEIVED_AT, rules=RULES).event
    with pytest.raises(EventValidationError, match="the limit is 32,768 bytes"):
        check_event_size(event, event.canonical_bytes(), DEFAULT_LIMITS, None)


def test_an_ordinary_event_is_well_inside_the_size_limit(make_event: MakeEvent) -> None:
    event = parse_event(make_event(), org_id="acme", received_at=RECEIVED_AT, rules=RULES).event
    check_event_size(event, event.canonical_bytes(), DEFAULT_LIMITS, 0)


# -- redaction --------------------------------------------------------------------------------

SECRET_KEYS = [
    "password",
    "Password",
    "db_password",
    "passwd",
    "passphrase",
    "secret",
    "client_secret",
    "clientSecret",
    "token",
    "access_token",
    "refreshToken",
    "api_key",
    "API-Key",
    "apiKey",
    "api.key",
    "API KEY",
    "X-Api-Key",
    "Authorization",
    "cookie",
    "Set-Cookie",
    "private_key",
    "credentials",
    "aws_access_key_id",
    "session_id",
    "PAT",
    "pat",
]
PLAIN_KEYS = [
    "path",
    "pattern",
    "patch",
    "name",
    "region",
    "user_id",
    "description",
    "email",
    "max_tokens",
    "tokenizer",
    "token_count",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_secret_looking_metadata_key_is_redacted(make_event: MakeEvent, key: str) -> None:
    event = parse(make_event(metadata={key: "s3cr3t-value", "region": "eu"}))
    assert event.metadata == {key: REDACTED, "region": "eu"}


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_an_ordinary_metadata_key_is_left_alone(make_event: MakeEvent, key: str) -> None:
    assert parse(make_event(metadata={key: "value"})).metadata == {key: "value"}


def test_secrets_are_redacted_at_any_depth_and_inside_lists(make_event: MakeEvent) -> None:
    metadata = {
        "request": {
            "headers": {"Authorization": "Bearer abc", "Accept": "application/json"},
            "path": "/v2/models",
        },
        "keys": [{"apiKey": "k1", "label": "ci"}, {"API-Key": "k2", "label": "dev"}],
        "oauth": {"client_secret": {"value": "x", "rotated": True}},
        "pattern": "*.json",
    }
    assert parse(make_event(metadata=metadata)).metadata == {
        "request": {
            "headers": {"Authorization": REDACTED, "Accept": "application/json"},
            "path": "/v2/models",
        },
        "keys": [{"apiKey": REDACTED, "label": "ci"}, {"API-Key": REDACTED, "label": "dev"}],
        "oauth": {"client_secret": REDACTED},
        "pattern": "*.json",
    }


def test_redaction_does_not_change_the_producers_data(make_event: MakeEvent) -> None:
    metadata = {"auth": {"token": "t"}}
    parse(make_event(metadata=metadata))
    assert metadata == {"auth": {"token": "t"}}


def test_a_secret_changed_field_is_redacted_on_both_sides(make_event: MakeEvent) -> None:
    changes = {
        "password": {"from": "old-pw", "to": "new-pw"},
        "webhook_token": {"to": "t2"},
        "name": {"from": "a", "to": "b"},
    }
    assert parse(make_event(changes=changes)).changes == {
        "password": {"from": REDACTED, "to": REDACTED},
        "webhook_token": {"to": REDACTED},
        "name": {"from": "a", "to": "b"},
    }


def test_secrets_nested_in_a_changed_value_are_redacted(make_event: MakeEvent) -> None:
    changes = {
        "config": {
            "from": {"apiKey": "k1", "path": "/a"},
            "to": {"apiKey": "k2", "path": "/b"},
        }
    }
    assert parse(make_event(changes=changes)).changes == {
        "config": {
            "from": {"apiKey": REDACTED, "path": "/a"},
            "to": {"apiKey": REDACTED, "path": "/b"},
        }
    }


def test_custom_redaction_keys_replace_the_default_ones(make_event: MakeEvent) -> None:
    rules = EventRules(redactor=Redactor(["ssn", "internal_note"]))
    metadata = {"SSN": "123", "ssn_last4": "0123", "Internal-Note": "x", "password": "pw"}
    assert parse(make_event(metadata=metadata), rules=rules).metadata == {
        "SSN": REDACTED,
        "ssn_last4": "0123",  # keys of three characters or fewer must match whole
        "Internal-Note": REDACTED,
        "password": "pw",
    }


def test_custom_redaction_keys_can_extend_the_default_ones(make_event: MakeEvent) -> None:
    rules = EventRules(redactor=Redactor([*DEFAULT_SECRET_KEYS, "ssn"]))
    changes = {"ssn": {"from": "1", "to": "2"}, "token": {"to": "t"}, "path": {"to": "/p"}}
    assert parse(make_event(changes=changes), rules=rules).changes == {
        "ssn": {"from": REDACTED, "to": REDACTED},
        "token": {"to": REDACTED},
        "path": {"to": "/p"},
    }


def test_no_redactor_keeps_every_value(make_event: MakeEvent) -> None:
    rules = EventRules(redactor=None)
    raw = make_event(metadata={"password": "pw"}, changes={"token": {"to": "t"}})
    event = parse(raw, rules=rules)
    assert event.metadata == {"password": "pw"}
    assert event.changes == {"token": {"to": "t"}}


# -- canonical JSON and the leaf hash ---------------------------------------------------------


@pytest.fixture
def full_event(make_event: MakeEvent) -> Event:
    return parse(
        make_event(
            id=VALID_UUID,
            time="2026-11-26T12:30:00.25+01:00",
            actor={"id": "alice", "type": "user", "name": "Zoë Ålund", "email": "zoe@example.com"},
            success=False,
            error={"code": "QUOTA_EXCEEDED", "message": "Über dem Kontingent: 日本"},
            user_agent="curl/8.5",
            request_id="req-1",
            details=["first", "second"],
            changes={"name": {"from": "a", "to": "b"}},
            metadata={"z": 1, "a": {"y": [1, 2.5, None], "b": True}, "m": "ü"},
        )
    )


def test_canonical_json_sorts_keys_and_has_no_spaces() -> None:
    value = {"b": 1, "a": {"d": [1, {"f": 2, "e": 3}], "c": "x"}}
    assert canonical_json(value) == b'{"a":{"c":"x","d":[1,{"e":3,"f":2}]},"b":1}'


def test_canonical_json_writes_non_ascii_as_utf8_not_escapes() -> None:
    encoded = canonical_json({"name": "Zoë 日本"})
    assert encoded == '{"name":"Zoë 日本"}'.encode()
    assert b"\\u" not in encoded


def test_canonical_json_escapes_only_what_json_requires() -> None:
    assert canonical_json({"s": 'a"b\\c\nd/e'}) == b'{"s":"a\\"b\\\\c\\nd/e"}'


@pytest.mark.parametrize(
    ("number", "written"),
    [
        (0.1, b"0.1"),
        (1e-7, b"1e-7"),
        (1.5, b"1.5"),
        (1e16, b"1e+16"),
        (2**53 - 1, b"9007199254740991"),
    ],
)
def test_canonical_json_writes_numbers_as_documented(number: float, written: bytes) -> None:
    assert canonical_json({"n": number}) == b'{"n":' + written + b"}"


def test_an_events_canonical_bytes_match_an_independent_encoding(full_event: Event) -> None:
    expected = json.dumps(
        full_event.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert full_event.canonical_bytes() == expected
    assert "Über".encode() in full_event.canonical_bytes()


def test_canonical_time_is_utc_with_six_fraction_digits(full_event: Event) -> None:
    assert full_event.to_dict()["time"] == "2026-11-26T11:30:00.250000Z"
    assert b'"time":"2026-11-26T11:30:00.250000Z"' in full_event.canonical_bytes()


def test_a_whole_second_time_still_has_six_fraction_digits(make_event: MakeEvent) -> None:
    time = parse(make_event()).to_dict()["time"]
    assert time == "2026-11-26T11:00:00.000000Z"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", time)


def test_the_leaf_hash_is_sha256_of_a_zero_byte_and_the_canonical_bytes(full_event: Event) -> None:
    canonical = full_event.canonical_bytes()
    assert leaf_hash(canonical) == hashlib.sha256(b"\x00" + canonical).digest()
    assert leaf_hash(canonical) != hashlib.sha256(canonical).digest()
    assert len(leaf_hash(canonical)) == 32


def test_an_event_round_trips_through_its_dict(full_event: Event) -> None:
    assert Event.from_dict(full_event.to_dict()) == full_event
    assert Event.from_dict(full_event.to_dict()).canonical_bytes() == full_event.canonical_bytes()


def test_a_minimal_event_round_trips_through_its_dict() -> None:
    event = parse({"operation": "auth.logout", "actor": "alice"})
    assert Event.from_dict(event.to_dict()) == event


# -- the fast paths: ids seen valid before must not change any outcome -----------------------

_ABSENT = object()
_IDS = ["alice", "app-1", "svc:build", "", "bad id", "x" * 129, "ü", None, 5, _ABSENT]
_NAMES = ["Alice", "tab\there", "x" * 300, "line\nbreak", None, 7, _ABSENT]
_EXTRA: list[dict[str, Any]] = [{}, {"owner": "bob"}]


def _fields(**fields: object) -> dict[str, object]:
    return {name: value for name, value in fields.items() if value is not _ABSENT}


def _outcome(raw: dict[str, Any]) -> object:
    try:
        return validate(raw).event
    except EventValidationError as exc:
        return exc.errors


class _List(list[Any]):
    """A list that is not exactly ``list``: the shortcut is for plain lists only."""


def _unusual(value: object) -> object:
    """``value`` in containers that are not exactly dict and list: parsed the long way."""
    if isinstance(value, dict):
        return MappingProxyType({k: _unusual(v) for k, v in value.items()})
    if isinstance(value, list):
        return _List(_unusual(v) for v in value)
    return value


def _same_cold_and_warm(actor: object, targets: object) -> None:
    def outcome(actor: object, targets: object) -> object:
        return _outcome(
            {
                "id": VALID_UUID,
                "time": "2026-11-26T11:00:00Z",
                "operation": "model.create",
                "actor": actor,
                "targets": targets,
            }
        )

    _validate_module._GOOD_IDS.clear()
    expected = outcome(_unusual(actor), _unusual(targets))  # every id checked, named if bad
    _validate_module._GOOD_IDS.clear()
    assert outcome(actor, targets) == expected, (actor, targets)  # cold
    assert outcome(actor, targets) == expected, (actor, targets)  # its valid ids now known


def test_an_actor_parses_the_same_whether_or_not_its_id_was_seen_before() -> None:
    kinds = ["user", "service", "anonymous", "robot", 3, None, _ABSENT]
    emails = ["a@example.com", "not-an-email", "a@b\x00c", "é" * 400, None, _ABSENT]
    for actor_id, kind, name, email, extra in itertools.product(
        _IDS, kinds, _NAMES, emails, _EXTRA
    ):
        actor = _fields(id=actor_id, type=kind, name=name, email=email) | extra
        _same_cold_and_warm(actor, None)
    for plain in ("alice", "bad id", 7):
        _same_cold_and_warm(plain, None)


def test_targets_parse_the_same_whether_or_not_their_ids_were_seen_before() -> None:
    kinds = ["app", "model", "planet", 7, None, _ABSENT]
    good = {"type": "app", "id": "app-1", "name": "Alice"}
    for kind, target_id, name, extra in itertools.product(kinds, _IDS, _NAMES, _EXTRA):
        target = _fields(type=kind, id=target_id, name=name) | extra
        for targets in ([target], [good, target], [target, good]):
            _same_cold_and_warm("alice", targets)
    for targets in ("app-1", ["app-1"], [good] * 65, [good, "app-1"], 7):
        _same_cold_and_warm("alice", targets)


def _uuid7_at(moment: datetime) -> str:
    ms = int(moment.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (0x123 << 64) | (0b10 << 62) | 0x1234_5678_9ABC
    return str(uuid.UUID(int=value))


def test_a_missing_time_is_the_time_a_uuid7_id_carries(make_event: MakeEvent) -> None:
    # Deterministic: every server, whenever it receives it, gives the event this time.
    moment = datetime(2026, 11, 26, 11, 58, 7, 250_000, tzinfo=UTC)
    raw = make_event(id=_uuid7_at(moment))
    del raw["time"]
    parsed = validate(raw)
    assert parsed.event.time == moment
    assert parsed.time_defaulted is True
    assert validate(raw).event.canonical_bytes() == parsed.event.canonical_bytes()


def test_a_missing_time_with_another_uuid_is_the_receive_time(make_event: MakeEvent) -> None:
    raw = make_event(id="6f1c1a52-3f7e-4b9a-9c1d-0a2b3c4d5e6f")  # a UUIDv4
    del raw["time"]
    assert validate(raw).event.time == RECEIVED_AT


def test_a_uuid7_id_with_a_time_out_of_range_leaves_the_receive_time(
    make_event: MakeEvent,
) -> None:
    for moment in (RECEIVED_AT + timedelta(hours=2), RECEIVED_AT - timedelta(days=4000)):
        raw = make_event(id=_uuid7_at(moment))
        del raw["time"]
        assert validate(raw).event.time == RECEIVED_AT


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "2016-11-25T00:00:00Z"])
def test_a_time_more_than_ten_years_old_is_refused(make_event: MakeEvent, value: str) -> None:
    error = assert_refused(make_event(time=value), "time", "in the past")
    assert "TRAILKEEPER_MAX_PAST_DAYS" in error.message


def test_the_past_limit_can_be_raised(make_event: MakeEvent) -> None:
    rules = EventRules(limits=Limits(max_past=timedelta(days=365 * 30)))
    parsed = validate(make_event(time="2000-01-01T00:00:00Z"), rules=rules)
    assert parsed.event.time == datetime(2000, 1, 1, tzinfo=UTC)
