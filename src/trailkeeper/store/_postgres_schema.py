"""The PostgreSQL schema: numbered migrations, and the monthly partitions of the events table.

The events table is range-partitioned by event time (µs since the epoch, UTC), one partition
per calendar month, so that a search over a time range reads only its months and retention
drops whole months (``DROP TABLE``) instead of deleting rows. ``leaves`` is not partitioned: it
is the log itself (org, seq, id, leaf hash), which retention keeps so that old proofs stay
valid, and its unique keys are what make ids deduplicate and seqs unique across partitions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from ._postgres_rows import tsvector_literal
from ._rows import row_to_stored
from ._text import fts_text

Con = psycopg.Connection[tuple[object, ...]]
#: A migration's work: an SQL script, or a function for what SQL alone can't do.
Step = str | Callable[[Con], None]


def _org_scoped_full_text(con: Con) -> None:
    """Re-tokenise every event's ``words`` with org-scoped tokens (see ``_text``).

    The old lexemes were shared by every org, so the GIN index's list of a word held every
    org's events. Only the index changes: ``words`` is computed again from the body; the
    body, seq and hashes stay as they are. The index is dropped and built again after the
    rows: cheaper than updating it row by row.
    """
    con.execute("DROP INDEX events_words")
    con.execute(
        "CREATE TEMP TABLE new_words (org_key integer, time_us bigint, seq bigint, "
        "words tsvector) ON COMMIT DROP"
    )
    with con.cursor(name="trailkeeper_words") as reader:  # server-side: a batch at a time
        reader.execute("SELECT org_key, time_us, seq, body FROM events")
        while batch := reader.fetchmany(5000):
            lines = []
            for org_key, time_us, seq, body in batch:
                event = row_to_stored((0, 0, b"", body)).event
                words = tsvector_literal(int(str(org_key)), fts_text(event))
                lines.append(f"{org_key}\t{time_us}\t{seq}\t{words}\n")
            with con.cursor().copy("COPY new_words FROM STDIN") as copy:
                copy.write("".join(lines).encode())
    con.execute(
        "UPDATE events e SET words = n.words FROM new_words n "
        "WHERE e.org_key = n.org_key AND e.time_us = n.time_us AND e.seq = n.seq"
    )
    con.execute("CREATE INDEX events_words ON events USING gin (words)")


# Each migration runs once, in order, inside the transaction that records it. Never edit one
# that has shipped: add the next.
MIGRATIONS: tuple[tuple[int, str, Step], ...] = (
    (
        1,
        "org log heads, leaves, partitioned events, search indexes, full text, API keys",
        """
        CREATE TABLE orgs (
            org_key     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            org_id      text NOT NULL UNIQUE,
            size        bigint NOT NULL DEFAULT 0   -- the log's length: the next seq
        );
        CREATE TABLE leaves (
            org_key     integer NOT NULL,
            seq         bigint NOT NULL,
            id          uuid NOT NULL,
            time_us     bigint NOT NULL,            -- finds the event's partition
            leaf_hash   bytea NOT NULL,
            PRIMARY KEY (org_key, seq),
            UNIQUE (org_key, id)
        );
        CREATE TABLE events (
            org_key     integer NOT NULL,
            seq         bigint NOT NULL,
            time_us     bigint NOT NULL,            -- µs since the Unix epoch, UTC
            received_us bigint NOT NULL,
            app_id      text,
            actor_id    text NOT NULL,
            operation   text NOT NULL,
            success     boolean NOT NULL,
            ip          bytea,                      -- 16 bytes; IPv4 mapped into ::ffff:0:0/96
            request_id  text,
            targets     text[] NOT NULL,            -- 'i:id' and 't:type id' of every target
            words       tsvector NOT NULL,          -- free text, tokenised by _postgres_rows
            leaf_hash   bytea NOT NULL,
            body        bytea NOT NULL              -- canonical JSON, exactly what leaf_hash covers
        ) PARTITION BY RANGE (time_us);
        -- Every time-ordered index ends in seq, the tie-break of the search order, so a page
        -- is read off an index in order and a cursor is a range on it.
        CREATE INDEX events_time ON events (org_key, time_us, seq);
        CREATE INDEX events_seq ON events (org_key, seq);
        CREATE INDEX events_operation ON events (org_key, operation, time_us, seq);
        CREATE INDEX events_actor ON events (org_key, actor_id, time_us, seq);
        CREATE INDEX events_app ON events (org_key, app_id, time_us, seq);
        CREATE INDEX events_ip ON events (org_key, ip) WHERE ip IS NOT NULL;
        CREATE INDEX events_request ON events (org_key, request_id) WHERE request_id IS NOT NULL;
        CREATE INDEX events_targets ON events USING gin (targets);
        CREATE INDEX events_words ON events USING gin (words);
        CREATE TABLE api_keys (
            id            text PRIMARY KEY,
            org_id        text NOT NULL,
            name          text NOT NULL,
            scopes        text NOT NULL,            -- JSON array
            apps          text NOT NULL,            -- JSON array; empty: every app
            created_us    bigint NOT NULL,
            expires_us    bigint,
            revoked_us    bigint,
            secret_hash   bytea NOT NULL            -- SHA-256 of the secret; the secret is not kept
        );
        CREATE INDEX api_keys_org ON api_keys (org_id);
        """,
    ),
    (
        2,
        "ended console sessions",
        """
        -- Sessions signed out before their cookie expires; a row goes once it would have.
        CREATE TABLE ended_sessions (
            id          text PRIMARY KEY,
            expires_us  bigint NOT NULL
        );
        """,
    ),
    (
        3,
        "events_old: the default partition, for events older than the monthly partitions",
        """
        CREATE TABLE events_old PARTITION OF events DEFAULT
            WITH (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500);
        """,
    ),
    (
        4,
        "full text: org-scoped tokens, normalised in Python (NFKC, case-fold)",
        _org_scoped_full_text,
    ),
)

# Both locks are per database; a schema of its own (search_path) shares them, harmlessly.
_MIGRATION_LOCK = 0x7472_6B01
_PARTITION_LOCK = 0x7472_6B02
#: Months of partitions kept ready ahead of the current one.
MONTHS_AHEAD = 2
#: How far back a month gets a partition of its own. An older event goes to ``events_old``
#: (the default partition): a batch of events in 300 old months would otherwise create 300
#: partitions, and every search plans over every partition.
MONTHS_BACK = 24
OLD_PARTITION = "events_old"
# Partitions are analysed after 2 % of their rows change (the default is 10 %): a month
# grows from nothing, and plans must follow it while it does.
_PARTITION_OPTIONS = "autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def migrate(con: Con) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied.

    One transaction under an advisory lock, so concurrent servers wait for each other.
    """
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version integer PRIMARY KEY, name text NOT NULL, applied_at_us bigint NOT NULL)"
        )
        done = {int(str(row[0])) for row in con.execute("SELECT version FROM schema_migrations")}
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
                con.execute(sql.encode())  # several statements: sent as one simple query
            con.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                (version, name, time.time_ns() // 1000),
            )
            applied.append(version)
    return applied


def month_of(time_us: int) -> int:
    """The month (``year * 12 + month - 1``) that a time falls in."""
    moment = _EPOCH + timedelta(microseconds=time_us)
    return moment.year * 12 + moment.month - 1


def month_bounds(month: int) -> tuple[int, int]:
    """The first µs of ``month`` and of the month after it."""

    def start(m: int) -> int:
        return (datetime(m // 12, m % 12 + 1, 1, tzinfo=UTC) - _EPOCH) // _US

    upper = start(month + 1) if month + 1 < 10000 * 12 else 2**63 - 1
    return start(month), upper


def partition_name(month: int) -> str:
    """``events_p202611`` for November 2026."""
    return f"events_p{month // 12:04d}{month % 12 + 1:02d}"


def existing_months(con: psycopg.Connection[tuple[object, ...]]) -> set[int]:
    """The months that have a partition of the events table (in the search_path's schema)."""
    rows = con.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass"
    ).fetchall()
    months = set()
    for (name,) in rows:
        text = str(name)
        if text.startswith("events_p") and text[8:].isdigit() and len(text) == 14:
            months.add(int(text[8:12]) * 12 + int(text[12:14]) - 1)
    return months


def create_partitions(con: psycopg.Connection[tuple[object, ...]], months: set[int]) -> None:
    """Create the partitions of ``months`` that do not exist yet.

    Under an advisory lock, so servers creating the same month at once do not collide; each
    partition inherits every index of the events table. A month that ``events_old`` holds
    rows of already (stored while it was past ``MONTHS_BACK``, or after its partition was
    dropped) stays there: PostgreSQL refuses the partition.
    """
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
        have = existing_months(con)
        for month in sorted(months - have):
            low, high = month_bounds(month)
            try:
                with con.transaction():  # a savepoint: the other months go on
                    con.execute(
                        f"CREATE TABLE {partition_name(month)} PARTITION OF events "
                        f"FOR VALUES FROM ({low}) TO ({high}) WITH ({_PARTITION_OPTIONS})".encode()
                    )
            except psycopg.errors.CheckViolation:
                pass
