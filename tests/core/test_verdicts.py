"""Verdicts: a cycle's pending jobs, kept as runs until read, read alike every way."""

from __future__ import annotations

import numpy as np

from gefion.core.decisions import RUN_REASONS, CycleResult, PendingReason, Verdict, Verdicts


def _verdicts() -> Verdicts:
    out = Verdicts()
    out.append(Verdict("a", PendingReason.RESOURCES, 120.0, "needs 2 nodes"))
    ids = ["x", "b", "c", "d", "e"]
    out.add_run(ids, np.array([1, 2]), np.array([RUN_REASONS.index(PendingReason.PRIORITY),
                                                 RUN_REASONS.index(PendingReason.HELD)]))
    out.add_run(ids, np.array([4, 3]), np.array([0, 1]))
    return out


def test_views_read_the_runs_as_the_verdicts_do_without_making_verdicts() -> None:
    views = list(_verdicts().views())
    assert views == [(v.job_id, v.reason, v.planned_start_s) for v in _verdicts()]
    assert views == [("a", PendingReason.RESOURCES, 120.0), ("b", PendingReason.PRIORITY, None),
                     ("c", PendingReason.HELD, None), ("e", PendingReason.RESOURCES, None),
                     ("d", PendingReason.NODES_DOWN, None)]
    unread = _verdicts()
    list(unread.views())
    assert unread._runs and len(unread._done) == 1  # the runs stayed runs


def test_a_result_views_a_plain_list_of_verdicts_too() -> None:
    pending = list(_verdicts())
    result = CycleResult(now=0.0, policy="fifo", starts=(), preemptions=(), pending=pending,
                         factors={}, planned={})
    assert list(result.views()) == list(_verdicts().views())
