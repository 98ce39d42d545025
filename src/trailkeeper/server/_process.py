"""How a server process sets up its interpreter, once its app is built.

Both ``trailkeeper serve`` and each ``--workers`` process call ``tune_process``; so does the
PostgreSQL ingest benchmark, which measures the service as ``serve`` runs it.
"""

from __future__ import annotations

import gc
import sys

#: Seconds a thread holding the interpreter lock runs before one waiting for it may take it
#: (Python's default is 5 ms). Ingest threads that come back from the database (PostgreSQL
#: holds an org's head locked until they commit) wait this long for the interpreter at each
#: round trip while other threads validate; at 1 ms those waits stop dominating the time the
#: org stays locked. Measured in bench/RESULTS.md (PostgreSQL ingest).
SWITCH_INTERVAL = 0.001


def tune_process() -> None:
    """Tune this process for serving: the switch interval above, and the heap built so far
    (the imports and the app, which live as long as the process) moved out of the
    collector's generations so that no collection walks it again."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.collect()
    gc.freeze()
