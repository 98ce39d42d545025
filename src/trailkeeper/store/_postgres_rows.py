"""How an event becomes a PostgreSQL row, and how a query becomes SQL.

Free text is tokenised by ``_text``, not by PostgreSQL's text-search parser: that parser keeps
host names, e-mail addresses and version numbers whole, and normalises differently. The org's
tokens (``17_zebra``) go into a ``tsvector`` with their positions, so a quoted phrase matches
adjacent words in order, and the GIN index's list for a token holds one org's events only.
"""

from __future__ import annotations

import re
from typing import Any

from ..events import to_micros
from ..events._ip import ip_key
from ._port import PreparedEvent
from ._query import Criteria, SearchQuery, network_ranges
from ._text import fts_text, org_tokens, query_tokens

EVENT_COLUMNS = (
    "org_key, seq, time_us, received_us, app_id, actor_id, operation, success, ip, "
    "request_id, targets, words, leaf_hash, body"
)
LEAF_COLUMNS = "org_key, seq, id, time_us, leaf_hash"

# tsvector positions stop at 16383 (lexemes at 2046 bytes: _text cuts words to fit).
_MAX_POSITION = 16383


def tsvector_literal(org_key: int, text: str) -> str:
    """``text`` as a tsvector literal of the org's tokens, each with the positions it holds
    (from 1)."""
    found = org_tokens(org_key, text)
    if len(found) < _MAX_POSITION and len(set(found)) == len(found):  # the common case
        return " ".join([f"'{w}':{i}" for i, w in enumerate(found, 1)])
    positions: dict[str, str] = {}
    for position, word in enumerate(found, 1):
        # PostgreSQL drops the repeats that clamping the position makes.
        at = str(position if position < _MAX_POSITION else _MAX_POSITION)
        held = positions.get(word)
        positions[word] = at if held is None else f"{held},{at}"
    # Tokens are letters, digits and "_" only: no quote or backslash needs escaping.
    return " ".join([f"'{w}':{p}" for w, p in positions.items()])


def tsquery_literal(org_key: int, terms: tuple[str, ...]) -> str | None:
    """A tsquery of the org's tokens that needs every term, each a word or a phrase; ``None``
    if one has no word (such a term matches nothing, as in the SQLite backend)."""
    found = query_tokens(org_key, terms)
    if found is None:
        return None
    return " & ".join("(" + " <-> ".join(f"'{w}'" for w in tokens) + ")" for tokens in found)


def target_keys(targets: Any) -> list[str]:
    """What the targets index holds for an event: each target's id, and its type and id
    (a space parts them: neither may hold one)."""
    keys: list[str] = []
    for target in targets:
        keys += [f"i:{target.id}", f"t:{target.type} {target.id}"]
    return keys


_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value if _COPY_SPECIAL.search(value) is None else value.translate(_COPY_ESCAPE)


def _targets(targets: Any) -> str:
    """The targets column (see ``target_keys``) as a COPY text array literal."""
    plain = ",".join([f'"i:{t.id}","t:{t.type} {t.id}"' for t in targets])
    if "\\" not in plain and plain.count('"') == 4 * len(targets):  # nothing to escape
        return _text("{" + plain + "}")
    quoted = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in target_keys(targets)]
    return _text("{" + ",".join(quoted) + "}")


def copy_leaf(prepared: PreparedEvent) -> str:
    """An event's line for COPY (text format) into leaves, without its first two columns
    (org_key, seq), which the caller puts in front once it holds the org's head."""
    return (
        f"{prepared.event.id}\t{to_micros(prepared.event.time)}\t\\\\x{prepared.leaf_hash.hex()}\n"
    )


def copy_row(prepared: PreparedEvent, received_us: int, org_key: int) -> str:
    """An event's line for COPY (text format) into events, without its first two columns
    (org_key, seq), as ``copy_leaf``.

    Formatted here as text: the driver's ``write_row``, row by row, measured slower
    (bench/RESULTS.md).
    """
    event = prepared.event
    ip = "\\\\x" + ip_key(event.source_ip).hex() if event.source_ip else "\\N"
    row = "\t".join(
        (
            str(to_micros(event.time)),
            str(received_us),
            _text(event.app_id),
            _text(event.actor.id),
            _text(event.operation),
            "t" if event.success else "f",
            ip,
            _text(event.request_id),
            _targets(event.targets),
            _text(tsvector_literal(org_key, fts_text(event))),
            "\\\\x" + prepared.leaf_hash.hex(),
            "\\\\x" + prepared.canonical.hex(),
        )
    )
    return f"{row}\n"


def _values(values: tuple[str, ...]) -> list[str]:
    # Stored ids never hold a NUL (validation refuses it) and PostgreSQL text can't: a
    # value with one matches nothing, so it is left out rather than sent.
    return [v for v in values if "\x00" not in v]


def _criteria_sql(criteria: Criteria) -> tuple[list[str], list[Any]]:
    sql: list[str] = []
    params: list[Any] = []
    for column, values in (
        ("e.operation", criteria.operations),
        ("e.actor_id", criteria.actors),
        ("e.app_id", criteria.apps),
        ("e.request_id", criteria.request_ids),
    ):
        if values:
            kept = _values(values)
            if len(kept) == 1:  # '=' lets the planner use the column's statistics best
                sql.append(f"{column} = %s")
                params.append(kept[0])
            else:
                sql.append(f"{column} = ANY(%s::text[])")
                params.append(kept)
    if criteria.source_ips:
        ranges = []
        for network in criteria.source_ips:
            for lo, hi in network_ranges(network):
                ranges.append("e.ip BETWEEN %s AND %s")
                params.extend((lo, hi))
        sql.append("(" + (" OR ".join(ranges) or "false") + ")")
    if criteria.targets:
        keys = [
            f"i:{ref.id}" if ref.type is None else f"t:{ref.type} {ref.id}"
            for ref in criteria.targets
        ]
        sql.append("e.targets && %s::text[]")
        params.append(_values(tuple(keys)))
    return sql, params


def where_clause(org_key: int, query: SearchQuery, *, with_position: bool) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword) and its parameters for ``query``."""
    sql = ["e.org_key = %s"]
    params: list[Any] = [org_key]
    for criteria in (query.include, *query.also):
        inc_sql, inc_params = _criteria_sql(criteria)
        sql += inc_sql
        params += inc_params
    if query.exclude:
        exc_sql, exc_params = _criteria_sql(query.exclude)
        # IS NOT TRUE: a NULL column (no app, no IP) matches no excluded value, so it stays.
        sql += [f"({clause}) IS NOT TRUE" for clause in exc_sql]
        params += exc_params
    if query.success is not None:
        sql.append("e.success" if query.success else "NOT e.success")
    if query.since is not None:
        sql.append("e.time_us >= %s")
        params.append(to_micros(query.since))
    if query.until is not None:
        sql.append("e.time_us < %s")
        params.append(to_micros(query.until))
    if query.text:
        tsquery = tsquery_literal(org_key, query.text)
        if tsquery is None:
            sql.append("false")
        else:
            sql.append("e.words @@ %s::tsquery")
            params.append(tsquery)
    if with_position and query.after is not None:
        op = "<" if query.order == "desc" else ">"
        sql.append(f"(e.time_us, e.seq) {op} (%s, %s)")
        params.extend((query.after.time_us, query.after.seq))
    return " AND ".join(sql), params
