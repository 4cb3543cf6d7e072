"""The write path's statements, run on the DBAPI cursor.

Submissions are the store's hot path (≥ 2,000/s through the API). Executed through
SQLAlchemy's Core, each statement costs ~100 µs of Python (cache key, execution context,
result set-up) against ~10–20 µs for SQLite itself: a one-job submission (five statements)
ran at ~1,100/s, and at ~6,600/s straight on the cursor (measured on a 2-core machine
like CI's). So the few statements that every write runs are rendered once per backend from
the Core tables of :mod:`gefion.store.schema` (one source for names and columns) and
executed on the raw cursor of the transaction's connection, inside the transaction that
SQLAlchemy began. Reads, migrations and everything else stay on SQLAlchemy. JSON values
are encoded here (the cursor does not know the column types), but a submitted job's spec,
which its checks encoded already (:mod:`gefion.store.submit_ops`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gefion.store.records import EventRow, JobRow
from gefion.store.schema import (
    JOB_MUTABLE_COLUMNS,
    allocation_to_json,
    events,
    jobs,
    log_head,
)

_ONE: sa.ColumnElement[int] = sa.literal_column("1")
#: Submissions of at least this many jobs are inserted by COPY on PostgreSQL; smaller ones
#: keep the one round trip of pipelined INSERTs, where COPY takes one per table (a chosen
#: bound, not a measured one).
_COPY_FROM = 8


#: Compact, and strict: PostgreSQL's json refuses NaN and infinities, so both backends do.
#: The reference encoder; :func:`dumps` uses orjson (about 12× faster on a job's spec of
#: a few kilobytes) wherever the two agree.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
#: Dataclasses and datetimes go to ``default`` (which refuses them), as the standard
#: encoder refuses them.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
_PLAIN = (str, int, bool, type(None))


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in ``value`` (orjson would write them as null)."""
    kind = type(value)
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return not isinstance(value, float) or math.isfinite(value)
    for item in items:
        kind = type(item)
        if kind in _PLAIN:
            continue
        if kind is float:
            if item - item != 0.0:  # NaN - NaN and inf - inf are NaN
                return False
        elif not _finite(item):
            return False
    return True


def dumps(value: Any) -> str | None:
    """JSON text for a JSON column (None stays SQL NULL). Raises ValueError (NaN, inf) or
    TypeError (not JSON) for a value that cannot be stored.

    orjson encodes when the value holds no NaN or infinity; what it refuses (keys that are
    not text, integers beyond 64 bits, ...) goes to the standard encoder, which stores or
    refuses it as it always did."""
    if value is None:
        return None
    fast = orjson_dumps(value)
    return _ENCODER.encode(value) if fast is None else fast.decode()


def orjson_dumps(value: Any) -> bytes | None:
    """``value`` as compact JSON by orjson where it writes what the standard encoder would
    (no NaN or infinity, text keys, 64-bit integers, no dataclass or datetime); None
    otherwise, for the caller's standard encoder to decide."""
    if not _finite(value):
        return None
    try:
        return orjson.dumps(value, default=_not_json, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        return None


def submitted_json(payload: Mapping[str, Any], spec_json: str) -> str:
    """``dumps(payload)`` for a payload whose ``spec`` is encoded already (``spec_json``):
    the same text, with the spec spliced in rather than encoded again."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    part = before
    for key, value in payload.items():
        if key == "spec":
            part = after
        else:
            part[key] = value
    inner = [cast(str, dumps(before))[1:-1], '"spec":' + spec_json,
             cast(str, dumps(after))[1:-1]]
    return "{" + ",".join(p for p in inner if p) + "}"


def _loads(value: Any) -> Any:
    """A JSON column as read by the cursor: text on SQLite, decoded already by psycopg."""
    return json.loads(value) if isinstance(value, str | bytes) else value


class HotPath:
    """The write statements of one backend, rendered once."""

    def __init__(self, backend: str) -> None:
        dialect: sa.Dialect
        self._backend = backend
        self._list_param: Any
        # A list parameter: a JSON array unpacked by json_each on SQLite, an array on
        # PostgreSQL (one statement text whatever the length, so it is prepared once).
        in_list: str
        if backend == "sqlite":
            dialect = sqlite.dialect(paramstyle="named")
            in_list = "IN (SELECT value FROM json_each(:{}))"
            self._list_param = dumps
        elif backend == "postgresql":
            dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
            in_list = "= ANY(%({})s)"
            self._list_param = list
        else:
            raise ValueError(f"no hot path for {backend!r}")

        def render(stmt: sa.ClauseElement) -> str:
            return str(stmt.compile(dialect=dialect))

        self.insert_event = render(sa.insert(events))
        self.insert_job = render(sa.insert(jobs))
        self.update_job = render(
            sa.update(jobs).where(jobs.c.id == sa.bindparam("id"))
            .values({c: sa.bindparam(c) for c in JOB_MUTABLE_COLUMNS}))
        self.set_scheduling_info = render(
            sa.update(jobs)
            .where(jobs.c.id == sa.bindparam("id"), jobs.c.state == sa.literal_column("'PENDING'"))
            .values(reason=sa.bindparam("reason"), eta_ts=sa.bindparam("eta_ts"),
                    priority=sa.bindparam("priority")))
        # PostgreSQL: one UPDATE ... FROM a set of rows beats 10,000 pipelined UPDATEs 5×.
        # The rows travel as one JSON array: psycopg dumps Python lists into PostgreSQL
        # arrays element by element in Python (~35 µs a job), orjson writes it at once.
        self._set_scheduling_info_rows = (
            "UPDATE jobs SET reason = v.reason, eta_ts = v.eta_ts, priority = v.priority "
            "FROM json_to_recordset(%(rows)s::json) "
            "AS v(id bigint, reason text, eta_ts float8, priority json) "
            "WHERE jobs.id = v.id AND jobs.state = 'PENDING'")
        self._read_head = render(sa.select(log_head.c.last_seq).where(log_head.c.id == _ONE))
        self.lock_head = render(
            sa.select(log_head.c.last_seq, log_head.c.last_job_id)
            .where(log_head.c.id == _ONE).with_for_update())
        self.advance_head = render(
            sa.update(log_head).where(log_head.c.id == _ONE)
            .values(last_seq=log_head.c.last_seq + sa.bindparam("n_seq"),
                    last_job_id=log_head.c.last_job_id + sa.bindparam("n_job"))
            .returning(log_head.c.last_seq, log_head.c.last_job_id))
        self.write_head = render(
            sa.update(log_head).where(log_head.c.id == _ONE)
            .values(last_seq=sa.bindparam("last_seq"), last_job_id=sa.bindparam("last_job_id")))
        self._first_ids = ("SELECT idempotency_key, id FROM jobs WHERE idempotency_key "
                           + in_list.format("keys"))
        self._submission_sizes = ("SELECT job_id, payload FROM events WHERE kind = "
                                  "'job.submitted' AND job_id " + in_list.format("ids"))

    # -- execution ----------------------------------------------------------------------

    @staticmethod
    def execute(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> list[Any]:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    @staticmethod
    def executemany(conn: sa.Connection, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            cursor = conn.connection.cursor()
            try:
                if len(rows) == 1:  # psycopg's executemany pays for a pipeline round trip
                    cursor.execute(sql, rows[0])
                else:
                    cursor.executemany(sql, rows)
            finally:
                cursor.close()

    def pipeline(self, conn: sa.Connection) -> AbstractContextManager[Any]:
        """On PostgreSQL, send the statements run inside in one round trip (results are
        not waited for); elsewhere a no-op."""
        if self._backend == "postgresql":
            driver = conn.connection.driver_connection
            assert driver is not None
            return cast(AbstractContextManager[Any], driver.pipeline())
        return nullcontext()

    # -- the statements -----------------------------------------------------------------

    def last_seq(self, conn: sa.Connection) -> int:
        """The seq of the last committed event (0: none yet)."""
        return int(self.execute(conn, self._read_head, {})[0][0])

    def first_ids(self, conn: sa.Connection, keys: Sequence[str]) -> dict[str, int]:
        """Idempotency key → id of the first job submitted with it."""
        rows = self.execute(conn, self._first_ids, {"keys": self._list_param(list(keys))})
        return {key: int(job_id) for key, job_id in rows}

    def submission_sizes(self, conn: sa.Connection, first_ids: Sequence[int]) -> dict[int, int]:
        """First job id of a keyed submission → how many jobs it had (contiguous ids)."""
        rows = self.execute(conn, self._submission_sizes,
                            {"ids": self._list_param(list(first_ids))})
        return {int(job_id): int(_loads(payload).get("batch_size") or 1)
                for job_id, payload in rows}

    def update_scheduling_info(self, conn: sa.Connection, rows: Sequence[
            tuple[int, str | None, float | None, str | None]]) -> None:
        """Set (reason, eta_ts, priority) of the jobs among ``rows`` that are PENDING; the
        priority factors come as JSON text (encoded when they were checked)."""
        if not rows:
            return
        if self._backend == "postgresql":
            self.execute(conn, self._set_scheduling_info_rows, {"rows": _json_rows(rows)})
        else:
            self.executemany(conn, self.set_scheduling_info, [
                {"id": job_id, "reason": reason, "eta_ts": eta, "priority": priority}
                for job_id, reason, eta, priority in rows])

    def insert_submissions(self, conn: sa.Connection, event_rows: Sequence[EventRow],
                           job_rows: Sequence[JobRow], specs_json: Sequence[str]) -> None:
        """Insert ``job.submitted`` events and their job rows; ``specs_json`` is each job's
        spec, encoded already. On PostgreSQL a batch goes by ``COPY``: half the client CPU
        of pipelined INSERTs a row and less of the backend's (docs/controller.md)."""
        events_params = [
            {"seq": e.seq, "ts": e.ts, "kind": e.kind, "job_id": e.job_id, "node": e.node,
             "payload": submitted_json(e.payload, spec)}
            for e, spec in zip(event_rows, specs_json, strict=True)]
        jobs_params = [_job_params(j, spec) for j, spec in zip(job_rows, specs_json, strict=True)]
        if self._backend == "postgresql" and len(job_rows) >= _COPY_FROM:
            self._copy(conn, events.name, events_params)
            self._copy(conn, jobs.name, jobs_params)
            return
        with self.pipeline(conn):
            self.executemany(conn, self.insert_event, events_params)
            self.executemany(conn, self.insert_job, jobs_params)

    @staticmethod
    def _copy(conn: sa.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """``COPY table FROM STDIN`` of ``rows`` (dicts with the same keys, in order); JSON
        columns come as their text, which the server parses as it would a parameter."""
        columns = list(rows[0])
        cursor = conn.connection.cursor()
        try:
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
        finally:
            cursor.close()

    def insert_events(self, conn: sa.Connection, rows: Sequence[EventRow]) -> None:
        self.executemany(conn, self.insert_event, [
            {"seq": e.seq, "ts": e.ts, "kind": e.kind, "job_id": e.job_id, "node": e.node,
             "payload": dumps(e.payload)} for e in rows])

    def insert_jobs(self, conn: sa.Connection, rows: Sequence[JobRow]) -> None:
        self.executemany(conn, self.insert_job, [_job_params(j) for j in rows])

    def update_jobs(self, conn: sa.Connection, rows: Sequence[JobRow]) -> None:
        """Write the columns events change (:data:`JOB_MUTABLE_COLUMNS`)."""
        self.executemany(conn, self.update_job, [_mutable_params(j) for j in rows])


def _json_rows(rows: Sequence[tuple[int, str | None, float | None, str | None]]) -> str:
    """``[{"id": …, "reason": …, "eta_ts": …, "priority": …}, …]`` as JSON, each priority
    spliced in as the JSON text it already is."""
    enc = orjson.dumps
    return (b"[%b]" % b",".join(
        b'{"id":%d,"reason":%b,"eta_ts":%b,"priority":%b}' % (
            job_id, enc(reason), enc(eta), b"null" if priority is None else priority.encode())
        for job_id, reason, eta, priority in rows)).decode()


def _job_params(job: JobRow, spec_json: str | None = None) -> dict[str, Any]:
    """The row's parameters; ``spec_json``: its spec, encoded already."""
    params = _mutable_params(job)
    params.update({
        "array_job_id": job.array_job_id, "array_task_id": job.array_task_id,
        "name": job.name, "user": job.user, "project": job.project, "qos": job.qos,
        "spec": dumps(job.spec) if spec_json is None else spec_json, "submit_ts": job.submit_ts,
        "idempotency_key": job.idempotency_key})
    return params


def _mutable_params(job: JobRow) -> dict[str, Any]:
    """The id and the columns events change (:data:`JOB_MUTABLE_COLUMNS`)."""
    return {
        "id": job.id, "state": job.state.value, "start_ts": job.start_ts,
        "end_ts": job.end_ts, "exit_code": job.exit_code,
        "allocation": dumps(allocation_to_json(job.allocation)) if job.allocation else "{}",
        "held": job.held, "restarts": job.restarts, "reason": job.reason,
        "eta_ts": job.eta_ts, "priority": dumps(job.priority),
        "updated_seq": job.updated_seq, "gpu_s": job.gpu_s, "energy_j": job.energy_j,
    }


@functools.cache
def hot_path(backend: str) -> HotPath:
    """The statements of ``backend``, rendered once per process."""
    return HotPath(backend)
