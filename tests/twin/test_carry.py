"""Plans carried between cycles (gefion.core.carry) change nothing but the cost: the twin
run with them and without them gives every job the same start, end and nodes."""

from __future__ import annotations

import pytest

import gefion.core.cycle as cycle_module
from gefion.core.policies import get_policy
from gefion.core.topology import preset
from gefion.twin.engine import simulate
from gefion.twin.workload import generate


@pytest.mark.parametrize("policy,params", [
    ("gefion", {}),
    ("gefion", {"depth": None}),  # conservative backfill: every waiting job planned
    ("fifo-backfill", {}),
])
def test_a_run_with_carried_plans_equals_one_that_plans_afresh(
        policy: str, params: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = preset("synthetic:12x8:4")
    # Overloaded (1.6× the GPUs), mixed sizes up to whole-cluster gangs: long queues,
    # many plans, arrivals between completions.
    trace = generate(500, seed=3, offered_gpus=1.6 * cluster.total_gpus, max_gpus=64)
    reused: list[str] = []
    across_ends: list[str] = []  # reused although runs ended since (carry.py, condition 3)
    real = cycle_module._Cycle._carried_fit

    def counting(self: cycle_module._Cycle, job_id: str, *args: object) -> object:
        fit = real(self, job_id, *args)  # type: ignore[arg-type]
        if fit is not None:
            reused.append(job_id)
            if self.released:
                across_ends.append(job_id)
        return fit

    monkeypatch.setattr(cycle_module._Cycle, "_carried_fit", counting)
    carried = simulate(trace, cluster, get_policy(policy, **params), seed=3)
    assert len(reused) > 50 and len(across_ends) > 20  # the carry was really used
    afresh = simulate(trace, cluster, get_policy(policy, **params), seed=3,
                      carry_plans=False)
    assert carried.jobs == afresh.jobs
    assert carried.cycles == afresh.cycles
