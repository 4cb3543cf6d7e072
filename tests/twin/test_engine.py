"""The twin's engine on hand-computed traces (golden files), and each kind of event.

Both golden traces run on ``synthetic:2x4:1``: node1 and node2 with 4 GPUs each, one node
per scalable unit. A job of 8 GPUs is a gang of 2 nodes × 4 GPUs. Single-node jobs go to
the usable node with the fewest free GPUs, lowest index on ties (the core's best fit).
The default QOS of the twin requeues preempted jobs after a 60 s grace period.

**Trace "backfill"** (submit s, GPUs, true runtime s, time limit s)::

    J1  0   4   100   100        J4  20  2    50    60
    J2  0   2   200   300        J5  30  4    40    50
    J3  10  8    50   100        J6  40  1  1000  1200

*fifo* (strict: nobody passes a waiting job). t=0: J1 → node1, J2 → node2. t=10: J3
needs both nodes whole and waits; J4, J5, J6 queue behind it. t=100: J1 ends; J3 still
waits for node2. t=200: J2 ends, J3 starts, ends 250. t=250: J4 → node1 (both nodes
free, lowest index), J5 → node2 (the only node with 4 free), J6 → node1 (2 free, the best
fit). Ends: J4 300, J5 290, J6 1250.

*fifo-backfill* (EASY). t=10: J3 is planned at 300, when J2's limit runs out (0 + 300),
on both nodes. t=20: J4 fits node2 and, limited to 80 < 300, delays nothing: it starts,
ends 70. t=30/40: J5 and J6 find no room. t=70: J6 would fit node2 but hold a GPU past
300, where J3's plan needs all of node2: not started. t=100: J1 ends; J5 runs on node1
until at most 150 < 300: starts, ends 140. J6 still crosses the plan. t=200: J2 ends, J3
starts, ends 250. t=250: J6 → node1, ends 1250.

*las* (default thresholds 3,600 and 57,600 GPU-s: every job stays in the first queue, so
LAS is greedy first-come first-served without reservations, and nobody is preempted).
t=20: J4 → node2, ends 70. t=70: J5 (4 GPUs) does not fit; J6 fits node2's 2 free GPUs:
starts, ends 1070. t=100: J5 → node1, ends 140. t=200: J2 ends, but J6 holds node2: J3
waits until 1070 and ends 1120.

**Trace "las"**, thresholds ``(1000,)`` GPU-s (queue 0 below 1,000 GPU-s, else queue 1)::

    L1  0    8  1000  2000
    L2  200  4   100   200
    L3  300  2    50   100

*fifo* and *fifo-backfill*: L1 holds all 8 GPUs over [0, 1000); nothing else fits before.
t=1000: L2 → node1 (ends 1100), L3 → node2 (ends 1050).

*las*: L1 passes 1,000 GPU-s at t=125 and is in queue 1 when L2 (queue 0) arrives at 200:
L2 preempts L1 (the whole gang), which stops at 200 + 60 = 260 after 260 s of its 1,000
(attained service 2,080 GPU-s, 740 s of work left) and is requeued. t=260: L2 (queue 0)
goes first → node1, ends 360; L1 waits (queue 1 evicts nobody in queue 0). t=300: L3 →
node2, ends 350. t=360: L1 restarts and ends at 360 + 740 = 1100, one preemption.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gefion.core.errors import InputError
from gefion.core.invariants import InvariantError
from gefion.core.jobs import Job, JobSpec, JobState, Shape
from gefion.core.policies import get_policy
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS
from gefion.core.topology import preset
from gefion.twin.engine import TWIN_QOS, FailureModel, simulate
from gefion.twin.power import DGX_H100
from gefion.twin.result import SimResult
from gefion.twin.specs import job_spec
from gefion.twin.state import ClusterState, JobRun
from gefion.twin.traces import Trace, TraceJob, load_trace
from gefion.twin.workload import apply_workload_model

GOLDEN = Path(__file__).parent / "golden"
POLICIES = ("fifo", "fifo-backfill", "las", "gefion")


def make_trace(*rows: tuple[str, float, int, float, int], name: str = "hand") -> Trace:
    """Rows of (job id, submit s, GPUs, true runtime s, time limit s)."""
    jobs = tuple(TraceJob(i, s, d, g, "p", "u", limit) for i, s, g, d, limit in rows)
    return Trace(name, "hand-made", tuple(sorted(jobs, key=lambda j: (j.submit_s, j.job_id))))


TRACES = {
    "backfill": make_trace(("J1", 0, 4, 100, 100), ("J2", 0, 2, 200, 300),
                           ("J3", 10, 8, 50, 100), ("J4", 20, 2, 50, 60),
                           ("J5", 30, 4, 40, 50), ("J6", 40, 1, 1000, 1200)),
    "las": make_trace(("L1", 0, 8, 1000, 2000), ("L2", 200, 4, 100, 200),
                      ("L3", 300, 2, 50, 100)),
}


def run(trace: Trace, cluster: str = "synthetic:2x4:1", policy: str = "fifo",
        **kw: Any) -> SimResult:
    params = kw.pop("params", {})
    return simulate(trace, preset(cluster), get_policy(policy, **params),
                    check_invariants=True, **kw)


def times(result: SimResult) -> dict[str, list[float]]:
    return {j.job_id: [j.first_start_s, j.end_s] for j in result.jobs}


@pytest.mark.parametrize("policy", ["fifo", "fifo-backfill", "las"])
@pytest.mark.parametrize("name", sorted(TRACES))
def test_completion_times_match_the_hand_computation(name: str, policy: str) -> None:
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    result = run(TRACES[name], golden["cluster"], policy,
                 params=golden["params"].get(policy, {}))
    assert times(result) == golden["expected"][policy]
    assert all(j.state == "COMPLETED" for j in result.jobs)


def test_fifo_and_easy_differ_and_las_preempts() -> None:
    backfill = json.loads((GOLDEN / "backfill.json").read_text())["expected"]
    assert backfill["fifo"] != backfill["fifo-backfill"] != backfill["las"]
    las = run(TRACES["las"], policy="las", params={"thresholds_gpu_s": (1000.0,)})
    l1 = next(j for j in las.jobs if j.job_id == "L1")
    assert (las.preemptions, l1.preemptions, l1.runtime_s) == (1, 1, 1000.0)
    assert run(TRACES["las"], policy="las").preemptions == 0  # default thresholds


def test_a_preempted_job_that_is_not_requeueable_is_cancelled() -> None:
    # gefion policy: L2 (QOS high) may preempt L1 (QOS scavenger, which here does not
    # requeue and has no grace): L1 is cancelled at 200 and L2 takes its node.
    jobs = (TraceJob("L1", 0, 1000, 8, "p", "u", 2000, "scavenger"),
            TraceJob("L2", 200, 100, 8, "p", "u", 200, "high"))
    trace = Trace("qos", "hand-made", jobs)
    qos = {**TWIN_QOS, "scavenger": QOS("scavenger", preemptible=True, requeue=False,
                                        grace_s=0)}
    result = run(trace, cluster="synthetic:1x8", policy="gefion", qos=qos)
    l1 = next(j for j in result.jobs if j.job_id == "L1")
    assert (l1.state, l1.end_s, l1.runtime_s) == ("CANCELLED", 200.0, 200.0)
    assert times(result)["L2"] == [200.0, 300.0]


def test_las_victims_requeue_whatever_their_qos() -> None:
    qos = {**TWIN_QOS, "normal": QOS("normal", priority=10, requeue=False, grace_s=0)}
    result = run(TRACES["las"], policy="las", params={"thresholds_gpu_s": (1000.0,)}, qos=qos)
    l1 = next(j for j in result.jobs if j.job_id == "L1")
    assert l1.state == "COMPLETED" and l1.preemptions == 1


def test_a_job_past_its_limit_ends_timeout_at_start_plus_limit() -> None:
    trace = make_trace(("long", 0, 8, 500, 300), ("next", 5, 8, 10, 60))
    result = run(trace)
    assert times(result) == {"long": [0.0, 300.0], "next": [300.0, 310.0]}
    assert [j.state for j in result.jobs] == ["TIMEOUT", "COMPLETED"]
    assert result.jobs[0].runtime_s == 300.0


def test_a_requeued_job_resumes_or_starts_over() -> None:
    las = {"thresholds_gpu_s": (1000.0,)}
    over = run(TRACES["las"], policy="las", params=las, resume=False)
    # L1 ran 260 s, then starts over at 360 with its whole 1,000 s.
    assert times(over)["L1"] == [0.0, 1360.0]


def test_node_failure_requeues_the_job_which_completes_later() -> None:
    """One node, one job of 10,000 s; failures every 5,000 s on average, repairs 1,000 s.

    The engine draws, in event order from ``default_rng(seed)``: the node's first failure,
    then at each failure its repair time, at each repair the next failure. The job runs
    whenever the node is up and resumes where it stopped.
    """
    import numpy as np

    trace = make_trace(("job", 0, 8, 10_000, 20_000))
    model = FailureModel(mtbf_s=5_000, mttr_s=1_000)
    seed = 3
    rng = np.random.default_rng(seed)
    t, left, fails = 0.0, 10_000.0, 0
    fail_at = float(rng.exponential(5_000))
    while fail_at < t + left:  # by hand: the node fails before the job is done
        left -= fail_at - t
        fails += 1
        t = fail_at + float(rng.exponential(1_000))  # repaired: the job restarts
        fail_at = t + float(rng.exponential(5_000))
    expected_end = t + left
    assert fails >= 1, "pick a seed whose first failure hits the job"
    result = run(trace, "synthetic:1x8", failures=model, seed=seed)
    job = result.jobs[0]
    assert (job.state, result.failed_runs) == ("COMPLETED", fails)
    assert job.end_s == pytest.approx(expected_end)
    assert job.runtime_s == pytest.approx(10_000.0)
    assert result.node_failures >= fails


def test_failures_with_other_seeds_give_other_results() -> None:
    trace = apply_workload_model(load_trace("itp-elasticflow/cluster10"), seed=0)
    model = FailureModel(mtbf_s=20 * 86_400, mttr_s=3_600)
    one = run(trace, "synthetic:4x8:2", failures=model, seed=1)
    again = run(trace, "synthetic:4x8:2", failures=model, seed=1)
    other = run(trace, "synthetic:4x8:2", failures=model, seed=2)
    assert one.jobs == again.jobs and one.node_failures == again.node_failures
    assert one.jobs != other.jobs
    assert one.failed_runs > 0 and other.failed_runs > 0
    assert all(j.state == "COMPLETED" for j in one.jobs)


def test_a_reservation_window_wakes_the_engine() -> None:
    """A maintenance window [50, 150) on both nodes: a job submitted at 10 with a 100 s
    limit cannot end before it begins, so it waits; only the window's end (an event of its
    own) starts it, at 150."""
    maint = Reservation("maint", ("node00001", "node00002"), 50.0, 150.0, maintenance=True)
    result = run(make_trace(("a", 10, 4, 60, 100)), policy="fifo-backfill",
                 reservations=[maint])
    assert times(result) == {"a": [150.0, 210.0]}


def test_gang_requests_are_rounded_up_to_whole_nodes_and_too_big_jobs_dropped() -> None:
    cluster = preset("synthetic:4x8")
    spec, shape, _, rounded = job_spec(TraceJob("x", 0, 10, 20, time_limit_s=60), cluster,
                                       TWIN_QOS)
    assert (spec.gpus, shape, rounded) == (24, Shape(3, 8), True)
    spec, shape, _, rounded = job_spec(TraceJob("y", 0, 10, 12, time_limit_s=60), cluster,
                                       TWIN_QOS)
    assert (spec.gpus, shape, rounded) == (12, Shape(2, 6), False)  # kept as 2 × 6
    trace = make_trace(("a", 0, 20, 10, 60), ("b", 0, 64, 10, 60), ("c", 1, 1, 10, 60))
    result = run(trace, "synthetic:4x8")
    assert result.rounded_up == 1 and result.dropped == {"larger than the cluster": 1}
    assert {j.job_id: j.gpus for j in result.jobs} == {"a": 24, "c": 1}


def test_trace_qos_and_project_map_to_the_scheduler_view() -> None:
    cluster = preset("synthetic:2x4")
    spec, *_ = job_spec(TraceJob("x", 0, 10, 1, qos="BE", time_limit_s=60), cluster, TWIN_QOS)
    assert (spec.qos, spec.project) == ("normal", "unassigned")
    spec, *_ = job_spec(TraceJob("x", 0, 10, 1, "p", qos="high", time_limit_s=60), cluster,
                        TWIN_QOS)
    assert spec.qos == "high" and spec.time_limit_s == 60
    with pytest.raises(InputError, match="workload model"):
        job_spec(TraceJob("x", 0, 10, 1), cluster, TWIN_QOS)


def test_max_events_stops_early_and_counts_what_is_left() -> None:
    result = run(TRACES["backfill"], max_events=3)
    assert sum(result.dropped.values()) + len(result.jobs) == 6
    assert result.events == 3 and "unfinished: max_events reached" in result.dropped


def test_progress_is_reported_to_the_end() -> None:
    calls: list[tuple[float, float]] = []
    run(TRACES["backfill"], progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (6.0, 6.0)


def test_samples_follow_the_state_and_are_thinned() -> None:
    result = run(TRACES["backfill"], policy="fifo-backfill", sample_every_s=0)
    first = result.samples[0]
    assert (first.time_s, first.allocated_gpus, first.queue_len) == (0.0, 6, 0)
    at_10 = next(s for s in result.samples if s.time_s == 10.0)
    # J3 (a gang of whole nodes) waits; node2 is partly used with 2 GPUs free: stranded
    assert (at_10.queue_len, at_10.pending_gpus, at_10.stranded_free_gpus) == (1, 8, 2)
    thinned = run(TRACES["backfill"], policy="fifo-backfill", sample_every_s=1000)
    assert len(thinned.samples) < len(result.samples)
    assert thinned.allocated_gpu_s == result.allocated_gpu_s  # integrals stay exact


@pytest.mark.parametrize("policy", POLICIES)
def test_invariants_hold_after_every_event_on_a_real_trace(policy: str) -> None:
    """ITP cluster10 (260 jobs) on 4 nodes × 8 GPUs, so that queues, gangs, backfill and
    preemption all happen; invariants checked after every cycle and event batch."""
    trace = apply_workload_model(load_trace("itp-elasticflow/cluster10"), seed=0)
    result = run(trace, "synthetic:4x8:2", policy)
    assert len(result.jobs) == 260 and not result.dropped
    assert {j.state for j in result.jobs} <= {"COMPLETED", "TIMEOUT"}
    assert result.cycles > 0
    if policy == "las":
        assert result.preemptions > 0



def test_the_engine_check_catches_a_gpu_held_twice() -> None:
    state = ClusterState(preset("synthetic:1x8"), DGX_H100, 0.0)
    runs = []
    for job_id in ("a", "b"):
        shape = Shape(1, 2)
        state.add_pending(shape)
        run_ = JobRun(TraceJob(job_id, 0, 10, 2, time_limit_s=60),
                    Job(job_id, JobSpec(2, 60, "p"), 0, JobState.RUNNING), shape)
        run_.alloc, _ = state.allocate(job_id, (("node00001", 2),), shape)
        runs.append(run_)
    assert [r.alloc for r in runs] == [[(0, [0, 1])], [(0, [2, 3])]]  # lowest first
    state.check(runs)
    runs[1].alloc = [(0, [1, 2])]  # corrupt: GPU 1 held twice
    with pytest.raises(InvariantError, match="twice"):
        state.check(runs)


def test_the_load_factor_is_read_from_the_workload_model() -> None:
    trace = apply_workload_model(make_trace(("a", 0, 1, 10, 60), ("b", 30, 1, 10, 60)),
                                 seed=0, load=1.5)
    result = run(trace)
    assert result.load == 1.5 and times(result)["b"] == [20.0, 30.0]
    assert run(TRACES["backfill"]).load == 1.0


def test_the_barrier_skips_cycles_that_could_start_nothing(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A strict queue whose head does not fit holds back everyone: the engine skips those
    cycles on the core's word (CycleResult.barrier), with exactly the same outcome."""
    from gefion.twin import engine as engine_module

    trace = make_trace(("big", 0, 8, 100, 500), ("gang", 1, 16, 100, 500),
                       *((f"s{k}", 2 + k, 1, 30 + k, 500) for k in range(6)),
                       ("late", 50, 1, 10, 500))
    with_barrier = run(trace, "synthetic:2x8:1", "fifo")
    original = engine_module._Engine.cycle

    def forgetful(self: Any, now: float) -> int:
        started = original(self, now)
        self.barrier = None
        return started

    monkeypatch.setattr(engine_module._Engine, "cycle", forgetful)
    without = run(trace, "synthetic:2x8:1", "fifo")
    assert with_barrier.jobs == without.jobs
    assert with_barrier.cycles < without.cycles
