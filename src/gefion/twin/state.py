"""The twin's view of the machine: free GPU indices per node, who runs where, pending
demand, and the exact time integrals (allocation, stranded GPUs, energy)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from gefion.core.invariants import InvariantError
from gefion.core.jobs import Job, JobState, Shape
from gefion.core.topology import Cluster, NodeState
from gefion.twin.power import PowerMeter, PowerModel
from gefion.twin.result import SampleLog
from gefion.twin.traces.model import TraceJob


class ClusterState:
    """What the engine knows of the machine: free GPU indices per node, who runs where,
    pending demand, and the exact time integrals (allocation, stranded GPUs, energy).

    Stranded free GPUs: free GPUs on schedulable nodes that are partly allocated, counted
    only while at least one pending job needs whole nodes (``gpus_per_node`` equal to the
    cluster's node size); they cannot serve such a job.
    """

    def __init__(self, cluster: Cluster, power: PowerModel, sample_every_s: float) -> None:
        nodes = cluster.nodes
        self.cluster = cluster
        self.names = [n.name for n in nodes]
        self.index = {name: i for i, name in enumerate(self.names)}
        self.cap = [n.gpus for n in nodes]
        self.base_state = [n.state for n in nodes]
        self.schedulable = [n.state.schedulable for n in nodes]
        self.powered = [n.state is not NodeState.DOWN for n in nodes]
        self.free_idx = [list(range(c)) for c in self.cap]
        self.used = [0] * len(nodes)
        self.on_node: list[set[str]] = [set() for _ in nodes]
        self.whole_gpn = cluster.max_gpus_per_node
        self.total_gpus = cluster.total_gpus
        self.free_hist = [0] * (self.whole_gpn + 1)  # schedulable nodes by free GPUs
        for n, c in enumerate(self.cap):
            if self.schedulable[n]:
                self.free_hist[c] += 1
        self.job_gpu_w = [power.job_gpu_w(c) for c in self.cap]
        self.meter = PowerMeter(power, self.cap, self.powered)
        self.allocated = self.partial_free = self.running_count = 0
        self.pending_count = self.pending_gpus = self.pending_whole = 0
        self.pending_shapes: Counter[tuple[int, int]] = Counter()
        #: (GPUs per node, fewest nodes) over the pending shapes that fit a node; None:
        #: to be made again (a shape came or went)
        self._fewest: list[tuple[int, int]] | None = None
        self.last_t: float | None = None
        self.allocated_gpu_s = self.stranded_gpu_s = self.energy_j = 0.0
        #: allocated GPUs, stranded GPUs and watts at the last sample (see advance)
        self.rates: tuple[int, int, float] = (0, 0, 0.0)
        self.sample_every_s = sample_every_s
        self.log = SampleLog(sample_every_s)

    # -- bookkeeping --------------------------------------------------------------------
    def _set_used(self, n: int, new: int) -> None:
        old, c = self.used[n], self.cap[n]
        if self.schedulable[n]:
            self.free_hist[c - old] -= 1
            self.free_hist[c - new] += 1
            if 0 < old < c:
                self.partial_free -= c - old
            if 0 < new < c:
                self.partial_free += c - new
        self.used[n] = new

    def add_pending(self, shape: Shape) -> None:
        self.pending_count += 1
        self.pending_gpus += shape.gpus
        self.pending_whole += shape.gpus_per_node >= self.whole_gpn
        key = (shape.nodes, shape.gpus_per_node)
        shapes = self.pending_shapes
        if key in shapes:
            shapes[key] += 1
        else:
            shapes[key] = 1
            self._fewest = None

    def remove_pending(self, shape: Shape) -> None:
        self.pending_count -= 1
        self.pending_gpus -= shape.gpus
        self.pending_whole -= shape.gpus_per_node >= self.whole_gpn
        key = (shape.nodes, shape.gpus_per_node)
        shapes = self.pending_shapes
        left = shapes[key] - 1
        if left:
            shapes[key] = left
        else:
            del shapes[key]
            self._fewest = None

    def allocate(self, job_id: str, placement: tuple[tuple[str, int], ...],
                 shape: Shape) -> tuple[list[tuple[int, list[int]]], float]:
        """Take the lowest free GPU indices on each node of ``placement``; the allocation
        and the watts charged to the job."""
        return self.allocate_at(job_id, tuple((self.index[name], g) for name, g in placement),
                                shape)

    def allocate_at(self, job_id: str, placement: tuple[tuple[int, int], ...],
                    shape: Shape) -> tuple[list[tuple[int, list[int]]], float]:
        """:meth:`allocate` with nodes given by index."""
        alloc: list[tuple[int, list[int]]] = []
        job_w = 0.0
        free_idx, used, on_node, cap = self.free_idx, self.used, self.on_node, self.cap
        gpu_w, meter, schedulable = self.job_gpu_w, self.meter, self.schedulable
        taken = 0
        for n, g in placement:
            free = free_idx[n]
            if len(free) < g or not schedulable[n]:
                raise InvariantError(f"{job_id}: {g} GPUs on {self.names[n]}, which has "
                                     f"{len(free)} free (schedulable: {schedulable[n]})")
            idx = free[:g]
            del free[:g]
            self._set_used(n, used[n] + g)
            on_node[n].add(job_id)
            meter.allocate(cap[n], g)
            taken += g
            job_w += g * gpu_w[n]
            alloc.append((n, idx))
        self.allocated += taken
        self.running_count += 1
        self.remove_pending(shape)
        return alloc, job_w

    def release(self, job_id: str, alloc: list[tuple[int, list[int]]]) -> None:
        free_idx, used, on_node, meter = self.free_idx, self.used, self.on_node, self.meter
        for n, idx in alloc:
            g = len(idx)
            free_idx[n] = sorted(free_idx[n] + idx)
            self._set_used(n, used[n] - g)
            on_node[n].discard(job_id)
            meter.allocate(self.cap[n], -g)
            self.allocated -= g
        self.running_count -= 1

    def jobs_on(self, n: int) -> set[str]:
        return set(self.on_node[n])

    def failable(self) -> list[int]:
        return [n for n, on in enumerate(self.powered) if on]

    def set_down(self, n: int, down: bool) -> Cluster:
        """Node ``n`` fails (its jobs already released) or is repaired; the new cluster."""
        c = self.cap[n]
        if down:
            assert self.used[n] == 0, "release a failed node's jobs first"
            if self.schedulable[n]:
                self.free_hist[c] -= 1
            self.schedulable[n], self.powered[n] = False, False
            self.meter.power(c, -1)
            state = NodeState.DOWN
        else:
            state = self.base_state[n]
            self.schedulable[n], self.powered[n] = state.schedulable, True
            if self.schedulable[n]:
                self.free_hist[c] += 1
            self.meter.power(c, 1)
        self.cluster = self.cluster.with_states({self.names[n]: state})
        return self.cluster

    # -- questions ----------------------------------------------------------------------
    def fits(self, count: int, gpus: int) -> bool:
        """Do at least ``count`` schedulable nodes have ``gpus`` GPUs free now?"""
        hist = self.free_hist
        return gpus < len(hist) and sum(hist[gpus:]) >= count

    def any_pending_fits(self) -> bool:
        """Could any pending shape (``nodes`` × ``gpus_per_node``) fit the free GPUs now?"""
        fewest = self._fewest
        if fewest is None:  # per GPUs per node that fits a node, the fewest nodes asked
            top, mins = len(self.free_hist) - 1, dict[int, int]()
            for count, g in self.pending_shapes:
                if g <= top and count < mins.get(g, count + 1):
                    mins[g] = count
            fewest = self._fewest = sorted(mins.items())
        hist = self.free_hist  # sum(hist[g:]): nodes with g GPUs free or more; the
        return any(sum(hist[g:]) >= count for g, count in fewest)  # smallest g first

    @property
    def power_w(self) -> float:
        return self.meter.watts

    @property
    def stranded(self) -> int:
        return self.partial_free if self.pending_whole else 0

    # -- time ---------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Integrate allocation, stranded GPUs and energy up to ``now``, at the rates of the
        last :meth:`sample` (the engine samples after every change, before time moves on)."""
        if self.last_t is not None and now > self.last_t:
            dt = now - self.last_t
            allocated, stranded, watts = self.rates
            self.allocated_gpu_s += allocated * dt
            self.stranded_gpu_s += stranded * dt
            self.energy_j += watts * dt
        self.last_t = now

    def sample(self, now: float) -> None:
        """Log the state at ``now``; its rates hold until the next :meth:`advance`."""
        stranded = self.partial_free if self.pending_whole else 0
        watts = self.meter.watts
        allocated = self.allocated
        self.rates = (allocated, stranded, watts)
        self.log.add_values(now, (allocated, self.pending_count, self.pending_gpus, stranded,
                                  watts))

    def check(self, runs: Iterable[JobRun]) -> None:
        """The engine's own invariants: no GPU index twice, gangs whole, counts agree."""
        held: list[set[int]] = [set() for _ in self.cap]
        for run in runs:
            if run.job.state is not JobState.RUNNING:
                continue
            nodes = [n for n, _ in run.alloc]
            if len(set(nodes)) != run.shape.nodes or len(nodes) != run.shape.nodes or any(
                    len(idx) != run.shape.gpus_per_node for _, idx in run.alloc):
                raise InvariantError(f"{run.job.id}: gang of {run.shape} holds {run.alloc}")
            for n, idx in run.alloc:
                if held[n] & set(idx):
                    raise InvariantError(f"{self.names[n]}: GPUs {held[n] & set(idx)} twice")
                if not self.schedulable[n]:
                    raise InvariantError(f"{run.job.id} runs on unschedulable {self.names[n]}")
                held[n] |= set(idx)
        for n, c in enumerate(self.cap):
            free = self.free_idx[n]
            if held[n] & set(free) or len(held[n]) + len(free) != c or \
                    len(held[n]) != self.used[n]:
                raise InvariantError(f"{self.names[n]}: held {sorted(held[n])}, free {free}")


class JobRun:
    """The engine's mutable record of one job that is pending or running."""

    __slots__ = ("alloc", "energy_j", "evictable", "first_start_s", "job", "job_w",
                 "preemptions", "rate", "remaining_s", "requeue", "run_start_s", "runtime_s",
                 "shape", "stopping", "token", "trace")

    def __init__(self, trace: TraceJob, job: Job, shape: Shape) -> None:
        self.trace = trace
        self.job = job
        self.shape = shape
        self.remaining_s = trace.duration_s
        self.first_start_s: float | None = None
        self.run_start_s = 0.0
        self.runtime_s = 0.0
        self.energy_j = 0.0
        self.job_w = 0.0
        self.preemptions = 0
        self.token = 0
        self.stopping = False
        self.requeue = True
        self.alloc: list[tuple[int, list[int]]] = []
        #: whether its QOS or spec lets it be evicted; GPUs × QOS usage factor (fair share)
        self.evictable = False
        self.rate = float(shape.gpus)
