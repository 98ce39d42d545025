"""The demo: the audit server, a reference AI platform audited through the capture SDK,
and traffic that plays a week of two organizations' activity through it, then goes live.

``trailkeeper demo`` calls ``run_demo``; the parts are usable on their own:
``platform.create_platform`` (the platform as an ASGI app) and ``traffic.Traffic``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..capture import Recorder
from ..filters import Filters
from ..service import AuditService
from .traffic import ORGS, SimClock, Traffic, seed_users

__all__ = ["run_demo"]


def run_demo(
    service: AuditService,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    platform_port: int = 0,
    serve: bool = True,
    command: str = "trailkeeper",
    out: TextIO = sys.stdout,
) -> int:
    """Serve the audit API on ``host:port`` and the platform on ``platform_port`` (0: any
    free port), play a week of traffic into an empty log, print where to look and a read
    key, then keep serving with live traffic until Ctrl-C (or stop at once: ``serve=False``).

    ``command`` is how the user runs ``trailkeeper`` (for the hints printed). The caller
    owns ``service`` and closes it. A log that already has events gets no second
    week; with ``serve=False`` nothing at all is added to it.
    """
    started = time.monotonic()
    fresh = all(service.size(org) == 0 for org in ORGS)
    if not fresh and not serve:
        _summary(service, out)
        return 0
    from ..server import create_app
    from ._serving import ThreadedServer
    from .platform import Platform, create_platform

    keys = {org: service.keys.create(org, ["events:write"], name="reference platform")[1]
            for org in ORGS}  # fmt: skip
    audit = ThreadedServer(create_app(service), host, port, "trailkeeper-api")
    try:
        audit.start()
    except RuntimeError as exc:
        print(f"trailkeeper: {exc}; try --port 0 for any free port", file=sys.stderr)
        return 2
    clock = SimClock()
    state = Platform()
    seed_users(state)
    spool = Path(tempfile.mkdtemp(prefix="trailkeeper-demo-")) / "spool.sqlite3"
    recorder = Recorder(audit.url, keys=keys, spool=spool, clock=clock, flush_interval=0.2)
    platform = ThreadedServer(
        create_platform(recorder, state, trusted_proxies=["127.0.0.1", "::1"]),
        host, platform_port, "reference-platform",
    )  # fmt: skip
    platform.start()
    traffic = Traffic(platform.url, clock)
    stop = threading.Event()
    live: threading.Thread | None = None
    try:
        if fresh:
            traffic.play_week(datetime.now(UTC))
        else:
            traffic.setup(datetime.now(UTC))
        if not recorder.flush(30):
            print("warning: some events are still on their way", file=sys.stderr)
        _, secret = service.keys.create("acme", ["events:read"], name="demo reader")
        _summary(service, out)
        print(f"\n{traffic.requests} requests to the reference platform ({platform.url}) "
              f"recorded {sum(service.size(o) for o in ORGS)} events in "
              f"{time.monotonic() - started:.1f} s.", file=out)  # fmt: skip
        print(f"\nConsole:  {audit.url}/console  (sign in with the read key below)", file=out)
        print(f"API docs: {audit.url}/docs", file=out)
        print(f"Read key for org acme (shown once): {secret}", file=out)
        print("Try:", file=out)
        print(f"  curl -H 'Authorization: Bearer {secret}' '{audit.url}/v1/events?limit=5'",
              file=out)  # fmt: skip
        print(f"  {command} search --url {audit.url} --key {secret} "
              "'operation:model.* status:failure'", file=out)  # fmt: skip
        print(f"  {command} tail --url {audit.url} --key {secret}", file=out)
        if not serve:
            return 0
        print("\nLive traffic continues; Ctrl-C stops the demo.", file=out, flush=True)
        live = threading.Thread(target=traffic.run_live, args=(stop,), daemon=True)
        live.start()
        try:
            while audit.alive() and platform.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("\nStopping.", file=out)
        return 0
    finally:
        stop.set()
        if live is not None:
            live.join(timeout=10)
        traffic.close()
        platform.stop()
        recorder.close(timeout=10)
        if recorder.spool.count() == 0:
            shutil.rmtree(spool.parent, ignore_errors=True)
        audit.stop()


def _summary(service: AuditService, out: TextIO) -> None:
    for org in ORGS:
        failures = service.search(org, Filters(success=False), limit=1000).events
        newest = service.search(org, limit=8).events
        print(f"\n{org}: {service.size(org)} events, {len(failures)} failed; newest:", file=out)
        for stored in newest:
            e = stored.event
            status = "ok" if e.success else f"FAILED {e.error.code if e.error else ''}"
            targets = ", ".join(f"{t.type}:{t.id}" for t in e.targets)[:40]
            print(f"  {e.time:%Y-%m-%d %H:%M:%S}  {e.actor.id:<10} {e.operation:<28} "
                  f"{targets:<40} {e.source_ip or '':<15} {status}", file=out)  # fmt: skip
