"""A trivial ASGI endpoint for bench/capture.py, in one of three forms (one per process).

    python bench/_capture_app.py PORT bare|audited|sqlite [AUDIT_URL KEY SPOOL | DB]

bare: answers "ok". audited: the same behind AuditMiddleware whose route map records one
event per request through a Recorder to a real Trailkeeper server. sqlite: the same, but the
handler writes its audit row to SQLite and commits before answering, as signal-based audit
libraries (an ORM save hook in the request) do.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

import orjson
import uvicorn


async def bare(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def sqlite_app(path: str) -> Any:
    db = sqlite3.connect(path, isolation_level=None)
    # The generous settings: WAL and synchronous=NORMAL (Django's defaults, a rollback
    # journal and FULL, would make this baseline slower).
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, time REAL, actor TEXT,"
        " operation TEXT, source_ip TEXT, request_id TEXT, data TEXT)"
    )

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(uuid.uuid4()), time.time(), headers.get(b"x-user", b"").decode(),
             "model.update", scope["client"][0], headers.get(b"x-request-id", b"").decode(),
             orjson.dumps({"targets": [{"type": "model", "id": "m1"}]}).decode()),
        )  # fmt: skip
        db.execute("COMMIT")
        await bare(scope, receive, send)

    return app


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    app: Any = bare
    if mode == "audited":
        from trailkeeper.capture import AuditMiddleware, AuditRoute, Recorder

        recorder = Recorder(sys.argv[3], sys.argv[4], spool=sys.argv[5])
        app = AuditMiddleware(
            bare,
            recorder=recorder,
            actor=lambda scope: {"id": "bench-user", "type": "user"},
            routes={"POST /models/{model_id}": AuditRoute("model.update", {"model": "model_id"})},
        )
    elif mode == "sqlite":
        app = sqlite_app(sys.argv[3])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
