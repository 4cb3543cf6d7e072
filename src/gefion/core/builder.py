"""The one snapshot builder, kept by a body between cycles so that a cycle costs what changed.

A body tells the builder of every change to its jobs (``put`` a new or replaced record,
``remove`` one it forgets) and asks it for a snapshot at the start of each cycle
(``build``). The builder keeps, between cycles, everything it derives from job records:

* pending jobs in snapshot order (submit time, then id in natural order), with their
  column rows in slot-indexed numpy tables, so a snapshot's columns are a gather, not a
  rebuild;
* running jobs in the order they were put, with their GPU holds (node, GPUs, expected end)
  and their columns (start, GPUs, attained service, preemptible) in slot tables;
* every job's last known state and exit code, for dependencies.

A snapshot built here is immutable and stays valid after later changes: its tuples, columns
and tables are copies or gathers. :func:`gefion.core.snapshot.build_snapshot` is the
one-shot form (a fresh builder, every job put, one build).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Mapping
from functools import partial
from types import MappingProxyType

import numpy as np

from gefion.core.columns import Interned, PendingColumns, RunningColumns
from gefion.core.grants import grant_balances
from gefion.core.jobs import Job, JobState, TopologyConstraint
from gefion.core.profile import FloatArray, tau_column
from gefion.core.reservations import Reservation
from gefion.core.snapshot import (
    BaseView,
    PendingJob,
    RunningJob,
    SharedBase,
    Snapshot,
    resolve_shape,
)
from gefion.core.tenancy import DEFAULT_QOS, QOS, Grant, Project, qos_named
from gefion.core.topology import Cluster
from gefion.core.usage import FairShare, UsageLedger, fairshare

_INTS = 7  # gpus, gpus_per_node, nodes, limit_s, project, pair, qos
_LOG_KEEP = 4096  # runs dropped whose nodes the builder remembers, at most


def submit_key(job: Job) -> tuple[float, int, str]:
    """Snapshot order of pending jobs: submit time, then id in natural order (``"9"`` before
    ``"10"``: bodies that number their jobs get them in number order)."""
    return (job.submit_s, len(job.id), job.id)


class _Slots:
    """Rows of a few numpy tables addressed by slot, grown by doubling, slots reused."""

    def __init__(self, floats: int, ints: int) -> None:
        self.f = np.zeros((16, floats))
        self.i = np.zeros((16, ints), dtype=np.int64)
        self.free: list[int] = []
        self.used = 0

    def take(self) -> int:
        if self.free:
            return self.free.pop()
        if self.used == len(self.f):
            self.f = np.concatenate([self.f, np.zeros_like(self.f)])
            self.i = np.concatenate([self.i, np.zeros_like(self.i)])
        self.used += 1
        return self.used - 1

    def give(self, slot: int) -> None:
        self.free.append(slot)


class SnapshotBuilder:
    """Derived scheduling state of one body's active jobs, updated by changes."""

    def __init__(self, cluster: Cluster, *, qos: Mapping[str, QOS] | None = None) -> None:
        self._cluster = cluster
        self._qos: dict[str, QOS] = dict(qos) if qos is not None else dict(DEFAULT_QOS)
        #: what snapshots see of it: read-only, the same object until the table changes
        self._qos_view: Mapping[str, QOS] = MappingProxyType(self._qos)
        #: (QOS, spec's preemptible, spec's grace) -> (preemptible, grace, requeue) of a run
        self._evictions: dict[tuple[str, bool | None, int | None],
                              tuple[bool, int, bool]] = {}
        self._jobs: dict[str, Job] = {}
        self._states: dict[str, JobState] = {}
        self._exits: dict[str, int | None] = {}
        self._interned = Interned()
        # pending, in snapshot order
        self._pkeys: list[tuple[float, int, str]] = []
        self._pjobs: list[PendingJob] = []
        self._pids: list[str] = []
        self._pslots: list[int] = []
        self._pslot_of: dict[str, int] = {}
        self._ptab = _Slots(2, _INTS)  # floats: submit_s, service_gpu_s; + flags below
        self._flags = np.zeros((16, 4), dtype=np.bool_)  # plain, held, deps, one unit
        self._deps: set[str] = set()  # pending jobs with dependencies
        self._pcache: tuple[tuple[PendingJob, ...], PendingColumns] | None = None
        # running, in the order put
        self._running: dict[str, RunningJob] = {}
        self._rslot_of: dict[str, int] = {}
        self._rtab = _Slots(3, 1)  # floats: start_s, expected_end_s, service; ints: gpus
        self._rflag = np.zeros(16, dtype=np.bool_)  # preemptible
        self._preemptible = 0  # running jobs that may be preempted
        self._released = 0  # runs dropped (ended, replaced) since the builder was made
        # the nodes of the last runs dropped (the first is run number _log_from), for plans
        # carried across them (see carry.py)
        self._release_log: list[tuple[int, ...]] = []
        self._log_from = 0
        self._hslots: dict[str, list[int]] = {}
        self._htab = _Slots(0, 3)  # ints: node, gpus, running slot
        self._hlive = np.zeros(16, dtype=np.bool_)
        # Rows of the slot tables written since they were last read (slot -> row; a hold
        # None: dropped): written when a cycle first asks for the columns, not at every
        # start and end (most cycles never ask).
        self._rwrites: dict[int, tuple[float, float, float, int, bool]] = {}
        self._hwrites: dict[int, tuple[int, int, int] | None] = {}
        self._rcache: RunningColumns | None = None
        self._rtuple: tuple[RunningJob, ...] | None = None
        #: running records put (a Job) or dropped (None) since the last full build, in the
        #: order of their last change: applied when a snapshot needs the running jobs
        #: (:meth:`_flush`), so that a run that starts and ends between two such builds
        #: costs nothing here
        self._later: dict[str, Job | None] = {}
        self._init_base(cluster)

    def _init_base(self, cluster: Cluster) -> None:
        # The availability base of the running jobs, per node: GPUs held, releases (expected
        # end, GPUs) in order, and tau[g, n] — when node n first has g GPUs free, -inf for
        # "now" — kept column by column as jobs start and end (see profile.Availability).
        n = len(cluster.nodes)
        self._cap = np.asarray(cluster.capacity, dtype=np.int64)
        self._held: list[int] = [0] * n  # a list: read only for the nodes tau refreshes
        self._node_rel: list[list[tuple[float, int]]] = [[] for _ in range(n)]
        self._tau = np.full((cluster.max_gpus_per_node + 1, n), np.inf)
        self._tau[:, :] = np.where(np.arange(cluster.max_gpus_per_node + 1)[:, None]
                                   <= self._cap[None, :], -np.inf, np.inf)
        self._dirty: set[int] = set()
        self._set_free(cluster)
        self._generation = [0]  # bumped by every change to _held or _tau (see _base)
        self._ends: list[tuple[float, str]] = []  # (expected end, job): a lazy min-heap

    def _set_free(self, cluster: Cluster) -> None:
        """Free GPUs per node (0 where the node is not up) and how many nodes have each
        count, kept up to date as jobs start and end: a cycle's count of nodes that could
        take a job is then a sum of a few numbers, not a pass over every node."""
        up = cluster.arrays.up
        self._up = up
        self._free = np.where(up, self._cap - np.asarray(self._held, dtype=np.int64), 0)
        top = cluster.max_gpus_per_node
        self._free_hist: list[int] = np.bincount(np.clip(self._free, -1, top) + 1,
                                                 minlength=top + 2).tolist()
        # the same as lists, read on every change (a look-up in a list is cheaper)
        self._up_list: list[bool] = up.tolist()
        self._free_list: list[int] = self._free.tolist()

    def _free_change(self, node: int, gpus: int) -> None:
        """``gpus`` more (or fewer) GPUs free on ``node``, if it is up."""
        if self._up_list[node]:
            free, hist = self._free_list, self._free_hist
            top = len(hist) - 2
            old = free[node]
            free[node] = new = old + gpus
            self._free[node] = new
            hist[min(max(old, -1), top) + 1] -= 1
            hist[min(max(new, -1), top) + 1] += 1

    # -- changes ------------------------------------------------------------------------
    @property
    def cluster(self) -> Cluster:
        return self._cluster

    def set_cluster(self, cluster: Cluster) -> None:
        """Use ``cluster`` from now on (node states change by copies of the cluster)."""
        self._flush()
        same = cluster.names == self._cluster.names and \
            cluster.capacity == self._cluster.capacity
        if same:
            if not np.array_equal(cluster.arrays.up, self._up):
                self._set_free(cluster)
                self._generation[0] += 1
            self._cluster = cluster
            return
        jobs = list(self._jobs.values())  # node indices or shapes differ: derive anew
        for job in jobs:
            self.remove(job.id)
        self._flush()
        self._cluster = cluster
        self._init_base(cluster)
        for job in jobs:
            self.put(job)

    def set_qos(self, qos: Mapping[str, QOS]) -> None:
        """Use the QOS table ``qos`` from now on. Running jobs take their preemptibility,
        grace and requeue from their QOS: they are derived anew."""
        if dict(qos) == self._qos:
            return
        self._flush()
        self._qos = dict(qos)
        self._qos_view = MappingProxyType(self._qos)
        self._evictions.clear()
        running = [self._jobs[job_id] for job_id in self._running]
        for job in running:
            self._forget(job)
        for job in running:
            self.put(job)

    def put(self, job: Job) -> None:
        """Add or replace the record of ``job`` (any state; terminal ones are kept only as
        a state and an exit code, for dependencies)."""
        old = self._jobs.get(job.id)
        if old is job:
            return
        if old is not None:
            self._forget(old)
        self._states[job.id] = job.state
        self._exits[job.id] = job.exit_code
        if job.state is JobState.PENDING:
            self._jobs[job.id] = job
            self._add_pending(job)
        elif job.state is JobState.RUNNING:
            self._jobs[job.id] = job
            self._later.pop(job.id, None)
            self._later[job.id] = job

    def put_all(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            self.put(job)

    def remove(self, job_id: str) -> None:
        """Forget ``job_id`` entirely (its state too)."""
        old = self._jobs.pop(job_id, None)
        if old is not None:
            self._forget(old, keep=False)
        self._states.pop(job_id, None)
        self._exits.pop(job_id, None)

    def _forget(self, job: Job, keep: bool = True) -> None:
        if keep:
            del self._jobs[job.id]
        if job.id in self._pslot_of:
            self._drop_pending(job)
        elif job.state is JobState.RUNNING:  # put as running: dropped at the next flush
            self._later.pop(job.id, None)
            self._later[job.id] = None

    # -- pending ------------------------------------------------------------------------
    def _add_pending(self, job: Job) -> None:
        shape, err = resolve_shape(job.spec, self._cluster)
        wait = PendingJob(job.id, job.spec, job.submit_s, shape, job.held,
                          job.service_gpu_s, err)
        spec, t = job.spec, self._interned
        slot = self._ptab.take()
        if slot >= len(self._flags):
            self._flags = np.concatenate([self._flags, np.zeros_like(self._flags)])
        self._ptab.f[slot] = (job.submit_s, job.service_gpu_s)
        self._ptab.i[slot] = (spec.gpus, shape.gpus_per_node if shape else 0,
                              shape.nodes if shape else 0, spec.time_limit_s,
                              t.project(spec.project), t.pair(spec.project, spec.user),
                              t.qos(spec.qos))
        self._flags[slot] = (shape is not None and not job.held and not spec.depends_on
                             and spec.reservation is None and spec.array_limit is None,
                             shape is not None and job.held, bool(spec.depends_on),
                             spec.same_su is TopologyConstraint.REQUIRED)
        key = submit_key(job)
        at = len(self._pkeys) if not self._pkeys or key > self._pkeys[-1] \
            else bisect.bisect_left(self._pkeys, key)
        self._pkeys.insert(at, key)
        self._pjobs.insert(at, wait)
        self._pids.insert(at, job.id)
        self._pslots.insert(at, slot)
        self._pslot_of[job.id] = slot
        if spec.depends_on:
            self._deps.add(job.id)
        self._pcache = None

    def _drop_pending(self, job: Job) -> None:
        slot = self._pslot_of.pop(job.id)
        at = bisect.bisect_left(self._pkeys, submit_key(job))
        del self._pkeys[at], self._pjobs[at], self._pids[at], self._pslots[at]
        self._ptab.give(slot)
        self._deps.discard(job.id)
        self._pcache = None

    # -- running ------------------------------------------------------------------------
    def _add_running(self, job: Job) -> None:
        """Apply a running record (from :meth:`_flush`, which then marks the change)."""
        cluster, spec = self._cluster, job.spec
        how = self._evictions.get((spec.qos, spec.preemptible, spec.grace_s))
        if how is None:  # what a run's QOS and spec say of its eviction, once per kind
            q = qos_named(self._qos, spec.qos)
            evictable = q.lets_evict(spec.preemptible)
            how = self._evictions[(spec.qos, spec.preemptible, spec.grace_s)] = (
                evictable, spec.grace_s if spec.grace_s is not None else q.grace_s,
                q.requeues if spec.preemptible is None else evictable)
        preemptible, grace_s, requeue = how
        allocation = job.allocation
        if len(allocation) == 1:  # most runs: nothing to sort
            ((name, gpu_ids),) = allocation
            alloc: tuple[tuple[int, int], ...] = ((cluster.index_of(name), len(gpu_ids)),)
        else:
            alloc = tuple(sorted((cluster.index_of(n), len(g)) for n, g in allocation))
        start = job.start_s if job.start_s is not None else job.submit_s
        end = start + spec.time_limit_s
        run = RunningJob(job.id, spec, start, end, alloc, preemptible, grace_s, requeue,
                         job.service_gpu_s)
        self._running[job.id] = run
        slot = self._rtab.take()
        if slot >= len(self._rflag):
            self._rflag = np.concatenate([self._rflag, np.zeros_like(self._rflag)])
        self._rwrites[slot] = (start, end, run.service_gpu_s, run.gpus, preemptible)
        self._preemptible += bool(preemptible)
        self._rslot_of[job.id] = slot
        holds = []
        htab, hwrites, node_rel, held, dirty = self._htab, self._hwrites, self._node_rel, \
            self._held, self._dirty
        for node, gpus in alloc:
            h = htab.take()
            if h >= len(self._hlive):
                self._hlive = np.concatenate([self._hlive, np.zeros_like(self._hlive)])
            hwrites[h] = (node, gpus, slot)
            holds.append(h)
            bisect.insort(node_rel[node], (end, gpus))
            held[node] += gpus
            self._free_change(node, -gpus)
            dirty.add(node)
        self._hslots[job.id] = holds
        heapq.heappush(self._ends, (end, job.id))

    def _drop_running(self, job_id: str) -> None:
        """Drop a running record (from :meth:`_flush`, which then marks the change)."""
        run = self._running.pop(job_id)
        end, alloc = run.expected_end_s, run.alloc
        node_rel, held, dirty = self._node_rel, self._held, self._dirty
        for node, gpus in alloc:
            node_rel[node].remove((end, gpus))
            held[node] -= gpus
            self._free_change(node, gpus)
            dirty.add(node)
        self._released += 1  # plans carried between cycles check the nodes runs left
        log = self._release_log
        log.append(tuple(node for node, _ in alloc))
        if len(log) > _LOG_KEEP:
            del log[:_LOG_KEEP // 2]
            self._log_from += _LOG_KEEP // 2
        slot = self._rslot_of.pop(job_id)
        self._preemptible -= bool(run.preemptible)
        self._rtab.give(slot)
        hwrites, htab = self._hwrites, self._htab
        for h in self._hslots.pop(job_id):
            hwrites[h] = None
            htab.give(h)

    def _flush(self) -> None:
        """Apply the running records put or dropped since the last flush, in the order of
        their last change: what applying each at once would have left."""
        later = self._later
        if not later:
            return
        self._later = {}
        running = self._running
        for job_id, job in later.items():
            if job_id in running:
                self._drop_running(job_id)
            if job is not None:
                self._add_running(job)
        self._running_changed()

    def _released_nodes(self, since: int, *, upto: int) -> frozenset[int] | None:
        """The nodes of runs ``since`` to ``upto`` (counts of runs dropped), or None if the
        log no longer reaches back to ``since``."""
        if since < self._log_from:
            return None
        log = self._release_log[since - self._log_from:upto - self._log_from]
        return frozenset(node for nodes in log for node in nodes)

    def _running_changed(self) -> None:
        """Running jobs, and so held GPUs, changed: what snapshots were lent is stale."""
        self._rcache = self._rtuple = None
        self._generation[0] += 1

    # -- the snapshot -------------------------------------------------------------------
    def _pending_view(self) -> tuple[tuple[PendingJob, ...], PendingColumns]:
        if self._pcache is None:
            perm = np.array(self._pslots, dtype=np.int64)
            f, i, flags = self._ptab.f[perm], self._ptab.i[perm], self._flags[perm]
            self._pcache = (tuple(self._pjobs), PendingColumns(
                ids=list(self._pids), submit_s=f[:, 0], service_gpu_s=f[:, 1],
                gpus=i[:, 0], gpus_per_node=i[:, 1], nodes=i[:, 2], limit_s=i[:, 3],
                plain=flags[:, 0], held=flags[:, 1], deps=flags[:, 2], one_unit=flags[:, 3],
                project=i[:, 4], pair=i[:, 5], qos=i[:, 6],
                tables=self._interned.frozen()))
        return self._pcache

    def _running_tuple(self) -> tuple[RunningJob, ...]:
        if self._rtuple is None:
            self._rtuple = tuple(self._running.values())
        return self._rtuple

    def _running_columns(self) -> RunningColumns:
        """The running jobs' columns, in the order of :meth:`_running_tuple`: made when a
        cycle asks (preemption, LAS), not at every build."""
        if self._rcache is None:
            self._write_slots()
            perm = np.fromiter(self._rslot_of.values(), dtype=np.int64,
                               count=len(self._rslot_of))
            f = self._rtab.f[perm]
            live = np.flatnonzero(self._hlive[:self._htab.used])
            h = self._htab.i[live]
            self._rcache = RunningColumns(
                start_s=f[:, 0], expected_end_s=f[:, 1], service_gpu_s=f[:, 2],
                gpus=self._rtab.i[perm, 0], preemptible=self._rflag[perm],
                hold_nodes=h[:, 0], hold_gpus=h[:, 1],
                hold_end_s=self._rtab.f[h[:, 2], 1])
        return self._rcache

    def _write_slots(self) -> None:
        """Write the rows of the slot tables changed since they were last read."""
        if self._rwrites:
            slots = np.fromiter(self._rwrites, dtype=np.int64, count=len(self._rwrites))
            rows = list(self._rwrites.values())
            self._rtab.f[slots] = [row[:3] for row in rows]
            self._rtab.i[slots, 0] = [row[3] for row in rows]
            self._rflag[slots] = [row[4] for row in rows]
            self._rwrites.clear()
        if self._hwrites:
            dead = [h for h, row in self._hwrites.items() if row is None]
            live = {h: row for h, row in self._hwrites.items() if row is not None}
            self._hlive[dead] = False
            if live:
                at = np.fromiter(live, dtype=np.int64, count=len(live))
                self._htab.i[at] = list(live.values())
                self._hlive[at] = True
            self._hwrites.clear()

    def _base(self) -> SharedBase:
        """GPUs held and free per node, and the raw tau table (brought up to date when first
        asked): the builder's own arrays, not copies (a cycle on 12,500 nodes would spend
        most of its time copying), with the generation they belong to. Any later change
        bumps the generation, and a cycle given an older one computes its base afresh
        (:func:`current_base`)."""
        ends, running = self._ends, self._running
        while ends and (ends[0][1] not in running
                        or running[ends[0][1]].expected_end_s != ends[0][0]):
            heapq.heappop(ends)  # a run that ended, or was replaced
        earliest = ends[0][0] if ends else math.inf
        view = BaseView(self._held, self._free, self._free_hist, self._fresh_tau,
                        self._node_rel, earliest)
        return view, self._generation, self._generation[0]

    def _fresh_tau(self) -> FloatArray:
        """The raw tau table, the columns of the nodes changed since brought up to date:
        made when a cycle first asks (one that plans), not at every build. Every change
        that makes a column stale has bumped the generation already."""
        if self._dirty:
            tau, rows = self._tau, len(self._tau)
            cap, held = self._cap.tolist(), self._held
            for n in self._dirty:
                tau[:, n] = tau_column(cap[n] - held[n], cap[n], self._node_rel[n], -math.inf,
                                       rows)
            self._dirty.clear()
        return self._tau

    def build(self, now: float, *, reservations: Iterable[Reservation] = (),
              projects: Mapping[str, Project] | None = None,
              ledger: UsageLedger | None = None, grants: Iterable[Grant] = (),
              charged_gpu_s: Mapping[str, float] | None = None,
              fairshare_table: FairShare | None = None) -> Snapshot:
        """The snapshot for a cycle at ``now`` (seconds).

        ``charged_gpu_s`` is, per project, the GPU-seconds (× usage factor) already charged
        against its grants; it is spent from the earliest-expiring active grant first.
        ``fairshare_table`` lets a body reuse fair-share factors it computed earlier from
        the same ledger (like Slurm, bodies recompute them every ``PriorityCalcPeriod``,
        not every cycle); without it they are computed from ``ledger``.
        """
        self._flush()
        snapshot = self._snapshot(now, self._running_tuple(), reservations, projects, ledger,
                                  grants, charged_gpu_s, fairshare_table)
        object.__setattr__(snapshot, "_base", self._base())
        object.__setattr__(snapshot, "_lineage", (
            self._generation, self._released, partial(self._released_nodes,
                                                       upto=self._released)))
        object.__setattr__(snapshot, "_running_columns_of", (
            self._running_columns, self._generation, self._generation[0], self._preemptible))
        return snapshot

    def build_pending(self, now: float, *, reservations: Iterable[Reservation] = (),
                      projects: Mapping[str, Project] | None = None,
                      ledger: UsageLedger | None = None, grants: Iterable[Grant] = (),
                      charged_gpu_s: Mapping[str, float] | None = None,
                      fairshare_table: FairShare | None = None) -> Snapshot:
        """:meth:`build` without the running jobs (``running`` empty, no base for plans):
        the pending jobs, the tenancy and the time, all that a policy's priorities read
        (:meth:`~gefion.core.policies.base.Policy.priorities` reads no running job). For a
        body that orders the queue before it knows whether it needs a whole cycle
        (:func:`gefion.core.prefix.plain_prefix`); running records put since the last
        :meth:`build` stay unapplied, so runs that start and end in between cost nothing."""
        return self._snapshot(now, (), reservations, projects, ledger, grants, charged_gpu_s,
                              fairshare_table)

    def _snapshot(self, now: float, running: tuple[RunningJob, ...],
                  reservations: Iterable[Reservation], projects: Mapping[str, Project] | None,
                  ledger: UsageLedger | None, grants: Iterable[Grant],
                  charged_gpu_s: Mapping[str, float] | None,
                  fairshare_table: FairShare | None) -> Snapshot:
        projects = dict(projects or {})
        pending, pcols = self._pending_view()
        # Dependencies need the states of the jobs they name, and nothing else.
        states: dict[str, JobState] = {}
        exits: dict[str, int | None] = {}
        for job_id in self._deps:
            for dep in self._jobs[job_id].spec.depends_on:
                if dep.job_id is not None and dep.job_id in self._states:
                    states[dep.job_id] = self._states[dep.job_id]
                    exits[dep.job_id] = self._exits[dep.job_id]
        snapshot = Snapshot(
            cluster=self._cluster, running=running, pending=pending,
            reservations=tuple(reservations), projects=projects, qos=self._qos_view,
            fairshare=fairshare_table if fairshare_table is not None
            else fairshare(projects, ledger or UsageLedger(), now),
            grant_left_gpu_s=grant_balances(projects, grants, charged_gpu_s or {}, now),
            job_states=states, exit_codes=exits, as_of_s=now)
        object.__setattr__(snapshot, "_columns", pcols)
        return snapshot
