"""The engine on the strict-order cycle: strict FIFO replays without a snapshot per cycle.

Under strict FIFO on plain jobs, the core's cycle is kept between cycles by
:class:`gefion.core.strict.StrictQueue` (see its module for the conditions and the proof
obligation). :class:`StrictEngine` is the engine of :mod:`gefion.twin.engine` with that
queue in place of the snapshot builder and ``run_cycle``: the same event loop, the same
skips, the same records, integrals and samples — and so the same :class:`SimResult`; a
test compares the two on random workloads and on the Philly week.

What it leaves out is what such a run never has: preemptions, requeues, node failures,
reservation windows, grants, the cycle hook and invariant checks. ``simulate`` chooses it
only when none of those is asked for. Jobs are kept as light records (:class:`StrictRun`),
not as the core's ``Job`` and ``JobSpec`` objects: the scheduler reads only their shape and
order here.
"""

from __future__ import annotations

from gefion.core.jobs import JobState, Shape
from gefion.core.strict import StrictQueue
from gefion.twin.engine import _END, _TIMEOUT, _Engine
from gefion.twin.result import JobRecord
from gefion.twin.specs import UNASSIGNED_PROJECT, drop_reason, job_spec
from gefion.twin.traces.model import TraceJob


class StrictRun:
    """One job of a strict run: its trace record, shape and what it has done."""

    __slots__ = ("alloc", "energy_j", "first_start_s", "job_w", "nodes", "project",
                 "run_start_s", "shape", "token", "trace")

    def __init__(self, trace: TraceJob, shape: Shape, project: str) -> None:
        self.trace, self.shape, self.project = trace, shape, project
        self.first_start_s = self.run_start_s = self.energy_j = self.job_w = 0.0
        self.token = 0
        self.alloc: list[tuple[int, list[int]]] = []
        self.nodes: tuple[tuple[int, int], ...] = ()


class StrictEngine(_Engine):
    """:class:`~gefion.twin.engine._Engine` with the strict-order cycle (see the module)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        assert self.free is not None, "simulate chooses this engine only on the fast path"
        self.queue = StrictQueue(self.free)
        self.strict: dict[str, StrictRun] = {}  # the active jobs
        self.shapes: dict[int, tuple[Shape | None, str, bool]] = {}  # by GPUs asked

    def arrive(self, tj: TraceJob, now: float) -> bool:
        known = self.shapes.get(tj.gpus)
        if known is None or tj.time_limit_s is None or tj.time_limit_s < 1:
            # the first job of its size, or one the general path must refuse: ask the
            # twin's one translation (which raises on a bad time limit)
            _, shape, why, rounded = job_spec(tj, self.cluster, self.qos,
                                              node_gpus=self.state.whole_gpn)
            known = self.shapes[tj.gpus] = (shape, why, rounded)
        shape, why, rounded = known
        if shape is None:
            self.dropped[drop_reason(why)] += 1
            return False
        self.rounded += rounded
        run = StrictRun(tj, shape, tj.project or UNASSIGNED_PROJECT)
        self.strict[tj.job_id] = run
        self.active[tj.job_id] = run  # type: ignore[assignment]  # counted, never read
        # the key of gefion.core.builder.submit_key: submitted now, then id in natural order
        self.queue.add((now, len(tj.job_id), tj.job_id), shape.nodes, shape.gpus_per_node)
        self.state.add_pending(shape)
        return True

    def cycle(self, now: float) -> int:
        starts, self.barrier = self.queue.cycle()
        self.cycles += 1
        for job_id, nodes in starts:
            run = self.strict[job_id]
            run.alloc, run.job_w = self.state.allocate_at(job_id, nodes, run.shape)
            run.nodes = nodes
            run.first_start_s = run.run_start_s = now
            run.token += 1
            limit = int(run.trace.time_limit_s or 0)
            if run.trace.duration_s <= limit:
                self.push(now + run.trace.duration_s, _END, job_id, run.token)
            else:
                self.push(now + limit, _TIMEOUT, job_id, run.token)
        return len(starts)

    def handle(self, kind: int, key: str | int, token: int, now: float) -> bool:
        run = self.strict.get(key) if isinstance(key, str) else None
        if run is None or run.token != token:
            return False
        ran = now - run.run_start_s
        run.energy_j += run.job_w * ran
        self.state.release(key, run.alloc)  # type: ignore[arg-type]
        self.queue.release(run.nodes)
        del self.strict[run.trace.job_id], self.active[run.trace.job_id]
        tj = run.trace
        state = JobState.COMPLETED if kind == _END else JobState.TIMEOUT
        self.records.append(JobRecord(
            tj.job_id, run.project, tj.user, run.shape.gpus, tj.submit_s, run.first_start_s,
            now, state.value, ran, int(tj.time_limit_s or 0), 0, run.energy_j))
        if now >= self.makespan_s:
            self.makespan_s = now
            st = self.state
            self.integrals = (st.allocated_gpu_s, st.stranded_gpu_s, st.energy_j)
        return True
