"""The API served by uvicorn in a background thread: for tests, benchmarks and embedding.

::

    with ApiServer(create_app(controller)) as server:   # 127.0.0.1, a free port
        Client(server.url).cluster()
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

#: Young-generation threshold of a serving process (CPython's default is 700).
SERVING_GC_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Set a long-running server's garbage collector for throughput; call it once, when the
    application is built and before it serves.

    A batch of submissions allocates tens of thousands of containers (each job's spec,
    environment, event and rows), so at CPython's default a young collection ran every few
    jobs, and a full one walked every object of the process, the start-up heap included:
    about a sixth of the server's CPU under a submission burst. The start-up heap (modules,
    the app, pydantic and SQLAlchemy's tables) is frozen, out of every collection, and
    young collections run every :data:`SERVING_GC_THRESHOLD` allocations. Not for library
    code or tests: it is the process's setting."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(SERVING_GC_THRESHOLD, middle, old)


class ApiServer:
    """uvicorn on ``host``:``port`` (0: a free one) in a daemon thread."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        # IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
        # proto says TCP; with it on, every answer written in two parts (headers, body)
        # waits for the client's delayed ACK, ~40 ms.
        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(1024)
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, lifespan="off",
                                timeout_graceful_shutdown=1, backlog=1024)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="gefion-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Stop serving; open connections (a log follow) are cut. ``wait=False`` returns at
        once and lets uvicorn finish its shutdown (~0.2 s) in its thread."""
        self._server.should_exit = True
        self._server.force_exit = True
        if wait and self._thread.is_alive():
            self._thread.join(timeout=10)
            self._socket.close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
