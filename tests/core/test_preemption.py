"""Phase 5: preemption by QOS (gefion policy) and by attained service (las)."""

from __future__ import annotations

from gefion.core.topology import preset
from tests.core.builders import cycle, pending, reasons, running, started

SMALL = preset("synthetic:4x8:2")


def test_high_qos_evicts_the_cheapest_whole_set_with_grace() -> None:
    jobs = [
        running("old_gang", {"node00001": 8, "node00002": 8}, start=0, qos="scavenger"),
        running("young3", {"node00003": 8}, start=900, qos="scavenger"),
        running("young4", {"node00004": 8}, start=950, qos="scavenger"),
        pending("urgent", 16, submit=999, qos="high"),
    ]
    _, result = cycle(SMALL, jobs, 1000.0)
    assert sorted(p.job_id for p in result.preemptions) == ["young3", "young4"]
    assert {p.grace_s for p in result.preemptions} == {30}
    assert all(p.for_job == "urgent" and p.requeue for p in result.preemptions)
    v = result.verdict("urgent")
    assert v is not None and v.reason.value == "PREEMPTING" and v.planned_start_s == 1030.0
    assert set(result.planned["urgent"].as_dict()) == {"node00003", "node00004"}


def test_a_gang_is_evicted_whole_even_when_one_node_would_do() -> None:
    jobs = [
        running("gang", {"node00001": 8, "node00002": 8}, start=990, qos="scavenger"),
        running("n3", {"node00003": 8}, start=0, qos="normal"),
        running("n4", {"node00004": 8}, start=0, qos="normal"),
        pending("urgent", 8, qos="high"),
    ]
    _, result = cycle(SMALL, jobs, 1000.0)
    assert [p.job_id for p in result.preemptions] == ["gang"]


def test_normal_jobs_are_never_evicted() -> None:
    jobs = [running("n", {f"node0000{i}": 8 for i in range(1, 5)}, qos="normal"),
            pending("urgent", 8, qos="high")]
    _, result = cycle(SMALL, jobs, 10.0)
    assert result.preemptions == ()
    assert reasons(result)["urgent"] == "RESOURCES"


def test_normal_qos_may_not_preempt_scavenger() -> None:
    jobs = [running("s", {f"node0000{i}": 8 for i in range(1, 5)}, qos="scavenger"),
            pending("j", 8, qos="normal")]
    _, result = cycle(SMALL, jobs, 10.0)
    assert result.preemptions == ()


def test_one_victim_is_not_promised_to_two_preemptors() -> None:
    jobs = [running("s1", {"node00001": 8}, qos="scavenger"),
            running("n", {"node00002": 8, "node00003": 8, "node00004": 8}, qos="normal"),
            pending("u1", 8, submit=1, qos="high"), pending("u2", 8, submit=2, qos="high")]
    _, result = cycle(SMALL, jobs, 10.0)
    assert [(p.job_id, p.for_job) for p in result.preemptions] == [("s1", "u1")]
    assert reasons(result)["u2"] == "RESOURCES"


def test_las_orders_by_attained_service_and_preempts_more_served_jobs() -> None:
    hours = 3600.0
    jobs = [
        # Ran 8 GPUs × 10 h: well past the second threshold (16 GPU-hours).
        running("veteran", {f"node0000{i}": 8 for i in range(1, 5)}, start=0),
        pending("newcomer", 8, submit=10 * hours - 5),
    ]
    _, result = cycle(SMALL, jobs, 10 * hours, policy="las")
    assert [p.job_id for p in result.preemptions] == ["veteran"]


def test_las_prefers_the_less_served_job_over_the_older_one() -> None:
    jobs = [running("r", {"node00001": 8, "node00002": 8, "node00003": 8}, 10_000),
            pending("served", 8, submit=0, service=100_000.0),
            pending("fresh", 8, submit=50, service=0.0)]
    _, result = cycle(SMALL, jobs, 100.0, policy="las")
    assert started(result) == {"fresh": {"node00004": 8}}


def test_las_victims_requeue_even_when_their_qos_would_not() -> None:
    jobs = [running("veteran", {f"node0000{i}": 8 for i in range(1, 5)}, start=0,
                    qos="normal"),
            pending("newcomer", 8, submit=35_000)]
    _, result = cycle(SMALL, jobs, 36_000.0, policy="las")
    assert [(p.job_id, p.requeue) for p in result.preemptions] == [("veteran", True)]
