"""The workload model: determinism, load factor, windows, time limits, synthetic jobs."""

from __future__ import annotations

import numpy as np
import pytest

from gefion.core.errors import InputError
from gefion.twin.traces import Trace, TraceJob, load_trace
from gefion.twin.workload import (
    ROUND_LIMITS_S,
    ProjectModel,
    TimeLimitModel,
    apply_workload_model,
    generate,
)


@pytest.fixture(scope="module")
def cluster03() -> Trace:
    return load_trace("itp-elasticflow/cluster03")


def small_trace() -> Trace:
    jobs = (TraceJob("a", 0.0, 100.0, 1), TraceJob("b", 10.0, 5000.0, 8, project="x"),
            TraceJob("c", 30.0, 0.0, 2, time_limit_s=60),
            TraceJob("d", 70.0, 90000.0, 16, user="zoe"))
    return Trace("small", "hand-made", jobs, origin="2024-01-01 00:00:00")


def test_same_seed_same_workload_other_seed_other(cluster03: Trace) -> None:
    one = apply_workload_model(cluster03, seed=42)
    assert one == apply_workload_model(cluster03, seed=42)
    other = apply_workload_model(cluster03, seed=43)
    assert [j.time_limit_s for j in one.jobs] != [j.time_limit_s for j in other.jobs]
    assert [j.project for j in one.jobs] != [j.project for j in other.jobs]
    assert generate(500, seed=1) == generate(500, seed=1)
    assert generate(500, seed=1).jobs != generate(500, seed=2).jobs


def test_every_job_gets_a_project_user_and_limit(cluster03: Trace) -> None:
    model = ProjectModel(n_projects=5, users_per_project=3)
    out = apply_workload_model(cluster03, seed=0, projects=model)
    assert len(out) == len(cluster03)
    assert {j.project for j in out.jobs} == {f"proj0{k}" for k in range(1, 6)}
    assert all(j.user.startswith(j.project + "-u") for j in out.jobs)
    assert all(isinstance(j.time_limit_s, int) and j.time_limit_s >= 1 for j in out.jobs)
    counts = np.bincount([int(j.project[-1]) for j in out.jobs])
    assert counts[1] > counts[2] > counts[5]  # Zipf: rank 1 is the largest


def test_limits_never_below_runtime_by_default(cluster03: Trace) -> None:
    out = apply_workload_model(cluster03, seed=3)
    assert all(j.time_limit_s is not None and j.time_limit_s >= j.duration_s for j in out.jobs)
    round_values = set(ROUND_LIMITS_S)
    on_grid = sum(j.time_limit_s in round_values for j in out.jobs)
    assert on_grid / len(out) > 0.95  # the rest are beyond 28 days: whole weeks


def test_underestimators_get_killed(cluster03: Trace) -> None:
    out = apply_workload_model(cluster03, seed=3, time_limits=TimeLimitModel(underestimate=0.2))
    short = sum(j.time_limit_s is not None and j.time_limit_s < j.duration_s for j in out.jobs)
    assert 0.15 < short / len(out) < 0.25


def test_trace_values_are_kept() -> None:
    out = apply_workload_model(small_trace(), seed=5)
    by_id = {j.job_id: j for j in out.jobs}
    assert by_id["b"].project == "x" and by_id["b"].user.startswith("x-u")
    assert by_id["c"].time_limit_s == 60
    assert by_id["d"].user == "zoe"
    redrawn = apply_workload_model(small_trace(), seed=5,
                                   time_limits=TimeLimitModel(keep_trace_limits=False))
    assert {j.job_id: j for j in redrawn.jobs}["c"].time_limit_s == 300


def test_load_two_halves_inter_arrivals(cluster03: Trace) -> None:
    base = apply_workload_model(cluster03, seed=9)
    fast = apply_workload_model(cluster03, seed=9, load=2.0)
    gaps = np.diff([j.submit_s for j in base.jobs])
    assert np.allclose(np.diff([j.submit_s for j in fast.jobs]), gaps / 2)
    assert [j.time_limit_s for j in fast.jobs] == [j.time_limit_s for j in base.jobs]
    with pytest.raises(InputError) as err:
        apply_workload_model(cluster03, seed=9, load=0)
    assert err.value.field == "load"


def test_window_shifts_and_keeps_attributes() -> None:
    whole = apply_workload_model(small_trace(), seed=1)
    part = apply_workload_model(small_trace(), seed=1, from_s=10, to_s=70)
    assert [j.job_id for j in part.jobs] == ["b", "c"]
    assert [j.submit_s for j in part.jobs] == [0.0, 20.0]
    assert part.origin == "2024-01-01 00:00:10"
    assert part.shift_s == 10.0
    same = {j.job_id: (j.project, j.user, j.time_limit_s) for j in whole.jobs}
    assert all(same[j.job_id] == (j.project, j.user, j.time_limit_s) for j in part.jobs)


def test_generate_shape() -> None:
    trace = generate(20_000, seed=11, offered_gpus=500.0, max_gpus=256)
    jobs = trace.jobs
    assert len(jobs) == 20_000 and jobs[0].submit_s == 0.0
    keys = [(j.submit_s, j.job_id) for j in jobs]
    assert keys == sorted(keys)
    gpus = np.array([j.gpus for j in jobs])
    duration = np.array([j.duration_s for j in jobs])
    assert set(gpus.tolist()) <= {1, 2, 4, 8, 16, 32, 64, 128, 256}
    assert 0.55 < np.mean(gpus == 1) < 0.65
    assert np.percentile(duration, 99) > 30 * np.median(duration)  # heavy tail
    offered = float(np.dot(gpus, duration)) / trace.span_s
    assert offered == pytest.approx(500.0)
    assert all(j.time_limit_s is not None and j.time_limit_s >= j.duration_s for j in jobs)


def test_generate_rejects_nonsense() -> None:
    with pytest.raises(InputError):
        generate(-1, seed=0)
    with pytest.raises(InputError):
        generate(10, seed=-1)
    with pytest.raises(InputError):
        generate(10, seed=0, max_gpus=0)
    assert len(generate(0, seed=0)) == 0
    assert generate(1, seed=0).jobs[0].submit_s == 0.0


@pytest.mark.slow
def test_generate_a_million_jobs() -> None:
    trace = generate(1_000_000, seed=2)
    assert len(trace) == 1_000_000
    assert trace.jobs[-1].job_id == "g999999"
