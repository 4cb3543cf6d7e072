"""Submissions, the store's hot write: :class:`Submit` (one checked submission) and the
write ops that commit them, alone (:class:`SubmitOp`) or as an all-or-nothing batch
(:class:`SubmitBatchOp`).

Each job's spec is encoded to JSON once, when it is checked (:func:`checked_submit`); the
``job.submitted`` event and the job row both store that text (the event's payload is
spliced around it, :func:`~gefion.store.hotpath.submitted_json`), so a spec of a few
kilobytes (script and environment) is encoded once, not three times. A batch's
submissions are plain records, not ops: one future and one wake-up per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gefion.core.errors import GefionError, InputError
from gefion.store import checks, projection
from gefion.store.records import EventKind, EventRow, JobRow, NewJob
from gefion.store.writer import Tx, WriteOp


@dataclass(frozen=True, slots=True)
class Submit:
    """One checked submission: its jobs, each spec's stored JSON text, when, under which
    idempotency key, and whether the jobs form an array."""

    jobs: tuple[NewJob, ...]
    specs_json: tuple[str, ...]
    ts: float
    idempotency_key: str | None
    is_array: bool


def checked_submit(jobs: tuple[NewJob, ...], ts: float,
                   idempotency_key: str | None) -> Submit | None:
    """The checked write of one submission (None: no jobs); raises InputError naming the
    job (``jobs[2].spec``)."""
    if not jobs:
        return None
    tasks = [job.array_task_id if isinstance(job, NewJob) else None for job in jobs]
    is_array = tasks[0] is not None
    if is_array and (None in tasks or len(set(tasks)) != len(tasks)):
        raise InputError("an array's jobs all need distinct task ids", field="array_task_id")
    if not is_array and any(t is not None for t in tasks):
        raise InputError("either every job of a submission is an array task or none",
                         field="array_task_id")
    specs_json = tuple(checks.check_new_job(job, i) for i, job in enumerate(jobs))
    return Submit(jobs, specs_json, ts, idempotency_key, is_array)


@dataclass(eq=False)
class SubmitOp(WriteOp[list[int]]):
    """Submit one submission's jobs: contiguous ids, one ``job.submitted`` event each."""

    submit: Submit

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[SubmitOp]) -> list[list[int] | GefionError]:
        return submit_all(tx, [op.submit for op in ops])


@dataclass(eq=False)
class SubmitBatchOp(WriteOp[list[list[int]]]):
    """Several submissions, all or nothing (``Store.submit_batch``)."""

    submissions: Sequence[Submit]

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def run_many(cls, tx: Tx, ops: Sequence[SubmitBatchOp]
                 ) -> list[list[list[int]] | GefionError]:
        outcomes = iter(submit_all(tx, [s for batch in ops for s in batch.submissions]))
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


def submit_all(tx: Tx, submits: Sequence[Submit]) -> list[list[int] | GefionError]:
    """Write ``submits`` in ``tx``: the ids of each, or the error of a repeated key used
    for another number of jobs (that submission writes nothing)."""
    # The log head's lock first: a submission of the same key that committed while we
    # waited for it is then visible to the lookup (PostgreSQL reads committed data per
    # statement), so concurrent retries of one key never both insert.
    tx.lock()
    keys = {s.idempotency_key for s in submits if s.idempotency_key is not None}
    known = _ids_for_keys(tx, keys) if keys else {}
    outcomes: list[list[int] | GefionError] = []
    # The submissions that write (not repeats of a key seen before, or earlier in this
    # run) get their ids and seqs in one allocation.
    seen = set(known)
    fresh: set[int] = set()
    for s in submits:
        if s.idempotency_key is None or s.idempotency_key not in seen:
            fresh.add(id(s))
            if s.idempotency_key is not None:
                seen.add(s.idempotency_key)
    total = sum(len(s.jobs) for s in submits if id(s) in fresh)
    seqs, ids = tx.allocate(total, total) if total else (range(0), range(0))
    next_seq, next_id = iter(seqs), iter(ids)
    event_rows: list[EventRow] = []
    job_rows: list[JobRow] = []
    specs_json: list[str] = []
    submitted = EventKind.JOB_SUBMITTED.value
    for s in submits:
        key = s.idempotency_key
        if id(s) not in fresh:
            assert key is not None
            earlier = known[key]
            if len(earlier) != len(s.jobs):
                outcomes.append(InputError(
                    f"idempotency key {key!r} was used for a submission of "
                    f"{len(earlier)} job(s), not {len(s.jobs)}", field="idempotency_key"))
            else:
                outcomes.append(earlier)
            continue
        s_ids = [next(next_id) for _ in s.jobs]
        array_job_id = s_ids[0] if s.is_array else None
        for i, (job_id, job) in enumerate(zip(s_ids, s.jobs, strict=True)):
            payload = projection.submitted_payload(
                name=job.name, user=job.user, project=job.project, qos=job.qos,
                spec=job.spec, held=job.held, array_job_id=array_job_id,
                array_task_id=job.array_task_id,
                idempotency_key=key if i == 0 else None,
                batch_size=len(s_ids) if i == 0 and key is not None else None)
            seq = next(next_seq)
            row = projection.submitted_row(job_id, seq, s.ts, payload, job.decoded)
            event_rows.append(EventRow(seq, s.ts, submitted, job_id, None, payload, row))
            job_rows.append(row)
        specs_json.extend(s.specs_json)
        if key is not None:
            known[key] = s_ids
        outcomes.append(s_ids)
    if event_rows:
        tx.hot.insert_submissions(tx.conn, event_rows, job_rows, specs_json)
        tx.events.extend(event_rows)
    return outcomes


def _ids_for_keys(tx: Tx, keys: set[str]) -> dict[str, list[int]]:
    """The ids of earlier submissions with these keys: the first job carries the key, and
    its ``job.submitted`` event how many contiguous ids the submission got."""
    first = tx.hot.first_ids(tx.conn, sorted(keys))
    if not first:
        return {}
    sizes = tx.hot.submission_sizes(tx.conn, sorted(first.values()))
    return {key: list(range(job_id, job_id + sizes.get(job_id, 1)))
            for key, job_id in first.items()}
