"""The queue (``GET /v1/queue``, what ``gefion queue`` shows), kept in memory by the API.

``gefion queue`` over 10,000 jobs must answer in a small fraction of a second, start-up of
the command included. Reading the ``jobs`` table cannot: every row carries its spec (script
and environment), so even a narrow ``SELECT`` walks kilobytes per job (~0.1 s for 10,000
on SQLite), and a :class:`~gefion.store.JobRow` costs a JSON decode of it (~1 s).

So the API keeps a read model of the jobs not yet ended: :class:`QueueView` loads them once,
then follows the event log (``seq`` is gap-free and in commit order, so tailing from the
last ``seq`` seen never misses an event) and applies each event with the store's own pure
projection (:func:`gefion.store.apply`), keeping a slim spec (a job submitted through this
process keeps the row its writer made, whose spec the scheduler holds anyway while the job
is active: :attr:`gefion.store.EventRow.row`). Every request first catches
up with the log, so a job appears in the queue as soon as its submission is acknowledged;
a thread also catches up every 0.5 s, so that a request after a burst of submissions finds
little left to apply. Reasons and ETAs come from the scheduler's latest cycle (they are
not events). Each job's row is built once per change, not per request.

Rows are rendered on the server (:mod:`gefion.api.queue_render`) — as JSON, and as the
aligned text table of squeue — so that the stdlib-only fast path of ``gefion queue``
(:mod:`gefion.cli.fastqueue`) only has to copy the answer to stdout, and the Typer command
prints the same bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from gefion.api.queue_render import render_json, render_text
from gefion.controller.service import Controller
from gefion.core.decisions import CycleResult
from gefion.core.errors import GefionError, InputError
from gefion.core.jobs import JobState
from gefion.store import EventRow, JobRow, apply

log = logging.getLogger("gefion.api")

#: States a queue shows: not ended (PREEMPTED and NODE_FAIL are waypoints to a requeue).
QUEUE_STATES = frozenset(s for s in JobState if not s.terminal)
#: Spec keys the view keeps; the rest (script, environment) is dropped from memory.
_SLIM_KEYS = ("gpus", "nodes", "time_limit_s")
_PENDING = JobState.PENDING.value


class QueueRow(NamedTuple):
    """One job of the queue; its fields are the keys of a job in the JSON answer."""

    id: int
    name: str
    user: str
    project: str
    state: str
    reason: str | None
    nodelist: tuple[str, ...]
    submit_ts: float
    start_ts: float | None
    eta_ts: float | None
    time_limit_s: int | None
    nodes: int
    gpus: int
    array_job_id: int | None
    array_task_id: int | None
    held: bool
    idle_gpus: bool = False  # a running job's GPUs idle for long (docs/telemetry.md)
    idle_since_ts: float | None = None


@dataclass(frozen=True)
class QueueFilter:
    """Every given filter must match; ``job_ids`` also match an array's tasks by its id.
    ``by_start``: pending and running jobs ordered by (expected) start, as ``--start``.
    ``scope`` (projects, user): only jobs of those projects or of that user — what a
    non-staff principal may see (None: every job)."""

    users: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    job_ids: frozenset[int] = frozenset()
    by_start: bool = False
    scope: tuple[frozenset[str], str] | None = None

    @classmethod
    def parse(cls, *, users: Iterable[str] = (), projects: Iterable[str] = (),
              states: Iterable[str] = (), job_ids: Iterable[str] = (),
              by_start: bool = False,
              scope: tuple[frozenset[str], str] | None = None) -> QueueFilter:
        wanted = {s.upper() for s in states}
        for state in sorted(wanted):
            if state not in QUEUE_STATES:
                ended = state in JobState.__members__
                raise InputError(f"{state} is {'an ended state' if ended else 'not a state'}; "
                                 f"a queue has {', '.join(sorted(QUEUE_STATES))}"
                                 + (" (ended jobs: gefion history)" if ended else ""),
                                 field="state")
        ids = set()
        for text in job_ids:
            if not text.isdigit():
                raise InputError(f"must be a job id, got {text!r}", field="job")
            ids.add(int(text))
        return cls(frozenset(users), frozenset(projects), frozenset(wanted), frozenset(ids),
                   by_start, scope)


class QueueView:
    """The jobs not yet ended, in memory, caught up with the event log on every read (and
    every ``follow_s`` in a thread, once :meth:`follow` is called, so that a read after a
    burst of submissions finds little left to apply)."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._lock = threading.Lock()
        self._jobs: dict[int, JobRow] = {}  # slim rows, for the projection to apply to
        self._rows: dict[int, QueueRow] = {}  # what is shown, but a pending job's verdict
        self._seq = -1  # -1: not loaded yet
        self._cycle: CycleResult | None = None
        self._verdicts: dict[int, tuple[str, float | None]] = {}
        self._rendered: dict[tuple[object, ...], tuple[CycleResult | None, bytes]] = {}
        node_gpus = controller.site.node_gpus
        self._node_gpus = node_gpus if node_gpus > 0 else 1

    def render(self, where: QueueFilter, fmt: str, *, now: float,
               utc_offset_s: int = 0) -> bytes:
        """The matching jobs as ``fmt`` (``json`` or ``text``). The same question about the
        same log position and cycle — within the same second, for a table, whose TIME
        column counts seconds — is answered from a small cache: squeue in a loop, or many
        users watching the queue, cost one rendering."""
        cycle = self._cycle_of_scheduler()
        sampler = self._controller.sampler
        with self._lock:
            self._catch_up()
            key = (self._seq, id(cycle), where, fmt, utc_offset_s,
                   int(now) if fmt == "text" else None,
                   None if sampler is None else sampler.idle_version)
            cached = self._rendered.get(key)
        if cached is not None:
            return cached[1]
        rows = self.rows(where)
        body = render_json(rows) if fmt == "json" else \
            render_text(rows, now=now, utc_offset_s=utc_offset_s, by_start=where.by_start)
        with self._lock:
            if len(self._rendered) >= 16:
                self._rendered.clear()
            self._rendered[key] = (cycle, body)  # the cycle kept alive: its id stays its own
        return body

    def rows(self, where: QueueFilter) -> list[QueueRow]:
        """The matching jobs, by id (``by_start``: by start, then planned start)."""
        with self._lock:
            self._catch_up()
            rows = [r for r in self._rows.values() if _matches(r, where)]
            waiting = [i for i, r in enumerate(rows) if r.state == _PENDING and not r.held]
            verdicts = self._latest_verdicts() if waiting else {}
        for i in waiting:  # a held job's reason is known; the others' are the cycle's
            r = rows[i]
            reason, eta = verdicts.get(r.id, (None, None))
            rows[i] = QueueRow._make((*r[:5], reason, *r[6:9], eta, *r[10:]))
        sampler = self._controller.sampler
        idle = sampler.idle_jobs() if sampler is not None else {}
        if idle:  # running jobs whose GPUs the telemetry sampler found idle
            rows = [r._replace(idle_gpus=True, idle_since_ts=idle[r.id]) if r.id in idle
                    else r for r in rows]
        rows.sort(key=_by_id)
        if where.by_start:
            rows.sort(key=_start_key)
        return rows

    def follow(self, every_s: float = 0.5) -> None:
        """Catch up every ``every_s`` in a daemon thread, until the store is closed."""
        def run() -> None:
            while True:
                time.sleep(every_s)
                try:
                    with self._lock:
                        self._catch_up()
                except Exception:  # the controller stopped: nothing left to follow
                    log.debug("queue view stops following the log", exc_info=True)
                    return

        threading.Thread(target=run, name="gefion-queue-view", daemon=True).start()

    # -- the read model -----------------------------------------------------------------
    def _catch_up(self) -> None:
        store = self._controller.store
        if store is None:
            raise GefionError("the controller is not started")
        if self._seq < 0:
            seq = store.last_seq()  # first: a job is then loaded as new or seen in the log
            for row in store.active_jobs():
                self._put(_slim(row))
            self._seq = seq
        while True:
            batch = store.events_since(self._seq, limit=10_000)
            if not batch:
                return
            for event in batch:
                if event.job_id is not None:
                    self._apply(event)
            self._seq = batch[-1].seq

    def _apply(self, event: EventRow) -> None:
        assert event.job_id is not None
        job = self._jobs.get(event.job_id)
        if job is not None and event.seq <= job.updated_seq:
            return  # loaded after this event was applied
        try:
            if job is not None:
                job = _slim(apply(event, job))
            elif event.row is not None:  # submitted here: the writer's row, whose spec
                job = event.row          # the scheduler holds while the job is active anyway
            elif event.kind == "job.submitted":  # slimmed before the row is built
                job = apply(EventRow(event.seq, event.ts, event.kind, event.job_id, event.node,
                                     _slim_payload(event.payload)), None)
            else:  # a job this view does not hold: one that had ended, or a waypoint
                job = self._reload(event.job_id)
        except GefionError:  # cannot happen while the store is consistent; re-read it
            job = self._reload(event.job_id)
        if job is not None and job.state in QUEUE_STATES:
            self._put(job)
        else:
            self._jobs.pop(event.job_id, None)
            self._rows.pop(event.job_id, None)

    def _put(self, job: JobRow) -> None:
        spec = job.spec
        gpus = int(spec.get("gpus") or 0)
        nodes = len(job.allocation) or spec.get("nodes") or max(1, -(-gpus // self._node_gpus))
        pending = job.state is JobState.PENDING
        self._jobs[job.id] = job
        self._rows[job.id] = QueueRow(
            job.id, job.name, job.user, job.project, job.state.value,
            "HELD" if pending and job.held else None,
            tuple(node for node, _ in job.allocation), job.submit_ts, job.start_ts, None,
            spec.get("time_limit_s"), nodes, gpus, job.array_job_id, job.array_task_id,
            job.held)

    def _reload(self, job_id: int) -> JobRow | None:
        assert self._controller.store is not None
        row = self._controller.store.get_job(job_id)
        return None if row is None else _slim(row)

    def _cycle_of_scheduler(self) -> CycleResult | None:
        scheduler = self._controller.scheduler
        return None if scheduler is None else scheduler.last_result

    def _latest_verdicts(self) -> Mapping[int, tuple[str, float | None]]:
        """Reason and planned start of each pending job, from the scheduler's last cycle
        (rebuilt once per cycle)."""
        result = self._cycle_of_scheduler()
        if result is not self._cycle:
            self._cycle = result
            self._verdicts = {} if result is None else {
                int(v.job_id): (v.reason.value, v.planned_start_s) for v in result.pending}
        return self._verdicts


def _slim(row: JobRow) -> JobRow:
    return replace(row, spec={k: row.spec.get(k) for k in _SLIM_KEYS})


def _slim_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A ``job.submitted`` payload whose spec holds only what the view keeps."""
    spec = payload.get("spec")
    slim = {k: spec.get(k) for k in _SLIM_KEYS} if isinstance(spec, Mapping) else spec
    return {**payload, "spec": slim}


def _matches(row: QueueRow, where: QueueFilter) -> bool:
    scope = where.scope
    return ((scope is None or row.project in scope[0] or row.user == scope[1])
            and (not where.users or row.user in where.users)
            and (not where.projects or row.project in where.projects)
            and (not where.states or row.state in where.states)
            and (not where.job_ids or row.id in where.job_ids
                 or row.array_job_id in where.job_ids))


def _by_id(row: QueueRow) -> int:
    return row.id


def _start_key(row: QueueRow) -> tuple[bool, float, int]:
    start = row.start_ts if row.start_ts is not None else row.eta_ts
    return (start is None, start or 0.0, row.id)
