"""Invariants every cycle result must keep. Tests call :func:`assert_invariants` after every
cycle (and the twin after every event in its checked mode).

* every started job was pending, starts once, and gets exactly its shape: ``nodes`` distinct
  up nodes with ``gpus_per_node`` each (gangs whole, all or nothing);
* no node gives out more GPUs than it has (no GPU allocated twice);
* no start lands on nodes of an advance reservation the job is not admitted to, during the
  reservation's window, nor outside its own requested reservation;
* every pending job that did not start has exactly one verdict; preempted jobs were running.
"""

from __future__ import annotations

from collections import Counter

from gefion.core.decisions import CycleResult
from gefion.core.snapshot import Snapshot


class InvariantError(AssertionError):
    pass


def assert_invariants(snapshot: Snapshot, result: CycleResult) -> None:
    cluster = snapshot.cluster
    now = result.now
    used = Counter[str]()
    for r in snapshot.running:
        for n, g in r.alloc:
            used[cluster.nodes[n].name] += g
    pending = {p.id: p for p in snapshot.pending}
    seen: set[str] = set()
    for s in result.starts:
        job = pending.get(s.job_id)
        if job is None:
            raise InvariantError(f"started {s.job_id}, which was not pending")
        if s.job_id in seen:
            raise InvariantError(f"started {s.job_id} twice")
        seen.add(s.job_id)
        shape = job.shape
        if shape is None:
            raise InvariantError(f"started {s.job_id}, which has no valid shape")
        names = [name for name, _ in s.placement.nodes]
        if len(set(names)) != len(names) or len(names) != shape.nodes:
            raise InvariantError(f"{s.job_id}: gang of {shape.nodes} placed on {names}")
        end = now + job.spec.time_limit_s
        for name, g in s.placement.nodes:
            node = cluster.nodes[cluster.index_of(name)]
            if g != shape.gpus_per_node:
                raise InvariantError(f"{s.job_id}: {g} GPUs on {name}, wants "
                                     f"{shape.gpus_per_node}")
            if not node.state.schedulable:
                raise InvariantError(f"{s.job_id} placed on {node.state} node {name}")
            used[name] += g
            for res in snapshot.reservations:
                in_window = any(True for _ in res.windows(now, end))
                if res.name == job.spec.reservation:
                    window = res.window_at(now)
                    if name not in res.nodes or window is None or end > window[1] + 1e-9:
                        raise InvariantError(f"{s.job_id} outside its reservation {res.name}")
                elif in_window and name in res.nodes and not res.admits(
                        job.spec.project, job.spec.user, job.spec.reservation):
                    raise InvariantError(f"{s.job_id} on {name}, reserved by {res.name}")
    for name, g in used.items():
        cap = cluster.nodes[cluster.index_of(name)].gpus
        if g > cap:
            raise InvariantError(f"node {name}: {g} GPUs allocated of {cap}")
    verdicts = Counter(v.job_id for v in result.pending)
    for job_id in pending:
        expected = 0 if job_id in seen else 1
        if verdicts[job_id] != expected:
            raise InvariantError(f"{job_id}: {verdicts[job_id]} verdicts, expected {expected}")
    running = {r.id for r in snapshot.running}
    for p in result.preemptions:
        if p.job_id not in running:
            raise InvariantError(f"preempted {p.job_id}, which was not running")
