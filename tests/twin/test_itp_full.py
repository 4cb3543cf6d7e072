"""Every policy of the core replays the full ITP trace on the ``gefion`` preset to the end.

All ten ITP clusters merged (69,351 jobs) at load 1.0, through the very engine and cycle of
``gefion twin run``: every job ends (none dropped, none left pending), nothing is lost, and
the policies differ where they should (strict FIFO waits longest). The four runs go two at a
time in worker processes, as ``gefion twin compare`` runs them, the longest (``gefion``)
first so that the other three share the second worker meanwhile.
"""

from __future__ import annotations

import pytest

from gefion.twin.compare import make_grid, run_grid
from gefion.twin.run import RunOptions

ITP_JOBS = 69_351
POLICIES = ("gefion", "las", "fifo-backfill", "fifo")  # longest first

pytestmark = [pytest.mark.slow, pytest.mark.early]


def test_every_policy_runs_the_full_itp_trace_to_completion() -> None:
    runs = run_grid(make_grid(RunOptions(trace="itp-elasticflow"), POLICIES, [1.0]),
                    workers=2)
    by_policy = {run.options.policy: run.summary for run in runs}
    assert sorted(by_policy) == sorted(POLICIES)
    for policy, summary in by_policy.items():
        assert summary["jobs"] == ITP_JOBS, policy
        assert summary["dropped"] == {}, policy
        assert sum(summary["states"].values()) == ITP_JOBS, policy
        assert set(summary["states"]) <= {"COMPLETED", "TIMEOUT"}, policy
        assert summary["cluster"] == "gefion" and summary["total_gpus"] == 1_528
        assert 0.0 < summary["gpu_allocation"] <= 1.0
    # the policies are really different schedulers on the same workload
    assert by_policy["fifo"]["avg_wait_s"] > by_policy["fifo-backfill"]["avg_wait_s"]
    assert by_policy["las"]["preemptions"] > 0
    assert by_policy["fifo"]["preemptions"] == by_policy["fifo-backfill"]["preemptions"] == 0
