"""The ``trailkeeper`` command. Each subcommand parses its options and makes one service call."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import orjson

from .config import DEFAULT_DATABASE_URL, ConfigError, Settings
from .events import EventValidationError, StoredEvent
from .filters import Filters, Match
from .service import AuditService, QueryError
from .store import ConflictError

#: Every subcommand; tests/test_docs.py checks that docs/cli.md documents each.
COMMANDS = ("demo", "ingest", "search", "operations")


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
        print("  trailkeeper search --org acme --operation 'model.*' --failed")
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
    with _service(args) as service:
        page = service.search(args.org, filters, order=args.order, limit=args.limit)
        _write(page.events, args.format)
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

    demo = with_db(sub.add_parser("demo", help="load a week of demo activity and show it"))
    demo.set_defaults(func=cmd_demo)

    ingest = with_db(sub.add_parser("ingest", help="ingest events from a JSON Lines file"))
    ingest.add_argument("--org", required=True)
    ingest.add_argument("file", help="a .jsonl file, or - for standard input")
    ingest.add_argument("--batch", type=int, default=1000, help="events per batch (default 1000)")
    ingest.set_defaults(func=cmd_ingest)

    search = with_db(sub.add_parser("search", help="search one org's log"))
    search.add_argument("--org", required=True)
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

    ops = sub.add_parser("operations", help="list the operation catalogue")
    ops.set_defaults(func=cmd_operations)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (EventValidationError, QueryError, ConflictError, ConfigError, ValueError) as exc:
        print(f"trailkeeper: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
