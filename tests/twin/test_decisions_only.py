"""The twin's cheaper cycles decide what the full cycle decides.

* ``run_cycle(..., etas=False)`` plans a waiting job only while a job behind it may still
  start now (or preemption is possible): its starts and preemptions are those of the full
  cycle, in every cycle of a loaded run.
* The engine skips a cycle of a policy that evicts only jobs marked preemptible while none
  of those runs and no pending shape fits the free GPUs: the run is the one that calls
  the cycle there, job for job.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import gefion.core.memo as memo_module
import gefion.twin.engine as engine_module
from gefion.core.decisions import CycleResult
from gefion.core.policies import get_policy
from gefion.core.snapshot import Snapshot
from gefion.core.topology import preset
from gefion.twin.engine import simulate
from gefion.twin.traces.model import Trace
from gefion.twin.workload import generate


def overloaded(seed: int, qos_every: int = 0) -> Trace:
    """1.6× the GPUs of synthetic:12x8:4, gangs up to 64 GPUs: long queues, many plans.
    ``qos_every``: every so many jobs run as ``scavenger`` (preemptible), the next as
    ``high`` (which may evict them)."""
    cluster = preset("synthetic:12x8:4")
    trace = generate(500, seed=seed, offered_gpus=1.6 * cluster.total_gpus, max_gpus=64)
    if not qos_every:
        return trace
    return replace(trace, jobs=tuple(
        j._replace(qos="scavenger" if k % qos_every == 0 else
                "high" if k % qos_every == 1 else "normal")
        for k, j in enumerate(trace.jobs)))


def _every_cycle_runs(self: engine_module._Engine, snapshot: Snapshot,
                      now: float) -> int | None:
    """No cycle decided from free GPUs (core.prefix): run_cycle sees every one."""
    return None


@pytest.mark.parametrize("policy,qos_every", [
    ("gefion", 0), ("fifo-backfill", 0), ("gefion", 5), ("las", 0)])
def test_a_cycle_without_etas_decides_what_the_full_cycle_decides(
        policy: str, qos_every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine_module.run_cycle
    fewer: list[int] = []  # cycles in which the cheaper cycle made fewer plans
    preempting: list[int] = []

    def both(snapshot: Snapshot, now: float, *args: object, **kw: object) -> CycleResult:
        assert kw.get("etas") is False  # the fast path asks for decisions only
        cheap: CycleResult = real(snapshot, now, *args, **kw)  # type: ignore[arg-type]
        full: CycleResult = real(snapshot, now, *args, **{**kw, "etas": True})  # type: ignore[arg-type]
        assert cheap.starts == full.starts
        assert cheap.preemptions == full.preemptions
        assert set(cheap.planned) <= set(full.planned)
        fewer.append(len(full.planned) - len(cheap.planned))
        preempting.append(len(full.preemptions))
        return cheap

    monkeypatch.setattr(engine_module, "run_cycle", both)
    monkeypatch.setattr(engine_module._Engine, "prefix_cycle", _every_cycle_runs)
    result = simulate(overloaded(3, qos_every), preset("synthetic:12x8:4"),
                      get_policy(policy), seed=3)
    assert result.jobs and len(fewer) > 100
    if policy == "las":
        assert sum(preempting) > 0  # LAS preempts: every plan is kept
    else:
        assert sum(1 for f in fewer if f > 0) > 10  # and plans were really left out
    if qos_every:
        assert sum(preempting) > 0


def _always_when_running(self: engine_module._Engine) -> bool:
    """may_decide as it was: a preemptive policy cycles whenever anything runs."""
    if self.state.pending_count == 0:
        return False
    if self.policy.preemption and self.state.running_count:
        return True
    if self.barrier is not None and self.barrier[0] in self.active:
        _, count, gpus = self.barrier
        return self.state.fits(count, gpus)
    return self.state.any_pending_fits()


@pytest.mark.parametrize("qos_every", [0, 5])
def test_a_cycle_that_could_only_have_preempted_nobody_is_skipped(
        qos_every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, policy = preset("synthetic:12x8:4"), get_policy("gefion")
    trace = overloaded(4, qos_every)
    skipping = simulate(trace, cluster, policy, seed=4)
    monkeypatch.setattr(engine_module._Engine, "may_decide", _always_when_running)
    cycling = simulate(trace, cluster, policy, seed=4)
    assert skipping.jobs == cycling.jobs
    assert skipping.preemptions == cycling.preemptions
    assert skipping.samples == cycling.samples
    if qos_every:
        assert skipping.preemptions > 0
    else:  # nobody is preemptible: cycles in which nothing fits are not run
        assert skipping.cycles < cycling.cycles - 50


@pytest.mark.parametrize("policy,qos_every", [("gefion", 0), ("fifo-backfill", 0), ("gefion", 5)])
def test_jobs_a_failed_start_dominates_get_in_bulk_the_verdict_of_their_own_turn(
        policy: str, qos_every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Once no more plans are made, a plain job whose shape a failed start of the cycle
    # dominates is decided in a block (PRIORITY), not in a turn of its own: every cycle of
    # a loaded run decides the same both ways, reasons and planned starts included.
    real = engine_module.run_cycle
    memo_test = memo_module.FailureMemo.failed_all
    beaten: list[int] = []

    def counted(self: memo_module.FailureMemo, *args: object) -> np.ndarray:
        out = memo_test(self, *args)  # type: ignore[arg-type]
        beaten.append(int(out.sum()))
        return out

    def none_beaten(self: memo_module.FailureMemo, question: str, key: object,
                    g: np.ndarray, *rest: object) -> np.ndarray:
        return np.zeros(len(g), dtype=np.bool_)  # each job in a turn of its own

    def both(snapshot: Snapshot, now: float, *args: object, **kw: object) -> CycleResult:
        monkeypatch.setattr(memo_module.FailureMemo, "failed_all", counted)
        bulk: CycleResult = real(snapshot, now, *args, **kw)  # type: ignore[arg-type]
        monkeypatch.setattr(memo_module.FailureMemo, "failed_all", none_beaten)
        turns: CycleResult = real(snapshot, now, *args, **kw)  # type: ignore[arg-type]
        assert bulk.starts == turns.starts
        assert bulk.preemptions == turns.preemptions
        assert list(bulk.pending) == list(turns.pending)
        assert bulk.planned == turns.planned
        return bulk

    monkeypatch.setattr(engine_module, "run_cycle", both)
    monkeypatch.setattr(engine_module._Engine, "prefix_cycle", _every_cycle_runs)
    result = simulate(overloaded(5, qos_every), preset("synthetic:12x8:4"),
                      get_policy(policy), seed=5)
    assert result.jobs
    assert sum(beaten) >= 10  # jobs were decided in a block
