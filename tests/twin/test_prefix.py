"""A cycle that makes no plan is decided from the index of free GPUs (core.prefix): the
engine starts a prefix of the priority order where the index places it, and runs the cycle
only when it would plan. Every cycle of loaded replays starts the same jobs on the same
nodes as ``run_cycle`` does over the same snapshot."""

from __future__ import annotations

from dataclasses import replace

import pytest

import gefion.twin.engine as engine_module
from gefion.core.policies import get_policy
from gefion.core.snapshot import Snapshot
from gefion.core.topology import preset
from gefion.twin.engine import simulate
from gefion.twin.workload import generate


@pytest.mark.parametrize("policy,load", [("gefion", 1.6), ("fifo-backfill", 1.6),
                                         ("gefion", 0.7)])
def test_a_cycle_decided_from_free_gpus_starts_what_the_cycle_starts(
        policy: str, load: float, monkeypatch: pytest.MonkeyPatch) -> None:
    real = engine_module._Engine.prefix_cycle
    decided, ran = [], []

    def checked(self: engine_module._Engine, snapshot: Snapshot, now: float) -> int | None:
        assert snapshot.running == ()  # a pending-only snapshot: the order needs no more
        whole = self.builder.build(now, reservations=self.reservations,
                                   projects=self.projects, fairshare_table=self.shares)
        assert whole.pending == snapshot.pending
        cycle = engine_module.run_cycle(whole, now, self.policy, carry=self.carry,
                                        etas=False)
        before = set(self.running)
        started = real(self, snapshot, now)
        if started is None:
            ran.append(len(cycle.starts))
            return None
        decided.append(started)
        index = self.state.index
        want = {s.job_id: [index[name] for name, _ in s.placement.nodes]
                for s in cycle.starts}
        got = {job_id: [n for n, _ in self.running[job_id].alloc]
               for job_id in self.running if job_id not in before}
        assert got == want and started == len(want)
        assert not cycle.preemptions
        return started

    monkeypatch.setattr(engine_module._Engine, "prefix_cycle", checked)
    cluster = preset("synthetic:12x8:4")
    trace = generate(600, seed=8, offered_gpus=load * cluster.total_gpus, max_gpus=64)
    # jobs arrive in bursts, every 15 minutes: cycles with several jobs to start
    trace = replace(trace, jobs=tuple(j._replace(submit_s=j.submit_s // 900 * 900)
                                      for j in trace.jobs))
    result = simulate(trace, cluster, get_policy(policy), seed=8)
    assert len(result.jobs) == 600
    assert sum(1 for k in decided if k >= 2) > 15  # several jobs started at once
    if load > 1:
        assert len(ran) > 20  # and cycles that plan still ran
