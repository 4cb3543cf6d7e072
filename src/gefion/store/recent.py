"""The events this process committed lately, kept in memory for the log's tailers.

The scheduler loop and the API's queue view both tail the log (``events_since``) after
every change; reading back and decoding what this very process has just written would cost
more than writing it. The writer hands each committed transaction's events here, and
``events_since`` answers from here when it can — that is, when the event right after the
asked ``seq`` is here, and then with the run of events that follows it without a gap.
``seq`` is gap-free in commit order, so a run without a gap is exactly what the database
holds; an event another process committed is missing here and ends the run, and the
tailer reads it from the database on its next call.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from gefion.store.records import EventRow


class RecentEvents:
    """The last ``capacity`` events committed by this process, by ``seq``."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._by_seq: dict[int, EventRow] = {}
        self._order: deque[int] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, events: Iterable[EventRow]) -> None:
        """Events of a committed transaction (never of one that may roll back)."""
        with self._lock:
            for event in events:
                self._by_seq[event.seq] = event
                self._order.append(event.seq)
            while len(self._order) > self._capacity:
                del self._by_seq[self._order.popleft()]

    def clear(self) -> None:
        """Forget everything (for a log emptied behind the store's back, as tests do)."""
        with self._lock:
            self._by_seq.clear()
            self._order.clear()

    def since(self, seq: int, limit: int) -> list[EventRow] | None:
        """The events after ``seq`` without a gap (at most ``limit``), or None when the next
        one is not here (the caller reads the database)."""
        with self._lock:
            get = self._by_seq.get
            out: list[EventRow] = []
            event = get(seq + 1)
            while event is not None and len(out) < limit:
                out.append(event)
                event = get(event.seq + 1)
            return out or None
