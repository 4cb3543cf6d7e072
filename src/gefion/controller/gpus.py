"""Which GPU indices a job gets on each node: the core decides how many, the body which."""

from __future__ import annotations

from collections.abc import Iterable

from gefion.core.errors import StateError

#: node name → GPU indices on that node
Allocation = tuple[tuple[str, tuple[int, ...]], ...]


class GpuMap:
    """GPU indices in use per node, from the allocations of running jobs."""

    def __init__(self, capacity: dict[str, int]) -> None:
        self.capacity = dict(capacity)
        self.used: dict[str, set[int]] = {n: set() for n in capacity}

    def take(self, allocation: Allocation) -> None:
        for node, idx in allocation:
            taken = self.used.setdefault(node, set())
            clash = taken.intersection(idx)
            if clash:
                raise StateError(f"GPUs {sorted(clash)} of {node} are allocated twice")
            taken.update(idx)

    def give(self, allocation: Allocation) -> None:
        for node, idx in allocation:
            self.used.get(node, set()).difference_update(idx)

    def assign(self, placement: Iterable[tuple[str, int]]) -> Allocation:
        """Lowest free indices for each ``(node, gpus)`` of a placement; taken at once."""
        out = []
        for node, count in placement:
            free = [g for g in range(self.capacity.get(node, 0))
                    if g not in self.used.get(node, set())]
            if len(free) < count:
                raise StateError(f"{node} has {len(free)} free GPUs, {count} asked")
            out.append((node, tuple(free[:count])))
        allocation = tuple(out)
        self.take(allocation)
        return allocation
