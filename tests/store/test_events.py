"""Appending events: life cycles update the projections; illegal ones write nothing."""

from __future__ import annotations

import threading

import pytest

from gefion.core.errors import InputError, StateError
from gefion.core.jobs import JobState
from gefion.core.topology import NodeState
from gefion.store import EventKind, JobRow, NewEvent, NotFoundError, Store
from tests.store.builders import all_jobs, new_job

K = EventKind


def _job(store: Store, job_id: int) -> JobRow:
    row = store.get_job(job_id)
    assert row is not None
    return row


def _register(store: Store, *names: str) -> None:
    store.append([NewEvent(K.NODE_REGISTERED, 0.0, node=n, payload={"gpus": 8, "su": "su1"})
                  for n in names])


def test_pending_running_completed(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=10.0)
    seqs = store.append([NewEvent(K.JOB_STARTED, 20.0, job_id=jid,
                                  payload={"allocation": {"dgx001": [0, 1], "dgx002": [3]}})])
    running = _job(store, jid)
    assert running.state is JobState.RUNNING
    assert running.start_ts == 20.0
    assert running.allocation == (("dgx001", (0, 1)), ("dgx002", (3,)))
    assert running.updated_seq == seqs[0]
    store.append([NewEvent(K.JOB_FINISHED, 30.0, job_id=jid, payload={"exit_code": 0})])
    done = _job(store, jid)
    assert (done.state, done.end_ts, done.exit_code) == (JobState.COMPLETED, 30.0, 0)
    assert done.allocation == running.allocation  # where it ran, for accounting
    assert [e.kind for e in store.events_for_job(jid)] == [
        "job.submitted", "job.started", "job.finished"]
    # An append reads the rows it changes without their specs, and leaves the specs be.
    assert done.spec == new_job().spec and done.spec


def test_an_append_reads_no_spec(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appending a job's events reads its row without the spec (kilobytes of JSON with the
    environment): the projection never reads it, and the update does not write it."""
    import sqlalchemy as sa

    (jid,) = store.submit([new_job()], ts=10.0)
    selected: list[list[str]] = []
    real = sa.Connection.execute

    def spy(self: sa.Connection, statement: object, *args: object, **kw: object) -> object:
        if isinstance(statement, sa.Select):
            selected.append([c.name for c in statement.selected_columns])
        return real(self, statement, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(sa.Connection, "execute", spy)
    store.append([NewEvent(K.JOB_STARTED, 20.0, job_id=jid, payload={"allocation": {}})])
    reads = [names for names in selected if "state" in names and "held" in names]
    assert reads and all("spec" not in names for names in reads)


@pytest.mark.parametrize(("payload", "state"), [
    ({"exit_code": 3}, JobState.FAILED),
    ({"exit_code": None, "state": "TIMEOUT"}, JobState.TIMEOUT),
    ({"exit_code": 0, "state": "FAILED"}, JobState.FAILED),
])
def test_finished_states(store: Store, payload: dict[str, object], state: JobState) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.append([NewEvent(K.JOB_STARTED, 2.0, job_id=jid),
                  NewEvent(K.JOB_FINISHED, 3.0, job_id=jid, payload=payload)])
    assert _job(store, jid).state is state


def test_preempted_job_is_requeued_to_pending_and_restarted(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.append([NewEvent(K.JOB_STARTED, 2.0, job_id=jid, payload={"allocation": {"n1": [0]}})])
    store.append([NewEvent(K.JOB_PREEMPTED, 3.0, job_id=jid, payload={"by": 9, "grace_s": 30})])
    assert _job(store, jid).state is JobState.PREEMPTED
    store.append([NewEvent(K.JOB_REQUEUED, 4.0, job_id=jid)])
    requeued = _job(store, jid)
    assert (requeued.state, requeued.restarts, requeued.allocation, requeued.start_ts,
            requeued.end_ts) == (JobState.PENDING, 1, (), None, None)
    store.append([NewEvent(K.JOB_STARTED, 5.0, job_id=jid, payload={"allocation": {"n2": [1]}})])
    assert _job(store, jid).allocation == (("n2", (1,)),)


def test_node_fail_then_requeue(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.append([NewEvent(K.JOB_STARTED, 2.0, job_id=jid),
                  NewEvent(K.JOB_NODE_FAIL, 3.0, job_id=jid, node="n1"),
                  NewEvent(K.JOB_REQUEUED, 4.0, job_id=jid)])
    assert (_job(store, jid).state, _job(store, jid).restarts) == (JobState.PENDING, 1)


def test_cancel_a_pending_job(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.set_scheduling_info([(jid, "Priority", 50.0, {"age": 1.0})])
    store.append([NewEvent(K.JOB_CANCELLED, 2.0, job_id=jid, payload={"by": "ana"})])
    cancelled = _job(store, jid)
    assert (cancelled.state, cancelled.end_ts) == (JobState.CANCELLED, 2.0)
    assert (cancelled.reason, cancelled.eta_ts) == (None, None)  # the wait is over


def test_hold_and_release(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.append([NewEvent(K.JOB_HELD, 2.0, job_id=jid)])
    assert _job(store, jid).held
    with pytest.raises(StateError, match="held"):
        store.append([NewEvent(K.JOB_STARTED, 3.0, job_id=jid)])
    store.append([NewEvent(K.JOB_RELEASED, 4.0, job_id=jid)])
    assert not _job(store, jid).held
    with pytest.raises(StateError, match="not held"):
        store.append([NewEvent(K.JOB_RELEASED, 5.0, job_id=jid)])


@pytest.mark.parametrize(("setup", "illegal"), [
    ([], K.JOB_FINISHED),                                # PENDING -> COMPLETED
    ([], K.JOB_PREEMPTED),                               # PENDING -> PREEMPTED
    ([], K.JOB_REQUEUED),                                # PENDING -> PENDING
    ([K.JOB_STARTED], K.JOB_STARTED),                    # RUNNING -> RUNNING
    ([K.JOB_STARTED], K.JOB_REQUEUED),                   # RUNNING -> PENDING
    ([K.JOB_STARTED], K.JOB_HELD),                       # only pending jobs are held
    ([K.JOB_STARTED, K.JOB_FINISHED], K.JOB_CANCELLED),  # COMPLETED is final
    ([K.JOB_STARTED, K.JOB_FINISHED], K.JOB_STARTED),
    ([K.JOB_CANCELLED], K.JOB_STARTED),
])
def test_illegal_transitions_raise_state_error_and_write_nothing(
        store: Store, setup: list[EventKind], illegal: EventKind) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.append([NewEvent(k, 2.0, job_id=jid, payload={"exit_code": 0}) for k in setup])
    before, seq = _job(store, jid), store.last_seq()
    with pytest.raises(StateError):
        store.append([NewEvent(illegal, 3.0, job_id=jid, payload={"exit_code": 0})])
    assert _job(store, jid) == before
    assert store.last_seq() == seq
    assert len(store.events_since(0)) == seq


def test_an_append_is_all_or_nothing(store: Store) -> None:
    a, b = store.submit([new_job(), new_job()], ts=1.0)
    _register(store, "n1")
    seq = store.last_seq()
    with pytest.raises(StateError):
        store.append([NewEvent(K.JOB_STARTED, 2.0, job_id=a),
                      NewEvent(K.NODE_DRAINED, 2.0, node="n1"),
                      NewEvent(K.JOB_FINISHED, 2.0, job_id=b, payload={"exit_code": 0})])
    assert store.last_seq() == seq
    assert _job(store, a).state is JobState.PENDING
    assert store.list_nodes()[0].state is NodeState.IDLE


@pytest.mark.parametrize(("event", "error", "field"), [
    (NewEvent(K.JOB_STARTED, 1.0, job_id=999), NotFoundError, "job_id"),
    (NewEvent(K.NODE_DRAINED, 1.0, node="nope"), NotFoundError, "node"),
    (NewEvent("job.exploded", 1.0, job_id=1), InputError, "events[0].kind"),
    (NewEvent(K.JOB_STARTED, 1.0), InputError, "job_id"),
    (NewEvent(K.JOB_SUBMITTED, 1.0, job_id=1), InputError, "kind"),
    (NewEvent(K.JOB_STARTED, float("inf"), job_id=1), InputError, "events[0].ts"),
    (NewEvent(K.JOB_STARTED, 1.0, job_id=1, payload={"allocation": [1]}), InputError,
     "payload.allocation"),
    (NewEvent(K.JOB_FINISHED, 1.0, job_id=1, payload={"state": "RUNNING"}), InputError,
     "payload.state"),
    (NewEvent(K.NODE_REGISTERED, 1.0, node="n9", payload={"gpus": 8}), InputError,
     "payload.su"),
])
def test_malformed_events_are_typed_errors_naming_the_field(
        store: Store, event: NewEvent, error: type[Exception], field: str) -> None:
    store.submit([new_job()], ts=0.5)
    seq = store.last_seq()
    with pytest.raises(error) as err:
        store.append([event])
    assert getattr(err.value, "field", None) == field
    assert store.last_seq() == seq


def test_node_life_cycle(store: Store) -> None:
    _register(store, "dgx002", "dgx001")
    store.append([NewEvent(K.NODE_DRAINED, 1.0, node="dgx001", payload={"reason": "bad ib"})])
    nodes = store.list_nodes()
    assert [(n.name, n.gpus, n.su, n.state, n.reason) for n in nodes] == [
        ("dgx001", 8, "su1", NodeState.DRAINED, "bad ib"),
        ("dgx002", 8, "su1", NodeState.IDLE, None)]
    store.append([NewEvent(K.NODE_DOWN, 2.0, node="dgx001", payload={"reason": "power"}),
                  NewEvent(K.NODE_UP, 3.0, node="dgx001")])
    node = store.get_node("dgx001")
    assert node is not None and (node.state, node.reason) == (NodeState.IDLE, None)
    with pytest.raises(StateError):
        store.append([NewEvent(K.NODE_RESUMED, 4.0, node="dgx001")])
    # re-registering changes the hardware, keeps the administrative state
    store.append([NewEvent(K.NODE_DRAINED, 5.0, node="dgx002"),
                  NewEvent(K.NODE_REGISTERED, 6.0, node="dgx002",
                           payload={"gpus": 4, "su": "su2"})])
    node = store.get_node("dgx002")
    assert node is not None and (node.gpus, node.su, node.state) == (4, "su2",
                                                                     NodeState.DRAINED)


def test_one_bad_append_among_concurrent_writers_fails_alone(store: Store) -> None:
    ids = store.submit([new_job() for _ in range(40)], ts=1.0)
    errors: dict[int, BaseException] = {}
    barrier = threading.Barrier(len(ids))

    def client(jid: int) -> None:
        barrier.wait()
        # every fifth client sends an illegal event (PENDING -> COMPLETED)
        kind = K.JOB_FINISHED if jid % 5 == 0 else K.JOB_STARTED
        try:
            store.append([NewEvent(kind, 2.0, job_id=jid, payload={"exit_code": 0})])
        except BaseException as e:
            errors[jid] = e

    workers = [threading.Thread(target=client, args=(j,)) for j in ids]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(errors) == [j for j in ids if j % 5 == 0]
    assert all(isinstance(e, StateError) for e in errors.values())
    states = {j.id: j.state for j in all_jobs(store).values()}
    assert states == {j: JobState.PENDING if j % 5 == 0 else JobState.RUNNING for j in ids}
    seqs = [e.seq for e in store.events_since(0)]
    assert seqs == list(range(1, 40 + 32 + 1))


def test_tailing_from_memory_gives_exactly_what_the_database_holds(store: Store) -> None:
    """Events this process committed are served from memory; another process's events
    (here: a second Store on the same database) are read from the database in order."""
    _register(store, "n1")
    (a,) = store.submit([new_job("a")], ts=1.0, idempotency_key="k")
    store.submit_batch([[new_job("b")], [new_job("c", array_task_id=i) for i in (3, 4)]],
                       ts=2.0)
    store.append([NewEvent(K.JOB_STARTED, 3.0, job_id=a,
                           payload={"allocation": {"n1": [0, 1]}})])
    with Store.open(store._engine.url.render_as_string(hide_password=False)) as other:
        (d,) = other.submit([new_job("d")], ts=4.0)  # not in the first store's memory
        store.append([NewEvent(K.JOB_FINISHED, 5.0, job_id=a,
                               payload={"exit_code": 0, "state": "COMPLETED"})])
        from_db = other.events_since(0, limit=100)
    tailed, seq = [], 0
    while batch := store.events_since(seq, limit=3):
        tailed.extend(batch)
        seq = batch[-1].seq
    assert tailed == from_db
    assert [e.seq for e in tailed] == list(range(1, len(tailed) + 1))
    assert any(e.job_id == d for e in tailed)


def test_a_tailer_with_nothing_new_reads_no_events(store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A tailer that has seen every event asks the log head (one raw statement) and reads
    no events; events another process commits are still read from the database."""
    import sqlalchemy as sa

    (jid,) = store.submit([new_job()], ts=10.0)
    last = store.last_seq()
    selected: list[str] = []
    real = sa.Connection.execute

    def spy(self: sa.Connection, statement: object, *args: object, **kw: object) -> object:
        if isinstance(statement, sa.Select):
            selected.extend(t.name for t in statement.get_final_froms())
        return real(self, statement, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(sa.Connection, "execute", spy)
    assert store.events_since(last) == []
    assert "events" not in selected
    url = store._engine.url.render_as_string(hide_password=False)
    with Store.open(url) as other:  # another process's commit: not in this one's memory
        other.append([NewEvent(K.JOB_HELD, 11.0, job_id=jid)])
    assert [e.kind for e in store.events_since(last)] == ["job.held"]
