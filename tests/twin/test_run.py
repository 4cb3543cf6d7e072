"""The glue of a twin run (options → trace → cluster → policy → simulate → summary) and the
compare grid: validation, the workload window, and parallel runs equal to runs alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gefion.core.errors import InputError, PolicyError
from gefion.core.policies.gefion import GefionPolicy
from gefion.core.priority import Weights
from gefion.twin.compare import (
    large_job_wait,
    make_grid,
    parse_loads,
    run_cell,
    run_grid,
)
from gefion.twin.result import JobRecord, SimResult
from gefion.twin.run import (
    RunOptions,
    make_policy,
    make_trace,
    parse_gpus,
    parse_list,
    parse_window,
    run_twin,
)

#: The keys other tools script against (issue #3); more may be added, none removed.
SUMMARY_KEYS = {"jobs", "avg_jct_s", "p50_jct_s", "p95_jct_s", "p99_jct_s", "avg_wait_s",
                "p50_wait_s", "p95_wait_s", "p99_wait_s", "avg_bsld", "makespan_s",
                "gpu_allocation", "fragmentation", "preemptions", "energy_kwh", "by_size",
                "per_project", "policy", "trace", "cluster", "seed", "load"}
PER_CLASS_KEYS = {"jobs", "avg_jct_s", "p50_jct_s", "p99_jct_s", "avg_wait_s", "p99_wait_s"}

# 12 jobs on 2 nodes × 8 GPUs: a 16-GPU gang, queueing, and a job that backfills.
SMALL_CSV = """\
job_id,submit_time_s,duration_s,num_gpus,project
j01,100,3600,8,climate
j02,110,1800,4,bio
j03,120,600,2,bio
j04,130,7200,16,llm
j05,140,300,1,climate
j06,150,900,8,bio
j07,160,1200,4,llm
j08,170,60,1,climate
j09,4000,2400,8,llm
j10,4100,600,2,bio
j11,4200,3000,16,climate
j12,4300,120,1,bio
"""


def small_csv(folder: Path) -> Path:
    path = folder / "small.csv"
    path.write_text(SMALL_CSV)
    return path


def small(folder: Path, **changes: object) -> RunOptions:
    return RunOptions(trace=str(small_csv(folder)), cluster="synthetic:2x8", policy="fifo",
                      seed=1).with_(**changes)


# -- options ----------------------------------------------------------------------------------

def test_settings_reach_the_policy(tmp_path: Path) -> None:
    policy = make_policy(small(tmp_path, policy="gefion", depth=4, settings=(
        "weights.starve_after_s=null", "weights.gang_starve_after_s=3600",
        "placement=first-fit", "backfill=false")))
    assert isinstance(policy, GefionPolicy)
    assert (policy.weights.starve_after_s, policy.weights.gang_starve_after_s) == (None, 3600)
    assert (policy.placement, policy.backfill, policy.depth) == ("first-fit", False, 4)
    assert policy.weights.fairshare == Weights().fairshare  # the others keep their defaults


@pytest.mark.parametrize(("changes", "field"), [
    ({"load": 0}, "load"), ({"load": -1.5}, "load"), ({"load": math.nan}, "load"),
    ({"load": math.inf}, "load"), ({"load": True}, "load"), ({"seed": -1}, "seed"),
    ({"depth": -2}, "depth"), ({"trace": " "}, "trace"), ({"gpus_in": (1, -2)}, "gpus"),
    ({"window_from": "abc"}, "from"), ({"window_to": "inf"}, "to"),
    ({"window_from": "0", "window_to": "2017-11-13"}, "to"),
    ({"settings": ("starve",)}, "set"), ({"settings": ("a.b=1",)}, "set"),
    ({"settings": ("depth=3",)}, "set"),
])
def test_bad_options_name_their_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as info:
        RunOptions(trace="x").with_(**changes)
    assert info.value.field == field


def test_window_bounds_are_seconds_or_datetimes() -> None:
    assert parse_window("86400", "from") == 86_400.0
    assert parse_window(" 2017-11-06 00:00 ", "from") == "2017-11-06 00:00"
    assert parse_window(None, "from") is None
    assert parse_window("", "to") is None


def test_lists_and_loads() -> None:
    assert parse_list("fifo, las", "policies") == ["fifo", "las"]
    assert parse_gpus("1, 2,4") == (1, 2, 4) and parse_gpus(None) is None
    with pytest.raises(InputError, match="gpus"):
        parse_gpus("1,x")
    assert parse_loads("1,1.5") == [1.0, 1.5]
    for bad in ("", "1,,2", "1,x", "0", "-1", "nan", "1,1"):
        with pytest.raises(InputError, match="loads"):
            parse_loads(bad)


# -- the trace a run replays -----------------------------------------------------------------

def test_trace_gets_the_workload_model(tmp_path: Path) -> None:
    trace = make_trace(small(tmp_path))
    assert len(trace) == 12 and trace.jobs[0].submit_s == 0.0
    assert all(j.project and j.user and j.time_limit_s for j in trace.jobs)
    assert all(j.time_limit_s >= j.duration_s for j in trace.jobs)  # type: ignore[operator]


def test_window_load_and_gpu_filter(tmp_path: Path) -> None:
    # the window is on the trace's axis (first submit 0 = 100 s in the file)
    windowed = make_trace(small(tmp_path, window_from="3900", window_to="4050", load=2.0))
    assert [j.job_id for j in windowed.jobs] == ["j09", "j10"]
    assert [j.submit_s for j in windowed.jobs] == [0.0, 50.0]  # 100 s apart, halved
    only = make_trace(small(tmp_path, gpus_in=(16,)))
    assert [j.job_id for j in only.jobs] == ["j04", "j11"]


def test_a_calendar_window_on_a_relative_trace_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no calendar times") as info:
        make_trace(small(tmp_path, window_from="2017-11-06", window_to="2017-11-07"))
    assert info.value.field == "from"


# -- the grid -----------------------------------------------------------------------------------

def test_grid_is_policy_major_and_checks_names_first() -> None:
    cells = make_grid(RunOptions(trace="x"), ["fifo", "las"], [1.0, 2.0])
    assert [(c.policy, c.load) for c in cells] == [("fifo", 1.0), ("fifo", 2.0),
                                                   ("las", 1.0), ("las", 2.0)]
    with pytest.raises(PolicyError, match="nope"):
        make_grid(RunOptions(trace="x"), ["fifo", "nope"], [1.0])


def test_large_job_wait_counts_only_big_started_jobs() -> None:
    def rec(job_id: str, gpus: int, wait_s: float) -> JobRecord:
        return JobRecord(job_id, "p", "u", gpus, 0.0, wait_s, wait_s + 10, "COMPLETED", 10,
                         60, 0, 0.0)

    jobs = (rec("a", 64, 100.0), rec("b", 128, 300.0), rec("c", 8, 9999.0),
            rec("d", 64, math.nan))
    result = SimResult("t", "c", "fifo", 0, 1.0, 1528, jobs, (), 0.0, 0, 0, 0, {})
    assert large_job_wait(result) == (2, 298.0)  # numpy linear: 100 + 0.99 × 200
    assert large_job_wait(result, min_gpus=256) == (0, None)


# -- real runs (the engine) ----------------------------------------------------------------------

def test_run_summary_has_the_documented_keys_and_is_reproducible(tmp_path: Path) -> None:
    stages: list[str] = []
    first = run_twin(small(tmp_path), on_stage=stages.append).summary
    assert stages == ["trace", "simulate", "summarize"]
    assert set(first) >= SUMMARY_KEYS
    assert first["jobs"] == 12
    for block in first["by_size"].values():
        assert set(block) >= PER_CLASS_KEYS
    again = run_twin(small(tmp_path)).summary
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_parallel_grid_equals_runs_alone(tmp_path: Path) -> None:
    cells = make_grid(small(tmp_path), ["fifo", "fifo-backfill"], [1.0, 1.5])
    parallel = run_grid(cells, workers=2)
    alone = [run_cell(cell) for cell in cells]
    assert [run.options for run in parallel] == cells
    for p, a in zip(parallel, alone, strict=True):
        assert json.dumps(p.to_json(), sort_keys=True) == json.dumps(a.to_json(), sort_keys=True)
