"""docs/deploying.md's setup, run as written against the machine's PostgreSQL server.

The role and database names (`trailkeeper`) and the host (`db.internal`) are replaced by this
run's own; everything else is the doc's text.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from conftest import PG_SERVER, free_port

DOC = Path(__file__).parent.parent / "docs" / "deploying.md"


def setup_commands() -> list[list[str]]:
    text = DOC.read_text().split("## Setting it up", 1)[1]
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None, "the setup section has no sh block"
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line]


@pytest.mark.slow
def test_the_documented_postgresql_setup_serves() -> None:
    name = f"tk_doc_{os.getpid()}"
    server = urlsplit(PG_SERVER)
    host, port = server.hostname or "127.0.0.1", str(server.port or 5432)

    def ours(word: str) -> str:
        return {"trailkeeper": name, "db.internal": host}.get(word, word)

    env = dict(os.environ)
    ran: list[str] = []
    try:
        for command in setup_commands():
            program = command[0]
            if program == "pip":
                assert command[2] == "trailkeeper[server,postgres,client]"
            elif program in ("createuser", "createdb"):
                subprocess.run(
                    [program, "-p", port, *(ours(word) for word in command[1:])],
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
            elif program == "export":
                variable, value = command[1].split("=", 1)
                url = value.replace("@db.internal:5432/trailkeeper", f"@{host}:{port}/{name}")
                env[variable] = url.replace("//trailkeeper@", f"//{name}@")
            elif program == "trailkeeper":
                args = [ours(a) if a != "0.0.0.0" else "127.0.0.1" for a in command[1:]]  # noqa: S104
                port_ = free_port()
                process = subprocess.Popen(
                    [sys.executable, "-m", "trailkeeper.cli", *args, "--port", str(port_)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                try:
                    deadline = time.monotonic() + 60
                    while True:
                        try:
                            ready = httpx.get(f"http://127.0.0.1:{port_}/readyz", timeout=2)
                            if ready.status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        assert process.poll() is None, process.stderr and process.stderr.read()
                        assert time.monotonic() < deadline, "the server did not come up"
                        time.sleep(0.2)
                finally:
                    process.terminate()
                    process.wait(timeout=60)
                    if process.stderr:
                        process.stderr.close()
            else:
                raise AssertionError(f"the test does not know how to run {program!r}")
            ran.append(program)
        assert ran == ["pip", "createuser", "createdb", "export", "trailkeeper"]
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            con.execute(f"DROP ROLE IF EXISTS {name}")
