"""A naive EASY-backfill scheduler, the baseline the benchmarks measure against.

What a straightforward implementation does: priority order by submit time, a full scan of
every node for every job, and the classic EASY rule — the first job that cannot start gets
a "shadow time" from the running jobs' expected ends, and a later job may start now only if
it ends before the shadow time or fits on the nodes left over at that time. No numpy, no
memoisation, no topology. It decides less than Gefion's cycle does (no reasons beyond the
first blocked job, no fair share, no reservations), so it is a generous baseline.
"""

from __future__ import annotations

from gefion.core.snapshot import Snapshot


def naive_easy_cycle(snapshot: Snapshot, now: float) -> list[tuple[str, list[int]]]:
    """Start decisions ``(job id, node indices)`` of one naive EASY cycle."""
    nodes = snapshot.cluster.nodes
    free = [n.gpus if n.state.schedulable else 0 for n in nodes]
    ends: list[tuple[float, int, int]] = []  # (expected end, node, gpus)
    for r in snapshot.running:
        for n, g in r.alloc:
            free[n] -= g
            ends.append((max(r.expected_end_s, now), n, g))
    ends.sort()
    starts: list[tuple[str, list[int]]] = []
    shadow: float | None = None
    spare_at_shadow: list[int] = []
    for job in sorted(snapshot.pending, key=lambda p: (p.submit_s, p.id)):
        if job.shape is None or job.held:
            continue
        need, per = job.shape.nodes, job.shape.gpus_per_node
        fit = [i for i, f in enumerate(free) if f >= per][:need]
        if len(fit) == need:
            limit = now + job.spec.time_limit_s
            if shadow is None or limit <= shadow or all(spare_at_shadow[i] >= per for i in fit):
                for i in fit:
                    free[i] -= per
                    if shadow is not None:
                        spare_at_shadow[i] -= per
                ends.append((limit, fit[0], 0))
                starts.append((job.id, fit))
                continue
        if shadow is None:  # the first blocked job: find when it could start
            future = list(free)
            for t, n, g in ends:
                future[n] += g
                if sum(1 for f in future if f >= per) >= need:
                    shadow = t
                    break
            shadow = shadow if shadow is not None else float("inf")
            taken = [i for i, f in enumerate(future) if f >= per][:need]
            spare_at_shadow = list(future)
            for i in taken:
                spare_at_shadow[i] -= per
    return starts
