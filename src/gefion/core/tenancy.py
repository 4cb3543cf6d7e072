"""Tenancy: projects, GPU-hour grants and QOS — who may use the machine, and how much.

All of it is immutable data handed to the cycle in the snapshot. Units: GPU-hours for grants
as people speak of them, GPU-seconds inside the core (``gpu_hours * 3600``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gefion.core.errors import SpecError


@dataclass(frozen=True, slots=True)
class QOS:
    """A quality of service: priority, limits, preemption and how usage is charged.

    ``priority`` is a raw weight (like Slurm's QOS priority); the cycle normalises it by the
    largest QOS priority into a 0..1 factor. ``usage_factor`` multiplies charged GPU-seconds
    (a scavenger QOS may charge 0). ``preempts`` names the QOS this one may evict.
    """

    name: str
    priority: float = 0.0
    preemptible: bool = False
    preempts: frozenset[str] = frozenset()
    max_time_limit_s: int | None = None
    max_gpus_per_user: int | None = None
    grace_s: int = 60
    usage_factor: float = 1.0
    requeue: bool | None = None  # None: requeue exactly when preemptible

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("is required", field="qos.name")
        if self.usage_factor < 0:
            raise SpecError(f"must be >= 0, got {self.usage_factor}", field="usage_factor")
        if self.grace_s < 0:
            raise SpecError(f"must be >= 0, got {self.grace_s}", field="grace")
        if self.max_time_limit_s is not None and self.max_time_limit_s <= 0:
            raise SpecError(f"must be > 0, got {self.max_time_limit_s}",
                            field="max_time_limit")

    @property
    def requeues(self) -> bool:
        return self.preemptible if self.requeue is None else self.requeue

    def lets_evict(self, own: bool | None) -> bool:
        """Whether a job of this QOS may be evicted; ``own``: the job's own word
        (``JobSpec.preemptible``), None to leave it to the QOS."""
        return self.preemptible if own is None else own


DEFAULT_QOS: dict[str, QOS] = {
    "normal": QOS("normal", priority=10),
    "high": QOS("high", priority=100, preempts=frozenset({"scavenger"})),
    "scavenger": QOS("scavenger", priority=0, preemptible=True, usage_factor=0.0, grace_s=30),
}


def qos_named(table: Mapping[str, QOS], name: str) -> QOS:
    """QOS ``name`` of ``table``; an unknown name is ``normal`` (the table's, else the
    default one)."""
    q = table.get(name)
    if q is None:
        q = table.get("normal") or DEFAULT_QOS["normal"]
    return q


@dataclass(frozen=True, slots=True)
class Grant:
    """An allocation of GPU-hours to a project, valid in ``[valid_from_s, valid_to_s)``."""

    id: str
    project: str
    gpu_hours: float
    valid_from_s: float = 0.0
    valid_to_s: float = float("inf")
    funder: str = ""

    def __post_init__(self) -> None:
        if self.gpu_hours < 0:
            raise SpecError(f"must be >= 0, got {self.gpu_hours}", field="gpu_hours")
        if self.valid_to_s <= self.valid_from_s:
            raise SpecError("valid_to must be after valid_from", field="valid_to")

    @property
    def gpu_s(self) -> float:
        return self.gpu_hours * 3600.0

    def active(self, now: float) -> bool:
        return self.valid_from_s <= now < self.valid_to_s


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its fair-share ``shares``, members and limits.

    ``max_gpus`` caps the GPUs its jobs hold at once (reason PROJECT_LIMIT). A ``metered``
    project needs an active grant with hours left (reason GRANT_EXHAUSTED otherwise).
    A ``sensitive`` project's jobs only share nodes with jobs of the same project.
    """

    name: str
    shares: float = 1.0
    members: frozenset[str] = field(default_factory=frozenset)
    max_gpus: int | None = None
    metered: bool = False
    sensitive: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise SpecError("is required", field="project.name")
        if self.shares < 0:
            raise SpecError(f"must be >= 0, got {self.shares}", field="shares")
        if self.max_gpus is not None and self.max_gpus < 0:
            raise SpecError(f"must be >= 0, got {self.max_gpus}", field="max_gpus")
