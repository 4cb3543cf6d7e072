"""The witness that a plan matters (core.memo.Witness) stands while enough of its nodes are
untouched: a start or plan takes GPUs on its own nodes only, from its start on."""

from __future__ import annotations

from gefion.core.memo import Witness


def test_it_holds_while_untouched_nodes_are_enough() -> None:
    w = Witness(rank=5, end=100.0, need=2, nodes={1, 2, 3}, seen=0)
    taken: list[tuple[float, tuple[int, ...]]] = [(0.0, (7,))]  # elsewhere
    assert w.holds(taken)
    taken.append((50.0, (1,)))  # one of its nodes: two are left
    assert w.holds(taken)
    taken.append((0.0, (2, 9)))  # another: one is left, it needs two
    assert not w.holds(taken)


def test_a_plan_that_begins_after_its_time_limit_ends_does_not_touch_it() -> None:
    w = Witness(rank=1, end=100.0, need=1, nodes={4}, seen=0)
    assert w.holds([(100.0, (4,)), (250.0, (4,))])


def test_without_known_nodes_anything_in_its_window_ends_it() -> None:
    w = Witness(rank=1, end=100.0, need=1, nodes=None, seen=0)
    assert w.holds([(120.0, (0,))])
    assert not w.holds([(120.0, (0,)), (99.0, (3,))])


def test_it_reads_only_what_was_taken_since_it_last_looked() -> None:
    w = Witness(rank=1, end=100.0, need=1, nodes={1, 2}, seen=1)
    taken: list[tuple[float, tuple[int, ...]]] = [(0.0, (1, 2))]  # before it was found
    assert w.holds(taken)
    taken.append((0.0, (1,)))
    assert w.holds(taken) and w.nodes == {2}
