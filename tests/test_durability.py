"""An acknowledged ingest survives the process being killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from trailkeeper.filters import Filters
from trailkeeper.service import AuditService

CHILD = textwrap.dedent(
    """
    import sys
    from trailkeeper.service import AuditService

    service = AuditService.open(sys.argv[1])
    n = 0
    while True:
        batch = [
            {"actor": "alice", "operation": "model.update", "details": [f"batch {n}"]}
            for _ in range(25)
        ]
        result = service.ingest("acme", batch)
        # Printed only after ingest returned: every id printed was acknowledged.
        print(" ".join(e.id for e in result.events), flush=True)
        n += 1
    """
)


def test_every_acknowledged_event_survives_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    acknowledged: list[str] = []
    try:
        assert child.stdout is not None
        while len(acknowledged) < 2_000:
            line = child.stdout.readline()
            assert line, "the child process stopped before acknowledging 2,000 events"
            acknowledged.extend(line.split())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    with AuditService.open(url) as service:
        stored = [e.event.id for e in service.scan("acme", Filters())]
        assert set(acknowledged) <= set(stored)
        seqs = [e.seq for e in service.scan("acme", Filters())]
        assert seqs == list(range(len(seqs)))
        # The log is writable again after the crash and continues its sequence.
        result = service.ingest("acme", [{"actor": "alice", "operation": "model.update"}])
        assert result.events[0].seq == len(seqs)
