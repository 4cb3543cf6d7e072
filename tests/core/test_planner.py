"""The planner's run-at-a-time scan finds the same earliest fit as trying every start.

``earliest_fit`` decides whole runs of candidate starts (those whose window meets the same
plan rows) with one threshold per node; ``_walk`` tries each start through ``fit_at``, the
definition of "fits". Over thousands of seeded random availability profiles, plans and
requests — few nodes and times on a coarse grid, so that releases, plan edges and starts
often coincide and windows span several plan rows — they agree on the start and the nodes.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from gefion.core import planner
from gefion.core.planner import (
    Fit,
    Request,
    _scan,
    _walk,
    earliest_fit,
    fit_at,
    fitting_nodes,
)
from gefion.core.plans import Plan
from gefion.core.profile import Availability, Block


def _no_blocks(start: float, end: float) -> list[Block]:
    return []


def _case(rng: random.Random) -> tuple[Availability, Request, np.ndarray, int, float]:
    n, gpus = rng.randint(2, 6), rng.choice([4, 8])
    up = [rng.random() < 0.9 for _ in range(n)]
    nodes: list[int] = []
    held: list[int] = []
    until: list[float] = []
    left = [gpus] * n
    for _ in range(rng.randint(0, 4 * n)):
        node = rng.randrange(n)
        if left[node]:
            g = rng.randint(1, left[node])
            left[node] -= g
            nodes.append(node)
            held.append(g)
            until.append(rng.randint(1, 20) * 5.0)
    avail = Availability([gpus] * n, up, 0.0, holds=(
        np.array(nodes, dtype=np.int64), np.array(held, dtype=np.int64),
        np.array(until, dtype=np.float64)))
    for k in range(rng.randint(1, 6)):
        start = rng.randint(0, 20) * 5.0
        on = tuple(sorted({rng.randrange(n) for _ in range(rng.randint(1, n))}))
        avail.add_plan(Plan(start, start + rng.randint(1, 20) * 5.0, on,
                            rng.randint(1, gpus), f"p{k}"))
    allowed = np.array([rng.random() < 0.85 for _ in range(n)])
    req = Request("j", rng.randint(1, n), rng.randint(1, gpus), rng.randint(1, 30) * 5.0,
                  allowed, rng.random() < 0.3, _no_blocks, (), rng.random() < 0.3)
    units = rng.randint(1, 2)
    node_units = np.array(sorted(i % units for i in range(n)), dtype=np.int64)
    return avail, req, node_units, units, rng.randint(0, 10) * 5.0


def _same(got: Fit | None, want: Fit | None) -> bool:
    if got is None or want is None:
        return got is want
    return got.start_s == want.start_s and got.nodes.tolist() == want.nodes.tolist()


@pytest.mark.parametrize("summed", ["by a product", "by cumsum"])
@pytest.mark.parametrize("seed", range(4))
def test_scan_agrees_with_trying_every_start(seed: int, summed: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # _scan sums the late plan rows by a product with few rows, by cumsum with many
    if summed == "by cumsum":
        monkeypatch.setattr(planner, "_BELOW_MAX", 0)
    rng = random.Random(seed)
    found = 0
    for _ in range(1000):
        avail, req, node_units, units, not_before = _case(rng)
        fit = earliest_fit(avail, req, node_units, units, not_before=not_before)
        # the same candidate starts, tried one by one
        tau = avail.tau_for(req.gpus_per_node)[req.allowed]
        finite = np.sort(tau[np.isfinite(tau)])
        if len(finite) < req.nodes:
            assert fit is None
            continue
        lower = max(not_before, float(finite[req.nodes - 1]))
        times = np.unique(np.concatenate((finite[finite > lower], [lower],
                                          [t for t in avail.profile.times if t > lower])))
        walked = _walk(avail, req, times, finite, node_units, units)
        assert _same(fit, walked)
        nodes_ok = req.allowed.nonzero()[0]
        every = len(nodes_ok) == avail.n
        base = avail.tau_for(req.gpus_per_node)
        assert _same(_scan(avail, req, times, nodes_ok, every,
                           base if every else base[nodes_ok], node_units, units), walked)
        found += walked is not None and walked.start_s > not_before
    assert found > 100  # plenty of cases where the job fits only later


def test_gpus_that_come_back_before_the_one_plan_in_the_window_count() -> None:
    # One 8-GPU node: 4 GPUs come back at 10, the other 4 at 18; a plan holds 4 over
    # [20, 100). A 4-GPU job of 30 s fits at 10: 4 free until 20, then 8 - 4 under the
    # plan. The window [10, 40) meets that one plan row only, which begins after 10: the
    # base under it is the base at 20, not at 10 (which would put the start at 18).
    avail = Availability([8], np.array([True]), 0.0, holds=(
        np.array([0, 0], dtype=np.int64), np.array([4, 4], dtype=np.int64),
        np.array([10.0, 18.0])))
    avail.add_plan(Plan(20.0, 100.0, (0,), 4, "ahead"))
    req = Request("j", 1, 4, 30.0, np.array([True]), False, _no_blocks)
    units = np.zeros(1, dtype=np.int64)
    fit = earliest_fit(avail, req, units, 1, not_before=0.0)
    assert fit is not None and fit.start_s == 10.0
    ok, _ = avail.usable(4, np.array([True]), 10.0, 40.0)
    assert ok.tolist() == [True]


@pytest.mark.parametrize("seed", range(3))
def test_one_node_fits_before_a_time_exactly_when_usable_says_so_at_some_start(
        seed: int) -> None:
    # Every time in these cases is a multiple of 5 s: trying each multiple of 5 from now
    # on is an independent answer.
    rng = random.Random(100 + seed)
    answers = set()
    for _ in range(400):
        avail, req, _, _, _ = _case(rng)
        node = rng.randrange(avail.n)
        g, d = req.gpus_per_node, req.duration_s
        before = rng.randint(0, 30) * 5.0
        only = np.zeros(avail.n, dtype=bool)
        only[node] = True
        starts = np.arange(avail.now, before, 5.0)
        want = any(bool(avail.usable(g, only & avail.up, float(t), float(t) + d)[0][node])
                   for t in starts)
        assert avail.node_fits_before(node, g, d, before) is want
        answers.add(want)
    assert answers == {True, False}


@pytest.mark.parametrize("seed", range(4))
def test_fitting_nodes_are_there_exactly_when_fit_at_finds_nodes_among_them(
        seed: int) -> None:
    rng = random.Random(1000 + seed)
    found = missed = 0
    for _ in range(500):
        avail, req, node_units, units, start = _case(rng)
        nodes = fit_at(avail, req, start, node_units, units)
        ok = fitting_nodes(avail, req, start, node_units, units)
        assert (ok is not None) == (nodes is not None)
        if ok is not None and nodes is not None:
            assert ok[nodes].all()  # it chose among them
        found += nodes is not None
        missed += nodes is None
    assert found > 50 and missed > 50  # both answers were put to the test
