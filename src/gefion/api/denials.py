"""Every refused request becomes an ``access.denied`` event — without letting a caller flood
the log.

Refusals are grouped by (principal, reason): ``ana``/``not-visible``, ``(anonymous)``/
``unknown``... The first refusal of a group is written at once, with its route and target.
Further refusals of the same group within :data:`WINDOW_S` are only counted (with a few
sample routes and targets) and written as **one** summary event (``suppressed``: how
many) when the window closes. So a client that probes 10,000 job ids, or hammers the API
with made-up tokens, costs the log two events a minute, not 10,000; and a legitimate
refusal is still in the log before its answer is sent. At most :data:`MAX_GROUPS` groups
are tracked in a window (memory stays bounded); refusals beyond them share one
``(overflow)`` group.

Writing is best effort: a refusal is answered even when the store cannot take the event
(the failure is logged, without the request's credentials).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("gefion.api")

#: Seconds over which refusals of one group are coalesced.
WINDOW_S = 60.0
#: Groups tracked at once.
MAX_GROUPS = 1_000
_SAMPLES = 5

#: ``write(payload, ts)``: append one ``access.denied`` event.
Write = Callable[[Mapping[str, Any], float], object]


@dataclass
class _Group:
    opened: float  # monotonic
    suppressed: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    routes: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)


class DenialLog:
    """Coalesces refusals into ``access.denied`` events (see the module)."""

    def __init__(self, write: Write, clock: Callable[[], float], *,
                 window_s: float = WINDOW_S, max_groups: int = MAX_GROUPS) -> None:
        self._write = write
        self._clock = clock
        self._window_s = window_s
        self._max_groups = max_groups
        self._groups: dict[tuple[str, str], _Group] = {}
        self._lock = threading.Lock()
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()

    def record(self, *, principal: str, reason: str, status: int, route: str,
               target: str | None = None, token_id: str | None = None) -> bool:
        """Note one refusal; True if its event was written now (the first of its group)."""
        now_m, ts = time.monotonic(), self._clock()
        summaries: list[dict[str, Any]] = []
        with self._lock:
            key = (principal, reason)
            if key not in self._groups and len(self._groups) >= self._max_groups:
                summaries += self._close_expired(now_m)
                if len(self._groups) >= self._max_groups:
                    key = ("(overflow)", "overflow")
            group = self._groups.get(key)
            if group is not None and now_m - group.opened >= self._window_s:
                summaries += self._summary(key, group)
                group = None
            if group is None:
                self._groups[key] = _Group(now_m)
                first = True
            else:
                group.suppressed += 1
                group.first_ts = ts if group.first_ts is None else group.first_ts
                group.last_ts = ts
                for samples, value in ((group.routes, route), (group.targets, target)):
                    if value and value not in samples and len(samples) < _SAMPLES:
                        samples.append(value)
                first = False
                self._ensure_timer()
        for summary in summaries:
            self._emit(summary, ts)
        if first:
            self._emit({"principal": key[0], "reason": key[1], "status": status,
                        "route": route, "target": target, "token": token_id}, ts)
        return first

    def flush(self) -> None:
        """Write the summaries of every open group now (tests; shutdown)."""
        with self._lock:
            summaries = [s for key, group in self._groups.items()
                         for s in self._summary(key, group)]
            self._groups.clear()
        for summary in summaries:
            self._emit(summary, self._clock())

    def close(self) -> None:
        self._stop.set()
        self.flush()

    # -- plumbing -----------------------------------------------------------------------
    def _summary(self, key: tuple[str, str], group: _Group) -> list[dict[str, Any]]:
        if not group.suppressed:
            return []
        return [{"principal": key[0], "reason": key[1], "suppressed": group.suppressed,
                 "window_s": self._window_s, "first_ts": group.first_ts,
                 "last_ts": group.last_ts, "routes": group.routes,
                 "targets": group.targets}]

    def _close_expired(self, now_m: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in [k for k, g in self._groups.items() if now_m - g.opened >= self._window_s]:
            out += self._summary(key, self._groups.pop(key))
        return out

    def _ensure_timer(self) -> None:  # under the lock
        if self._timer is None:
            self._timer = threading.Thread(target=self._run, name="gefion-denials",
                                           daemon=True)
            self._timer.start()

    def _run(self) -> None:
        """Close expired groups every few seconds until none is left open."""
        idle = False
        while not idle and not self._stop.wait(min(self._window_s, 5.0)):
            with self._lock:
                summaries = self._close_expired(time.monotonic())
                idle = not self._groups
                if idle:
                    self._timer = None
            for summary in summaries:
                self._emit(summary, self._clock())

    def _emit(self, payload: Mapping[str, Any], ts: float) -> None:
        try:
            self._write({k: v for k, v in payload.items() if v is not None}, ts)
        except Exception:  # the refusal is answered anyway
            log.warning("could not record a refused request (%s, %s)",
                        payload.get("principal"), payload.get("reason"), exc_info=True)
