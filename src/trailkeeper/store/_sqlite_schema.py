"""The SQLite schema, as numbered migrations recorded in the database itself."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator

from ._rows import row_to_stored
from ._text import fts_text, org_tokens

#: A migration's work: an SQL script, or a function for what SQL alone can't do.
Step = str | Callable[[sqlite3.Connection], None]


def _org_scoped_full_text(con: sqlite3.Connection) -> None:
    """Rebuild the full-text index with org-scoped tokens (see ``_text``).

    The old index shared each word's list of matches across orgs. Only the index changes:
    every event keeps its row, seq, hashes and body; its text is read back from the body.
    """
    con.execute("DROP TABLE events_fts")
    # Contentless: the text lives in events.body; rowid is events.rowid. The tokens come
    # from _text, normalised already: the ascii tokenizer only splits them on the spaces
    # (it keeps every non-ASCII character, and "_" as told, inside a token).
    con.execute(
        "CREATE VIRTUAL TABLE events_fts USING fts5 "
        "(text, content='', tokenize=\"ascii tokenchars '_'\")"
    )

    def rows() -> Iterator[tuple[int, str]]:
        reader = con.execute("SELECT rowid, org_key, body FROM events ORDER BY rowid")
        while batch := reader.fetchmany(1000):
            for rowid, org_key, body in batch:
                event = row_to_stored((0, 0, b"", body)).event
                yield rowid, " ".join(org_tokens(org_key, fts_text(event)))

    con.executemany("INSERT INTO events_fts (rowid, text) VALUES (?, ?)", rows())


# Each migration runs once, in order, inside the transaction that records it. Never edit one
# that has shipped: add the next.
MIGRATIONS: tuple[tuple[int, str, Step], ...] = (
    (
        1,
        "event logs, search indexes, full text",
        """
        CREATE TABLE orgs (
            org_key INTEGER PRIMARY KEY,
            org_id  TEXT NOT NULL UNIQUE,
            size    INTEGER NOT NULL DEFAULT 0,  -- the log's length: the next seq
            max_time_us INTEGER                  -- the latest event time in the log
        );
        -- rowid order equals seq order within an org (rows are inserted in seq order with
        -- increasing rowids), so every index below is also ordered by seq within a time.
        CREATE TABLE events (
            rowid       INTEGER PRIMARY KEY,
            org_key     INTEGER NOT NULL,
            seq         INTEGER NOT NULL,
            id          BLOB NOT NULL,        -- the UUID's 16 bytes
            time_us     INTEGER NOT NULL,     -- µs since the Unix epoch, UTC
            wm_us       INTEGER NOT NULL,     -- watermark: max time_us of the org's rows so far
            received_us INTEGER NOT NULL,
            app_id      TEXT,
            actor_id    TEXT NOT NULL,
            operation   TEXT NOT NULL,
            success     INTEGER NOT NULL,
            ip          BLOB,                 -- 16 bytes; IPv4 mapped into ::ffff:0:0/96
            request_id  TEXT,
            leaf_hash   BLOB NOT NULL,
            body        BLOB NOT NULL         -- canonical JSON, exactly what leaf_hash covers
        );
        CREATE UNIQUE INDEX events_seq ON events (org_key, seq);
        CREATE UNIQUE INDEX events_id ON events (org_key, id);
        -- ip rides along so a walk in time order can test an IP range without reading rows.
        CREATE INDEX events_time ON events (org_key, time_us, ip);
        CREATE INDEX events_operation ON events (org_key, operation, time_us);
        CREATE INDEX events_actor ON events (org_key, actor_id, time_us);
        CREATE INDEX events_app ON events (org_key, app_id, time_us);
        CREATE INDEX events_ip ON events (org_key, ip, time_us) WHERE ip IS NOT NULL;
        CREATE INDEX events_request ON events (org_key, request_id) WHERE request_id IS NOT NULL;
        CREATE TABLE event_targets (
            org_key     INTEGER NOT NULL,
            target_id   TEXT NOT NULL,
            target_type TEXT NOT NULL,
            event_rowid INTEGER NOT NULL
        );
        CREATE INDEX event_targets_id ON event_targets (org_key, target_id, target_type);
        CREATE INDEX event_targets_event ON event_targets (event_rowid);
        -- Contentless: the text lives in events.body; rowid is events.rowid.
        CREATE VIRTUAL TABLE events_fts USING fts5 (
            text, content='', tokenize='unicode61 remove_diacritics 2'
        );
        """,
    ),
    (
        2,
        "API keys",
        """
        CREATE TABLE api_keys (
            id            TEXT PRIMARY KEY,
            org_id        TEXT NOT NULL,
            name          TEXT NOT NULL,
            scopes        TEXT NOT NULL,      -- JSON array
            apps          TEXT NOT NULL,      -- JSON array; empty: every app
            created_us    INTEGER NOT NULL,
            expires_us    INTEGER,
            revoked_us    INTEGER,
            secret_hash   BLOB NOT NULL       -- SHA-256 of the secret; the secret is not kept
        );
        CREATE INDEX api_keys_org ON api_keys (org_id);
        """,
    ),
    (
        3,
        "ended console sessions",
        """
        -- Sessions signed out before their cookie expires; a row goes once it would have.
        CREATE TABLE ended_sessions (
            id          TEXT PRIMARY KEY,
            expires_us  INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        4,
        "full text: org-scoped tokens, normalised in Python (NFKC, case-fold)",
        _org_scoped_full_text,
    ),
)


def migrate(con: sqlite3.Connection) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied.

    Runs in one ``BEGIN IMMEDIATE`` transaction, so concurrent openers wait for each other.
    """
    con.execute("BEGIN IMMEDIATE")
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us INTEGER NOT NULL)"
        )
        done = {row[0] for row in con.execute("SELECT version FROM schema_migrations")}
        newest = max(v for v, _, _ in MIGRATIONS)
        if done and max(done) > newest:
            raise RuntimeError(
                f"this database has schema version {max(done)}, newer than this Trailkeeper "
                f"knows ({newest}); upgrade Trailkeeper"
            )
        applied = []
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            if callable(sql):
                sql(con)
            else:
                for statement in _statements(sql):
                    con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version, name, time.time_ns() // 1000),
            )
            applied.append(version)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return applied


def _statements(script: str) -> list[str]:
    """Split a script into statements the way SQLite reads them (comments may hold ';')."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {buffer.strip()[:80]}")
    return statements
