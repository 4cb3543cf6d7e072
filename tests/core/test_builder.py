"""The incremental snapshot builder gives what the one-shot builder gives, change by change."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gefion.core.builder import SnapshotBuilder
from gefion.core.carry import lineage
from gefion.core.columns import any_preemptible, pending_columns, running_columns
from gefion.core.cycle import _Cycle, run_cycle
from gefion.core.jobs import Dependency, Job, JobState
from gefion.core.policies import POLICIES, get_policy
from gefion.core.prefix import priority_order, share_order
from gefion.core.snapshot import Snapshot, build_snapshot, current_base
from gefion.core.topology import NodeState, preset
from tests.core.builders import pending, running

CLUSTER = preset("synthetic:6x8:2")
NAMES = CLUSTER.names

# An operation: (kind, job number, GPUs, submit time)
ops = st.lists(st.tuples(st.sampled_from(["submit", "start", "finish", "requeue", "hold",
                                          "drain"]),
                         st.integers(0, 5), st.sampled_from([0, 1, 2, 4, 8, 16]),
                         st.integers(0, 5)), max_size=40)


def same(built: Snapshot, fresh: Snapshot) -> None:
    assert [p.id for p in built.pending] == [p.id for p in fresh.pending]
    a, b = pending_columns(built), pending_columns(fresh)
    assert a.ids == b.ids
    for name in ("submit_s", "service_gpu_s", "gpus", "gpus_per_node", "nodes", "limit_s",
                 "plain"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("project", "pair", "qos"):  # indices differ; the names they point at agree
        ta, tb = getattr(a, name + "s" if name != "qos" else "qos_names"), \
            getattr(b, name + "s" if name != "qos" else "qos_names")
        assert [ta[i] for i in getattr(a, name)] == [tb[i] for i in getattr(b, name)]
    assert sorted(r.id for r in built.running) == sorted(r.id for r in fresh.running)
    ra, rb = running_columns(built), running_columns(fresh)
    holds = sorted(zip(ra.hold_nodes.tolist(), ra.hold_gpus.tolist(), ra.hold_end_s.tolist(),
                       strict=True))
    assert holds == sorted(zip(rb.hold_nodes.tolist(), rb.hold_gpus.tolist(),
                               rb.hold_end_s.tolist(), strict=True))
    assert dict(built.job_states) == dict(fresh.job_states)
    now = built.as_of_s
    plain = replace(built)  # the same snapshot without what the builder kept: from scratch
    ours, theirs = _Cycle(built, now, get_policy("fifo")).avail, \
        _Cycle(plain, now, get_policy("fifo")).avail
    assert np.array_equal(ours.free, theirs.free)
    assert np.array_equal(ours.tau, theirs.tau)
    assert [ours.count_ge(g) for g in range(10)] == [theirs.count_ge(g) for g in range(10)]
    assert any_preemptible(built) == any_preemptible(plain) == \
        bool(running_columns(plain).preemptible.any())
    for policy in ("fifo", "fifo-backfill", "las", "gefion"):
        expected = run_cycle(fresh, now, get_policy(policy)).to_json()
        assert run_cycle(built, now, get_policy(policy)).to_json() == expected, policy
        assert run_cycle(plain, now, get_policy(policy)).to_json() == expected, policy


@settings(max_examples=60, deadline=None)
@given(ops)
def test_builder_matches_a_fresh_build_after_every_change(steps: list) -> None:
    cluster = CLUSTER
    builder = SnapshotBuilder(cluster)
    jobs: dict[str, Job] = {}
    free = dict.fromkeys(NAMES, 8)
    now = 10.0
    for kind, k, gpus, submit in steps:
        job_id = f"j{k}"
        job = jobs.get(job_id)
        if kind == "submit" and job is None:
            deps = Dependency.parse("afterok:j0") if k == 3 else ()
            job = pending(job_id, gpus, 600 + 60 * k, submit=float(submit),
                          project=f"p{k % 3}", depends_on=deps,
                          qos="scavenger" if k == 4 else "normal")  # preemptible
        elif kind == "start" and job is not None and job.state is JobState.PENDING \
                and 0 < job.spec.gpus <= 8:
            node = next((n for n in NAMES if free[n] >= job.spec.gpus), None)
            if node is None:
                continue
            free[node] -= job.spec.gpus
            job = replace(job, state=JobState.RUNNING, start_s=now,
                          allocation=((node, tuple(range(job.spec.gpus))),))
        elif kind in ("finish", "requeue") and job is not None \
                and job.state is JobState.RUNNING:
            for node, idx in job.allocation:
                free[node] += len(idx)
            job = replace(job, state=JobState.COMPLETED, end_s=now, exit_code=0) \
                if kind == "finish" else replace(job, state=JobState.PENDING, start_s=None,
                                                 allocation=(), restarts=job.restarts + 1,
                                                 service_gpu_s=job.service_gpu_s + 100)
        elif kind == "hold" and job is not None and job.state is JobState.PENDING:
            job = replace(job, held=not job.held)
        elif kind == "drain":
            name = NAMES[k % len(NAMES)]
            up = cluster.nodes[k % len(NAMES)].state.schedulable
            cluster = cluster.with_states({name: NodeState.DRAINED if up else NodeState.IDLE})
            builder.set_cluster(cluster)
            continue
        else:
            continue
        jobs[job_id] = job
        builder.put(job)
        now += 1.0
        same(builder.build(now), build_snapshot(cluster, jobs.values(), now))
    for job_id in list(jobs)[::2]:  # forgetting a job is the same as never having seen it
        builder.remove(job_id)
        del jobs[job_id]
    same(builder.build(now), build_snapshot(cluster, jobs.values(), now))


def test_a_snapshot_does_not_change_when_the_builder_does() -> None:
    builder = SnapshotBuilder(CLUSTER)
    builder.put(pending("a", 8, submit=1.0))
    first = builder.build(5.0)
    builder.put(pending("b", 8, submit=0.0))
    builder.remove("a")
    assert [p.id for p in first.pending] == ["a"]
    assert pending_columns(first).ids == ["a"]
    assert [p.id for p in builder.build(6.0).pending] == ["b"]


def test_a_snapshot_kept_past_a_change_still_cycles_as_its_own_jobs_say() -> None:
    # The builder lends a snapshot its base arrays rather than copying them; once it
    # changes them, the older snapshot's cycle must not see the change.
    builder = SnapshotBuilder(CLUSTER)
    running = replace(pending("r", 8, 3600, submit=0.0), state=JobState.RUNNING, start_s=1.0,
                      allocation=((NAMES[0], tuple(range(8))),))
    waiting = [pending(f"w{i}", 16, 600, submit=2.0 + i) for i in range(3)]
    for job in (running, *waiting):
        builder.put(job)
    kept = builder.build(5.0)
    expected = {policy: run_cycle(build_snapshot(CLUSTER, [running, *waiting], 5.0), 5.0,
                                  get_policy(policy)).to_json()
                for policy in ("fifo-backfill", "gefion")}
    for k, name in enumerate(NAMES[1:4]):  # more nodes busy, then a new build
        builder.put(replace(pending(f"x{k}", 8, 7200, submit=0.0), state=JobState.RUNNING,
                            start_s=4.0, allocation=((name, tuple(range(8))),)))
    builder.build(6.0)
    builder.put(replace(running, state=JobState.COMPLETED, end_s=6.0, exit_code=0))
    for policy, result in expected.items():
        assert run_cycle(kept, 5.0, get_policy(policy)).to_json() == result, policy
    assert running_columns(kept).expected_end_s.tolist() == [3601.0]  # its own, not now's


def test_a_fresh_snapshot_takes_its_columns_and_base_from_the_builder() -> None:
    builder = SnapshotBuilder(CLUSTER)
    builder.put(replace(pending("r", 8, 3600, submit=0.0), state=JobState.RUNNING,
                        start_s=1.0, allocation=((NAMES[2], tuple(range(8))),)))
    builder.put(pending("w", 16, 600, submit=2.0))
    snap = builder.build(5.0)
    assert current_base(snap) is not None
    assert running_columns(snap) is builder._rcache  # made by the builder, vectorised


def test_dependencies_see_the_state_of_jobs_that_ended() -> None:
    builder = SnapshotBuilder(CLUSTER)
    first = pending("a", 8)
    builder.put(replace(first, state=JobState.FAILED, exit_code=3))
    builder.put(pending("b", 8, depends_on=Dependency.parse("afterok:a")))
    snap = builder.build(1.0)
    assert snap.job_states == {"a": JobState.FAILED} and snap.exit_codes == {"a": 3}
    result = run_cycle(snap, 1.0, get_policy("fifo"))
    assert result.pending[0].reason == "DEPENDENCY_NEVER"


def test_the_builder_knows_whether_anyone_running_may_be_preempted() -> None:
    builder = SnapshotBuilder(CLUSTER)
    scavenger = replace(pending("s", 8, 3600, submit=0.0, qos="scavenger"),
                        state=JobState.RUNNING, start_s=1.0,
                        allocation=((NAMES[0], tuple(range(8))),))
    normal = replace(scavenger, id="n", spec=replace(scavenger.spec, qos="normal"),
                     allocation=((NAMES[1], tuple(range(8))),))
    builder.put(normal)
    assert not any_preemptible(builder.build(2.0))
    builder.put(scavenger)
    assert any_preemptible(builder.build(3.0))
    builder.put(replace(scavenger, state=JobState.COMPLETED, end_s=4.0, exit_code=0))
    assert not any_preemptible(builder.build(4.0))


def test_the_nodes_of_runs_that_ended_are_told_until_the_log_moves_past_them() -> None:
    builder = SnapshotBuilder(preset("synthetic:8x8"))
    for k in range(3):  # three runs: on node 1, on nodes 2 and 3, on node 1 again
        placement = {"node00002": 4} if k != 1 else {"node00003": 8, "node00004": 8}
        builder.put(running(f"r{k}", placement))
    before = lineage(builder.build(0.0))  # they run in this snapshot
    assert before is not None
    for k in range(3):  # and end
        builder.remove(f"r{k}")
    after = lineage(builder.build(1.0))
    assert after is not None and after[1] == before[1] + 3
    assert after[2](before[1]) == frozenset({1, 2, 3})
    assert after[2](after[1] - 1) == frozenset({1}) and after[2](after[1]) == frozenset()
    for batch in range(625):  # the log keeps the last few thousand runs only
        for k in range(8):
            builder.put(running(f"s{batch}-{k}", {"node00008": 1}))
        builder.build(2.0 + batch)
        for k in range(8):
            builder.remove(f"s{batch}-{k}")
    late = lineage(builder.build(1000.0))
    assert late is not None and late[2](before[1]) is None  # unknown: plan afresh
    assert late[2](late[1] - 10) == frozenset({7})


def test_a_run_that_starts_and_ends_between_two_snapshots_leaves_no_trace() -> None:
    # Running records are applied when a snapshot needs them: a run that no snapshot saw
    # frees nothing that any snapshot held (carried plans check no node for it), and the
    # next snapshot is the one the builder would have made had it never been put.
    cluster = preset("synthetic:8x8")
    seen, unseen = SnapshotBuilder(cluster), SnapshotBuilder(cluster)
    for builder in (seen, unseen):
        builder.put(running("stays", {"node00001": 8}))
        builder.put(pending("waits", 16, 3600, submit=0.0))
    first = lineage(seen.build(0.0))
    assert first is not None
    seen.put(running("brief", {"node00002": 8}))
    seen.build_pending(1.0)  # a pending-only snapshot applies no running record
    seen.remove("brief")
    now, never = seen.build(2.0), unseen.build(2.0)
    assert now.running == never.running and [r.id for r in now.running] == ["stays"]
    assert (lineage(now) or first)[1] == first[1]  # no run ended since the first
    base_now, base_never = current_base(now), current_base(never)
    assert base_now is not None and base_never is not None
    assert base_now.free.tolist() == base_never.free.tolist()
    assert now.pending == never.pending


def test_a_pending_only_snapshot_orders_the_same_queue_without_running_jobs() -> None:
    builder = SnapshotBuilder(CLUSTER)
    builder.put(running("r", {NAMES[0]: 8}))
    builder.put(pending("a", 8, 3600, submit=1.0))
    builder.put(pending("b", 8, 3600, submit=0.5))
    full = builder.build(5.0)
    builder.put(running("later", {NAMES[1]: 8}))
    light = builder.build_pending(5.0)
    assert light.running == () and [r.id for r in full.running] == ["r"]
    assert light.pending == full.pending
    assert "_base" not in light.__dict__ and "_lineage" not in light.__dict__
    assert [r.id for r in builder.build(6.0).running] == ["r", "later"]


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_no_policy_orders_the_queue_by_its_running_jobs(name: str) -> None:
    # Policy.priorities reads no running job: the order from a pending-only snapshot is
    # the whole snapshot's (what a body that orders the queue first relies on).
    builder = SnapshotBuilder(CLUSTER)
    builder.put(running("r", {NAMES[0]: 8}, start=0.0, service=5e4))
    builder.put(running("s", {NAMES[1]: 4}, start=10.0, qos="scavenger", project="q"))
    for k in range(12):
        builder.put(pending(f"j{k}", [1, 4, 8, 16][k % 4], submit=float(k * 90),
                            project="pq"[k % 2], service=float(k % 3) * 1e4))
    policy = get_policy(name)
    whole, pending_only = builder.build(4000.0), builder.build_pending(4000.0)
    assert whole.running and not pending_only.running
    a, b = policy.priorities(whole, 4000.0), policy.priorities(pending_only, 4000.0)
    assert a.priority.tolist() == b.priority.tolist()
    assert a.in_snapshot_order == b.in_snapshot_order


def test_the_whole_snapshot_takes_the_order_made_for_the_pending_only_one() -> None:
    builder = SnapshotBuilder(CLUSTER)
    builder.put(running("r", {NAMES[0]: 8}))
    for k in range(5):
        builder.put(pending(f"j{k}", 8, 3600, submit=float(k)))
    policy = get_policy("gefion")
    light = builder.build_pending(100.0)
    table, order = priority_order(policy, light, 100.0)
    whole = builder.build(100.0)
    share_order(light, whole)
    assert priority_order(policy, whole, 100.0)[0] is table  # not made again
    builder.put(pending("late", 8, 3600, submit=50.0))  # the queue changed in between
    whole = builder.build(100.0)
    share_order(light, whole)
    again, order_again = priority_order(policy, whole, 100.0)
    assert again is not table and len(order_again) == len(order) + 1
