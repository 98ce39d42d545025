"""Fresh planner statistics for partitions while they fill, without waiting for autovacuum.

A partition that has never been analysed gets the planner's default selectivities: a wide
CIDR or a common word then looks rare, and a search sorts thousands of rows instead of
walking the time index. Autovacuum analyses a partition only after its next nap (up to a
minute) and after enough rows changed; in a new database, or in the first minutes of a
month, or right after a bulk load, that is long enough to matter. So each store analyses a
partition itself when the rows it wrote there reach 1,000, then 2,000, 4,000, … (doubling:
the cost stays a few ANALYZEs per partition, and each samples at most 30,000 rows).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ._postgres_schema import partition_name

_log = logging.getLogger("trailkeeper")
FIRST = 1_000


class Analyzer:
    """Counts rows written per month; runs ``ANALYZE`` of a partition in the background."""

    def __init__(
        self, connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
    ) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._written: dict[int, int] = {}
        self._next: dict[int, int] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tk-analyze")

    def wrote(self, months: dict[int, int]) -> None:
        """``months``: rows just committed per month."""
        due = []
        with self._lock:
            for month, rows in months.items():
                written = self._written[month] = self._written.get(month, 0) + rows
                if written >= self._next.get(month, FIRST):
                    self._next[month] = written * 2
                    due.append(month)
        for month in due:
            try:
                self._worker.submit(self._analyze, month)
            except RuntimeError:  # closing: autovacuum will see to it
                return

    def _analyze(self, month: int) -> None:
        try:
            with self._connect() as con:
                con.execute(f"ANALYZE {partition_name(month)}".encode())
        except (psycopg.Error, RuntimeError) as exc:  # dropped month, restart, closed store
            _log.warning("ANALYZE %s failed: %s", partition_name(month), exc)

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
