"""Choosing nodes for a job among the nodes that can take it.

One search, used for starting now and for planning later starts:

* a single-node job goes to the usable node with the *fewest* free GPUs (best fit), so small
  jobs pack into partly used nodes and whole nodes stay free for gangs; among equally free
  nodes, it goes to the unit with the fewest usable nodes (the most fragmented one);
* a gang (several nodes) goes into one scalable unit if any unit can hold it — the unit with
  the fewest usable nodes that still suffices (best fit, keeping big units whole for big
  gangs); otherwise it spans the fewest units possible: the largest units in full, then the
  best-fitting unit for the rest.

Ties break on the lowest index, so the same inputs always give the same placement. The
``first_fit`` variant takes the lowest-numbered usable nodes instead (no packing, no
topology beyond a required single unit): the placement most published simulators model.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def _best_fit(nodes: IntArray, free: IntArray, count: int) -> IntArray:
    """The ``count`` nodes of ``nodes`` with the fewest free GPUs, lowest index first."""
    order = np.lexsort((nodes, free[nodes]))
    return np.sort(nodes[order[:count]])


def _fullest_node(usable: IntArray, free: IntArray, node_units: IntArray,
                  unit_count: int) -> IntArray:
    """Best fit for one node: fewest free GPUs first; among equals, the unit with the
    fewest usable nodes, so that small jobs fill fragmented units and leave whole units to
    gangs; then the lowest index. The first row of lexsort((usable, per_unit, free))
    without sorting 12,500 nodes: the fullest nodes, then — only when they lie in more
    than one unit — one argmin of unit size and index."""
    fill = free[usable]
    cand: IntArray = usable[(fill == fill.min()).nonzero()[0]]  # ascending
    cand_units = node_units[cand]
    if len(cand) == 1 or cand_units.min() == cand_units.max():
        return cand[:1]
    per_unit = np.bincount(node_units[usable], minlength=unit_count)
    pick = int(np.argmin((per_unit[cand_units] << 32) | cand))
    return cand[pick:pick + 1]


def choose_nodes(
    usable: IntArray,
    free: IntArray,
    count: int,
    node_units: IntArray,
    unit_count: int,
    *,
    one_unit: bool = False,
    first_fit: bool = False,
) -> IntArray | None:
    """Pick ``count`` nodes from ``usable`` (node indices, ascending).

    ``free`` gives the free GPUs of every node (the packing key); ``node_units`` the unit
    index of every node. With ``one_unit`` the gang must fit in one unit, else ``None``.
    Returns node indices in ascending order, or ``None`` if ``usable`` is too small.
    """
    if len(usable) < count:
        return None
    if count == 1 and not first_fit:
        return _fullest_node(usable, free, node_units, unit_count)
    units = node_units[usable]
    if first_fit:  # the lowest-numbered nodes that will do (what most simulators model)
        if not one_unit:
            return usable[:count]
        per = np.bincount(units, minlength=unit_count)
        fitting = (per >= count).nonzero()[0]
        return usable[units == fitting[0]][:count] if len(fitting) else None
    per_unit = np.bincount(units, minlength=unit_count)
    fitting = (per_unit >= count).nonzero()[0]
    if len(fitting):
        # Best fit: the smallest unit that holds the whole gang (lowest index on ties).
        unit = int(fitting[np.argmin(per_unit[fitting])])
        return _best_fit(usable[units == unit], free, count)
    if one_unit:
        return None
    # Fewest units: take the largest units whole; the last one is the best fit for the rest.
    order = np.lexsort((np.arange(unit_count), -per_unit))
    chosen: list[IntArray] = []
    left = count
    taken: set[int] = set()
    for u in order:
        u = int(u)
        if per_unit[u] == 0:
            break
        # Could the remainder come from a single, smaller unit? Prefer that as the last one.
        rest = [int(v) for v in order if int(v) not in taken and per_unit[v] >= left]
        if rest:
            last = min(rest, key=lambda v: (int(per_unit[v]), v))
            chosen.append(_best_fit(usable[units == last], free, left))
            left = 0
            break
        chosen.append(usable[units == u])
        taken.add(u)
        left -= int(per_unit[u])
    if left > 0:
        return None
    return np.sort(np.concatenate(chosen))


def units_spanned(nodes: IntArray, node_units: IntArray) -> int:
    return len(np.unique(node_units[nodes]))
