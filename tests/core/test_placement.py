"""Topology-aware placement: gangs in as few scalable units as possible, small jobs packed."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gefion.core.placement import choose_nodes
from gefion.core.topology import preset
from tests.core.builders import cycle, pending, running, started

GEFION = preset("gefion")


def units_of(nodes: dict[str, int]) -> set[str]:
    return {GEFION.nodes[GEFION.index_of(n)].su for n in nodes}


def test_256_gpu_job_lands_on_32_nodes_of_one_unit() -> None:
    _, result = cycle(GEFION, [pending("big", 256)])
    nodes = started(result)["big"]
    assert len(nodes) == 32 and set(nodes.values()) == {8}
    assert len(units_of(nodes)) == 1


def test_264_gpu_job_spans_exactly_two_units() -> None:
    _, result = cycle(GEFION, [pending("big", 264)])
    nodes = started(result)["big"]
    assert len(nodes) == 33
    assert len(units_of(nodes)) == 2


def test_4_gpu_job_packs_next_to_another_4_gpu_job() -> None:
    _, result = cycle(GEFION, [running("r", {"dgx100": 4}), pending("small", 4)])
    assert started(result)["small"] == {"dgx100": 4}


def test_two_4_gpu_jobs_in_one_cycle_share_a_node() -> None:
    _, result = cycle(GEFION, [pending("a", 4, submit=0), pending("b", 4, submit=1)])
    s = started(result)
    assert s["a"] == s["b"] and len(s["a"]) == 1


def test_small_jobs_go_to_the_fragmented_unit_and_keep_whole_units_free() -> None:
    # su6 is partly used; a new 8-GPU job should go there, not open a whole unit.
    _, result = cycle(GEFION, [running("r", {"dgx161": 8}), pending("one", 8)])
    assert units_of(started(result)["one"]) == {"su6"}


def test_gang_prefers_the_smallest_unit_that_holds_it() -> None:
    # su1 has 20 free nodes, others 32 (su6: 31). A 16-node gang fits su1 best.
    busy = {f"dgx{i:03d}": 8 for i in range(1, 13)}
    _, result = cycle(GEFION, [running("r", busy), pending("gang", 128)])
    nodes = started(result)["gang"]
    assert units_of(nodes) == {"su1"}
    assert not set(nodes) & set(busy)


def test_required_same_unit_waits_with_reason_topology() -> None:
    # Every unit is half full: 96 free nodes in total, but no unit has 32 free.
    busy = {n.name: 8 for i, n in enumerate(GEFION.nodes) if i % 2 == 0}
    jobs = [running("r", busy), pending("strict", 256, same_su="required"),
            pending("loose", 256, submit=1)]
    _, result = cycle(GEFION, jobs)
    verdict = result.verdict("strict")
    assert verdict is not None and verdict.reason.value == "TOPOLOGY"
    assert "loose" in started(result)


def test_first_fit_takes_the_lowest_numbered_nodes_instead_of_packing() -> None:
    jobs = [running("r", {"dgx100": 4}), pending("small", 4)]
    _, best = cycle(GEFION, jobs)
    _, first = cycle(GEFION, jobs, params={"placement": "first-fit"})
    assert started(best)["small"] == {"dgx100": 4}
    assert started(first)["small"] == {"dgx001": 4}


def test_unknown_placement_is_refused() -> None:
    import pytest

    from gefion.core.errors import PolicyError
    from gefion.core.policies import get_policy

    with pytest.raises(PolicyError, match="placement"):
        get_policy("fifo", placement="random")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 5), st.booleans()), min_size=1,
                max_size=60))
def test_a_one_node_job_takes_the_fullest_node_then_the_most_fragmented_unit(
        nodes: list[tuple[int, int, bool]]) -> None:
    # The rule as a sort: fewest free GPUs, then the unit with fewest usable nodes, then
    # the lowest index; choose_nodes must pick that node without sorting them all.
    free = np.array([f for f, _, _ in nodes], dtype=np.int64)
    units = np.array([u for _, u, _ in nodes], dtype=np.int64)
    usable = np.array([i for i, (_, _, ok) in enumerate(nodes) if ok], dtype=np.int64)
    picked = choose_nodes(usable, free, 1, units, 6)
    if not len(usable):
        assert picked is None
        return
    per_unit = np.bincount(units[usable], minlength=6)
    expected = min(usable.tolist(), key=lambda n: (free[n], per_unit[units[n]], n))
    assert picked is not None and picked.tolist() == [expected]
