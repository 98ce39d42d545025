"""Secrets that used to slip past redaction (issue #13): header pairs, name/value lists,
short names, token plurals, look-alike, zero-width and full-width spellings, credential-shaped
values. A hashed, append-only log can never remove a secret it stored."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ASGIClient
from trailkeeper.events import REDACTED, Redactor
from trailkeeper.server import create_app
from trailkeeper.service import AuditService

R = REDACTED
FW_PASSWORD = "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44"  # noqa: S105 - a full-width key name, not a password
FW_API_KEY = "\uff21\uff30\uff29\uff3f\uff2b\uff25\uff39"  # full-width "API_KEY"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"
LEAKS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (id, metadata sent, metadata stored)
    ("header pairs", {"headers": [["Authorization", "Bearer abc.def"], ["Accept", "*/*"]]},
     {"headers": [["Authorization", R], ["Accept", "*/*"]]}),
    ("name/value list",
     {"env": [{"name": "API_KEY", "value": "k1"}, {"name": "HOME", "value": "/"}]},
     {"env": [{"name": "API_KEY", "value": R}, {"name": "HOME", "value": "/"}]}),
    ("key/value list", {"vars": [{"key": "db_password", "value": "p"}]},
     {"vars": [{"key": "db_password", "value": R}]}),
    ("header/value list", {"h": [{"header": "Cookie", "value": "sid=1"}]},
     {"h": [{"header": "Cookie", "value": R}]}),
    ("short names", {"pwd": "a", "auth": "b", "jwt": "c", "otp": "d", "sid": "e", "bearer": "f"},
     {"pwd": R, "auth": R, "jwt": R, "otp": R, "sid": R, "bearer": R}),
    ("token plurals and values", {"access_tokens": ["a"], "token_value": "b", "idToken": "c"},
     {"access_tokens": R, "token_value": R, "idToken": R}),
    ("key kinds", {"ssh_key": "a", "signing_key": "b", "PAT": "c"},
     {"ssh_key": R, "signing_key": R, "PAT": R}),
    ("full-width", {FW_PASSWORD: "a", FW_API_KEY: "b"}, {FW_PASSWORD: R, FW_API_KEY: R}),
    ("zero-width", {"pass\u200bword": "a", "to\u200dken": "b", "api\u00adkey": "c"},
     {"pass\u200bword": R, "to\u200dken": R, "api\u00adkey": R}),
    ("look-alike letters", {"pаssword": "a", "sеcret": "b"}, {"pаssword": R, "sеcret": R}),  # noqa: RUF001
    ("credential-shaped values", {"x": "Bearer abcdefgh12345", "y": JWT, "z": "Basic dXNlcjpwYXNz"},
     {"x": R, "y": R, "z": R}),
    ("ordinary keys kept", {"max_tokens": 5, "tokenizer": "bpe", "token_count": 3,
                            "input_tokens": 9, "author": "ana", "authority": "x",
                            "session_length": 60, "path": "/a", "note": "bearer of news"},
     {"max_tokens": 5, "tokenizer": "bpe", "token_count": 3, "input_tokens": 9, "author": "ana",
      "authority": "x", "session_length": 60, "path": "/a", "note": "bearer of news"}),
]  # fmt: skip


@pytest.fixture
def client(service: AuditService) -> Iterator[ASGIClient]:
    opened = ASGIClient(
        create_app(service),
        {"Authorization": f"Bearer {service.keys.create('acme', ['admin'])[1]}"},
    )
    yield opened
    opened.close()


@pytest.mark.parametrize(
    ("sent", "stored"), [case[1:] for case in LEAKS], ids=[case[0] for case in LEAKS]
)
def test_secrets_are_redacted_before_they_reach_the_log(
    service: AuditService, client: ASGIClient, sent: dict[str, Any], stored: dict[str, Any]
) -> None:
    before = service.size("acme")
    event = {"actor": "alice", "operation": "model.create", "metadata": sent,
             "changes": {"settings": {"to": sent}}}  # fmt: skip
    response = client.post("/v1/events", json={"events": [event]})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    assert service.size("acme") == before + 1  # stored once, redacted
    got = client.get(f"/v1/events/{response.json()['events'][0]['id']}")
    assert got.status_code == 200
    assert got.json()["metadata"] == stored
    assert got.json()["changes"] == {"settings": {"to": stored}}
    again = client.post(
        "/v1/events", json={"events": [{"actor": "a", "operation": "model.create"}]}
    )
    assert again.status_code == 202


SECRET_NAMES = ["password", "passwd", "secret", "api_key", "apiKey", "authorization",
                "cookie", "private_key", "access_token", "refresh_token", "pwd", "auth", "jwt",
                "otp", "sid", "bearer", "ssh_key", "signing_key", "session_id",
                "access_tokens"]  # fmt: skip
PLAIN_NAMES = ["max_tokens", "tokenizer", "token_count", "input_tokens", "author",
               "session_length", "region", "path", "name", "count"]  # fmt: skip
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def spellings(draw: st.DrawFn, name: str) -> str:
    """``name`` as a producer (or an attacker) might spell it: case, separators, full-width
    letters, invisible characters."""
    words = name.replace("Key", "_key").split("_")
    sep = draw(st.sampled_from(["_", "-", ".", " ", ""]))
    case = draw(st.sampled_from([str.lower, str.upper, str.title, str.capitalize]))
    text = (
        sep.join(case(w) for w in words)
        if sep
        else words[0] + "".join(w.title() for w in words[1:])
    )
    if draw(st.booleans()):
        text = _full_width(text)
    if draw(st.booleans()) and len(text) > 1:
        at = draw(st.integers(1, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(INVISIBLE)) + text[at:]
    return text


def nest(depth: int, key: str, value: Any) -> Any:
    inner: Any = {key: value}
    for level in range(depth):
        inner = [inner] if level % 2 else {"level": inner}
    return inner


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(SECRET_NAMES).flatmap(spellings),
    depth=st.integers(0, 6),
    value=st.one_of(st.text(max_size=10), st.integers(), st.lists(st.text(max_size=3))),
)
def test_any_spelling_of_a_secret_name_at_any_depth_is_redacted(
    name: str, depth: int, value: Any
) -> None:
    redacted = Redactor().redact(nest(depth, name, value))
    assert redacted == nest(depth, name, REDACTED)
    assert unicodedata.normalize("NFKC", name)  # a spelling, not an empty key


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(PLAIN_NAMES).flatmap(spellings), depth=st.integers(0, 6))
def test_ordinary_names_are_kept_at_any_depth(name: str, depth: int) -> None:
    assert Redactor().redact(nest(depth, name, "v")) == nest(depth, name, "v")
