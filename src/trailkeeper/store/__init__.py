"""The storage port and its backends. ``open_store(url)`` picks the backend from the URL."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from ._port import (
    AppActivity,
    Appended,
    Bucket,
    ConflictError,
    LogStore,
    PreparedEvent,
    StoreClosedError,
    StoreSetupError,
    StoreUnavailableError,
    Tail,
)
from ._query import Criteria, IPNetwork, Order, Position, SearchQuery, TargetRef

__all__ = [
    "AppActivity",
    "Appended",
    "Bucket",
    "ConflictError",
    "Criteria",
    "IPNetwork",
    "LogStore",
    "Order",
    "Position",
    "PreparedEvent",
    "SearchQuery",
    "StoreClosedError",
    "StoreSetupError",
    "StoreUnavailableError",
    "Tail",
    "TargetRef",
    "open_store",
]


def open_store(
    url: str, *, read_url: str | None = None, application_name: str = "trailkeeper"
) -> LogStore:
    """Open the store a database URL names.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``; the query string may set
    ``synchronous`` (``full``, the default, or ``normal``, ``extra``, ``off``).

    ``postgresql://user@host:5432/dbname`` (any libpq URL; needs the ``postgres`` extra);
    ``read_url``, PostgreSQL only, names a replica that serves searches, scans and charts;
    ``application_name`` is what PostgreSQL shows for the connections (``pg_stat_activity``)
    when the URL names none.

    Raises:
        ValueError: the URL's scheme is not one Trailkeeper knows, or it is malformed.
        StoreUnavailableError: the PostgreSQL server can't be reached.
        StoreSetupError: PostgreSQL refused to create the tables (e.g. missing privileges).
    """
    parts = urlsplit(url)
    if read_url is not None and parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("a read database is for PostgreSQL; SQLite readers share its file")
    if parts.scheme == "sqlite":
        from ._sqlite import SQLiteStore  # imported here: backends load only when used

        if parts.netloc:
            raise ValueError(f"{url!r}: write sqlite:///path (three slashes), not sqlite://host")
        path = unquote(parts.path[1:])
        if not path:
            raise ValueError(f"{url!r} names no file; write sqlite:///path/to/trailkeeper.db")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(options) - {"synchronous"}
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {sorted(unknown)}; known: synchronous")
        return SQLiteStore(path, synchronous=options.get("synchronous", "full").lower())
    if parts.scheme in ("postgresql", "postgres"):
        try:
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                f"{url!r} needs the PostgreSQL driver: pip install 'trailkeeper[postgres]'"
            ) from exc
        return PostgresStore(url, read_url=read_url, application_name=application_name)
    raise ValueError(
        f"unsupported database URL {url!r}: expected sqlite:///path or postgresql://host/db"
    )
