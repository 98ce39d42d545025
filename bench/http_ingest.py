"""HTTP ingest against in-process ingest, in the same run (issue #3).

In-process: ``AuditService.ingest`` in batches of 500 from one thread. HTTP: two concurrent
clients (threads with their own connection) POST the same events in batches of 500 to
``trailkeeper serve`` on this machine; bodies are encoded before the clock starts. Both write
fresh SQLite databases with the same settings. Target: HTTP / in-process >= 0.6.

    python bench/http_ingest.py [--events 200000]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))

from _data import events
from _server import make_key, serving
from trailkeeper.service import AuditService

BATCH = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    # One org: a key belongs to one org. Times end before now, so none is in the future.
    start = datetime(2026, 5, 1, tzinfo=UTC)
    batches: list[list[dict[str, Any]]] = []
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, event in events(args.events, seed=3, start=start):
        pending["acme"].append(event)
        if len(pending["acme"]) == BATCH:
            batches.append(pending.pop("acme"))
    if pending["acme"]:
        batches.append(pending["acme"])
    bodies = [orjson.dumps({"events": b}) for b in batches]
    gc.collect()
    gc.freeze()
    workdir = Path(tempfile.mkdtemp(prefix="tk-http-ingest-"))
    try:
        service = AuditService.open(f"sqlite:///{workdir / 'inprocess.db'}")
        started = time.perf_counter()
        for batch in batches:
            service.ingest("acme", batch)
        in_process = args.events / (time.perf_counter() - started)
        service.close()

        url_db = f"sqlite:///{workdir / 'http.db'}"
        secret = make_key(url_db, "acme", "events:write")
        with serving(url_db) as url:
            errors: list[str] = []

            def client(share: list[bytes]) -> None:
                with httpx.Client(
                    base_url=url,
                    headers={
                        "Authorization": f"Bearer {secret}",
                        "Content-Type": "application/json",
                    },
                    timeout=60,
                ) as http:
                    for body in share:
                        response = http.post("/v1/events", content=body)
                        if response.status_code != 202:
                            errors.append(response.text[:200])

            threads = [threading.Thread(target=client, args=(bodies[i::2],)) for i in range(2)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            over_http = args.events / (time.perf_counter() - started)
        assert not errors, errors[:3]
    finally:
        shutil.rmtree(workdir)
    ratio = over_http / in_process
    print(f"{args.events:,} events in batches of {BATCH}")
    print(f"in-process AuditService.ingest: {in_process:,.0f} events/s")
    print(f"HTTP, 2 concurrent clients:     {over_http:,.0f} events/s")
    print(f"ratio {ratio:.2f} (target >= 0.6): {'PASS' if ratio >= 0.6 else 'BELOW TARGET'}")


if __name__ == "__main__":
    main()
