"""A cycle's priority order, and the cycles that make no plan, decided from free GPUs.

:func:`priority_order` is phase 2 of the cycle — the policy's table and the pending jobs in
its order — made once per snapshot, policy and time, so that a body that looks at the order
before it calls :func:`gefion.core.cycle.run_cycle` costs the cycle nothing.

:func:`plain_prefix` decides, from a body's index of free GPUs, a cycle that
``run_cycle(..., etas=False)`` would end without making a plan. It applies when

* the setting is plain (:func:`gefion.core.strict.plain_body`), the policy backfills, and
  no running job may be evicted (so the cycle preempts nothing and nothing reads plans);
* every pending job is plain (a valid shape, not held, no dependency, reservation or array
  limit) and may use any up nodes (no single unit required).

Then ``run_cycle`` starts jobs in priority order while each fits: no plan exists before the
first job that waits, so it starts where :func:`~gefion.core.placement.choose_nodes` places
it among the up nodes with its GPUs free — :meth:`FreeIndex.place`. At the first job that
does not fit, it plans only if some job behind could start now around the plans so far
(``_plan_matters``; there are none yet), that is if some job behind finds enough up nodes
with its GPUs free. If none does, the cycle is hopeless: capacity only shrinks within a
cycle, so it starts nothing more, and the starts are the prefix. Otherwise the cycle plans,
and :func:`plain_prefix` returns None: the body runs the cycle. A test holds the two to the
same starts, cycle by cycle, on loaded replays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gefion.core.columns import PendingColumns
from gefion.core.freeindex import FreeIndex
from gefion.core.policies.base import Policy
from gefion.core.priority import PriorityTable
from gefion.core.snapshot import Snapshot


def priority_order(policy: Policy, snapshot: Snapshot, now: float
                   ) -> tuple[PriorityTable, list[int]]:
    """``policy``'s priority table of ``snapshot`` at ``now``, and the snapshot indices of
    the pending jobs in priority order (highest first, snapshot order on ties); made once
    per snapshot, policy and time."""
    cached = snapshot.__dict__.get("_priority_order")
    if cached is not None and cached[0] is policy and cached[1] == now:
        return cached[2], cached[3]
    table = policy.priorities(snapshot, now)
    n = len(snapshot.pending)
    order: list[int] = list(range(n)) if table.in_snapshot_order else \
        np.lexsort((np.arange(n), -table.priority)).tolist()
    object.__setattr__(snapshot, "_priority_order", (policy, now, table, order))
    return table, order


def share_order(pending_only: Snapshot, snapshot: Snapshot) -> None:
    """Let ``snapshot`` use the priority order already made for ``pending_only``: the same
    moment without its running jobs, which no policy's priorities read
    (:meth:`~gefion.core.builder.SnapshotBuilder.build_pending`)."""
    cached = pending_only.__dict__.get("_priority_order")
    if cached is not None and cached[1] == snapshot.as_of_s and \
            pending_only.pending is snapshot.pending:  # the same queue, index for index
        object.__setattr__(snapshot, "_priority_order", cached)


def plain_prefix(order: Sequence[int], cols: PendingColumns,
                 free: FreeIndex) -> list[tuple[int, list[int]]] | None:
    """The starts of a cycle that makes no plan (see the module), as (snapshot index, node
    indices) in priority order, each on its job's GPUs per node — their GPUs already taken
    in ``free`` (the body's index of free GPUs now); None if the cycle would plan or a
    pending job is not plain and free to use any up nodes, ``free`` left as it was.
    ``order``: snapshot indices in priority order; ``cols``: the pending jobs' columns.
    The body answers for the rest of the conditions (plain setting, backfill, nothing
    evictable)."""
    # count_nonzero: a third of the cost of .all() / .any() on arrays this small
    if np.count_nonzero(cols.plain) != len(cols.ids) or np.count_nonzero(cols.one_unit):
        return None
    nodes, gpus_per_node = cols.nodes, cols.gpus_per_node
    starts: list[tuple[int, list[int]]] = []
    waits = len(order)
    for k, i in enumerate(order):
        g = int(gpus_per_node[i])
        placed = free.place(int(nodes[i]), g)
        if placed is None:
            waits = k
            break
        for n in placed:
            free.change(n, -g)
        starts.append((i, placed))
    behind = np.asarray(order[waits + 1:], dtype=np.int64)
    if len(behind) and np.count_nonzero(free.count_ge_table()[
            np.minimum(gpus_per_node[behind], free.top + 1)] >= nodes[behind]):
        for i, placed in starts:  # it plans: give the GPUs back
            g = int(gpus_per_node[i])
            for n in placed:
                free.change(n, g)
        return None
    return starts
