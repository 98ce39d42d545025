"""Commands that work on a database directly: serve, demo, keys, ingest."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer

from ..config import DEFAULT_DATABASE_URL, Settings
from ..keys import SCOPES
from ..service import AuditService
from ..store import open_store
from . import _render
from ._app import app, imports, keys

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help=f"Database URL (default: $TRAILKEEPER_DATABASE_URL or {DEFAULT_DATABASE_URL}).",
        show_default=False,
    ),
]
Org = Annotated[str, typer.Option("--org", help="The organization (tenant).")]


MaxPast = Annotated[
    int | None,
    typer.Option(
        "--max-past-days",
        min=0,
        help="Accept events this many days old (default: $TRAILKEEPER_MAX_PAST_DAYS or 3653).",
        show_default=False,
    ),
]


def _service(db: str | None, *, max_past_days: int | None = None) -> AuditService:
    settings = Settings.from_env()
    if max_past_days is not None:  # an import of old history may reach further back
        settings = replace(settings, max_past_days=max_past_days)
    store = open_store(db or settings.database_url, application_name="trailkeeper-cli")
    return AuditService(store, rules=settings.rules())


def run_server(service: AuditService, host: str, port: int, log_level: str) -> None:
    """Serve the API over ``service`` with uvicorn until interrupted."""
    # Imported here: the core and the other commands work without the server extra.
    import uvicorn

    from ..server import create_app
    from ..server._process import tune_process
    from ..server._protocol import DeadlineProtocol

    settings = Settings.from_env()
    secret = settings.session_secret
    app = create_app(
        service,
        session_secret=secret.encode() if secret else None,
        trusted_proxies=settings.trusted_proxies,
        metrics_key=settings.metrics_key,
    )
    tune_process()
    uvicorn.run(
        app, host=host, port=port, log_level=log_level,
        timeout_graceful_shutdown=settings.drain_seconds,  # see server/_drain.py
        http=DeadlineProtocol,  # hangs up on clients too slow to send a request
        limit_concurrency=settings.limit_concurrency,
        # X-Forwarded-For is read by the app, from trusted proxies only.
        proxy_headers=False,
    )  # fmt: skip


@app.command()
def serve(
    db: Db = None,
    host: Annotated[
        str | None, typer.Option(help="Default: $TRAILKEEPER_HOST or 127.0.0.1.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Default: $TRAILKEEPER_PORT or 8000.")] = None,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error.", case_sensitive=False)
    ] = "info",
    grpc_port: Annotated[
        int | None,
        typer.Option(help="Also serve Clarifai's gRPC API on this port (0: any free one)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes on the port.")] = 1,
    read_db: Annotated[
        str | None,
        typer.Option(
            "--read-db",
            metavar="URL",
            help="A PostgreSQL replica for searches and exports "
            "(default: $TRAILKEEPER_READ_DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the HTTP API (and the console at /console)."""
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("debug, info, warning or error", param_hint="--log-level")
    settings = Settings.from_env()
    host = host or settings.host
    port = port or settings.port
    read_db = read_db or settings.read_database_url
    if workers != 1 or read_db:
        if grpc_port is not None:
            raise typer.BadParameter(
                "serve the gRPC API from a single process", param_hint="--grpc-port"
            )
        from ..server._factory import open_serving_store, serve_processes

        # Once here, with a few tries (and the migrations), rather than in every worker.
        open_serving_store(db or settings.database_url, read_db).close()
        processes = f"{workers} worker{'s' if workers != 1 else ''}"
        print(f"Trailkeeper on http://{host}:{port} ({processes}; console at /console)", flush=True)
        serve_processes(
            db or settings.database_url, read_db, host, port,
            workers=workers, log_level=log_level.lower(), drain_seconds=settings.drain_seconds,
        )  # fmt: skip
        return
    from ..server._factory import open_serving_store

    store = open_serving_store(db or settings.database_url, None)
    with AuditService(store, rules=settings.rules()) as service:
        grpc_server = None
        if grpc_port is not None:
            from ..clarifai import start_grpc  # the clarifai extra

            grpc_server, bound = start_grpc(service, host, grpc_port)
            print(f"Clarifai gRPC API on {host}:{bound}")
        print(f"Trailkeeper on http://{host}:{port} (console at /console, API docs at /docs)")
        sys.stdout.flush()
        try:
            run_server(service, host, port, log_level.lower())
        finally:
            if grpc_server is not None:
                grpc_server.stop(2).wait()


def _me() -> str:
    """This program as the user can run it again (``.venv/bin/trailkeeper`` from make)."""
    path = sys.argv[0]
    return os.path.relpath(path) if os.path.basename(path) == "trailkeeper" else "trailkeeper"


@app.command()
def demo(
    db: Db = None,
    host: Annotated[str, typer.Option(help="Where the audit API and console listen.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Their port (0: any free one).")] = 8000,
    platform_port: Annotated[
        int, typer.Option(help="The reference platform's port (default: any free one).")
    ] = 0,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Play the week and show it, then stop.")
    ] = False,
) -> None:
    """Serve the API and console, a reference AI platform and a week of its traffic."""
    from ..demo import run_demo

    with _service(db) as service:
        status = run_demo(
            service,
            host=host,
            port=port,
            platform_port=platform_port,
            serve=not no_serve,
            command=_me(),
        )
    if status:
        raise typer.Exit(status)


def _duration(value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d{1,5})([hdw])", value)
    if not match:
        raise typer.BadParameter(f"{value!r}: write a duration like 12h, 90d or 8w")
    unit = {"h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@keys.command("create")
def keys_create(
    org: Org,
    scope: Annotated[
        list[str], typer.Option(help=f"Repeatable: {', '.join(SCOPES)}.", show_default=False)
    ],
    app_: Annotated[
        list[str] | None,
        typer.Option(
            "--app", help="Limit the key to these apps (what it reads and what it writes)."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    expires: Annotated[str | None, typer.Option(help="e.g. 90d, 12h, 8w (default: never).")] = None,
    db: Db = None,
) -> None:
    """Make a key; prints its secret alone on the last line."""
    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(f"{unknown}: scopes are {', '.join(SCOPES)}", param_hint="--scope")
    expires_in = _duration(expires)
    with _service(db) as service:
        key, secret = service.keys.create(
            org, scope, apps=app_ or [], name=name, expires_in=expires_in
        )
    expiry = key.expires_at.isoformat() if key.expires_at else "never"
    print(f"key {key.id} for org {key.org_id}: scopes {', '.join(key.scopes)}; expires {expiry}")
    print("the secret is shown once; keep it safe:")
    print(secret)


def _at(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if when else "-"


@keys.command("list")
def keys_list(org: Org, db: Db = None) -> None:
    """The org's keys, revoked ones included, oldest first."""
    with _service(db) as service:
        found = service.keys.list(org)
    if not found:
        print(f"no keys for org {org}")
        return
    now = datetime.now(UTC)
    rows = [["ID", "STATE", "CREATED (UTC)", "EXPIRES (UTC)", "SCOPES", "APPS", "NAME"]]
    for key in found:
        if key.revoked_at:
            state = "revoked"
        elif key.expires_at and key.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        rows.append([
            key.id, state, _at(key.created_at), _at(key.expires_at),
            ",".join(key.scopes), ",".join(key.apps) or "all", key.name,
        ])  # fmt: skip
    for line in _render.aligned(rows):
        print(line)


@keys.command("revoke")
def keys_revoke(org: Org, key_id: Annotated[str, typer.Argument()], db: Db = None) -> None:
    """Revoke one of the org's keys."""
    with _service(db) as service:
        before = {key.id: key for key in service.keys.list(org)}.get(key_id)
        if before is not None and before.revoked_at is not None:
            print(f"key {key_id} was already revoked at {_at(before.revoked_at)} UTC")
            return
        key = service.keys.revoke(org, key_id)
    print(f"revoked {key.id}")


@imports.command("clarifai")
def import_clarifai(
    url: Annotated[str, typer.Option(help="The Clarifai API's base URL.", show_default=False)],
    pat: Annotated[str, typer.Option(help="A personal access token (or key).", show_default=False)],
    user_id: Annotated[str, typer.Option(help="The Clarifai user or org id.", show_default=False)],
    org: Annotated[
        str | None, typer.Option(help="The org to import into (default: the user id).")
    ] = None,
    db: Db = None,
    max_past_days: MaxPast = None,
) -> None:
    """Copy a Clarifai audit log in, through the official client; safe to run again."""
    from ..clarifai import RemoteError, import_clarifai  # the clarifai extra

    target = org or user_id
    if target == "me":
        raise typer.BadParameter("--user-id me needs --org: the org to import into")
    with _service(db, max_past_days=max_past_days) as service:
        try:
            result = import_clarifai(service, target, url=url, pat=pat, user_id=user_id)
        except RemoteError as exc:
            raise ValueError(str(exc)) from None
    for reason in result.skipped:
        print(f"skipped {reason}", file=sys.stderr)
    print(
        f"read {result.read}, accepted {result.accepted}, duplicates {result.duplicates}, "
        f"skipped {len(result.skipped)}"
    )


@app.command()
def ingest(
    org: Org,
    file: Annotated[str, typer.Argument(help="A .jsonl file, or - for standard input.")],
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Events per batch.")] = 1000,
    db: Db = None,
    max_past_days: MaxPast = None,
) -> None:
    """Ingest events from a JSON Lines file, in all-or-nothing batches."""
    source = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    accepted = duplicates = 0
    with source, _service(db, max_past_days=max_past_days) as service:
        pending: list[dict[str, object]] = []
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                pending.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"line {number}: not JSON: {exc}") from None
            if len(pending) == batch:
                result = service.ingest(org, pending, allow_reserved=True)
                accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
                pending = []
        if pending:
            result = service.ingest(org, pending, allow_reserved=True)
            accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
    print(f"accepted {accepted}, duplicates {duplicates}")
