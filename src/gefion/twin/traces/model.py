"""The canonical trace records every reader produces: :class:`TraceJob` and :class:`Trace`.

Times are seconds on the trace's own axis, shifted so that the first submit is 0. A job's
``duration_s`` is its TRUE runtime: only the twin may read it, never the scheduler
(DESIGN.md, invariant 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple


class TraceJob(NamedTuple):
    """One job of a trace: a named tuple (immutable; ``._replace`` makes a changed copy),
    since a trace holds up to millions of them and a frozen dataclass costs five times as
    much to make.

    Units: ``submit_s`` and ``duration_s`` in seconds (floats), ``time_limit_s`` in whole
    seconds. ``project``, ``user`` and ``qos`` are ``""`` when the trace does not say.
    """

    job_id: str
    submit_s: float  # seconds from the trace's time 0 (the first submit)
    duration_s: float  # TRUE runtime; only the twin knows it
    gpus: int
    project: str = ""
    user: str = ""
    time_limit_s: int | None = None  # requested limit, if the trace has one
    qos: str = ""


@dataclass(frozen=True, slots=True)
class ClusterHint:
    """A cluster size that suits a trace (from its source or its paper's artifact)."""

    nodes: int
    gpus_per_node: int
    note: str = ""

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True, slots=True)
class Trace:
    """A named, immutable list of jobs sorted by ``(submit_s, job_id)``.

    ``origin`` says what time 0 is when that is known: a datetime string exactly as the
    source writes it (naive: no time zone, see docs/traces.md) or absolute epoch seconds;
    ``None`` when the source only gives relative times. ``shift_s`` is the amount (seconds
    on the source's own axis) that was subtracted to make the first submit 0. ``dropped``
    counts source records left out, by reason, so that reports can say so.
    """

    name: str
    source: str
    jobs: tuple[TraceJob, ...]
    origin: float | str | None = None
    shift_s: float = 0.0
    cluster: ClusterHint | None = None
    dropped: tuple[tuple[str, int], ...] = field(default=())

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last submit (0 for an empty trace)."""
        return self.jobs[-1].submit_s - self.jobs[0].submit_s if self.jobs else 0.0

    @property
    def gpu_seconds(self) -> float:
        """Total true work, GPU-seconds: the sum of ``gpus × duration_s``."""
        return sum(j.gpus * j.duration_s for j in self.jobs)


def shifted_origin(origin: float | str | None, by_s: float) -> float | str | None:
    """The origin of a trace whose time 0 moved ``by_s`` seconds later."""
    if origin is None or by_s == 0:
        return origin
    if isinstance(origin, str):
        moved = datetime.fromisoformat(origin) + timedelta(seconds=by_s)
        sep = "T" if "T" in origin else " "
        return moved.isoformat(sep=sep, timespec="seconds" if not moved.microsecond else "auto")
    return origin + by_s
