"""EASY vs conservative backfill on a hand-worked scenario (golden files).

Cluster: 3 nodes × 8 GPUs (one unit). At t=0, R1 holds node1 until 100 and R2 holds node2
until 200; node3 is free. Queue, in submit order (fifo-backfill):

====  =====================  =======
job   shape                  limit s
====  =====================  =======
A     2 nodes × 4 GPUs       100
B     3 nodes × 8 GPUs       100
C     1 node  × 4 GPUs       250
D     1 node  × 4 GPUs        50
====  =====================  =======

By hand:

* A cannot start (one free node). Earliest: t=100 on node1 + node3 (4 GPUs each),
  reserved over [100, 200).
* B cannot start. With EASY (depth 1) it gets no reservation. Conservatively, its
  earliest start is t=200 (all three nodes free once A ends), reserved over [200, 300).
* C (4 GPUs for 250 s) fits on node3 now: at t=100 A takes 4 of node3's 8 GPUs, leaving
  exactly C's 4. EASY starts it. Conservative backfill holds it back: over [200, 250) it
  would hold node3, which B's reservation needs, delaying B from 200 to 250. Its own
  planned start is then 300 (after B) on node1.
* D (4 GPUs for 50 s) ends before any reservation begins: both start it on node3.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gefion.core.jobs import Job, JobSpec, JobState
from gefion.core.topology import preset
from tests.core.builders import cycle

GOLDEN = Path(__file__).parent / "golden"


def scenario() -> list[Job]:
    return [
        Job("R1", JobSpec(8, 100, "p"), 0, JobState.RUNNING, 0,
            allocation=(("node00001", tuple(range(8))),)),
        Job("R2", JobSpec(8, 200, "p"), 0, JobState.RUNNING, 0,
            allocation=(("node00002", tuple(range(8))),)),
        Job("A", JobSpec(8, 100, "p", nodes=2, gpus_per_node=4), 1),
        Job("B", JobSpec(24, 100, "p"), 2),
        Job("C", JobSpec(4, 250, "p"), 3),
        Job("D", JobSpec(4, 50, "p"), 4),
    ]


@pytest.mark.parametrize(("depth", "golden"), [(1, "easy.json"), (None, "conservative.json")])
def test_backfill_depth_matches_hand_computation(depth: int | None, golden: str) -> None:
    _, result = cycle(preset("synthetic:3x8"), scenario(), 0.0, policy="fifo-backfill",
                      params={"depth": depth})
    expected = json.loads((GOLDEN / golden).read_text())
    assert result.to_json() == expected


def test_easy_starts_c_and_conservative_holds_it() -> None:
    easy = json.loads((GOLDEN / "easy.json").read_text())
    conservative = json.loads((GOLDEN / "conservative.json").read_text())
    assert [s["id"] for s in easy["started"]] == ["C", "D"]
    assert [s["id"] for s in conservative["started"]] == ["D"]
    planned = {p["id"]: p["planned_start"] for p in conservative["pending"]}
    assert planned == {"A": 100.0, "B": 200.0, "C": 300.0}
