"""Prometheus metrics in the text exposition format, without a client library."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Counters and latency histograms, labelled by route and status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[(name, tuple(sorted(labels.items())))] += amount

    def observe(self, route: str, seconds: float) -> None:
        with self._lock:
            buckets = self._hist.setdefault(route, [0] * (len(_BOUNDS) + 1))
            buckets[bisect.bisect_left(_BOUNDS, seconds)] += 1
            self._sum[route] += seconds
            self._count[route] += 1

    def render(self, extra: dict[str, float]) -> str:
        lines = []
        with self._lock:
            names = sorted({name for name, _ in self.counters})
            for name in names:
                lines.append(f"# TYPE {name} counter")
                for (n, labels), value in sorted(self.counters.items()):
                    if n == name:
                        lines.append(f"{name}{_labels(labels)} {value:g}")
            lines.append("# TYPE trailkeeper_request_seconds histogram")
            for route, buckets in sorted(self._hist.items()):
                running = 0
                for bound, count in zip((*_BOUNDS, float("inf")), buckets, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(
                        f'trailkeeper_request_seconds_bucket{{route="{route}",le="{le}"}} {running}'
                    )
                lines.append(
                    f'trailkeeper_request_seconds_sum{{route="{route}"}} {self._sum[route]:g}'
                )
                lines.append(
                    f'trailkeeper_request_seconds_count{{route="{route}"}} {self._count[route]}'
                )
        for name, value in sorted(extra.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value:g}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return "{" + inner + "}"
