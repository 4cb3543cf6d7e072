"""Advance reservations: blocks of nodes over time windows, one-off or recurring.

A reservation holds ``nodes`` during each of its windows. Jobs that name it
(``JobSpec.reservation``) run only inside it; jobs of its ``projects``/``users`` may also use
its nodes without naming it; everyone else is kept off those nodes during the windows. A
``maintenance`` reservation admits no job at all.

Recurrence: ``period_s`` (e.g. 86,400 for daily) repeats the window ``[start_s, end_s)`` every
period until ``until_s``. Times are seconds on the body's clock (UTC epoch for live sites).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from gefion.core.errors import SpecError


@dataclass(frozen=True, slots=True)
class Reservation:
    name: str
    nodes: tuple[str, ...]
    start_s: float
    end_s: float
    period_s: float | None = None
    until_s: float | None = None
    projects: frozenset[str] = field(default_factory=frozenset)
    users: frozenset[str] = field(default_factory=frozenset)
    maintenance: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("is required", field="reservation.name")
        if not self.nodes:
            raise SpecError(f"reservation {self.name!r} has no nodes", field="nodes")
        if self.end_s <= self.start_s:
            raise SpecError(f"reservation {self.name!r}: end must be after start", field="end")
        if self.period_s is not None and self.period_s < self.end_s - self.start_s:
            raise SpecError(f"reservation {self.name!r}: period shorter than its window",
                            field="period")

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def admits(self, project: str, user: str, requested: str | None) -> bool:
        """May a job of ``project``/``user`` that names ``requested`` use this reservation?"""
        if self.maintenance:
            return False
        if requested == self.name:
            return True
        return project in self.projects or user in self.users

    def windows(self, from_s: float, to_s: float) -> Iterator[tuple[float, float]]:
        """Windows ``(start, end)`` overlapping ``[from_s, to_s)``, in time order."""
        if self.period_s is None:
            if self.start_s < to_s and self.end_s > from_s:
                yield (self.start_s, self.end_s)
            return
        first = max(0, math.floor((from_s - self.end_s) / self.period_s) + 1)
        k = first
        while True:
            start = self.start_s + k * self.period_s
            if start >= to_s or (self.until_s is not None and start >= self.until_s):
                return
            end = start + self.duration_s
            if end > from_s:
                yield (start, end)
            k += 1

    def window_at(self, t: float) -> tuple[float, float] | None:
        """The window containing ``t``, if any."""
        for w in self.windows(t, t + 1e-9):
            if w[0] <= t < w[1]:
                return w
        return None
