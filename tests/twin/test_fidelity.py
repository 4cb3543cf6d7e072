"""Fidelity against independent simulators.

**The Philly week.** Jobs of 1, 2, 4 or 8 GPUs submitted in [2017-11-06 00:00,
2017-11-13 00:00) (6,360 jobs), on 48 nodes × 8 GPUs, true durations as given, strict
FIFO, every job on one node. Three independent simulators (Tiresias, Gavel, Helios) report
an average JCT between 27,555 s and 29,303 s. Time limits never kill a job here (each is
its duration rounded up) and strict FIFO does not read them except for the plan of the job
at the head of the queue, which starts nobody early.

What we found: the result depends on *which* node a job goes to. The peers place a job on
the first node with room (first fit); Gefion's core packs it into the node with the fewest
free GPUs (best fit), which strands fewer GPUs and starts queued 4- and 8-GPU jobs sooner.

* with first-fit placement (the policy parameter ``placement="first-fit"``) our engine
  gives 29,303.4 s — in the band, at its top (29,303 s), rounded as the peers report;
* with the core's best fit it gives 26,842 s, 2.6 % below the band: not an error of the
  engine (arrival origin and durations are as in the first case) but better packing.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gefion.core.policies import get_policy
from gefion.core.topology import preset
from gefion.twin.engine import simulate
from gefion.twin.result import SimResult
from gefion.twin.traces import Trace, load_trace

PEER_BAND_S = (27_555.0, 29_303.0)  # avg JCT reported by Tiresias, Gavel and Helios


@pytest.fixture(scope="module")
def philly_week() -> Trace:
    trace = load_trace("philly-pollux", from_time="2017-11-06 00:00:00",
                       to_time="2017-11-13 00:00:00", gpus_in={1, 2, 4, 8})
    assert len(trace) == 6_360
    return replace(trace, jobs=tuple(
        j._replace(time_limit_s=max(1, math.ceil(j.duration_s))) for j in trace.jobs))


def avg_jct_s(result: SimResult) -> float:
    return float(np.mean([j.end_s - j.submit_s for j in result.jobs]))


def run_week(trace: Trace, placement: str = "best-fit") -> SimResult:
    result = simulate(trace, preset("synthetic:48x8"), get_policy("fifo", placement=placement))
    assert len(result.jobs) == 6_360 and not result.dropped
    assert {j.state for j in result.jobs} == {"COMPLETED"}
    assert all(j.runtime_s == pytest.approx(d.duration_s) for j, d in
               zip(result.jobs, trace.jobs, strict=True))
    return result


@pytest.mark.slow
def test_philly_week_fifo_lands_in_the_peer_band_with_their_placement(
        philly_week: Trace) -> None:
    avg = avg_jct_s(run_week(philly_week, placement="first-fit"))
    lo, hi = PEER_BAND_S
    assert lo <= round(avg) <= hi, (
        f"avg JCT {avg:,.1f} s outside the peers' band [{lo:,.0f}, {hi:,.0f}] s with the "
        "peers' first-fit placement: check the arrival origin (first submit = 0), that "
        "durations are the 'duration' column and that every job sits on one node")


@pytest.mark.slow
def test_philly_week_fifo_with_gefion_packing_is_just_below_the_band(
        philly_week: Trace) -> None:
    avg = avg_jct_s(run_week(philly_week))
    lo, _ = PEER_BAND_S
    assert 0.95 * lo <= avg < lo, (
        f"avg JCT {avg:,.1f} s with the core's best-fit packing; expected a little below "
        f"the peers' band (which starts at {lo:,.0f} s) because best fit strands fewer "
        "GPUs than the peers' first fit — see the module docstring")


@pytest.mark.slow
def test_the_week_on_the_fast_path_is_the_week_on_the_snapshot_cycle(
        philly_week: Trace) -> None:
    fast = run_week(philly_week)
    general = simulate(philly_week, preset("synthetic:48x8"), get_policy("fifo"),
                       fast_path=False)
    assert replace(fast, wall_s=0.0) == replace(general, wall_s=0.0)
