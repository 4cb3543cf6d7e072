"""Jobs: the validated request (:class:`JobSpec`), its life cycle (:class:`JobState`) and the
immutable record the bodies keep (:class:`Job`).

Shapes. A job asks for ``gpus`` in total, optionally ``nodes`` and ``gpus_per_node``. The core
resolves that into a :class:`Shape` (``nodes`` × ``gpus_per_node``) against the cluster's node
size: a job that fits one node is a single-node job (packed beside others); a larger one is a
gang of whole nodes, all or nothing. An explicit ``gpus_per_node`` lets a gang use part of each
node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from gefion.core.errors import SpecError, StateError


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    PREEMPTED = "PREEMPTED"  # evicted; requeues (back to PENDING) or is cancelled
    NODE_FAIL = "NODE_FAIL"  # a node of the job died; requeues or ends there

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED,
                       JobState.TIMEOUT})

#: Every legal transition. PREEMPTED and NODE_FAIL are waypoints: the job is requeued
#: (back to PENDING) or, if not requeueable, ends there as a final state.
LEGAL_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED,
                                 JobState.TIMEOUT, JobState.PREEMPTED, JobState.NODE_FAIL}),
    JobState.PREEMPTED: frozenset({JobState.PENDING, JobState.CANCELLED}),
    JobState.NODE_FAIL: frozenset({JobState.PENDING, JobState.CANCELLED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMEOUT: frozenset(),
}


def check_transition(current: JobState, new: JobState) -> JobState:
    """Return ``new`` if ``current → new`` is legal, else raise :class:`StateError`."""
    if new not in LEGAL_TRANSITIONS[current]:
        raise StateError(f"illegal job state transition {current} -> {new}")
    return new


class DependencyKind(StrEnum):
    AFTEROK = "afterok"        # start after the job completed with exit code 0
    AFTERANY = "afterany"      # start after the job ended, however
    AFTERNOTOK = "afternotok"  # start after the job failed (FAILED, TIMEOUT, NODE_FAIL, ...)
    SINGLETON = "singleton"    # only one running job per (name, user)


@dataclass(frozen=True, slots=True)
class Dependency:
    kind: DependencyKind
    job_id: str | None = None  # None only for SINGLETON

    def __post_init__(self) -> None:
        if self.kind is DependencyKind.SINGLETON:
            if self.job_id is not None:
                raise SpecError("singleton takes no job id", field="depends_on")
        elif not self.job_id:
            raise SpecError(f"{self.kind} needs a job id", field="depends_on")

    @classmethod
    def parse(cls, text: str) -> tuple[Dependency, ...]:
        """Parse Slurm's ``afterok:12:13,afterany:14`` or ``singleton`` (also ``?`` lists)."""
        deps: list[Dependency] = []
        for part in text.replace("?", ",").split(","):
            part = part.strip()
            if not part:
                continue
            kind_text, _, ids = part.partition(":")
            try:
                kind = DependencyKind(kind_text.lower())
            except ValueError:
                raise SpecError(
                    f"unknown dependency type {kind_text!r}; expected one of "
                    f"{', '.join(k.value for k in DependencyKind)}", field="depends_on"
                ) from None
            if kind is DependencyKind.SINGLETON:
                if ids:
                    raise SpecError("singleton takes no job id", field="depends_on")
                deps.append(cls(kind))
                continue
            if not ids:
                raise SpecError(f"{kind} needs at least one job id", field="depends_on")
            deps.extend(cls(kind, job_id.split("+")[0]) for job_id in ids.split(":") if job_id)
        return tuple(deps)

    def __str__(self) -> str:
        return self.kind.value if self.job_id is None else f"{self.kind}:{self.job_id}"


class TopologyConstraint(StrEnum):
    """How strongly a gang wants one scalable unit."""

    PREFERRED = "preferred"  # span as few units as possible (the default for everyone)
    REQUIRED = "required"    # one unit or wait (reason TOPOLOGY)


@dataclass(frozen=True, slots=True)
class Shape:
    """A resolved request: ``nodes`` distinct nodes with ``gpus_per_node`` GPUs each."""

    nodes: int
    gpus_per_node: int

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user asked for. Validated on construction; never holds a true runtime.

    Units: ``time_limit_s`` and ``grace_s`` in seconds.
    """

    gpus: int
    time_limit_s: int
    project: str
    user: str = ""
    name: str = ""
    nodes: int | None = None
    gpus_per_node: int | None = None
    qos: str = "normal"
    depends_on: tuple[Dependency, ...] = ()
    array_index: int | None = None
    reservation: str | None = None
    same_su: TopologyConstraint = TopologyConstraint.PREFERRED
    preemptible: bool | None = None  # None: the QOS decides
    grace_s: int | None = None  # None: the QOS decides
    exclusive: bool = False  # whole nodes, no other job beside it
    #: the array this job is a task of (the body's array job id), and how many of its tasks
    #: may run at once (Slurm's ``--array=...%N``; None: no limit)
    array_id: str | None = None
    array_limit: int | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "same_su", TopologyConstraint(self.same_su))
        except ValueError:
            raise SpecError(f"must be 'required' or 'preferred', got {self.same_su!r}",
                            field="same_su") from None
        if not isinstance(self.gpus, int) or isinstance(self.gpus, bool) or self.gpus < 0:
            raise SpecError(f"must be a whole number >= 0, got {self.gpus!r}", field="gpus")
        if not isinstance(self.time_limit_s, int) or self.time_limit_s <= 0:
            raise SpecError(f"must be a whole number of seconds > 0, got {self.time_limit_s!r}",
                            field="time_limit")
        if not self.project:
            raise SpecError("is required", field="project")
        if self.nodes is not None and (not isinstance(self.nodes, int) or self.nodes < 1):
            raise SpecError(f"must be a whole number >= 1, got {self.nodes!r}", field="nodes")
        if self.gpus_per_node is not None and (
                not isinstance(self.gpus_per_node, int) or self.gpus_per_node < 0):
            raise SpecError(f"must be a whole number >= 0, got {self.gpus_per_node!r}",
                            field="gpus_per_node")
        if self.nodes is not None and self.gpus_per_node is not None \
                and self.gpus != self.nodes * self.gpus_per_node:
            raise SpecError(
                f"gpus={self.gpus} is not nodes × gpus_per_node = "
                f"{self.nodes} × {self.gpus_per_node}", field="gpus")
        if self.grace_s is not None and self.grace_s < 0:
            raise SpecError(f"must be >= 0 seconds, got {self.grace_s}", field="grace")
        if self.array_limit is not None and (
                not isinstance(self.array_limit, int) or self.array_limit < 1):
            raise SpecError(f"must be a whole number >= 1, got {self.array_limit!r}",
                            field="array_limit")
        if self.array_index is not None and self.array_index < 0:
            raise SpecError(f"must be >= 0, got {self.array_index}", field="array_index")

    def shape(self, node_gpus: int) -> Shape:
        """Resolve the request against nodes of ``node_gpus`` GPUs.

        Raises :class:`SpecError` when the request cannot be laid out on such nodes.
        """
        if self.gpus_per_node is not None:
            if self.gpus_per_node > node_gpus:
                raise SpecError(f"{self.gpus_per_node} GPUs per node, but nodes have "
                                f"{node_gpus}", field="gpus_per_node")
            nodes = self.nodes if self.nodes is not None else (
                max(1, self.gpus // self.gpus_per_node) if self.gpus_per_node else 1)
            if self.gpus_per_node and nodes * self.gpus_per_node != self.gpus:
                raise SpecError(f"gpus={self.gpus} is not a multiple of gpus_per_node="
                                f"{self.gpus_per_node}", field="gpus")
            gpn = self.gpus_per_node
        elif self.nodes is not None:
            nodes = self.nodes
            if self.gpus % nodes:
                raise SpecError(f"gpus={self.gpus} does not split evenly over {nodes} nodes",
                                field="gpus")
            gpn = self.gpus // nodes
            if gpn > node_gpus:
                raise SpecError(f"{gpn} GPUs per node, but nodes have {node_gpus}",
                                field="gpus")
        elif self.gpus <= node_gpus:
            nodes, gpn = 1, self.gpus
        else:
            nodes = math.ceil(self.gpus / node_gpus)
            if self.gpus % nodes:
                raise SpecError(
                    f"gpus={self.gpus} does not split evenly over {nodes} nodes of "
                    f"{node_gpus} GPUs; give nodes and gpus_per_node", field="gpus")
            gpn = self.gpus // nodes
        if self.exclusive:
            gpn = node_gpus
        return Shape(nodes, gpn)


@dataclass(frozen=True, slots=True)
class Job:
    """The immutable record a body keeps of one job; updated by copies (``replace``).

    ``allocation`` maps node name → GPU indices on that node while the job runs.
    ``service_gpu_s`` is attained service from earlier runs (for LAS and accounting).
    Times are seconds on the body's clock (virtual or wall).
    """

    id: str
    spec: JobSpec
    submit_s: float
    state: JobState = JobState.PENDING
    start_s: float | None = None
    end_s: float | None = None
    allocation: tuple[tuple[str, tuple[int, ...]], ...] = ()
    held: bool = False
    exit_code: int | None = None
    service_gpu_s: float = 0.0
    restarts: int = 0

    def transition(self, new: JobState) -> JobState:
        return check_transition(self.state, new)

    @property
    def allocated_gpus(self) -> int:
        return sum(len(g) for _, g in self.allocation)
