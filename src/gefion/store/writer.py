"""Group commit: concurrent writers share one transaction (and one fsync).

Every write (a submission, an append, a scheduling-info update) is a :class:`WriteOp`
handed to :meth:`Writer.execute`, which returns only after the transaction holding it has
committed. Batching is leader/follower, with no thread of its own. A caller queues its op;
if no commit is in progress it becomes the leader: it takes every queued op (up to
``max_batch``), runs them in one transaction and resolves their futures, and goes on until
its own op is done; then it hands the lead to the oldest op still queued (whose caller is
waiting) or, if none is, steps down. So a lone caller commits its own op at once, in its
own thread, and callers that arrive while a commit is in flight ride together in the next.

Ops of one type that are next to each other in a batch run together (``run_many``), so N
queued submissions cost a handful of statements, not N transactions.

Failure. An op reports a bad request (a :class:`~gefion.core.errors.GefionError`) as its
outcome *before writing anything*, and the batch goes on. Any other exception while the
ops run rolls the batch back, and each op is then retried alone, so one op's failure never
fails another. If the commit itself fails, every op of the batch gets that error: the
outcome is unknown, and a client retries with its idempotency key.
"""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, Self, TypeVar

import sqlalchemy as sa

from gefion.core.errors import GefionError
from gefion.store.engine import WRITE_OPTION
from gefion.store.hotpath import HotPath, hot_path
from gefion.store.records import EventRow

T = TypeVar("T")

class Tx:
    """One writing transaction and the log head: the last ``seq`` and job id handed out.

    The head row is locked before anything is allocated from it (a row lock on PostgreSQL;
    on SQLite BEGIN IMMEDIATE holds the write lock already), so writers are serialized and
    ``seq`` and job ids come out in commit order. :meth:`lock` reads and locks the head
    first (for writes that must read rows before deciding, like an append);
    :meth:`allocate` on a head not yet read locks and advances it in one statement.
    """

    def __init__(self, conn: sa.Connection, hot: HotPath) -> None:
        self.conn = conn
        self.hot = hot
        self._head: tuple[int, int] | None = None
        self._written: tuple[int, int] | None = None
        self.events: list[EventRow] = []  # what this transaction wrote to the log

    def lock(self) -> tuple[int, int]:
        if self._head is None:
            (row,) = self.hot.execute(self.conn, self.hot.lock_head, {})
            self._head = self._written = (int(row[0]), int(row[1]))
        return self._head

    @property
    def last_seq(self) -> int:
        return self.lock()[0]

    def allocate(self, n_seq: int, n_job: int = 0) -> tuple[range, range]:
        """The next ``n_seq`` event seqs and ``n_job`` job ids."""
        if self._head is None:
            (row,) = self.hot.execute(self.conn, self.hot.advance_head,
                                      {"n_seq": n_seq, "n_job": n_job})
            self._head = self._written = (int(row[0]), int(row[1]))
        else:
            self._head = (self._head[0] + n_seq, self._head[1] + n_job)
        seq, job = self._head
        return range(seq - n_seq + 1, seq + 1), range(job - n_job + 1, job + 1)

    def raise_head(self, last_seq: int, last_job_id: int) -> None:
        """Move the head up to at least these (after importing or rebuilding a log)."""
        seq, job = self.lock()
        self._head = (max(seq, last_seq), max(job, last_job_id))

    def flush(self) -> None:
        """Write the head back, if this transaction moved it past what the database has."""
        if self._head is not None and self._head != self._written:
            self.hot.execute(self.conn, self.hot.write_head,
                             {"last_seq": self._head[0], "last_job_id": self._head[1]})
            self._written = self._head


class WriteOp(ABC, Generic[T]):
    """A unit of write work; its caller waits on :attr:`future`."""

    def __init__(self) -> None:
        self.future: Future[T] = Future()
        self._wake = threading.Event()  # set when the op is done, or when its caller leads
        self._lead = False

    @classmethod
    @abstractmethod
    def run_many(cls, tx: Tx, ops: Sequence[Self]) -> list[T | GefionError]:
        """Run ``ops`` in ``tx``; one outcome per op, in order. An op whose request is bad
        gets a GefionError as outcome and must not have written anything."""


def _op_type(op: WriteOp[Any]) -> type[WriteOp[Any]]:
    return type(op)


class _OpsFailed(Exception):
    """The ops raised; the transaction was rolled back."""


class Writer:
    """Runs write ops, in batches (``group_commit``) or each in its own transaction."""

    def __init__(self, engine: sa.Engine, *, group_commit: bool = True,
                 max_batch: int = 1024,
                 on_commit: Callable[[list[EventRow]], None] | None = None) -> None:
        self._engine = engine.execution_options(**{WRITE_OPTION: True})
        self._on_commit = on_commit  # told the events of each committed transaction
        self._hot = hot_path(engine.dialect.name)
        self._group_commit = group_commit
        self._max_batch = max_batch
        self._queue: deque[WriteOp[Any]] = deque()
        self._mutex = threading.Lock()
        self._leading = False
        self.transactions = 0  # committed write transactions (a gauge for metrics)
        self.ops = 0  # ops they carried; ops / transactions is the mean batch size

    def execute(self, op: WriteOp[T]) -> T:
        """Run ``op``; return its result once committed, or raise its error."""
        if not self._group_commit:
            self._commit([op])
            return op.future.result()
        with self._mutex:
            self._queue.append(op)
            lead = not self._leading
            self._leading = True
        if not lead:
            op._wake.wait()
            lead = op._lead
        if lead:
            self._lead_until_done(op)
        return op.future.result()

    def _lead_until_done(self, own: WriteOp[Any]) -> None:
        try:
            while not own.future.done():
                with self._mutex:
                    n = min(len(self._queue), self._max_batch)
                    batch = [self._queue.popleft() for _ in range(n)]
                try:
                    self._commit(batch)
                finally:
                    for op in batch:
                        if not op.future.done():  # only if _commit was interrupted
                            op.future.set_exception(RuntimeError("the write was interrupted"))
                        op._wake.set()
        finally:
            with self._mutex:
                if self._queue:
                    successor = self._queue[0]
                    successor._lead = True
                    successor._wake.set()
                else:
                    self._leading = False

    def _commit(self, batch: list[WriteOp[Any]], *, retry: bool = True) -> None:
        try:
            outcomes = self._run(batch)
        except _OpsFailed as failed:
            cause = failed.__cause__ or failed
            if len(batch) > 1:
                for op in batch:
                    self._commit([op])
            elif retry and isinstance(cause, sa.exc.IntegrityError):
                # Another process (or, without group commit, thread) committed the same
                # idempotency key between our lookup and our insert: the retry finds it.
                self._commit(batch, retry=False)
            else:
                batch[0].future.set_exception(cause)
            return
        except BaseException as e:  # connect, BEGIN or COMMIT failed: outcome unknown
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        for op, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, GefionError):
                op.future.set_exception(outcome)
            else:
                op.future.set_result(outcome)

    def _run(self, batch: list[WriteOp[Any]]) -> list[Any]:
        with self._engine.connect() as conn:
            trans = conn.begin()
            try:
                tx = Tx(conn, self._hot)
                outcomes: list[Any] = []
                for op_type, run in itertools.groupby(batch, key=_op_type):
                    outcomes.extend(op_type.run_many(tx, list(run)))
                tx.flush()
            except Exception as e:
                trans.rollback()
                raise _OpsFailed() from e
            trans.commit()
        if self._on_commit is not None and tx.events:
            self._on_commit(tx.events)
        with self._mutex:
            self.transactions += 1
            self.ops += len(batch)
        return outcomes
