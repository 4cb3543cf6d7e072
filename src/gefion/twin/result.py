"""What a twin run returns: one :class:`JobRecord` per job, thinned :class:`Sample` s of the
cluster over time, exact time integrals, and counts (:class:`SimResult`).

Units: seconds on the trace's clock (its first submit is 0), GPUs, watts, joules,
GPU-seconds.

Samples are for plots; every time-weighted metric comes from the exact integrals the
engine keeps (``allocated_gpu_s``, ``stranded_gpu_s``, ``energy_j``), never from samples.
Samples are thinned so that a million-job run stays small: a sample equal to the last kept
one (all fields but the time) is dropped (run-length merge), and at most one sample is kept
per ``sample_every_s`` seconds of virtual time (the first state seen in each interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from gefion.core.tenancy import Grant


class JobRecord(NamedTuple):
    """One job as it ended (a named tuple: a run makes one per job, and a frozen dataclass
    costs five times as much to make).

    ``gpus`` is what it held (a request rounded up to whole nodes shows the rounded count).
    ``first_start_s`` is the start of its first run, ``end_s`` the end of its last;
    ``runtime_s`` the seconds it ran over all runs (grace periods and lost work included);
    ``preemptions`` how often it was evicted; ``energy_j`` its energy in joules (see
    :mod:`gefion.twin.power`). JCT = ``end_s − submit_s``; wait = ``first_start_s − submit_s``.
    ``state`` is the final :class:`~gefion.core.jobs.JobState` value (``COMPLETED``,
    ``TIMEOUT``, ``CANCELLED``).
    """

    job_id: str
    project: str
    user: str
    gpus: int
    submit_s: float
    first_start_s: float
    end_s: float
    state: str
    runtime_s: float
    time_limit_s: int
    preemptions: int
    energy_j: float

    @property
    def jct_s(self) -> float:
        return self.end_s - self.submit_s

    @property
    def wait_s(self) -> float:
        return self.first_start_s - self.submit_s


class Sample(NamedTuple):
    """The cluster after the events at ``time_s`` (and the cycle they caused); a named
    tuple, like :class:`JobRecord`.

    ``allocated_gpus``: GPUs held by running jobs; ``queue_len``/``pending_gpus``: pending
    jobs and the GPUs they ask for; ``stranded_free_gpus``: free GPUs on partly allocated up
    nodes while at least one pending job needs whole nodes (else 0; see docs/twin.md);
    ``power_w``: the cluster's power draw in watts.
    """

    time_s: float
    allocated_gpus: int
    queue_len: int
    pending_gpus: int
    stranded_free_gpus: int
    power_w: float


@dataclass(frozen=True, slots=True)
class SimResult:
    """A whole run. ``trace``, ``cluster`` and ``policy`` are names; ``load`` the workload
    model's load factor the trace was built with (for reports).

    ``makespan_s``: the last job end (time 0 is the first submit). ``preemptions``: evictions
    carried out. ``cycles``: calls of the core's cycle; ``cycles_skipped``: event batches at
    which the engine proved the cycle could decide nothing (see docs/twin.md). ``events``:
    events processed (arrivals included). ``dropped``: jobs not simulated, by reason.
    ``rounded_up``: jobs whose GPU request was rounded up to whole nodes. ``node_failures``:
    node failures that happened; ``failed_runs``: job runs they killed (requeued).
    Integrals over ``[0, makespan_s]``: ``allocated_gpu_s`` (GPU-seconds allocated),
    ``stranded_gpu_s`` (GPU-seconds stranded), ``energy_j`` (the cluster's energy, idle
    included). ``project_shares``: fair-share shares per project (1.0 where the run was given
    no :class:`~gefion.core.tenancy.Project`), for entitlements. ``wall_s``: host seconds
    the run took (not part of any summary, so that summaries stay reproducible).
    ``grants``: the run's GPU-hour grants; ``grant_charges``: per project with grants (or
    metered), its charges ``(time_s, gpu_s)`` in time order — each run's GPU-seconds × QOS
    usage factor at its end, a tenancy file's ``usage`` at time 0 — for the burn-down;
    ``grant_held_jobs``: per project, the jobs the core held at least once for
    GRANT_EXHAUSTED (see :mod:`gefion.twin.metering`); ``sensitive``: the projects marked
    sensitive (their jobs share no node with another project's).
    """

    trace: str
    cluster: str
    policy: str
    seed: int
    load: float
    total_gpus: int
    jobs: tuple[JobRecord, ...]
    samples: tuple[Sample, ...]
    makespan_s: float
    preemptions: int
    cycles: int
    events: int
    dropped: dict[str, int]
    wall_s: float = 0.0
    cycles_skipped: int = 0
    rounded_up: int = 0
    node_failures: int = 0
    failed_runs: int = 0
    allocated_gpu_s: float = 0.0
    stranded_gpu_s: float = 0.0
    energy_j: float = 0.0
    project_shares: dict[str, float] = field(default_factory=dict)
    sample_every_s: float = 0.0
    grants: tuple[Grant, ...] = ()
    grant_charges: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    grant_held_jobs: dict[str, int] = field(default_factory=dict)
    sensitive: tuple[str, ...] = ()


class SampleLog:
    """Collects samples as a run goes, thinned as the module docstring says.

    ``every_s`` = 0 keeps every change. Within one interval ``[k·every_s, (k+1)·every_s)``
    a later sample replaces the earlier one, so each interval keeps the last state it saw.
    """

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._rows: list[tuple[float, int, int, int, int, float]] = []
        self._bucket = -1
        #: the last row's values (all but the time); None while there is no row
        self.last: tuple[int, int, int, int, float] | None = None

    def add(self, time_s: float, allocated: int, queue_len: int, pending_gpus: int,
            stranded: int, power_w: float) -> None:
        self.add_values(time_s, (allocated, queue_len, pending_gpus, stranded, power_w))

    def add_values(self, time_s: float, values: tuple[int, int, int, int, float]) -> None:
        """:meth:`add` with the values (all but the time) as one tuple."""
        if values == self.last:
            return  # run-length merge: nothing changed
        rows = self._rows
        bucket = int(time_s // self.every_s) if self.every_s > 0 else -1
        if rows and bucket >= 0 and bucket == self._bucket:
            rows.pop()
            if rows and rows[-1][1:] == values:
                self._bucket = -2  # the last row is from an earlier interval: keep it
                self.last = values
                return
        rows.append((time_s, *values))
        self._bucket = bucket
        self.last = values

    def samples(self) -> tuple[Sample, ...]:
        return tuple(map(Sample._make, self._rows))

    def __len__(self) -> int:
        return len(self._rows)
