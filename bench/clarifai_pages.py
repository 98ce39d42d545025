"""Clarifai's numbered pages: ``AuditService.search_window`` against walking cursor pages.

Clarifai pages by number (``page``, ``per_page``). ``search_window`` has the store skip the
earlier pages by index position (``LIMIT … OFFSET`` on the rowid subquery; kept as keys in the
free-text walk) and decode only the page. The baseline, measured in the same run, is the naive
way: walk ``search`` cursor pages of ``per_page`` up to page N, decoding every event on the way.
Also timed: the whole ``PostAuditLogSearches`` handler in-process (filters, window, protobuf
entries, read record) for Clarifai's default request.

The data set is bench/search.py's (bench/_data.py, seed 1), built once into bench/data/.

    python bench/clarifai_pages.py [--events 1000000] [--runs 30]
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _shapes import ORG, p50_p95
from search import DATA, dataset
from trailkeeper.clarifai import ClarifaiSearches, clarifai_operations
from trailkeeper.filters import Filters, Match
from trailkeeper.service import AuditService, RequestContext
from trailkeeper.store._sqlite import SQLiteStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    path = dataset(args.events)
    # A copy: the handler records its reads, which must not change the shared data set.
    work = DATA / f"clarifai-{args.events}.db"
    work.write_bytes(path.read_bytes())
    service = AuditService(SQLiteStore(work))
    clarifai = Filters(match=Match(operations=clarifai_operations(service.catalogue)))
    matching = sum(1 for _ in service.scan(ORG, clarifai))
    print(f"{args.events:,} events; {matching:,} of org {ORG!r} have a Clarifai EventType")
    gc.freeze()

    def window(offset: int, size: int) -> list[object]:
        return [e.event for e in service.search_window(ORG, clarifai, offset=offset, limit=size)]

    def walk(page: int, size: int) -> list[object]:
        cursor = None
        for _ in range(page - 1):
            cursor = service.search(ORG, clarifai, limit=size, cursor=cursor).next_cursor
        return [e.event for e in service.search(ORG, clarifai, limit=size, cursor=cursor).events]

    print(f"{'page x per_page':22} {'window p50':>11} {'p95':>9} {'walk p50':>11} {'p95':>9} ratio")
    deepest = min(100_000, matching) // 1000
    for page, size in [(1, 128), (10, 128), (100, 128), (10, 1000), (deepest, 1000)]:
        assert window((page - 1) * size, size) == walk(page, size), (page, size)

        def windowed(p: int = page, s: int = size) -> list[object]:
            return window((p - 1) * s, s)

        def walked(p: int = page, s: int = size) -> list[object]:
            return walk(p, s)

        w50, w95 = p50_p95(windowed, args.runs, warm=3)
        runs = max(3, args.runs // page)  # the walk is slow at depth: fewer samples
        b50, b95 = p50_p95(walked, runs, warm=1)
        print(f"{page:>5} x {size:<14} {w50:9.2f}ms {w95:7.2f}ms {b50:9.2f}ms {b95:7.2f}ms"
              f" {w95 / b95:5.3f}")  # fmt: skip

    handler = ClarifaiSearches(service)
    secret = service.keys.create(ORG, ["events:read"])[1]
    from clarifai_grpc.grpc.api import service_pb2

    request = service_pb2.PostAuditLogSearchesRequest()
    runs = args.runs * 5
    d50, d95 = p50_p95(lambda: window(0, 128), runs, warm=3)
    where = RequestContext(source_ip="127.0.0.1", user_agent="bench", face="clarifai-grpc")
    g50, g95 = p50_p95(lambda: handler.search(request, f"Key {secret}", "me", where), runs, warm=3)
    j50, j95 = p50_p95(
        lambda: handler.search_json(b"{}", handler.authenticate(f"Key {secret}", "me"), where),
        runs,
        warm=3,
    )
    print("PostAuditLogSearches, Clarifai's default request (128 entries), in-process:")
    print(f"  search_window alone    p50 {d50:6.2f} ms  p95 {d95:6.2f} ms")
    print(f"  gRPC handler (protobuf) p50 {g50:6.2f} ms  p95 {g95:6.2f} ms  ratio {g95 / d95:.2f}")
    print(f"  REST handler (JSON)    p50 {j50:6.2f} ms  p95 {j95:6.2f} ms  ratio {j95 / d95:.2f}")
    service.close()
    work.unlink()


if __name__ == "__main__":
    main()
