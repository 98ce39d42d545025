"""The search shapes of issue #2's benchmark, shared by the in-process and HTTP benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from _data import END
from trailkeeper.filters import Filters, Match
from trailkeeper.service import AuditService

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
