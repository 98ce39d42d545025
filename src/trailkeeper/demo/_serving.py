"""An ASGI app served by uvicorn on a background thread, started and stopped on demand."""

from __future__ import annotations

import threading
import time
from typing import Any


class ThreadedServer:
    """uvicorn on its own thread; ``port=0`` picks a free port (read ``port`` after start)."""

    def __init__(self, app: Any, host: str, port: int, name: str) -> None:
        import uvicorn

        # Open live streams (/v1/events/stream) never end by themselves: give them 3 s.
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on",
            timeout_graceful_shutdown=3, proxy_headers=False,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"could not serve on {self.host}:{self.port} (is it in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
