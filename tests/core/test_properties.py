"""Property tests over random clusters, job mixes and reservations (hypothesis).

After every cycle: the invariants of :mod:`gefion.core.invariants`; every plan is feasible
together with everything running and started (so no backfilled job delays a planned start);
re-planning after the starts never pushes the top job's planned start later; the same
snapshot and ``now`` give the same result.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gefion.core.cycle import run_cycle
from gefion.core.decisions import CycleResult
from gefion.core.invariants import assert_invariants
from gefion.core.jobs import Job, JobSpec, JobState
from gefion.core.policies import get_policy
from gefion.core.reservations import Reservation
from gefion.core.snapshot import Snapshot, build_snapshot
from gefion.core.topology import Cluster, NodeState, synthetic

POLICIES = ["fifo", "fifo-backfill", "las", "gefion"]
QOS = ["normal", "high", "scavenger"]


@st.composite
def worlds(draw: Any) -> tuple[Cluster, list[Job], list[Reservation], float]:
    nodes = draw(st.integers(2, 10))
    gpus = draw(st.sampled_from([4, 8]))
    su = draw(st.integers(1, 4))
    cluster = synthetic(nodes, gpus, su)
    states = {}
    for n in cluster.nodes:
        s = draw(st.sampled_from([NodeState.IDLE] * 6 + [NodeState.DRAINED, NodeState.DOWN]))
        if s is not NodeState.IDLE:
            states[n.name] = s
    cluster = cluster.with_states(states) if states else cluster
    now = float(draw(st.integers(0, 1000)))
    free = {n.name: n.gpus for n in cluster.nodes}
    jobs: list[Job] = []
    for k in range(draw(st.integers(0, 6))):
        width = draw(st.integers(1, 3))
        gpn = draw(st.integers(1, gpus))
        names = [n for n, f in free.items() if f >= gpn][:width]
        if not names:
            continue
        for name in names:
            free[name] -= gpn
        start = float(draw(st.integers(0, int(now))))
        limit = draw(st.integers(1, 2000))
        spec = JobSpec(gpn * len(names), limit, draw(st.sampled_from(["a", "b"])),
                       nodes=len(names), gpus_per_node=gpn, qos=draw(st.sampled_from(QOS)))
        jobs.append(Job(f"r{k}", spec, start, JobState.RUNNING, start,
                        allocation=tuple((n, tuple(range(gpn))) for n in names)))
    for k in range(draw(st.integers(1, 12))):
        shape = draw(st.sampled_from(["small", "gang", "node"]))
        if shape == "small":
            spec_kw: dict[str, Any] = {"gpus": draw(st.integers(1, gpus))}
        elif shape == "node":
            spec_kw = {"gpus": gpus}
        else:
            count = draw(st.integers(2, 4))
            spec_kw = {"gpus": count * gpus}
        spec = JobSpec(time_limit_s=draw(st.integers(1, 3000)),
                       project=draw(st.sampled_from(["a", "b", "wx"])),
                       qos=draw(st.sampled_from(QOS)),
                       same_su=draw(st.sampled_from(["preferred", "required"])),
                       reservation=draw(st.sampled_from([None, None, None, "wx"])),
                       **spec_kw)
        jobs.append(Job(f"p{k}", spec, float(draw(st.integers(0, int(now))))))
    reservations = []
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from([n.name for n in cluster.nodes]), min_size=1,
                               max_size=3, unique=True))
        start = float(draw(st.integers(0, 3000)))
        length = float(draw(st.integers(100, 1000)))
        period = draw(st.sampled_from([None, 2000.0]))
        reservations.append(Reservation("wx", tuple(chosen), start, start + length,
                                        period_s=period, projects=frozenset({"wx"})))
    return cluster, jobs, reservations, now


def _check_plans_feasible(snap: Snapshot, result: CycleResult) -> None:
    """Running jobs, starts and planned blocks never exceed a node's GPUs at any time."""
    now = result.now
    spans: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for r in snap.running:
        end = r.expected_end_s if r.expected_end_s > now else now + 1.0
        for n, g in r.alloc:
            spans[n].append((now, end, g))
    pending = {p.id: p for p in snap.pending}
    cluster = snap.cluster
    for s in result.starts:
        end = now + pending[s.job_id].spec.time_limit_s
        for name, g in s.placement.nodes:
            spans[cluster.index_of(name)].append((now, end, g))
    for job_id, placement in result.planned.items():
        v = result.verdict(job_id)
        if v is None or v.planned_start_s is None or v.reason.value == "PREEMPTING":
            continue
        begin = v.planned_start_s
        end = begin + pending[job_id].spec.time_limit_s
        for name, g in placement.nodes:
            spans[cluster.index_of(name)].append((begin, end, g))
    for n, items in spans.items():
        for t in sorted({a for a, _, _ in items}):
            load = sum(g for a, b, g in items if a <= t < b)
            assert load <= cluster.nodes[n].gpus, (cluster.nodes[n].name, t, load, items)


def _after(snap: Snapshot, result: CycleResult, jobs: list[Job], now: float) -> list[Job]:
    started = {s.job_id: s for s in result.starts}
    out = []
    for j in jobs:
        s = started.get(j.id)
        if s is None:
            out.append(j)
        else:
            alloc = tuple((name, tuple(range(g))) for name, g in s.placement.nodes)
            out.append(Job(j.id, j.spec, j.submit_s, JobState.RUNNING, now, allocation=alloc))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(), policy=st.sampled_from(POLICIES),
       depth=st.sampled_from([None, 0, 1, 2, 5]))
def test_cycle_properties(world: Any, policy: str, depth: int | None) -> None:
    cluster, jobs, reservations, now = world
    pol = get_policy(policy, depth=depth)
    snap = build_snapshot(cluster, jobs, now, reservations=reservations)
    result = run_cycle(snap, now, pol)
    assert_invariants(snap, result)
    _check_plans_feasible(snap, result)
    again = run_cycle(build_snapshot(cluster, jobs, now, reservations=reservations), now, pol)
    assert again.to_json() == result.to_json()
    assert dict(again.planned) == dict(result.planned)
    # Re-planning after the starts never pushes the top blocked job's plan later.
    top = next((v for v in result.pending if v.planned_start_s is not None
                and v.reason.value in ("RESOURCES", "PRIORITY", "TOPOLOGY", "RESERVATION")),
               None)
    if top is None or not result.starts or result.preemptions:
        return
    after = _after(snap, result, jobs, now)
    replanned = run_cycle(build_snapshot(cluster, after, now, reservations=reservations), now,
                          pol)
    v = replanned.verdict(top.job_id)
    if v is not None:
        assert v.planned_start_s is not None and v.planned_start_s <= top.planned_start_s
