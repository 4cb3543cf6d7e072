"""Live updates: ``GET /portal/events``, a server-sent event stream that says *when* the
controller changed; pages then fetch *what* they show from the ``/v1`` API.

Why server-sent events and not each page polling the API every second: a change is the
store's last event ``seq`` (every submission, start, end, cancel, hold, drain is an event)
or the scheduler's cycle count (reasons, ETAs and priorities change per cycle, not per
event). One cheap read of both answers every watcher — :class:`ChangeFeed` reads them at
most every :data:`READ_EVERY_S` however many tabs are open — so an idle portal costs one
tiny query per quarter second instead of three API calls per tab per second, and a change
shows in about a quarter of a second instead of up to one. ``EventSource`` reconnects by
itself (after ``retry`` ms), and a page polls as a fallback only while its stream is down.

Each message::

    event: change
    data: {"seq": 1234, "cycles": 56, "now_ts": 1718000000.25}

``now_ts`` (the controller's clock) lets a page count elapsed times without trusting the
browser's clock. A stream ends after :data:`STREAM_S` (the browser reconnects), so that a
connection a proxy forgot does not live forever.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from gefion.controller.service import Controller

#: Least time between two reads of the controller's state, whatever the number of watchers.
READ_EVERY_S = 0.2
#: How often a stream looks for a change.
TICK_S = 0.25
#: A comment line this often keeps idle connections (and proxies) open.
KEEPALIVE_S = 15.0
#: A stream ends after this long; EventSource reconnects at once.
STREAM_S = 300.0
#: What EventSource waits before reconnecting (ms).
RETRY_MS = 2000


class ChangeFeed:
    """The controller's change token ``(seq, cycles)``, shared by every stream."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._lock = threading.Lock()
        self._token = (0, 0)
        self._read_at = -1.0

    def token(self) -> tuple[int, int]:
        """The latest ``(last event seq, scheduler cycles)``; reads the store at most every
        :data:`READ_EVERY_S` (blocking: call it from a thread)."""
        with self._lock:
            now = time.monotonic()
            if self._read_at < 0 or now - self._read_at >= READ_EVERY_S:
                store, scheduler = self._controller.store, self._controller.scheduler
                seq = store.last_seq() if store is not None else 0
                self._token = (seq, scheduler.cycles if scheduler is not None else 0)
                self._read_at = now
            return self._token

    def message(self, token: tuple[int, int]) -> str:
        data = {"seq": token[0], "cycles": token[1], "now_ts": self._controller.now()}
        return f"event: change\ndata: {json.dumps(data)}\n\n"

    async def stream(self) -> AsyncIterator[str]:
        """The event stream of one watcher (ends when it disconnects: Starlette cancels
        it)."""
        yield f"retry: {RETRY_MS}\n\n"
        last: tuple[int, int] | None = None
        started = sent = time.monotonic()
        while time.monotonic() - started < STREAM_S:
            token = await run_in_threadpool(self.token)
            now = time.monotonic()
            if token != last:
                last, sent = token, now
                yield self.message(token)
            elif now - sent >= KEEPALIVE_S:
                sent = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(TICK_S)

    def response(self) -> StreamingResponse:
        return StreamingResponse(self.stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})
