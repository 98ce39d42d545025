"""Run `trailkeeper serve` in a child process for a benchmark, on a free local port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def serving(db_url: str, command: Callable[[int], list[str]] | None = None) -> Iterator[str]:
    """A server over ``db_url`` on a free port, stopped on exit; yields its URL.

    ``command``: the server's command line for a port (default: ``trailkeeper serve``).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = (
        command(port)
        if command is not None
        else [sys.executable, "-m", "trailkeeper.cli", "serve", "--db", db_url,
              "--port", str(port), "--log-level", "warning"]
    )  # fmt: skip
    process = subprocess.Popen(argv)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def make_key(db_url: str, org: str, scope: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "trailkeeper.cli", "keys", "create", "--db", db_url, "--org", org,
         "--scope", scope],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip().splitlines()[-1]
