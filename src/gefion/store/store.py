"""The live controller's event store: :class:`Store`.

Every state change is an event in ``events``, committed before the call that made it
returns; ``jobs`` and ``nodes`` are projections of the log, updated in the same transaction
by the pure functions of :mod:`gefion.store.projection` (so :meth:`Store.replay` gives the
same projections). One engine per store; every call takes its own connection, so a store
is shared freely between threads (the controller loop, the API's worker threads). Writes go
through a group-commit :class:`~gefion.store.writer.Writer`.

Time: the store never reads the clock; every ``ts`` is the caller's (seconds, wall clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

import sqlalchemy as sa

from gefion.core.errors import InputError
from gefion.core.jobs import JobState
from gefion.store import checks, ops, projection, usage
from gefion.store import engine as engines
from gefion.store import submit_ops as submits
from gefion.store.hotpath import hot_path
from gefion.store.recent import RecentEvents
from gefion.store.records import EventKind, EventRow, JobRow, NewEvent, NewJob, NodeRow
from gefion.store.schema import (
    event_from_db,
    job_from_db,
    jobs,
    log_head,
    node_from_db,
    nodes,
)
from gefion.store.schema import events as event_table
from gefion.store.tenancy_store import TenancyStore
from gefion.store.writer import WriteOp, Writer

T = TypeVar("T")

#: (job id, reason, eta_ts, priority factors) for :meth:`Store.set_scheduling_info`.
SchedulingInfo = tuple[int, str | None, float | None, Mapping[str, float] | None]

MAX_LIST_LIMIT = 10_000
TENANCY_KINDS = frozenset(k.value for k in EventKind if k.domain == "tenancy")
_ACTIVE = (JobState.PENDING.value, JobState.RUNNING.value)


class Store(TenancyStore):
    """The event store. Open with :meth:`open`; thread-safe; close with :meth:`close`.
    Tenancy (people, projects, tokens, QOS, grants, reservations): :class:`TenancyStore`."""

    def __init__(self, engine: sa.Engine, *, group_commit: bool = True,
                 max_batch: int = 1024) -> None:
        """Wrap an engine already migrated (see :meth:`open`, which is what callers use)."""
        self._engine = engine
        self._recent = RecentEvents()
        self._hot = hot_path(engine.dialect.name)
        self._writer = Writer(engine, group_commit=group_commit, max_batch=max_batch,
                              on_commit=self._committed)
        self._closed = False

    @classmethod
    def open(cls, url: str, *, durable: bool = False, group_commit: bool = True,
             pool_size: int = 10, max_overflow: int = 30, busy_timeout_s: float = 30.0,
             max_batch: int = 1024) -> Store:
        """Open (creating and migrating as needed) the store at ``url``.

        ``url``: ``sqlite:///path/to/gefion.db`` or ``postgresql[+psycopg]://user:pw@host/db``
        (``?options=-csearch_path%3Dschema`` selects a schema). ``durable``: on SQLite,
        fsync every commit (``synchronous=FULL``; survives power loss) instead of
        ``synchronous=NORMAL`` (survives a crash of the process only). ``group_commit``:
        batch concurrent writes into shared transactions (off: one transaction per call).
        Raises :class:`InputError` for a bad URL, :class:`~gefion.store.errors.SchemaError`
        for a database this Gefion cannot migrate.
        """
        engine = engines.create_engine(engines.normalize_url(url), durable=durable,
                                       busy_timeout_s=busy_timeout_s, pool_size=pool_size,
                                       max_overflow=max_overflow)
        try:
            engines.migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, group_commit=group_commit, max_batch=max_batch)

    def close(self) -> None:
        """Close every pooled connection. Idempotent; the store is unusable afterwards."""
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self._engine.url!r})"

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def write_stats(self) -> tuple[int, int]:
        """(write transactions committed, write calls they carried) since opening: their
        ratio is the mean group-commit batch size."""
        return self._writer.transactions, self._writer.ops

    def schema_revision(self) -> str | None:
        """The Alembic revision recorded in the database."""
        with self._read() as conn:
            return engines.current_revision(conn)

    # -- writes -------------------------------------------------------------------------

    def submit(self, specs: Sequence[NewJob], *, ts: float,
               idempotency_key: str | None = None) -> list[int]:
        """Submit jobs at ``ts``; return their ids once committed.

        The jobs get contiguous new ids, a ``job.submitted`` event each and a PENDING row,
        in one transaction. If every job has an ``array_task_id``, they form one array whose
        ``array_job_id`` is the first id (as Slurm). A submission with an
        ``idempotency_key`` that was submitted before returns the earlier ids and writes
        nothing, so a client may retry after a lost answer (exactly once). Raises
        :class:`InputError` for a bad submission (nothing is written).
        """
        checks.check_ts(ts)
        if idempotency_key is not None:
            checks.check_text(idempotency_key, "idempotency_key", required=True)
        submit = submits.checked_submit(tuple(specs), float(ts), idempotency_key)
        return [] if submit is None else self._write(submits.SubmitOp(submit))

    def submit_batch(self, submissions: Sequence[Sequence[NewJob]], *, ts: float,
                     idempotency_key: str | None = None) -> list[list[int]]:
        """Several submissions in one transaction, all or nothing: the ids of each, in
        order, as :meth:`submit` would give them one by one (an array among them gets its
        own ``array_job_id``). With an ``idempotency_key``, submission ``i`` is kept under
        ``KEY#i``: a retry of the batch returns the same ids and writes nothing. Errors
        name the submission (``submissions[3].array_task_id``)."""
        checks.check_ts(ts)
        if idempotency_key is not None:
            checks.check_text(idempotency_key, "idempotency_key", required=True)
        batch: list[submits.Submit] = []
        for i, specs in enumerate(submissions):
            try:
                submit = submits.checked_submit(tuple(specs), float(ts), None
                                                if idempotency_key is None
                                                else f"{idempotency_key}#{i}")
            except InputError as exc:
                raise exc.prefixed(f"submissions[{i}]") from None
            if submit is None:
                raise InputError("a submission without jobs", field=f"submissions[{i}]")
            batch.append(submit)
        return self._write(submits.SubmitBatchOp(batch)) if batch else []

    def append(self, events: Sequence[NewEvent]) -> list[int]:
        """Append events and apply them to the projections, in one transaction, all or
        nothing; return their ``seq`` numbers once committed.

        Raises the core's :class:`~gefion.core.errors.StateError` for an illegal transition,
        :class:`~gefion.store.errors.NotFoundError` for an unknown job or node, and
        :class:`InputError` for a malformed event; then nothing is written.
        """
        events = tuple(events)
        if not events:
            return []
        for i, event in enumerate(events):
            checks.check_new_event(event, i)
        return self._write(ops.AppendOp(events))

    def set_scheduling_info(self, rows: Iterable[SchedulingInfo]) -> None:
        """Set the queue view (``reason``, ``eta_ts``, ``priority`` factors) of pending jobs.

        Not an event, on purpose: it is the scheduler's output, recomputed from the state
        every cycle (invariant 4: decisions are data), changes for thousands of jobs each
        cycle, and is worth nothing after the next one; logging it would swamp the log
        with noise that replay does not need. A rebuild from the log leaves it empty until
        the next cycle. Rows for jobs that are no longer PENDING are skipped (a start or
        cancel that committed first wins). One transaction, batched statements.
        """
        checked: list[ops.SchedulingRow] = []
        for job_id, reason, eta_ts, priority in rows:
            if reason is not None:
                checks.check_text(reason, "reason")
            if eta_ts is not None:
                checks.check_ts(eta_ts, "eta_ts")
            checked.append((int(job_id), reason, None if eta_ts is None else float(eta_ts),
                            None if priority is None
                            else checks.check_json(dict(priority), "priority")))
        if checked:
            self._write(ops.SchedulingInfoOp(checked))

    def rebuild_projections(self) -> tuple[int, int]:
        """Replace the jobs, nodes and tenancy tables by what the log alone says (one
        transaction); return how many jobs and nodes there are. Scheduling info is
        cleared."""
        counts = self._write(ops.RebuildOp())
        self.tenancy_version += 1
        return counts

    # -- reads --------------------------------------------------------------------------

    def get_job(self, job_id: int) -> JobRow | None:
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one_or_none()
        return None if row is None else job_from_db(row)

    def list_jobs(self, *, states: Iterable[JobState | str] | None = None,
                  user: str | None = None, project: str | None = None,
                  name: str | None = None, array_job_id: int | None = None,
                  after_id: int | None = None, limit: int = 100,
                  visible_projects: Iterable[str] | None = None,
                  visible_user: str | None = None) -> list[JobRow]:
        """Jobs matching every given filter, by id, at most ``limit`` (≤ 10,000) of them
        after ``after_id``: pass the last id of a page to get the next page.
        ``visible_projects``/``visible_user``: only jobs of those projects or of that user
        (what a principal may see)."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InputError(f"must be 1..{MAX_LIST_LIMIT}, got {limit}", field="limit")
        query = sa.select(jobs)
        if states is not None:
            try:
                query = query.where(jobs.c.state.in_([JobState(s).value for s in states]))
            except ValueError as e:
                raise InputError(str(e), field="states") from None
        for column, value in ((jobs.c.user, user), (jobs.c.project, project),
                              (jobs.c.name, name), (jobs.c.array_job_id, array_job_id)):
            if value is not None:
                query = query.where(column == value)
        if after_id is not None:
            query = query.where(jobs.c.id > after_id)
        if visible_projects is not None or visible_user is not None:
            query = query.where(sa.or_(jobs.c.project.in_(list(visible_projects or ())),
                                       jobs.c.user == visible_user))
        with self._read() as conn:
            rows = conn.execute(query.order_by(jobs.c.id).limit(limit)).all()
        return [job_from_db(r) for r in rows]

    def active_jobs(self) -> list[JobRow]:
        """PENDING and RUNNING jobs, by id: what a scheduling cycle starts from."""
        with self._read() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.state.in_(_ACTIVE))
                                .order_by(jobs.c.id)).all()
        return [job_from_db(r) for r in rows]

    def count_jobs_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state, zeros included)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(jobs.c.state, sa.func.count())
                                .group_by(jobs.c.state)).all()
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(state): n for state, n in rows})
        return counts

    def events_for_job(self, job_id: int) -> list[EventRow]:
        """The job's events, in order."""
        with self._read() as conn:
            rows = conn.execute(sa.select(event_table).where(event_table.c.job_id == job_id)
                                .order_by(event_table.c.seq)).all()
        return [event_from_db(r) for r in rows]

    def events_since(self, seq: int, limit: int = 1000) -> list[EventRow]:
        """At most ``limit`` events after ``seq``, in order. ``seq`` is gap-free and in
        commit order, so tailing with the last seq seen never misses an event."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InputError(f"must be 1..{MAX_LIST_LIMIT}, got {limit}", field="limit")
        recent = self._recent.since(seq, limit)  # what this process wrote: no read back
        if recent is not None:
            return recent
        with self._read() as conn:
            # Most often nothing is new (a tailer asks until it gets nothing): the head says
            # so in one raw statement, without compiling a query or reading events.
            if self._hot.last_seq(conn) <= seq:
                return []
            rows = conn.execute(sa.select(event_table).where(event_table.c.seq > seq)
                                .order_by(event_table.c.seq).limit(limit)).all()
        return [event_from_db(r) for r in rows]

    def last_seq(self) -> int:
        """The seq of the last committed event (0: none yet)."""
        with self._read() as conn:
            return int(conn.execute(sa.select(log_head.c.last_seq)).scalar_one())

    def get_node(self, name: str) -> NodeRow | None:
        with self._read() as conn:
            row = conn.execute(sa.select(nodes).where(nodes.c.name == name)).one_or_none()
        return None if row is None else node_from_db(row)

    def list_nodes(self) -> list[NodeRow]:
        """Every node, by name."""
        with self._read() as conn:
            rows = conn.execute(sa.select(nodes).order_by(nodes.c.name)).all()
        return [node_from_db(r) for r in rows]

    def runs(self, *, since_ts: float, until_ts: float,
             projects: Iterable[str] | None = None) -> list[usage.Run]:
        """The runs of jobs (a requeued job has several) that overlap ``[since_ts,
        until_ts)``, of ``projects`` only if given (:mod:`gefion.store.usage`)."""
        with self._read() as conn:
            return usage.read_runs(conn, since_ts=since_ts, until_ts=until_ts,
                                   projects=None if projects is None else set(projects))

    def usage_totals(self) -> list[usage.UsageTotal]:
        """Raw GPU-seconds and measured joules of every ended run, per (project, QOS)."""
        with self._read() as conn:
            return usage.usage_totals(conn)

    def replay(self) -> tuple[dict[int, JobRow], dict[str, NodeRow]]:
        """The projections as the log alone says (jobs by id, nodes by name), computed in
        memory from one consistent read of the log; the tables are not touched."""
        with self._read() as conn:
            upto = int(conn.execute(sa.select(log_head.c.last_seq)).scalar_one())
            return projection.replay(ops.read_events(conn, upto_seq=upto))

    # -- plumbing -----------------------------------------------------------------------

    def _committed(self, events: list[EventRow]) -> None:
        """Told the events of each committed write, before its caller returns."""
        self._recent.add(events)
        if any(e.kind in TENANCY_KINDS for e in events):
            self.tenancy_version += 1  # caches of who may do what forget

    def _read(self) -> sa.Connection:
        if self._closed:
            raise RuntimeError("the store is closed")
        return self._engine.connect()

    def _write(self, op: WriteOp[T]) -> T:
        if self._closed:
            raise RuntimeError("the store is closed")
        return self._writer.execute(op)

