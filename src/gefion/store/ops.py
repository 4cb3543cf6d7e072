"""The store's writes, as :class:`~gefion.store.writer.WriteOp` s run by the writer.

Each ``run_many`` reads and checks everything first, and writes only once every check has
passed: an op that reports a bad request has written nothing (the writer's contract).
Statements on the hot path go through :mod:`gefion.store.hotpath`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from gefion.core.errors import GefionError, InputError
from gefion.store import projection, tenancy_ops
from gefion.store.records import EventKind, EventRow, JobRow, NewEvent, NewJob, NodeRow
from gefion.store.schema import (
    event_from_db,
    events,
    job_from_db,
    jobs,
    node_from_db,
    node_to_db,
    nodes,
)
from gefion.store.writer import Tx, WriteOp

_CHUNK = 5_000  # rows per IN (...) list or executemany call
X = TypeVar("X")

_update_node = (
    sa.update(nodes).where(nodes.c.name == sa.bindparam("b_name"))
    .values({c: sa.bindparam(f"b_{c}") for c in ("gpus", "su", "state", "reason",
                                                  "updated_seq")})
)


def _chunks(items: Sequence[X]) -> Iterable[Sequence[X]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


# -- submit -----------------------------------------------------------------------------

@dataclass(eq=False)
class SubmitOp(WriteOp[list[int]]):
    """Submit ``jobs`` together: contiguous ids, one ``job.submitted`` event each."""

    jobs: Sequence[NewJob]
    ts: float
    idempotency_key: str | None
    is_array: bool

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[SubmitOp]) -> list[list[int] | GefionError]:
        # The log head's lock first: a submission of the same key that committed while we
        # waited for it is then visible to the lookup (PostgreSQL reads committed data per
        # statement), so concurrent retries of one key never both insert.
        tx.lock()
        keys = {op.idempotency_key for op in ops if op.idempotency_key is not None}
        known = _ids_for_keys(tx, keys) if keys else {}
        outcomes: list[list[int] | GefionError] = []
        # The ops that submit (not repeats of a key seen before, or earlier in this run)
        # get their ids and seqs in one allocation.
        seen = set(known)
        fresh: set[int] = set()
        for op in ops:
            if op.idempotency_key is None or op.idempotency_key not in seen:
                fresh.add(id(op))
                if op.idempotency_key is not None:
                    seen.add(op.idempotency_key)
        total = sum(len(op.jobs) for op in ops if id(op) in fresh)
        seqs, ids = tx.allocate(total, total) if total else (range(0), range(0))
        next_seq, next_id = iter(seqs), iter(ids)
        event_rows: list[EventRow] = []
        job_rows: list[JobRow] = []
        for op in ops:
            key = op.idempotency_key
            if id(op) not in fresh:
                assert key is not None
                earlier = known[key]
                if len(earlier) != len(op.jobs):
                    outcomes.append(InputError(
                        f"idempotency key {key!r} was used for a submission of "
                        f"{len(earlier)} job(s), not {len(op.jobs)}", field="idempotency_key"))
                else:
                    outcomes.append(earlier)
                continue
            op_ids = [next(next_id) for _ in op.jobs]
            array_job_id = op_ids[0] if op.is_array else None
            for i, (job_id, job) in enumerate(zip(op_ids, op.jobs, strict=True)):
                payload = projection.submitted_payload(
                    name=job.name, user=job.user, project=job.project, qos=job.qos,
                    spec=job.spec, held=job.held, array_job_id=array_job_id,
                    array_task_id=job.array_task_id,
                    idempotency_key=key if i == 0 else None,
                    batch_size=len(op_ids) if i == 0 and key is not None else None)
                event = EventRow(next(next_seq), op.ts, EventKind.JOB_SUBMITTED.value,
                                 job_id, None, payload)
                event_rows.append(event)
                job_rows.append(projection.apply(event, None))
            if key is not None:
                known[key] = op_ids
            outcomes.append(op_ids)
        if event_rows:
            tx.hot.insert_submissions(tx.conn, event_rows, job_rows)
            tx.events.extend(event_rows)
        return outcomes


@dataclass(eq=False)
class SubmitBatchOp(WriteOp[list[list[int]]]):
    """Several submissions, all or nothing (``Store.submit_batch``)."""

    submissions: Sequence[SubmitOp]

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[SubmitBatchOp]
                 ) -> list[list[list[int]] | GefionError]:
        inner = [op for batch in ops for op in batch.submissions]
        outcomes = iter(SubmitOp.run_many(tx, inner))
        results: list[list[list[int]] | GefionError] = []
        for batch in ops:
            ids = [next(outcomes) for _ in batch.submissions]
            bad = next((i for i, o in enumerate(ids) if isinstance(o, GefionError)), None)
            if bad is not None:  # the others were written: undo all (the writer retries
                error = ids[bad]  # each batch alone, so only this one fails)
                assert isinstance(error, GefionError)
                raise error.prefixed(f"submissions[{bad}]") \
                    if isinstance(error, InputError) else error
            results.append([o for o in ids if not isinstance(o, GefionError)])
        return results


def _ids_for_keys(tx: Tx, keys: set[str]) -> dict[str, list[int]]:
    """The ids of earlier submissions with these keys: the first job carries the key, and
    its ``job.submitted`` event how many contiguous ids the submission got."""
    first = tx.hot.first_ids(tx.conn, sorted(keys))
    if not first:
        return {}
    sizes = tx.hot.submission_sizes(tx.conn, sorted(first.values()))
    return {key: list(range(job_id, job_id + sizes.get(job_id, 1)))
            for key, job_id in first.items()}


# -- append -----------------------------------------------------------------------------

@dataclass(eq=False)
class AppendOp(WriteOp[list[int]]):
    """Append ``events`` and apply them to the projections, all or nothing."""

    events: Sequence[NewEvent]

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[AppendOp]) -> list[list[int] | GefionError]:
        outcomes: list[list[int] | GefionError] = []
        for op in ops:
            try:
                outcomes.append(_append(tx, op.events))
            except GefionError as e:  # raised before _append wrote anything
                outcomes.append(e)
        return outcomes


def _append(tx: Tx, new_events: Sequence[NewEvent]) -> list[int]:
    kinds = [projection.event_kind(e.kind) for e in new_events]
    if EventKind.JOB_SUBMITTED in kinds:
        raise InputError("job.submitted is written by submit(), which allocates the ids",
                         field="kind")
    first_seq = tx.last_seq + 1  # locks the head before reading the rows to change
    old_jobs = _load_jobs(tx.conn, {e.job_id for e, k in zip(new_events, kinds, strict=True)
                                    if k.is_job_event and e.job_id is not None})
    old_nodes = _load_nodes(tx.conn, {e.node for e, k in zip(new_events, kinds, strict=True)
                                      if k.domain == "node" and e.node})
    new_jobs: dict[int, JobRow] = {}
    new_nodes: dict[str, NodeRow] = {}
    rows: list[EventRow] = []
    tenancy: list[EventRow] = []
    for seq, e, kind in zip(range(first_seq, first_seq + len(new_events)), new_events, kinds,
                            strict=True):
        event = EventRow(seq, float(e.ts), kind.value, e.job_id, e.node, dict(e.payload))
        if kind.is_job_event:
            job = None if e.job_id is None else new_jobs.get(e.job_id, old_jobs.get(e.job_id))
            job = projection.apply(event, job)
            new_jobs[job.id] = job
        elif kind.domain == "node":
            node = None if e.node is None else new_nodes.get(e.node, old_nodes.get(e.node))
            node = projection.apply_node(event, node)
            new_nodes[node.name] = node
        elif kind.domain == "tenancy":
            tenancy.append(event)
        rows.append(event)  # an audit event (access.denied) changes no table
    tenancy_rows = tenancy_ops.plan(tx.conn, tenancy) if tenancy else {}
    # Every check passed: write.
    tx.allocate(len(rows))
    tx.hot.insert_events(tx.conn, rows)
    tx.events.extend(rows)
    if tenancy_rows:
        tenancy_ops.write(tx.conn, tenancy_rows)
    tx.hot.update_jobs(tx.conn, list(new_jobs.values()))
    inserted = [node_to_db(n) for name, n in new_nodes.items() if name not in old_nodes]
    updated = [{f"b_{k}": v for k, v in node_to_db(n).items()}
               for name, n in new_nodes.items() if name in old_nodes]
    if inserted:
        tx.conn.execute(sa.insert(nodes), inserted)
    if updated:
        tx.conn.execute(_update_node, updated)
    return [r.seq for r in rows]


def _load_jobs(conn: sa.Connection, ids: set[int]) -> dict[int, JobRow]:
    out: dict[int, JobRow] = {}
    for chunk in _chunks(sorted(ids)):
        for row in conn.execute(sa.select(jobs).where(jobs.c.id.in_(chunk))):
            job = job_from_db(row)
            out[job.id] = job
    return out


def _load_nodes(conn: sa.Connection, names: set[str]) -> dict[str, NodeRow]:
    out: dict[str, NodeRow] = {}
    for chunk in _chunks(sorted(names)):
        for row in conn.execute(sa.select(nodes).where(nodes.c.name.in_(chunk))):
            node = node_from_db(row)
            out[node.name] = node
    return out


# -- scheduling info --------------------------------------------------------------------

@dataclass(eq=False)
class SchedulingInfoOp(WriteOp[None]):
    """Set ``reason``, ``eta_ts`` and ``priority`` of pending jobs (no event: see Store)."""

    rows: Sequence[tuple[int, str | None, float | None, Mapping[str, Any] | None]]

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[SchedulingInfoOp]) -> list[GefionError | None]:
        tx.lock()  # serialize with appends, which rewrite whole job rows
        for op in ops:
            for chunk in _chunks(op.rows):
                tx.hot.update_scheduling_info(tx.conn, chunk)
        return [None] * len(ops)


# -- rebuild ----------------------------------------------------------------------------

@dataclass(eq=False)
class RebuildOp(WriteOp[tuple[int, int]]):
    """Replace the projections (tenancy's too) by what the log says; returns (jobs,
    nodes) rebuilt."""

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[RebuildOp]) -> list[tuple[int, int] | GefionError]:
        tx.lock()
        job_rows, node_rows = projection.replay(read_events(tx.conn))
        tx.conn.execute(sa.delete(jobs))
        tx.conn.execute(sa.delete(nodes))
        for job_chunk in _chunks(list(job_rows.values())):
            tx.hot.insert_jobs(tx.conn, job_chunk)
        for node_chunk in _chunks([node_to_db(n) for n in node_rows.values()]):
            tx.conn.execute(sa.insert(nodes), node_chunk)
        tenancy_ops.rebuild(tx.conn, read_events(tx.conn))
        # A log imported from elsewhere may run ahead of this database's head.
        tx.raise_head(_max_seq(tx.conn), max(job_rows, default=0))
        return [(len(job_rows), len(node_rows))] * len(ops)


def read_events(conn: sa.Connection, after_seq: int = 0,
                upto_seq: int | None = None) -> Iterable[EventRow]:
    """Events with ``after_seq < seq <= upto_seq`` in order, read in pages."""
    while True:
        query = sa.select(events).where(events.c.seq > after_seq)
        if upto_seq is not None:
            query = query.where(events.c.seq <= upto_seq)
        page = [event_from_db(r) for r in
                conn.execute(query.order_by(events.c.seq).limit(_CHUNK))]
        yield from page
        if len(page) < _CHUNK:
            return
        after_seq = page[-1].seq


def _max_seq(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0)))
               .scalar_one())
