"""How an event becomes SQLite rows, and how a query becomes SQL."""

from __future__ import annotations

from typing import Any

from ..events import to_micros
from ..events._ip import ip_key
from ._port import PreparedEvent
from ._query import Criteria, SearchQuery, network_ranges
from ._text import fts_text, org_tokens, query_tokens

EVENT_INSERT = (
    "INSERT INTO events (rowid, org_key, seq, id, time_us, wm_us, received_us, app_id, "
    "actor_id, operation, success, ip, request_id, leaf_hash, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
TARGET_INSERT = (
    "INSERT INTO event_targets (org_key, target_id, target_type, event_rowid) VALUES (?, ?, ?, ?)"
)
FTS_INSERT = "INSERT INTO events_fts (rowid, text) VALUES (?, ?)"

EventRow = tuple[Any, ...]


def event_rows(
    prepared: PreparedEvent, org_key: int, seq: int, rowid: int, received_us: int, wm_us: int
) -> tuple[EventRow, list[EventRow], EventRow]:
    """The events row, the event_targets rows and the full-text row of one event.

    ``wm_us`` is the org's latest event time before this one; the row keeps the larger of it
    and its own time (see ``SQLiteStore._search_text``).
    """
    event = prepared.event
    time_us = to_micros(event.time)
    row = (
        rowid,
        org_key,
        seq,
        bytes.fromhex(event.id.replace("-", "")),
        time_us,
        max(wm_us, time_us),
        received_us,
        event.app_id,
        event.actor.id,
        event.operation,
        1 if event.success else 0,
        ip_key(event.source_ip) if event.source_ip else None,
        event.request_id,
        prepared.leaf_hash,
        prepared.canonical,
    )
    targets = [(org_key, t.id, t.type, rowid) for t in event.targets]
    return row, targets, (rowid, " ".join(org_tokens(org_key, fts_text(event))))


def fts_match(org_key: int, terms: tuple[str, ...]) -> str | None:
    """An FTS5 query requiring every term, each a quoted phrase of the org's tokens (see
    ``_text``); ``None`` when a term has no word, so nothing matches."""
    found = query_tokens(org_key, terms)
    if found is None:
        return None
    # Tokens are letters, digits and the prefix's "_": nothing to escape inside the quotes.
    return " ".join('"' + " ".join(tokens) + '"' for tokens in found)


def _criteria_sql(criteria: Criteria, org_key: int) -> tuple[list[str], list[Any]]:
    sql: list[str] = []
    params: list[Any] = []

    def one_of(column: str, values: tuple[str, ...]) -> None:
        if values:
            sql.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

    one_of("e.operation", criteria.operations)
    one_of("e.actor_id", criteria.actors)
    one_of("e.app_id", criteria.apps)
    one_of("e.request_id", criteria.request_ids)
    if criteria.source_ips:
        ranges = []
        for network in criteria.source_ips:
            for lo, hi in network_ranges(network):
                ranges.append("e.ip BETWEEN ? AND ?")
                params.extend((lo, hi))
        sql.append("(" + " OR ".join(ranges) + ")")
    if criteria.targets:
        alternatives = []
        target_params: list[Any] = [org_key]
        for ref in criteria.targets:
            if ref.type is None:
                alternatives.append("t.target_id = ?")
                target_params.append(ref.id)
            else:
                alternatives.append("(t.target_id = ? AND t.target_type = ?)")
                target_params.extend((ref.id, ref.type))
        sql.append(
            "e.rowid IN (SELECT t.event_rowid FROM event_targets t WHERE t.org_key = ? AND ("
            + " OR ".join(alternatives)
            + "))"
        )
        params.extend(target_params)
    return sql, params


def _time_range(query: SearchQuery, prefix: str) -> tuple[list[str], list[Any]]:
    """Conditions for ``since`` (inclusive) and ``until`` (exclusive)."""
    sql: list[str] = []
    params: list[Any] = []
    if query.since is not None:
        sql.append(f"{prefix}time_us >= ?")
        params.append(to_micros(query.since))
    if query.until is not None:
        sql.append(f"{prefix}time_us < ?")
        params.append(to_micros(query.until))
    return sql, params


def where_clause(
    org_key: int,
    query: SearchQuery,
    *,
    with_position: bool,
    with_text: bool = True,
) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and its parameters for ``query``.

    ``with_text`` False leaves the free-text condition to the caller.
    """
    sql = ["e.org_key = ?"]
    params: list[Any] = [org_key]
    for criteria in (query.include, *query.also):
        inc_sql, inc_params = _criteria_sql(criteria, org_key)
        sql += inc_sql
        params += inc_params
    if query.exclude:
        exc_sql, exc_params = _criteria_sql(query.exclude, org_key)
        # COALESCE: a NULL column (no app, no IP) matches no excluded value, so it stays.
        sql += [f"COALESCE({clause}, 0) = 0" for clause in exc_sql]
        params += exc_params
    if query.success is not None:
        sql.append("e.success = ?")
        params.append(1 if query.success else 0)
    time_sql, time_params = _time_range(query, "e.")
    sql += time_sql
    params += time_params
    if query.text and with_text:
        match = fts_match(org_key, query.text)
        if match is None:
            sql.append("0")  # a constant: SQLite tests it once, before reading a row
        else:
            sql.append("e.rowid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)")
            params.append(match)
    if with_position and query.after is not None:
        # Written as a range plus a tie-break so the time index bounds the scan.
        op = "<" if query.order == "desc" else ">"
        sql.append(f"e.time_us {op}= ? AND (e.time_us {op} ? OR e.seq {op} ?)")
        params.extend((query.after.time_us, query.after.time_us, query.after.seq))
    return " AND ".join(sql), params


# An index is "selective" for a query when fewer than this many events match its filter:
# then reading those and sorting beats walking the time index (measured in bench/search.py:
# the walk reads about limit / density rows; the crossover is near sqrt(limit * org size)).
SELECTIVE = 2000


#: (index or None, capped COUNT query, its parameters, a key for caching its count). The
#: key rounds the time bounds down to the minute: a relative range (``since:7d``) moves
#: every call, and a count a minute off still picks the same plan.
Probe = tuple[str | None, str, list[Any], tuple[Any, ...]]


def in_time_order(query: SearchQuery) -> str | None:
    """An index that yields the query's matches already in time order, if there is one.

    One value of a filter whose index is (org_key, column, time_us) reads in time order:
    a page costs a page of rows, however many events match.
    """
    for criteria in (query.include, *query.also):
        for values, index in (
            (criteria.actors, "events_actor"),
            (criteria.operations, "events_operation"),
            (criteria.apps, "events_app"),
        ):
            if len(values) == 1:
                return index
    return None


def index_probes(org_key: int, query: SearchQuery, cap: int = SELECTIVE) -> list[Probe]:
    """For each filter with an index of its own: (index, capped COUNT query, parameters).

    The index is ``None`` for filters read through a subquery of rowids (targets, free
    text): the events table is then read by rowid, not through an index.
    """
    probes: list[Probe] = []
    time_sql, time_params = _time_range(query, "")

    minutes = tuple(t // 60_000_000 for t in time_params)

    def probe(index: str, condition: str, params: list[Any], timed: bool = True) -> None:
        where = " AND ".join(["org_key = ?", condition, *(time_sql if timed else [])])
        inner = f"SELECT 1 FROM events INDEXED BY {index} WHERE {where} LIMIT {cap}"
        sql = f"SELECT COUNT(*) FROM ({inner})"
        key = (sql, org_key, *params, *(minutes if timed else ()))
        probes.append((index, sql, [org_key, *params, *(time_params if timed else [])], key))

    def marks(n: int) -> str:
        return ", ".join("?" * n)

    for criteria in (query.include, *query.also):
        if criteria.operations:
            ops = criteria.operations
            probe("events_operation", f"operation IN ({marks(len(ops))})", list(ops))
        if criteria.actors:
            probe(
                "events_actor",
                f"actor_id IN ({marks(len(criteria.actors))})",
                list(criteria.actors),
            )
        if criteria.apps:
            probe("events_app", f"app_id IN ({marks(len(criteria.apps))})", list(criteria.apps))
        if criteria.request_ids:
            ids = criteria.request_ids
            probe("events_request", f"request_id IN ({marks(len(ids))})", list(ids), timed=False)
        if criteria.source_ips:
            ranges: list[str] = []
            bounds: list[Any] = []
            for network in criteria.source_ips:
                for lo, hi in network_ranges(network):
                    ranges.append("ip BETWEEN ? AND ?")
                    bounds.extend((lo, hi))
            probe("events_ip", "ip IS NOT NULL AND (" + " OR ".join(ranges) + ")", bounds)
        if criteria.targets:
            sql, params = _criteria_sql(Criteria(targets=criteria.targets), org_key)
            subquery = sql[0].removeprefix("e.rowid IN (").removesuffix(")")
            count_sql = f"SELECT COUNT(*) FROM ({subquery} LIMIT {cap})"
            probes.append((None, count_sql, params, (count_sql, *params)))
    match = fts_match(org_key, query.text) if query.text else None
    if match is not None:
        count_sql = (
            "SELECT COUNT(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ? "
            f"LIMIT {cap})"
        )
        probes.append((None, count_sql, [match], (count_sql, match)))
    return probes
