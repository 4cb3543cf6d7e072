"""The snapshot a cycle reads, and the one builder both bodies use to make it.

A snapshot is the state of the world at the start of a cycle: the cluster (with node
states), running jobs with their allocations and *expected* ends (start + time limit — never
the true runtime), pending jobs, reservations, tenancy, the decayed usage ledger and grant
balances. :func:`build_snapshot` is the only way the controller and the twin make one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gefion.core.errors import GefionError
from gefion.core.jobs import Job, JobSpec, JobState, Shape
from gefion.core.reservations import Reservation
from gefion.core.tenancy import DEFAULT_QOS, QOS, Grant, Project, qos_named
from gefion.core.topology import Cluster
from gefion.core.usage import FairShare, UsageLedger


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A running job as the scheduler sees it. ``alloc``: (node index, GPUs) pairs."""

    id: str
    spec: JobSpec
    start_s: float
    expected_end_s: float
    alloc: tuple[tuple[int, int], ...]
    preemptible: bool
    grace_s: int
    requeue: bool
    service_gpu_s: float  # attained service before this run

    @property
    def gpus(self) -> int:
        return sum(g for _, g in self.alloc)


@dataclass(frozen=True, slots=True)
class PendingJob:
    """A pending job. ``shape`` is None when the request cannot be laid out on this cluster
    (``shape_error`` says why)."""

    id: str
    spec: JobSpec
    submit_s: float
    shape: Shape | None
    held: bool = False
    service_gpu_s: float = 0.0
    shape_error: str = ""


@dataclass(frozen=True)
class Snapshot:
    cluster: Cluster
    running: tuple[RunningJob, ...] = ()
    pending: tuple[PendingJob, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    projects: Mapping[str, Project] = field(default_factory=dict)
    qos: Mapping[str, QOS] = field(default_factory=lambda: dict(DEFAULT_QOS))
    fairshare: FairShare = field(default_factory=lambda: FairShare({}, {}))
    #: remaining GPU-seconds of active grants per metered project
    grant_left_gpu_s: Mapping[str, float] = field(default_factory=dict)
    #: state of every job a dependency may name (terminal ones with their exit codes)
    job_states: Mapping[str, JobState] = field(default_factory=dict)
    exit_codes: Mapping[str, int | None] = field(default_factory=dict)
    as_of_s: float = 0.0

    def qos_of(self, name: str) -> QOS:
        return qos_named(self.qos, name)


def resolve_shape(spec: JobSpec, cluster: Cluster) -> tuple[Shape | None, str]:
    try:
        shape = spec.shape(cluster.max_gpus_per_node)
    except GefionError as e:
        return None, str(e)
    if shape.nodes > len(cluster.nodes):
        return None, f"needs {shape.nodes} nodes, the cluster has {len(cluster.nodes)}"
    return shape, ""


def build_snapshot(
    cluster: Cluster,
    jobs: Iterable[Job],
    now: float,
    *,
    reservations: Iterable[Reservation] = (),
    projects: Mapping[str, Project] | None = None,
    qos: Mapping[str, QOS] | None = None,
    ledger: UsageLedger | None = None,
    grants: Iterable[Grant] = (),
    charged_gpu_s: Mapping[str, float] | None = None,
    fairshare_table: FairShare | None = None,
) -> Snapshot:
    """Build the snapshot for a cycle at ``now`` from job records and tenancy, in one shot.

    The same as a fresh :class:`~gefion.core.builder.SnapshotBuilder` with every job put
    (running jobs in order of start, then id) and one ``build``; a body that runs many
    cycles keeps a builder instead and tells it what changed. See
    :meth:`~gefion.core.builder.SnapshotBuilder.build` for the arguments.
    """
    from gefion.core.builder import SnapshotBuilder  # builder.py imports this module

    builder = SnapshotBuilder(cluster, qos=qos)
    builder.put_all(sorted(jobs, key=_start_order))
    return builder.build(now, reservations=reservations, projects=projects, ledger=ledger,
                         grants=grants, charged_gpu_s=charged_gpu_s,
                         fairshare_table=fairshare_table)


def _start_order(job: Job) -> tuple[float, int, str]:
    start = job.start_s if job.start_s is not None else job.submit_s
    return (start, len(job.id), job.id)


@dataclass(frozen=True, slots=True)
class BaseView:
    """The availability base of the running jobs as a snapshot builder keeps it, lent to a
    cycle rather than copied (read only): GPUs held per node, ``free`` GPUs per node (0 on
    nodes that are not up), ``free_hist[k]``: nodes with ``k - 1`` free (``k = 0``: fewer
    than none), how to get the raw ``tau`` table (``-inf``: free now; brought up to date
    when called), each node's releases (expected end, GPUs) in order, and the earliest
    expected end of any running job."""

    held: Any
    free: Any
    free_hist: Any
    tau: Callable[[], Any]
    releases: Any
    earliest_end_s: float


#: ``snapshot._base``: the view, the builder's generation cell, and the generation the view
#: belongs to.
SharedBase = tuple[BaseView, list[int], int]


def current_base(snapshot: Snapshot) -> BaseView | None:
    """The base the builder left on ``snapshot``, if the builder has not changed it since
    (its generation moved on: a snapshot kept past the next change); else None, and the
    cycle computes its base from the running jobs."""
    base: SharedBase | None = snapshot.__dict__.get("_base")
    if base is None:
        return None
    view, cell, generation = base
    return view if cell[0] == generation else None
