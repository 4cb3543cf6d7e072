"""The store's writes but submissions (:mod:`gefion.store.submit_ops`), as
:class:`~gefion.store.writer.WriteOp` s run by the writer.

Each ``run_many`` reads and checks everything first, and writes only once every check has
passed: an op that reports a bad request has written nothing (the writer's contract).
Statements on the hot path go through :mod:`gefion.store.hotpath`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa

from gefion.core.errors import GefionError, InputError
from gefion.store import projection, tenancy_ops
from gefion.store.records import EventKind, EventRow, JobRow, NewEvent, NodeRow
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


#: Every column of ``jobs`` but the spec: what an append reads of the jobs it changes.
_JOB_STATE = [c for c in jobs.c if c.name != "spec"]


def _load_jobs(conn: sa.Connection, ids: set[int]) -> dict[int, JobRow]:
    """The rows of ``ids`` without their specs (``spec`` is empty): the projection never
    reads a spec, and an append writes only the columns events change — while a spec with
    its environment is kilobytes of JSON to read and decode per job."""
    out: dict[int, JobRow] = {}
    for chunk in _chunks(sorted(ids)):
        for row in conn.execute(sa.select(*_JOB_STATE).where(jobs.c.id.in_(chunk))):
            job = job_from_db(row, spec={})
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

#: (job id, reason, eta_ts, priority factors as JSON text) of a pending job.
SchedulingRow = tuple[int, str | None, float | None, str | None]


@dataclass(eq=False)
class SchedulingInfoOp(WriteOp[None]):
    """Set ``reason``, ``eta_ts`` and ``priority`` of pending jobs (no event: see Store)."""

    rows: Sequence[SchedulingRow]

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
