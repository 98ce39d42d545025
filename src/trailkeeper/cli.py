"""The ``trailkeeper`` command. Each subcommand parses its options and makes one service call."""

from __future__ import annotations

import argparse
import csv
import gc
import io
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from .config import DEFAULT_DATABASE_URL, ConfigError, Settings
from .events import EventValidationError, StoredEvent
from .filters import Filters, Match
from .keys import SCOPES
from .query import QuerySyntaxError, parse_query
from .service import AuditService, QueryError
from .store import ConflictError

#: Every subcommand; tests/test_docs.py checks that docs/cli.md documents each.
COMMANDS = ("serve", "demo", "keys", "ingest", "search", "tail", "export", "operations")


def _service(args: argparse.Namespace) -> AuditService:
    settings = Settings.from_env()
    url = args.db or settings.database_url
    return AuditService.open(url, rules=settings.rules())


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an RFC 3339 date or date-time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rows(events: Iterable[StoredEvent]) -> list[list[str]]:
    rows = []
    for stored in events:
        e = stored.event
        status = "ok" if e.success else f"FAILED {e.error.code if e.error else ''}".strip()
        targets = ", ".join(f"{t.type}:{t.id}" for t in e.targets)
        rows.append(
            [
                e.time.strftime("%Y-%m-%d %H:%M:%S"),
                e.actor.name or e.actor.id,
                e.operation,
                targets,
                e.source_ip or "",
                status,
            ]
        )
    return rows


def _print_table(events: Sequence[StoredEvent]) -> None:
    header = ["WHEN (UTC)", "WHO", "WHAT", "TARGETS", "WHERE", "STATUS"]
    rows = _rows(events)
    widths = [min(40, max(len(r[i]) for r in [header, *rows])) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell[:40].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _write(events: Sequence[StoredEvent], fmt: str) -> None:
    if fmt == "table":
        _print_table(events)
    elif fmt == "json":
        sys.stdout.write(
            orjson.dumps([e.to_dict() for e in events], option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    elif fmt == "jsonl":
        for e in events:
            sys.stdout.write(orjson.dumps(e.to_dict()).decode() + "\n")
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["time", "actor", "operation", "targets", "source_ip", "status"])
        writer.writerows(_rows(events))
        sys.stdout.write(out.getvalue())


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import week_of_activity

    with _service(args) as service:
        if service.size("acme") == 0:
            batches: dict[str, list[dict[str, object]]] = {}
            for org, event in week_of_activity(datetime.now(UTC)):
                batches.setdefault(org, []).append(event)
            for org, events in batches.items():
                for start in range(0, len(events), 1000):
                    service.ingest(org, events[start : start + 1000])
        for org in ("acme", "globex"):
            page = service.search(org, limit=10)
            failures = service.search(org, Filters(success=False), limit=1000).events
            print(f"\n{org}: {service.size(org)} events, {len(failures)} failed; newest 10:\n")
            _print_table(page.events)
        print(f"\nThe log is in {args.db or Settings.from_env().database_url}. Try:")
        print(f"  {_me()} search --org acme 'operation:model.* status:failure'")
        if args.no_serve:
            return 0
        _, secret = service.create_key("acme", ["events:read"], name="demo reader")
        base = f"http://{args.host}:{args.port}"
        print(f"\nServing the API on {base} (docs: {base}/docs); Ctrl-C stops it.")
        print("A read key for org acme (the secret is shown once):")
        print(f"  curl -H 'Authorization: Bearer {secret}' '{base}/v1/events?limit=5'")
        sys.stdout.flush()
        _run_server(service, args.host, args.port, "warning")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    accepted = duplicates = 0
    with source, _service(args) as service:
        batch: list[dict[str, object]] = []
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                batch.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise SystemExit(f"trailkeeper: line {number}: not JSON: {exc}") from None
            if len(batch) == args.batch:
                result = service.ingest(args.org, batch)
                accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
                batch = []
        if batch:
            result = service.ingest(args.org, batch)
            accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    print(f"accepted {accepted}, duplicates {duplicates}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    match = Match(
        operations=tuple(args.operation),
        actors=tuple(args.actor),
        targets=tuple(args.target),
        apps=tuple(args.app),
        source_ips=tuple(args.ip),
        request_ids=tuple(args.request),
    )
    success = True if args.succeeded else False if args.failed else None
    text = tuple(args.text or ())
    filters = Filters(match=match, success=success, since=args.since, until=args.until, text=text)
    if args.query:
        filters = filters.combine(parse_query(args.query))
    with _service(args) as service:
        page = service.search(args.org, filters, order=args.order, limit=args.limit)
        _write(page.events, args.format)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    host = args.host or settings.host
    port = args.port or settings.port
    read_db = args.read_db or settings.read_database_url
    if args.workers != 1 or read_db:
        from .server._factory import serve_processes

        print(f"Trailkeeper on http://{host}:{port} ({args.workers} workers)", flush=True)
        serve_processes(
            args.db or settings.database_url, read_db, host, port,
            workers=args.workers, log_level=args.log_level,
        )  # fmt: skip
        return 0
    with _service(args) as service:
        print(f"Trailkeeper on http://{host}:{port} (API docs at /docs)", flush=True)
        _run_server(service, host, port, args.log_level)
    return 0


def _run_server(service: AuditService, host: str, port: int, log_level: str) -> None:
    # Imported here: the core and the other commands work without the server extra.
    import uvicorn

    from .server import create_app

    app = create_app(service)
    # The imports and the app are ~all of the heap and live as long as the process: moved
    # out of the collector's generations, they are not walked again on every collection.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _me() -> str:
    """This command as the user can run it again (``.venv/bin/trailkeeper`` from make)."""
    path = sys.argv[0]
    return os.path.relpath(path) if os.path.basename(path) == "trailkeeper" else "trailkeeper"


def _duration(value: str) -> timedelta:
    match = re.fullmatch(r"(\d{1,5})([hdw])", value)
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r}: write a duration like 12h, 90d or 8w")
    unit = {"h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def cmd_keys(args: argparse.Namespace) -> int:
    with _service(args) as service:
        if args.action == "create":
            key, secret = service.create_key(
                args.org, args.scope, apps=args.app, name=args.name, expires_in=args.expires
            )
            expiry = key.expires_at.isoformat() if key.expires_at else "never"
            scopes = ", ".join(key.scopes)
            print(f"key {key.id} for org {key.org_id}: scopes {scopes}; expires {expiry}")
            print("the secret is shown once; keep it safe:")
            print(secret)
        elif args.action == "list":
            for key in service.list_keys(args.org):
                state = "revoked" if key.revoked_at else "active"
                apps = ",".join(key.apps) or "all apps"
                print(f"{key.id}  {state:8} {','.join(key.scopes):28} {apps:20} {key.name}")
        else:
            key = service.revoke_key(args.org, args.key_id)
            print(f"revoked {key.id}")
    return 0


def _filters(args: argparse.Namespace) -> Filters:
    return parse_query(args.query) if args.query else Filters()


def cmd_tail(args: argparse.Namespace) -> int:
    with _service(args) as service:
        filters = _filters(args)
        after = service.size(args.org) - 1 - args.last
        while True:
            for stored in service.scan(args.org, filters, after_seq=after):
                _write([stored], args.format if args.format != "table" else "jsonl")
                sys.stdout.flush()
                after = stored.seq
            if args.once:
                return 0
            time.sleep(args.interval)


def cmd_export(args: argparse.Namespace) -> int:
    from .export import encode

    with _service(args) as service:
        total = service.size(args.org)
        events = service.scan(args.org, _filters(args))
        out = sys.stdout.buffer if args.output == "-" else open(args.output, "wb")  # noqa: SIM115
        written = 0

        def counted() -> Iterable[StoredEvent]:
            nonlocal written
            for stored in events:
                written += 1
                yield stored

        with out:
            for chunk in encode(counted(), args.format):
                out.write(chunk)
                if args.output != "-" and total:
                    done = min(written, total)
                    bar = "#" * (30 * done // total)
                    print(f"\r[{bar:30}] {done:,} events", end="", file=sys.stderr, flush=True)
        if args.output != "-":
            print(f"\nexported {written:,} events to {args.output}", file=sys.stderr)
    return 0


def cmd_operations(args: argparse.Namespace) -> int:
    from .events import Catalogue

    for op in Catalogue.default():
        clarifai = f"{op.clarifai.name}={op.clarifai.number}" if op.clarifai else "-"
        print(f"{op.name:34} {op.description:44} {clarifai}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trailkeeper", description="A tamper-evident, searchable audit log."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--db",
            metavar="URL",
            help=f"database URL (default: $TRAILKEEPER_DATABASE_URL or {DEFAULT_DATABASE_URL})",
        )
        return p

    demo = with_db(sub.add_parser("demo", help="load a week of demo activity and serve it"))
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-serve", action="store_true", help="load and show, then stop")
    demo.set_defaults(func=cmd_demo)

    ingest = with_db(sub.add_parser("ingest", help="ingest events from a JSON Lines file"))
    ingest.add_argument("--org", required=True)
    ingest.add_argument("file", help="a .jsonl file, or - for standard input")
    ingest.add_argument("--batch", type=int, default=1000, help="events per batch (default 1000)")
    ingest.set_defaults(func=cmd_ingest)

    search = with_db(sub.add_parser("search", help="search one org's log"))
    search.add_argument("--org", required=True)
    search.add_argument(
        "query", nargs="?", help="the query language, e.g. 'operation:model.* since:7d'"
    )
    for flag, dest, helptext in (
        ("--operation", "operation", "name or resource.* pattern"),
        ("--actor", "actor", "actor id"),
        ("--target", "target", "type:id or id"),
        ("--app", "app", "app id"),
        ("--ip", "ip", "IP address or CIDR"),
        ("--request", "request", "request id"),
    ):
        search.add_argument(
            flag, dest=dest, action="append", default=[], help=f"{helptext} (repeatable)"
        )
    status = search.add_mutually_exclusive_group()
    status.add_argument("--failed", action="store_true", help="only failures")
    status.add_argument("--succeeded", action="store_true", help="only successes")
    search.add_argument("--since", type=_time, help="RFC 3339, inclusive")
    search.add_argument("--until", type=_time, help="RFC 3339, exclusive")
    search.add_argument("--text", action="append", help="free-text word or phrase (repeatable)")
    search.add_argument("--order", choices=["desc", "asc"], default="desc")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--format", choices=["table", "json", "jsonl", "csv"], default="table")
    search.set_defaults(func=cmd_search)

    serve = with_db(sub.add_parser("serve", help="run the HTTP API"))
    serve.add_argument("--host", help="default: $TRAILKEEPER_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default: $TRAILKEEPER_PORT or 8000")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes on the port (default 1)"
    )
    serve.add_argument(
        "--read-db",
        metavar="URL",
        help="PostgreSQL replica for searches, exports (default: $TRAILKEEPER_READ_DATABASE_URL)",
    )
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="make a key; prints its secret last")
    create.add_argument("--org", required=True)
    create.add_argument("--scope", action="append", required=True, choices=list(SCOPES))
    create.add_argument("--app", action="append", default=[], help="limit a read key to apps")
    create.add_argument("--name", default="")
    create.add_argument("--expires", type=_duration, help="e.g. 90d, 12h, 8w (default: never)")
    listing = key_actions.add_parser("list", help="the org's keys")
    listing.add_argument("--org", required=True)
    revoke = key_actions.add_parser("revoke", help="revoke a key")
    revoke.add_argument("--org", required=True)
    revoke.add_argument("key_id")
    for p in (create, listing, revoke):
        with_db(p)
    keys.set_defaults(func=cmd_keys)

    tail = with_db(sub.add_parser("tail", help="follow new events in seq order"))
    tail.add_argument("--org", required=True)
    tail.add_argument("query", nargs="?", help="the query language")
    tail.add_argument("--last", type=int, default=10, help="start with the last N events")
    tail.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    tail.add_argument("--format", choices=["jsonl", "csv", "json"], default="jsonl")
    tail.add_argument("--once", action="store_true", help="print what is there and stop")
    tail.set_defaults(func=cmd_tail)

    export = with_db(sub.add_parser("export", help="export an org's events in seq order"))
    export.add_argument("--org", required=True)
    export.add_argument("query", nargs="?", help="the query language")
    export.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    export.add_argument("--output", default="-", help="a file, or - for standard output")
    export.set_defaults(func=cmd_export)

    ops = sub.add_parser("operations", help="list the operation catalogue")
    ops.set_defaults(func=cmd_operations)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (
        EventValidationError,
        QueryError,
        QuerySyntaxError,
        ConflictError,
        ConfigError,
        KeyError,
        ValueError,
    ) as exc:
        print(f"trailkeeper: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
