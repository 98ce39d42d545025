"""The search shapes of issue #2's benchmark, shared by the in-process and HTTP benchmarks."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from _data import END
from trailkeeper.filters import Filters, Match
from trailkeeper.service import AuditService, _decode_cursor
from trailkeeper.store._query import SearchQuery

ORG = "acme"
WEEK_AGO = END - timedelta(days=7)

#: (label, filters); "page 100 by cursor" is the newest-first listing walked 99 pages deep.
SHAPES: list[tuple[str, Filters]] = [
    ("newest 50 of an org", Filters()),
    (
        "3 operations + 7 days",
        Filters(
            match=Match(operations=("model.create", "model.delete", "deployment.create")),
            since=WEEK_AGO,
        ),
    ),
    ("one actor", Filters(match=Match(actors=("user-7",)))),
    ("a CIDR (10.2.0.0/16)", Filters(match=Match(source_ips=("10.2.0.0/16",)))),
    ("free text ('quota')", Filters(text=("quota",))),
    ("page 100 by cursor", Filters()),
]


def to_params(filters: Filters) -> list[tuple[str, str]]:
    """The same filters as API query parameters."""
    params: list[tuple[str, str]] = []
    m = filters.match
    for name, values in (
        ("operation", m.operations),
        ("actor", m.actors),
        ("source_ip", m.source_ips),
    ):
        params += [(name, v) for v in values]
    if filters.since:
        params.append(("since", filters.since.isoformat()))
    if filters.text:
        params.append(("q", " ".join(f'"{t}"' for t in filters.text)))
    return params


def shapes_with_cursors(service: AuditService) -> list[tuple[str, Filters, str | None]]:
    """``SHAPES`` with the cursor each needs: page 100 of the newest-first listing is walked
    to once, here, so that only that page is timed."""
    cursor = None
    for _ in range(99):
        cursor = service.search(ORG, limit=50, cursor=cursor).next_cursor
    return [
        (label, filters, cursor if label.startswith("page 100") else None)
        for label, filters in SHAPES
    ]


def p50_p95(fn: Callable[[], object], runs: int, warm: int = 20) -> tuple[float, float]:
    """p50 and p95 of ``fn``'s latency in milliseconds, after ``warm`` warm-up calls."""
    for _ in range(warm):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49] * 1000, q[94] * 1000


def time_shapes(
    service: AuditService,
    events: int,
    runs: int,
    target_ms: float,
    statement: Callable[[SearchQuery], Callable[[], object]],
) -> None:
    """Time each shape's first page (50 events, each decoded) through ``service.search``
    against the one statement the store sends for it, run raw: ``statement(query)`` returns a
    call that runs it. Prints a row a shape and the verdict on the service's p95."""
    shapes = shapes_with_cursors(service)
    gc.freeze()  # the data set's pages and the app: not walked by collections while timing
    print(f"{events:,} events; org {ORG!r} holds {service.size(ORG):,}; {runs} runs each")
    header = f"{'shape':28} {'service p50':>12} {'p95':>8} {'1-stmt p50':>12} {'p95':>8}"
    print(f"{header} {'ratio':>6}  target")
    worst = 0.0
    for label, filters, cur in shapes:
        page = service.search(ORG, filters, limit=50, cursor=cur)
        assert len(page.events) == 50, (label, len(page.events))
        query = service.compile(filters, limit=51)
        if cur is not None:
            query = replace(query, after=_decode_cursor(cur, "desc")[0])

        def decoded(f: Filters = filters, c: str | None = cur) -> list[object]:
            # StoredEvent decodes lazily; read every event so decoding is in the measure.
            return [e.event for e in service.search(ORG, f, limit=50, cursor=c).events]

        s50, s95 = p50_p95(decoded, runs)
        r50, r95 = p50_p95(statement(query), runs)
        worst = max(worst, s95)
        verdict = "ok" if s95 <= target_ms else "OVER"
        row = f"{label:28} {s50:10.3f}ms {s95:6.3f}ms {r50:10.3f}ms {r95:6.3f}ms"
        print(f"{row} {s95 / r95:6.2f}  <={target_ms:g}ms {verdict}", flush=True)
    print("PASS" if worst <= target_ms else "ABOVE TARGET", f"(worst p95 {worst:.3f} ms)")
