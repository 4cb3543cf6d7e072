"""The public traces in ../shared/traces, read for real: counts, order, selections."""

from __future__ import annotations

import pytest

from gefion.core.errors import InputError
from gefion.twin.traces import Trace, load_trace

ITP_PER_CLUSTER = {
    "cluster01": 1595, "cluster02": 5778, "cluster03": 3011, "cluster04": 15802,
    "cluster05": 3629, "cluster06": 2396, "cluster07": 12699, "cluster08": 13047,
    "cluster09": 11134, "cluster10": 260,
}


def assert_canonical(trace: Trace) -> None:
    """Sorted by (submit_s, job_id), first submit 0, unique ids, sane values."""
    keys = [(j.submit_s, j.job_id) for j in trace.jobs]
    assert keys == sorted(keys)
    assert trace.jobs[0].submit_s == 0.0
    assert len({j.job_id for j in trace.jobs}) == len(trace)
    assert all(j.duration_s >= 0 and j.gpus >= 1 for j in trace.jobs)


@pytest.fixture(scope="module")
def itp() -> Trace:
    return load_trace("itp-elasticflow")


@pytest.fixture(scope="module")
def philly() -> Trace:
    return load_trace("philly-pollux")


def test_itp_merged_has_all_69351_jobs(itp: Trace) -> None:
    assert len(itp) == 69_351
    assert_canonical(itp)
    assert itp.origin is None
    assert itp.shift_s == 1999.0  # the first submit on the shared axis (cluster07)
    assert round(itp.gpu_seconds / 3600) == 1_632_720  # the README's GPU-hours
    per_project: dict[str, int] = {}
    for job in itp.jobs:
        per_project[job.project] = per_project.get(job.project, 0) + 1
    assert per_project == ITP_PER_CLUSTER


def test_itp_one_cluster_has_no_project() -> None:
    trace = load_trace("itp-elasticflow/cluster03")
    assert len(trace) == 3011
    assert_canonical(trace)
    assert {j.project for j in trace.jobs} == {""}
    assert trace.cluster is not None and trace.cluster.gpus == 512
    assert trace.jobs[0].job_id == "0bc6e292-b9b4-36d3-61bf-fb714fe2f053"


def test_itp_unknown_cluster_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="cluster10") as err:
        load_trace("itp-elasticflow/cluster11")
    assert err.value.field == "trace"


def test_philly_all_jobs_sorted(philly: Trace) -> None:
    assert len(philly) == 82_247
    assert_canonical(philly)
    assert philly.origin == "2017-09-04 10:30:41"
    assert len({j.project for j in philly.jobs}) == 15
    # philly-<n> is data row n, i.e. line n + 1 of the file
    assert philly.jobs[0].job_id == "philly-031567"


def test_philly_week_with_1_2_4_8_gpus_has_6360_jobs() -> None:
    week = load_trace("philly-pollux", from_time="2017-11-06 00:00",
                      to_time="2017-11-13 00:00", gpus_in={1, 2, 4, 8})
    assert len(week) == 6360
    assert_canonical(week)
    assert {j.gpus for j in week.jobs} <= {1, 2, 4, 8}
    assert isinstance(week.origin, str) and week.origin.startswith("2017-11-06")
    assert max(j.submit_s for j in week.jobs) < 7 * 86400
    assert dict(week.dropped)["GPU count not selected"] == 289


def test_philly_window_is_half_open() -> None:
    # 2017-11-08 07:33:10 is the submit time on the last line of the file
    hits = load_trace("philly-pollux", from_time="2017-11-08 07:33:10",
                      to_time="2017-11-08 07:33:11")
    assert hits.origin == "2017-11-08 07:33:10"
    assert all(j.submit_s == 0 for j in hits.jobs)
    assert "philly-082247" in {j.job_id for j in hits.jobs}
    empty = load_trace("philly-pollux", from_time="2017-11-08 07:33:11",
                       to_time="2017-11-08 07:33:11")
    assert len(empty) == 0


def test_philly_one_vc() -> None:
    vc = load_trace("philly-pollux/ee9e8c")
    assert len(vc) == 1511
    assert {j.project for j in vc.jobs} == {""}
    with pytest.raises(InputError, match="6214e9"):
        load_trace("philly-pollux/nope")


def test_calendar_window_on_a_relative_trace_is_refused() -> None:
    with pytest.raises(InputError) as err:
        load_trace("itp-elasticflow/cluster10", from_time="2021-03-05")
    assert err.value.field == "from_time"


def test_alibaba_pods() -> None:
    pods = load_trace("alibaba-openb-2023")
    assert_canonical(pods)
    dropped = dict(pods.dropped)
    assert dropped == {"never scheduled (Pending)": 897, "0 GPUs (CPU-only)": 1052}
    assert len(pods) == 8152 - 897 - 1052 == 6203
    assert {j.qos for j in pods.jobs} <= {"LS", "BE", "Burstable", "Guaranteed"}
    first = pods.jobs[0]
    assert (first.job_id, first.gpus, first.duration_s) == ("openb-pod-0000", 1, 12537496.0)
    whole = load_trace("alibaba-openb-2023", fractional="skip")
    assert len(whole) == 6203 - 2573


def test_alibaba_multigpu50_has_no_times() -> None:
    with pytest.raises(InputError, match="cannot be replayed"):
        load_trace("alibaba-openb-2023/multigpu50")


def test_unknown_option_is_named() -> None:
    with pytest.raises(InputError) as err:
        load_trace("itp-elasticflow/cluster10", fractional="skip")
    assert err.value.field == "fractional"
