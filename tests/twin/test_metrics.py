"""The summary: definitions checked on a hand-made result, and reproducible bytes."""

from __future__ import annotations

import json

import pytest

from gefion.core.policies import get_policy
from gefion.core.topology import preset
from gefion.twin.engine import FailureModel, simulate
from gefion.twin.metrics import SIZE_CLASSES, size_class, summarize
from gefion.twin.result import JobRecord, SimResult
from gefion.twin.traces import load_trace
from gefion.twin.workload import apply_workload_model

REQUIRED = {"jobs", "avg_jct_s", "p50_jct_s", "p95_jct_s", "p99_jct_s", "avg_wait_s",
            "p50_wait_s", "p95_wait_s", "p99_wait_s", "avg_bsld", "makespan_s",
            "gpu_allocation", "fragmentation", "preemptions", "energy_kwh", "by_size",
            "per_project", "policy", "trace", "cluster", "seed", "load"}


def record(job_id: str, project: str, gpus: int, submit: float, start: float, end: float,
           preemptions: int = 0) -> JobRecord:
    return JobRecord(job_id, project, "u", gpus, submit, start, end, "COMPLETED",
                     end - start, 3600, preemptions, gpus * (end - start) * 1_000.0)


def hand_result() -> SimResult:
    """On 16 GPUs over a makespan of 1,000 s:

    ====  ====  =====  ======  =====  =====  ====  ============================
    job   GPUs  submit start   end    JCT    wait  bounded slowdown
    ====  ====  =====  ======  =====  =====  ====  ============================
    a     1     0      0       5      5      0     max(1, 5/max(5, 10)) = 1
    b     8     0      100     1000   1000   100   1000/900 = 1.1111…
    c     16    50     200     400    350    150   350/200 = 1.75
    ====  ====  =====  ======  =====  =====  ====  ============================
    """
    jobs = (record("a", "x", 1, 0, 0, 5), record("b", "x", 8, 0, 100, 1000, 1),
            record("c", "y", 16, 50, 200, 400))
    return SimResult("hand", "synthetic:2x8", "fifo", 0, 1.0, 16, jobs, (), 1000.0, 1, 3,
                     6, {}, allocated_gpu_s=10_405.0, stranded_gpu_s=1_600.0,
                     energy_j=7.2e6, project_shares={"x": 3.0, "y": 1.0})


def test_summary_definitions_by_hand() -> None:
    s = summarize(hand_result())
    assert set(s) >= REQUIRED
    assert s["jobs"] == 3
    assert s["avg_jct_s"] == round((5 + 1000 + 350) / 3, 6)
    assert s["p50_jct_s"] == 350.0 and s["p50_wait_s"] == 100.0
    assert s["p99_jct_s"] == round(350 + 0.98 * 650, 6)  # numpy's linear interpolation
    assert s["avg_wait_s"] == round(250 / 3, 6)
    assert s["avg_bsld"] == round((1 + 1000 / 900 + 1.75) / 3, 6)
    assert s["gpu_allocation"] == round(10_405 / 16_000, 6)
    assert s["fragmentation"] == 0.1
    assert s["energy_kwh"] == 2.0 and s["makespan_s"] == 1000.0
    assert s["preemptions"] == 1


def test_by_size_classes_hold_the_same_statistics() -> None:
    s = summarize(hand_result())
    assert list(s["by_size"]) == [name for name, _, _ in SIZE_CLASSES]
    assert s["by_size"]["1"]["jobs"] == 1 and s["by_size"]["1"]["avg_jct_s"] == 5.0
    assert s["by_size"]["5-8"]["preemptions"] == 1
    assert s["by_size"]["9-32"]["gpu_allocation"] == round(16 * 200 / 16_000, 6)
    assert s["by_size"][">128"] == {**s["by_size"][">128"], "jobs": 0, "avg_jct_s": None}
    required = {"jobs", "avg_jct_s", "p50_jct_s", "p99_jct_s", "avg_wait_s", "p99_wait_s",
                "makespan_s", "gpu_allocation", "preemptions", "energy_kwh"}
    assert all(required <= set(c) for c in s["by_size"].values())


def test_per_project_share_against_entitlement() -> None:
    p = summarize(hand_result())["per_project"]
    used_x = (5 + 8 * 900) / 3600
    used_y = 16 * 200 / 3600
    assert p["x"]["gpu_hours"] == round(used_x, 6)
    assert p["x"]["entitlement"] == 0.75 and p["y"]["entitlement"] == 0.25
    assert p["y"]["share"] == round(used_y / (used_x + used_y), 6)
    assert p["y"]["share_over_entitlement"] == round(used_y / (used_x + used_y) / 0.25, 6)


@pytest.mark.parametrize(("gpus", "name"), [(0, "1"), (1, "1"), (2, "2-4"), (4, "2-4"),
                                            (5, "5-8"), (8, "5-8"), (9, "9-32"),
                                            (32, "9-32"), (33, "33-128"), (128, "33-128"),
                                            (129, ">128"), (1024, ">128")])
def test_size_classes(gpus: int, name: str) -> None:
    assert size_class(gpus) == name


def summary_bytes(seed: int, failures: FailureModel | None) -> bytes:
    trace = apply_workload_model(load_trace("itp-elasticflow/cluster10"), seed=0)
    result = simulate(trace, preset("synthetic:4x8:2"), get_policy("gefion"), seed=seed,
                      failures=failures)
    return json.dumps(summarize(result), sort_keys=True).encode()


def test_same_seed_gives_byte_identical_json_and_other_seeds_differ() -> None:
    """Same workload; the engine's seed draws the node failures."""
    failures = FailureModel(mtbf_s=20 * 86_400, mttr_s=3_600)
    one = summary_bytes(7, failures)
    assert one == summary_bytes(7, failures)
    assert one != summary_bytes(8, failures)
    assert json.loads(one)["node_failures"] > 0
    calm = [json.loads(summary_bytes(seed, None)) for seed in (7, 8)]
    assert [{**c, "seed": 0} for c in calm] == [calm[0] | {"seed": 0}] * 2  # nothing random
