"""The strict-order cycle, kept between cycles: the core's cycle for strict FIFO over plain
jobs, at a cost that follows what changed.

:func:`gefion.core.cycle.run_cycle` takes a snapshot and builds its working state anew at
every call: right for a controller that runs a cycle a second, and for every policy and
feature. A replay of a week of jobs runs it thousands of times, though, and under strict
FIFO each of those cycles decides very little: start the jobs at the head of the queue that
fit, and name the first that does not (the *barrier*: nobody passes it). This module keeps
that working state — the queue in snapshot order and the free GPUs per node, indexed by
unit and free count — across cycles, updated by the body as jobs arrive, start and end.

It decides exactly what ``run_cycle`` decides, under these conditions (checked by
:func:`strict_applies`; a body uses ``run_cycle`` otherwise):

* the policy is :class:`~gefion.core.policies.fifo.Fifo` without backfill (priority =
  snapshot order; nothing is planned around; no preemption);
* every pending job is plain: a valid shape, not held, no dependency, no reservation, no
  array limit, no required single unit; no advance reservation exists; no project is
  sensitive or has a GPU limit, no QOS has limits, no project's grant is spent.

Under those conditions ``run_cycle`` starts, in snapshot order, each job for which
:func:`~gefion.core.placement.choose_nodes` finds nodes among the up nodes with enough GPUs
free, and stops at the first for which it finds none (reason ``RESOURCES`` or
``NODES_DOWN``, and that job is the cycle's ``barrier``). :meth:`StrictQueue.cycle` does
the same: a one-node job is placed by indexed look-ups that give ``choose_nodes``'s answer
(best fit: the fewest free GPUs, then the unit with the fewest usable nodes, then the lowest
index; first fit: the lowest index), a gang by ``choose_nodes`` itself. It returns starts
and the barrier only: the reasons and ETAs of the jobs left waiting are the general cycle's
business (a body that shows them calls ``run_cycle``). A test holds the two to the same
decisions, cycle by cycle, on random workloads.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from gefion.core.freeindex import FreeIndex
from gefion.core.policies.base import PLACEMENTS, Policy
from gefion.core.policies.fifo import Fifo
from gefion.core.tenancy import QOS, Project

#: A start: the job and its nodes as ``(node index, GPUs)``, ascending by node.
StrictStart = tuple[str, tuple[tuple[int, int], ...]]


def plain_body(*, projects: Mapping[str, Project], qos: Mapping[str, QOS],
               reservations: int = 0, grants: bool = False) -> bool:
    """Whether a body's setting lets a plain job's start now depend on nothing but the
    free GPUs: no advance reservations (``reservations`` is their number), no GPU-hour
    grants that can run out (``grants``), no sensitive, metered or GPU-limited project and
    no QOS with limits. Then a cycle whose only pending job is plain starts it where
    :class:`~gefion.core.freeindex.FreeIndex` places it, under any policy, if it fits."""
    return (reservations == 0 and not grants
            and not any(p.sensitive or p.metered or p.max_gpus is not None
                        for p in projects.values())
            and not any(q.max_time_limit_s is not None or q.max_gpus_per_user is not None
                        for q in qos.values()))


def strict_policy(policy: Policy) -> bool:
    """Whether ``policy`` is strict FIFO in a placement :class:`FreeIndex` answers for."""
    return (isinstance(policy, Fifo) and not policy.backfill and not policy.preemption
            and policy.placement in PLACEMENTS)


def strict_applies(policy: Policy, *, projects: Mapping[str, Project],
                   qos: Mapping[str, QOS], reservations: int = 0,
                   grants: bool = False) -> bool:
    """Whether :class:`StrictQueue` decides as ``run_cycle`` for ``policy`` in a body of
    this setting (:func:`strict_policy` and :func:`plain_body`). The jobs must be plain
    too: the body queues only plain ones (see the module docstring)."""
    return strict_policy(policy) and plain_body(projects=projects, qos=qos,
                                                reservations=reservations, grants=grants)


class StrictQueue:
    """Pending jobs in snapshot order and the free GPUs of every up node, between cycles.

    A body calls :meth:`add` when a job becomes pending, :meth:`release` when a running
    job's GPUs come back, and :meth:`cycle` to decide; the starts it returns have already
    taken their GPUs in ``free`` (the body's index of free GPUs, its placement the
    policy's). Node indices are the cluster's.
    """

    def __init__(self, free: FreeIndex) -> None:
        self.free = free
        self._top = free.top
        self._keys: list[tuple[float, int, str]] = []
        self._shapes: dict[str, tuple[int, int]] = {}
        self._head = 0

    # -- changes ------------------------------------------------------------------------
    def add(self, key: tuple[float, int, str], nodes: int, gpus_per_node: int) -> None:
        """Job ``key[2]`` is pending, with snapshot-order key ``key``
        (:func:`gefion.core.builder.submit_key`) and shape ``nodes`` × ``gpus_per_node``,
        which must fit some up node's size (the body drops jobs that never can)."""
        if not 0 <= gpus_per_node <= self._top or nodes < 1:
            raise ValueError(f"job {key[2]}: {nodes} × {gpus_per_node} GPUs cannot be queued")
        keys = self._keys
        if not keys or key > keys[-1]:
            keys.append(key)
        else:
            bisect.insort(keys, key, lo=self._head)
        self._shapes[key[2]] = (nodes, gpus_per_node)

    def release(self, nodes: tuple[tuple[int, int], ...]) -> None:
        """A running job's GPUs, ``(node, GPUs)`` pairs, are free again."""
        for n, g in nodes:
            self.free.change(n, g)

    # -- the cycle ----------------------------------------------------------------------
    def cycle(self) -> tuple[list[StrictStart], tuple[str, int, int] | None]:
        """Start jobs from the head of the queue while they fit; the starts (their GPUs
        taken) and the barrier ``(job id, nodes, GPUs per node)`` that stopped the cycle,
        if any — what ``run_cycle`` returns as ``starts`` and ``barrier``."""
        starts: list[StrictStart] = []
        keys, shapes = self._keys, self._shapes
        while self._head < len(keys):
            job_id = keys[self._head][2]
            count, g = shapes[job_id]
            nodes = self.free.place(count, g)
            if nodes is None:
                self._compact()
                return starts, (job_id, count, g)
            for n in nodes:
                self.free.change(n, -g)
            del shapes[job_id]
            self._head += 1
            starts.append((job_id, tuple((n, g) for n in nodes)))
        self._compact()
        return starts, None

    def _compact(self) -> None:
        if self._head > 1024 and self._head * 2 > len(self._keys):
            del self._keys[:self._head]
            self._head = 0
