"""Fair reads: one org hammering with heavy reads, another org's small search (issue #13).

Serves a database of four orgs of very unequal size (``_data``: acme holds 60 % of the
events, umbrella 5 %) with the server's app under uvicorn, in a child process, and times,
from one keep-alive client, umbrella's one-row search: first quiet, then while acme's
clients (``--hammer``, each with requests back to back) send heavy reads (charts of the
whole log by hour, searches of 1,000 events with free text). Both phases in the same run;
the ratio of the p95s is the figure (target <= 2.0).

``--per-org 4`` serves with fairness off (an org may hold every reader thread), to show
what it prevents.

    python bench/fairness.py [--events 200000] [--runs 300] [--hammer 8] [--per-org 3]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from _data import batches
from _server import serving

DATA = Path(__file__).parent / "data"
BIG, SMALL = "acme", "umbrella"
#: acme's heavy reads, taken in turn by each hammering client.
HEAVY: list[tuple[str, dict[str, str | list[str]]]] = [
    ("/v1/stats/activity", {"bucket": "hour"}),
    ("/v1/stats/activity", {"bucket": "day", "source_ip": "10.0.0.0/8"}),
    ("/v1/events", {"q": "run -actor:user-1 -actor:user-2", "order": "asc"}),
    ("/v1/stats/activity", {"bucket": "day", "operation": ["model.*", "workflow.*"]}),
]
#: umbrella's small search: one row.
SMALL_SEARCH = {"actor": "user-1", "limit": "1"}


def build(events: int) -> Path:
    from trailkeeper.service import AuditService

    path = DATA / f"fairness-{events}.db"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        partial = path.with_suffix(".part")
        partial.unlink(missing_ok=True)
        with AuditService.open(f"sqlite:///{partial}") as service:
            for org, batch in batches(events, seed=13):
                service.ingest(org, batch)
        partial.rename(path)
    return path


def serve(db: str, port: int, per_org: int) -> None:
    """The child process: the server's app, its reader threads shared as ``per_org`` says."""
    import uvicorn

    from trailkeeper.server import create_app
    from trailkeeper.server._app import READERS
    from trailkeeper.server._fair import FairReaders
    from trailkeeper.server._process import tune_process
    from trailkeeper.service import AuditService

    tune_process()  # as `trailkeeper serve` does
    service = AuditService.open(db)
    app = create_app(service)
    app.state.readers = FairReaders(READERS, per_org)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def key(db: str, org: str) -> str:
    from trailkeeper.service import AuditService

    with AuditService.open(db) as service:
        return service.keys.create(org, ["events:read"])[1]


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[94] * 1000


def timed(http: httpx.Client, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = http.get("/v1/events", params=SMALL_SEARCH)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert len(response.json()["events"]) == 1
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--hammer", type=int, default=8, help="acme's concurrent clients")
    parser.add_argument("--per-org", type=int, default=3, help="reader threads one org may hold")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.per_org)
        return
    source = build(args.events)
    workdir = Path(tempfile.mkdtemp(prefix="tk-fairness-"))
    try:
        copy = workdir / "fairness.db"
        shutil.copyfile(source, copy)
        db = f"sqlite:///{copy}"
        big, small = key(db, BIG), key(db, SMALL)

        def command(port: int) -> list[str]:
            return [sys.executable, __file__, "--serve", db, str(port),
                    "--per-org", str(args.per_org)]  # fmt: skip

        with serving(db, command) as url:
            run(url, big, small, args)
    finally:
        shutil.rmtree(workdir)


def run(url: str, big: str, small: str, args: argparse.Namespace) -> None:
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {small}"}, timeout=120)
    gc.disable()  # the client's collections are not the server's latency (see http_search)
    timed(http, 30)  # warm
    quiet = timed(http, args.runs)

    stop = threading.Event()
    heavy_times: list[float] = []

    def hammer(n: int) -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {big}"}, timeout=120
        ) as client:
            i = n
            while not stop.is_set():
                path, params = HEAVY[i % len(HEAVY)]
                started = time.perf_counter()
                response = client.get(path, params=params)
                heavy_times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(args.hammer)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every reader thread acme may hold is busy by now
    loaded = timed(http, args.runs)
    stop.set()
    for thread in threads:
        thread.join()
    http.close()

    q95, l95 = p95(quiet), p95(loaded)
    ratio = l95 / q95
    print(
        f"{args.events:,} events ({BIG} 60 %, {SMALL} 5 %); {args.runs} small searches by "
        f"{SMALL} each phase; {args.hammer} clients of {BIG} hammering; an org may hold "
        f"{args.per_org} of 4 reader threads"
    )
    heavy_ms = statistics.median(heavy_times) * 1000
    print(f"{BIG}'s heavy reads: {len(heavy_times)} done, median {heavy_ms:.0f} ms")
    print(f"{SMALL} quiet:        p50 {statistics.median(quiet) * 1000:7.2f} ms  p95 {q95:7.2f} ms")
    print(
        f"{SMALL} under load:   p50 {statistics.median(loaded) * 1000:7.2f} ms  p95 {l95:7.2f} ms"
    )
    verdict = "PASS" if ratio <= 2 else "ABOVE TARGET"
    print(f"p95 ratio (load / quiet): {ratio:.2f}  target <= 2.0  {verdict}")


if __name__ == "__main__":
    main()
