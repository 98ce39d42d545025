"""Free text: one tokeniser for both backends, tokens scoped by org, and the migration that
rebuilds an index of the old, shared layout (how searches match is in test_store_contract)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import store_url
from trailkeeper.events import EventRules, leaf_hash, parse_event
from trailkeeper.store import LogStore, PreparedEvent, SearchQuery, open_store
from trailkeeper.store._text import fold, fts_text, org_tokens, query_tokens, words

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def prepare(raw: dict[str, Any], org: str) -> PreparedEvent:
    event = parse_event(raw, org_id=org, received_at=NOW, rules=EventRules()).event
    canonical = event.canonical_bytes()
    return PreparedEvent(event, canonical, leaf_hash(canonical))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Model General-Image v2.1", ["model", "general", "image", "v2", "1"]),
        ("\uff3a\uff25\uff22\uff32\uff21", ["zebra"]),
        ("\ufb01nal Straße", ["final", "strasse"]),
        ("Ärger im Café", ["arger", "im", "cafe"]),
        ("e\u0301", ["e"]),
        ("한국어 text", ["한국어", "text"]),  # Hangul comes back composed
        ("a_b\x00c", ["a", "b", "c"]),
        ("!! --", []),
    ],
)
def test_words_are_nfkc_case_folded_unaccented_letters_and_digits(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


def test_folding_is_idempotent_and_ascii_takes_the_short_way() -> None:
    for text in ("\uff33\uff34\uff32\uff21ß\uff25 ﬁ Crème", "plain Text 42"):
        assert fold(fold(text)) == fold(text)
    assert fold("Plain Text") == "plain text"


def test_tokens_carry_the_org_key_and_a_term_without_words_matches_nothing() -> None:
    assert org_tokens(17, "Zebra crossing") == ["17_zebra", "17_crossing"]
    assert query_tokens(17, ("zebra", "big cat")) == [["17_zebra"], ["17_big", "17_cat"]]
    assert query_tokens(17, ("zebra", "!!")) is None
    assert words("x" * 600) == ["x" * 500]


def _indexed_tokens(backend: str, url: str) -> list[tuple[int, str]]:
    """(the row's org key, a token its index entry holds) for every token of every event."""
    if backend == "sqlite":
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            con.execute(
                "CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, events_fts, instance)"
            )
            sql = "SELECT e.org_key, v.term FROM temp.vocab v JOIN events e ON e.rowid = v.doc"
            return [(int(k), str(t)) for k, t in con.execute(sql)]
        finally:
            con.close()
    with psycopg.connect(url) as pg:
        sql = "SELECT org_key, unnest(tsvector_to_array(words)) FROM events"
        return [(int(k), str(t)) for k, t in pg.execute(sql)]


def test_every_indexed_token_belongs_to_its_events_org(
    backend: str, tmp_path: Path, make_event: Callable[..., dict[str, Any]]
) -> None:
    url = store_url(backend, tmp_path)
    store = open_store(url)
    try:
        for org in ("acme", "globex", "initech"):
            store.append(org, [prepare(make_event(details=["zebra crossing"]), org)])
    finally:
        store.close()
    tokens = _indexed_tokens(backend, url)
    assert {t.split("_", 1)[1] for _, t in tokens} >= {"zebra", "crossing", "general", "image"}
    assert all(t.startswith(f"{key}_") for key, t in tokens)
    assert len({key for key, _ in tokens}) == 3


def _stored_rows(backend: str, url: str) -> list[tuple[Any, ...]]:
    """Everything stored about the events except the full-text index."""
    if backend == "sqlite":
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            columns = "rowid, org_key, seq, id, time_us, wm_us, received_us, leaf_hash, body"
            return con.execute(f"SELECT {columns} FROM events ORDER BY rowid").fetchall()
        finally:
            con.close()
    with psycopg.connect(url) as pg:
        rows = pg.execute(
            "SELECT e.org_key, e.seq, e.time_us, e.received_us, e.leaf_hash, e.body, l.id, "
            "l.leaf_hash FROM events e JOIN leaves l USING (org_key, seq) ORDER BY 1, 2"
        ).fetchall()
        return [tuple(r) for r in rows]


def _to_the_old_layout(backend: str, url: str) -> None:
    """Make the index what schema version 3 had: words shared by every org."""
    if backend == "sqlite":
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            con.execute("BEGIN")
            con.execute("DROP TABLE events_fts")
            con.execute(
                "CREATE VIRTUAL TABLE events_fts USING fts5 "
                "(text, content='', tokenize='unicode61 remove_diacritics 2')"
            )
            # The old index held the event's plain text; here, its words (the same tokens).
            for rowid, text in con.execute("SELECT rowid, body FROM events").fetchall():
                plain = " ".join(words(fts_text(_event(text))))
                con.execute("INSERT INTO events_fts (rowid, text) VALUES (?, ?)", (rowid, plain))
            con.execute("DELETE FROM schema_migrations WHERE version >= 4")
            con.execute("COMMIT")
        finally:
            con.close()
        return
    with psycopg.connect(url) as pg:
        for org_key, time_us, seq, body in pg.execute(
            "SELECT org_key, time_us, seq, body FROM events"
        ).fetchall():
            plain = " ".join(f"'{w}':{i}" for i, w in enumerate(words(fts_text(_event(body))), 1))
            pg.execute(
                "UPDATE events SET words = %s::tsvector "
                "WHERE org_key = %s AND time_us = %s AND seq = %s",
                (plain, org_key, time_us, seq),
            )
        pg.execute("DELETE FROM schema_migrations WHERE version >= 4")


def _event(body: bytes) -> Any:
    from trailkeeper.store._rows import row_to_stored

    return row_to_stored((0, 0, b"", body)).event


def test_the_migration_scopes_a_shared_index_by_org_and_changes_nothing_else(
    backend: str, tmp_path: Path, make_event: Callable[..., dict[str, Any]]
) -> None:
    url = store_url(backend, tmp_path)
    store: LogStore = open_store(url)
    try:
        mine = prepare(make_event(details=["Zebra crossing"]), "acme")
        store.append("acme", [mine, prepare(make_event(details=["nothing"]), "acme")])
        theirs = [prepare(make_event(details=["zebra"]), "globex") for _ in range(3)]
        store.append("globex", theirs)
    finally:
        store.close()
    before = _stored_rows(backend, url)
    _to_the_old_layout(backend, url)
    assert not any(t[1][0].isdigit() for t in _indexed_tokens(backend, url))

    store = open_store(url)  # migrates
    try:
        assert [s.event.id for s in store.search("acme", SearchQuery(text=("ZEBRA",)))] == [
            mine.event.id
        ]
        found = store.search("globex", SearchQuery(text=("zebra",), order="asc"))
        assert [s.event.id for s in found] == [p.event.id for p in theirs]
        assert store.search("acme", SearchQuery(text=("zebra crossing",)))[0].seq == 0
    finally:
        store.close()
    assert _stored_rows(backend, url) == before
    assert all(t.startswith(f"{key}_") for key, t in _indexed_tokens(backend, url))
