"""What the client hands back: frozen dataclasses built from the API's JSON answers.

Units: ``*_ts`` seconds since the epoch, ``*_s`` seconds. Mapping fields hold plain JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")

#: States in which a job has ended for good (ended runs of requeued jobs are events).
ENDED_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL")


def _from_json(cls: type[T], obj: Mapping[str, Any]) -> T:
    """``cls`` from the keys it has (keys added to the API later are ignored)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in obj.items() if k in names})


@dataclass(frozen=True)
class SubmitResult:
    """Ids of the submitted jobs (array tasks in index order), the array's id, the
    parser's warnings (``job.sh:4: --mem: ...``) and the idempotency key that was used."""

    job_ids: tuple[int, ...]
    array_job_id: int | None
    warnings: tuple[str, ...]
    idempotency_key: str

    @property
    def job_id(self) -> int:
        """What sbatch prints: the array's id, or the one job's."""
        return self.array_job_id if self.array_job_id is not None else self.job_ids[0]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], key: str) -> SubmitResult:
        return cls(tuple(obj["job_ids"]), obj.get("array_job_id"),
                   tuple(_warning(w) for w in obj.get("warnings", ())), key)


def _warning(w: Mapping[str, Any]) -> str:
    where = w.get("source") or ""
    if w.get("line") is not None:
        where += f":{w['line']}"
    return f"{where}: {w.get('option')}: {w.get('message')}"


@dataclass(frozen=True)
class JobInfo:
    """One job as ``GET /v1/jobs/{id}`` shows it. ``reason``/``eta_ts``/``priority`` are the
    scheduler's view of a pending job; ``signal`` is known for a job that ended when it
    was asked for (``job()``, ``jobs(signals=True)``). ``spec`` never holds the env."""

    id: int
    name: str
    user: str
    project: str
    qos: str
    state: str
    submit_ts: float
    reason: str | None = None
    reason_detail: str | None = None
    eta_ts: float | None = None
    priority: Mapping[str, float] | None = None
    held: bool = False
    restarts: int = 0
    start_ts: float | None = None
    end_ts: float | None = None
    elapsed_s: float | None = None
    time_limit_s: int | None = None
    gpus: int | None = None
    nodes: int | None = None
    nodelist: tuple[str, ...] = ()
    allocation: Mapping[str, list[int]] = field(default_factory=dict)
    exit_code: int | None = None
    signal: int | None = None
    array_job_id: int | None = None
    array_task_id: int | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)
    gpu_s: float | None = None
    energy_j: float | None = None
    power_w: float | None = None
    idle_gpus: bool = False
    idle_since_ts: float | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> JobInfo:
        return _from_json(cls, {**obj, "nodelist": tuple(obj.get("nodelist") or ())})

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def exit(self) -> str:
        """sacct's ExitCode, ``code:signal`` (``0:0``, ``1:0``, ``0:9``); ``-`` if none."""
        if self.exit_code is None and self.signal is None:
            return "-"
        return f"{self.exit_code or 0}:{self.signal or 0}"

    @property
    def gpu_hours(self) -> float:
        """GPU-hours of every run (a requeued job has several), the running one so far."""
        if self.gpu_s is not None:
            return self.gpu_s / 3600.0
        return (self.gpus or 0) * (self.elapsed_s or 0.0) / 3600.0

    @property
    def energy_kwh(self) -> float | None:
        """Measured energy of every run, kWh (None: none measured)."""
        return None if self.energy_j is None else self.energy_j / 3.6e6


@dataclass(frozen=True)
class JobPage:
    """One page of ``jobs()``; pass ``next_after`` as ``after`` for the next (None: last)."""

    jobs: tuple[JobInfo, ...]
    next_after: int | None


@dataclass(frozen=True)
class JobEvent:
    seq: int
    ts: float
    kind: str
    job_id: int | None
    node: str | None
    payload: Mapping[str, Any]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> JobEvent:
        return _from_json(cls, obj)


@dataclass(frozen=True)
class QueueEntry:
    """One job of ``queue()``: not yet ended. ``reason`` and ``eta_ts`` for a pending job,
    ``nodelist`` for a running one."""

    id: int
    name: str
    user: str
    project: str
    state: str
    submit_ts: float
    reason: str | None = None
    nodelist: tuple[str, ...] = ()
    start_ts: float | None = None
    eta_ts: float | None = None
    time_limit_s: int | None = None
    nodes: int = 1
    gpus: int = 0
    array_job_id: int | None = None
    array_task_id: int | None = None
    held: bool = False
    idle_gpus: bool = False
    idle_since_ts: float | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> QueueEntry:
        return _from_json(cls, {**obj, "nodelist": tuple(obj.get("nodelist") or ())})


@dataclass(frozen=True)
class NodeInfo:
    """A node as sinfo shows it: ``state`` idle, mixed, allocated, drained, down or maint
    (in an open maintenance window); the reservation open on it now, and when its next
    maintenance starts."""

    name: str
    gpus: int
    su: str
    state: str
    reason: str | None
    gpus_allocated: int
    reservation: str | None = None
    maint_start_ts: float | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> NodeInfo:
        return _from_json(cls, obj)
