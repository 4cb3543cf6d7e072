"""The strict-order cycle kept between cycles (gefion.core.strict) decides exactly what
``run_cycle`` decides on the same jobs, cycle by cycle: the same starts on the same nodes
and the same barrier."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from gefion.core.builder import SnapshotBuilder, submit_key
from gefion.core.cycle import run_cycle
from gefion.core.freeindex import FreeIndex
from gefion.core.jobs import Job, JobSpec, JobState
from gefion.core.policies import get_policy
from gefion.core.strict import StrictQueue, strict_applies
from gefion.core.tenancy import DEFAULT_QOS, QOS, Project
from gefion.core.topology import Cluster, Node, NodeState, preset


def mixed_cluster() -> Cluster:
    """Three units of unequal size, nodes of 8 and 4 GPUs, two nodes out of service."""
    nodes = [Node(f"n{i:02d}", 4 if i % 5 == 0 else 8, f"su{1 + (i * 7) % 3}")
             for i in range(22)]
    cluster = Cluster("mixed", tuple(nodes), units=("su1", "su2", "su3"))
    return cluster.with_states({"n03": NodeState.DRAINED, "n11": NodeState.DOWN})


def drive(cluster: Cluster, placement: str, seed: int, steps: int = 250) -> int:
    """Random arrivals and ends; after each step, both cycles decide and must agree.
    Returns how many jobs started."""
    rng = random.Random(seed)
    policy = get_policy("fifo", placement=placement)
    builder = SnapshotBuilder(cluster)
    queue = StrictQueue(FreeIndex(cluster, first_fit=placement == "first-fit"))
    names = cluster.names
    waiting: dict[str, Job] = {}
    running: dict[str, Job] = {}
    started = 0
    sizes = [0, 1, 1, 2, 2, 3, 4, 4, 8, 8, 12, 16, 24, 32]
    for step in range(steps):
        now = float(step * 10)
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            job_id = f"j{rng.randrange(10_000)}-{step}"
            gpus = rng.choice(sizes)
            # equal submit times are common in traces: the natural id order breaks ties
            submit = now - rng.choice([0.0, 0.0, 5.0])
            job = Job(job_id, JobSpec(gpus, rng.randrange(60, 7200), "p"), submit)
            builder.put(job)
            waiting[job_id] = job
            shape = job.spec.shape(cluster.max_gpus_per_node)
            queue.add(submit_key(job), shape.nodes, shape.gpus_per_node)
        for job_id in rng.sample(sorted(running), k=min(len(running), rng.choice([0, 1, 2]))):
            job = running.pop(job_id)
            builder.remove(job_id)
            queue.release(tuple((cluster.index_of(n), len(g)) for n, g in job.allocation))
        result = run_cycle(builder.build(now), now, policy)
        starts, barrier = queue.cycle()
        expected = [(s.job_id, tuple((cluster.index_of(n), g) for n, g in s.placement.nodes))
                    for s in result.starts]
        assert starts == expected, f"step {step}"
        assert barrier == result.barrier, f"step {step}"
        for job_id, nodes in starts:
            run = replace(waiting.pop(job_id), state=JobState.RUNNING, start_s=now,
                          allocation=tuple((names[n], tuple(range(g))) for n, g in nodes))
            builder.put(run)
            running[job_id] = run
            started += 1
    return started


@pytest.mark.parametrize("placement", ["best-fit", "first-fit"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_kept_strict_cycle_decides_as_run_cycle(placement: str, seed: int) -> None:
    assert drive(mixed_cluster(), placement, seed) > 100


def test_ties_between_units_go_as_run_cycle_on_a_preset() -> None:
    # 48 nodes in two units of 32 and 16: equally full nodes in both units are common
    assert drive(preset("synthetic:48x8"), "best-fit", seed=7, steps=400) > 200


@pytest.mark.parametrize("placement", ["best-fit", "first-fit"])
def test_ties_among_many_units_go_as_run_cycle(placement: str) -> None:
    # 30 units of 2 nodes: equally full nodes in more units than a short scan covers
    assert drive(preset("synthetic:60x8:2"), placement, seed=5, steps=300) > 200


def test_a_job_that_can_never_be_laid_out_is_refused() -> None:
    queue = StrictQueue(FreeIndex(preset("synthetic:4x8")))
    with pytest.raises(ValueError, match="cannot be queued"):
        queue.add((0.0, 1, "a"), 1, 9)


def test_it_applies_only_where_run_cycle_would_decide_the_same() -> None:
    fifo = get_policy("fifo")
    plain = {"projects": {"p": Project("p")}, "qos": DEFAULT_QOS}
    assert strict_applies(fifo, **plain)
    assert not strict_applies(get_policy("fifo-backfill"), **plain)
    assert not strict_applies(get_policy("gefion"), **plain)
    assert not strict_applies(get_policy("las"), **plain)
    assert not strict_applies(fifo, **plain, reservations=1)
    assert not strict_applies(fifo, **plain, grants=True)
    assert not strict_applies(fifo, projects={"p": Project("p", sensitive=True)},
                              qos=DEFAULT_QOS)
    assert not strict_applies(fifo, projects={"p": Project("p", max_gpus=8)},
                              qos=DEFAULT_QOS)
    limited = {**DEFAULT_QOS, "short": QOS("short", max_time_limit_s=600)}
    assert not strict_applies(fifo, projects={}, qos=limited)
