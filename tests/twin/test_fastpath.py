"""The engine on the strict-order cycle (gefion.twin.fastpath) gives the general engine's
result, field for field, and is chosen only where it applies."""

from __future__ import annotations

from dataclasses import replace

import pytest

import gefion.twin.engine as engine_module
from gefion.core.policies import get_policy
from gefion.core.reservations import Reservation
from gefion.core.tenancy import Project
from gefion.core.topology import NodeState, preset
from gefion.twin.engine import FailureModel, simulate
from gefion.twin.result import SimResult
from gefion.twin.traces.model import Trace, TraceJob
from gefion.twin.workload import generate


def same(a: SimResult, b: SimResult) -> None:
    assert replace(a, wall_s=0.0) == replace(b, wall_s=0.0)


def no_snapshot_cycles(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("run_cycle called on the fast path")

    monkeypatch.setattr(engine_module, "run_cycle", refuse)


@pytest.mark.parametrize("placement", ["best-fit", "first-fit"])
@pytest.mark.parametrize("seed", [4, 5])
def test_strict_fifo_on_the_fast_path_gives_the_general_result(
        placement: str, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # units of 4, two nodes out of service, overloaded, gangs up to 64 GPUs, and every
    # seventh job with a time limit shorter than its run (it times out)
    cluster = preset("synthetic:14x8:4").with_states(
        {"node00003": NodeState.DRAINED, "node00009": NodeState.DOWN})
    trace = generate(600, seed=seed, offered_gpus=1.5 * cluster.total_gpus, max_gpus=64)
    trace = replace(trace, jobs=tuple(
        j._replace(time_limit_s=max(1, int(j.duration_s) // 2)) if k % 7 == 0 else j
        for k, j in enumerate(trace.jobs)))
    policy = get_policy("fifo", placement=placement)
    general = simulate(trace, cluster, policy, seed=seed, fast_path=False)
    no_snapshot_cycles(monkeypatch)
    fast = simulate(trace, cluster, policy, seed=seed)
    same(fast, general)
    assert {j.state for j in fast.jobs} == {"COMPLETED", "TIMEOUT"}
    assert fast.cycles_skipped and fast.cycles > 150


def test_jobs_the_cluster_cannot_hold_and_rounded_requests_count_alike() -> None:
    cluster = preset("synthetic:4x8")
    jobs = tuple(TraceJob(f"t{k}", float(k), 100.0 + k, gpus, time_limit_s=limit)
                 for k, (gpus, limit) in enumerate(
                     [(0, 50), (3, 101), (20, 500), (64, 500), (12, 90), (8, 1000),
                      (1, 10), (9, 500)]))
    trace = Trace("hand", "test", jobs)
    fast = simulate(trace, cluster, get_policy("fifo"))
    general = simulate(trace, cluster, get_policy("fifo"), fast_path=False)
    same(fast, general)
    assert fast.dropped == {"larger than the cluster": 1} and fast.rounded_up == 2
    assert [j.state for j in fast.jobs if j.job_id in ("t1", "t6")] == ["COMPLETED", "TIMEOUT"]


def test_a_bad_time_limit_is_refused_on_the_fast_path_too() -> None:
    trace = Trace("hand", "test", (TraceJob("a", 0.0, 10.0, 1, time_limit_s=60),
                                   TraceJob("b", 1.0, 10.0, 1, time_limit_s=None)))
    with pytest.raises(Exception, match="no time limit"):
        simulate(trace, preset("synthetic:2x8"), get_policy("fifo"))


@pytest.mark.parametrize("kwargs", [
    {"policy": "fifo-backfill"},
    {"policy": "gefion"},
    {"failures": FailureModel(mtbf_s=20_000.0, mttr_s=600.0)},
    {"reservations": (Reservation("r", ("node00001",), 100.0, 200.0),)},
    {"projects": {"unassigned": Project("unassigned", sensitive=True)}},
    {"check_invariants": True},
])
def test_everything_else_runs_the_snapshot_cycle(
        kwargs: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    real = engine_module.run_cycle

    def counting(snapshot: object, now: float, *args: object, **kw: object) -> object:
        calls.append(now)
        return real(snapshot, now, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "run_cycle", counting)
    policy = get_policy(str(kwargs.pop("policy", "fifo")))
    trace = generate(60, seed=1, offered_gpus=40.0, max_gpus=16)
    simulate(trace, preset("synthetic:4x8"), policy, **kwargs)  # type: ignore[arg-type]
    assert calls


@pytest.mark.parametrize("policy,failures", [
    ("gefion", None),
    ("fifo-backfill", None),
    ("las", None),
    ("gefion", FailureModel(mtbf_s=30_000.0, mttr_s=900.0)),
])
def test_a_lone_pending_job_started_without_a_snapshot_goes_where_the_cycle_puts_it(
        policy: str, failures: FailureModel | None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Near full load: the queue is often empty but for one arrival (the shortcut), and
    # often long (the cycle runs, with plans, backfill and — under LAS — preemption).
    cluster = preset("synthetic:12x8:4").with_states({"node00005": NodeState.DRAINED})
    trace = generate(400, seed=11, offered_gpus=0.95 * cluster.total_gpus, max_gpus=48)
    general = simulate(trace, cluster, get_policy(policy), seed=2, failures=failures,
                       fast_path=False)
    lone: list[float] = []
    real = engine_module._Engine.lone_start

    def counting(self: engine_module._Engine, now: float) -> bool:
        started = real(self, now)
        lone.append(now) if started else None
        return started

    monkeypatch.setattr(engine_module._Engine, "lone_start", counting)
    fast = simulate(trace, cluster, get_policy(policy), seed=2, failures=failures)
    same(fast, general)
    assert len(lone) > 100 and fast.cycles > len(lone) + 100
    if policy == "las":
        assert fast.preemptions
    if failures is not None:
        assert fast.node_failures and fast.failed_runs
