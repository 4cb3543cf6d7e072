"""Queries: pagination, filters, counts, the event log; the queue-view bulk update."""

from __future__ import annotations

import time

import pytest

from gefion.core.errors import InputError
from gefion.core.jobs import JobState
from gefion.store import EventKind, NewEvent, Store
from tests.store.builders import new_job

K = EventKind


@pytest.fixture
def populated(store: Store) -> Store:
    """Jobs 1-12: users ana/bo alternating, projects nlp (1-6) and cv (7-12), an array
    (13-15); 2 and 4 run, 4 completes, 6 is cancelled."""
    for i in range(12):
        store.submit([new_job(f"job{i % 3}", user="ana" if i % 2 == 0 else "bo",
                              project="nlp" if i < 6 else "cv")], ts=float(i))
    store.submit([new_job("sweep", array_task_id=t) for t in range(3)], ts=20.0)
    store.append([NewEvent(K.JOB_STARTED, 30.0, job_id=2), NewEvent(K.JOB_STARTED, 30.0, job_id=4),
                  NewEvent(K.JOB_FINISHED, 31.0, job_id=4, payload={"exit_code": 0}),
                  NewEvent(K.JOB_CANCELLED, 32.0, job_id=6)])
    return store


def test_keyset_pagination_walks_every_job_once_in_id_order(populated: Store) -> None:
    seen: list[int] = []
    after = None
    while page := populated.list_jobs(after_id=after, limit=4):
        assert len(page) <= 4
        seen += [j.id for j in page]
        after = page[-1].id
    assert seen == list(range(1, 16))


@pytest.mark.parametrize(("filters", "ids"), [
    ({"user": "bo"}, [2, 4, 6, 8, 10, 12]),
    ({"project": "cv", "user": "ana"}, [7, 9, 11]),
    ({"name": "job1"}, [2, 5, 8, 11]),
    ({"states": [JobState.RUNNING, "COMPLETED"]}, [2, 4]),
    ({"states": ["CANCELLED"], "user": "bo"}, [6]),
    ({"array_job_id": 13}, [13, 14, 15]),
    ({"user": "bo", "after_id": 6, "limit": 2}, [8, 10]),
    ({"states": []}, []),
])
def test_filters_combine(populated: Store, filters: dict[str, object], ids: list[int]) -> None:
    assert [j.id for j in populated.list_jobs(**filters)] == ids  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 10_001}, "limit"), ({"states": ["DONE"]}, "states"),
])
def test_bad_list_arguments_are_input_errors(store: Store, kwargs: dict[str, object],
                                             field: str) -> None:
    with pytest.raises(InputError) as err:
        store.list_jobs(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_counts_and_active_jobs(populated: Store) -> None:
    counts = populated.count_jobs_by_state()
    assert set(counts) == set(JobState)
    assert (counts[JobState.PENDING], counts[JobState.RUNNING], counts[JobState.COMPLETED],
            counts[JobState.CANCELLED], counts[JobState.FAILED]) == (12, 1, 1, 1, 0)
    active = populated.active_jobs()
    assert [j.id for j in active] == [i for i in range(1, 16) if i not in (4, 6)]


def test_the_event_log_in_order(populated: Store) -> None:
    assert [e.kind for e in populated.events_for_job(4)] == [
        "job.submitted", "job.started", "job.finished"]
    assert populated.events_for_job(99) == []
    head = populated.events_since(0, limit=3)
    assert [e.seq for e in head] == [1, 2, 3]
    tail = populated.events_since(15)
    assert [(e.seq, e.kind, e.job_id) for e in tail] == [
        (16, "job.started", 2), (17, "job.started", 4), (18, "job.finished", 4),
        (19, "job.cancelled", 6)]
    assert populated.events_since(19) == []
    assert populated.last_seq() == 19


def test_scheduling_info_is_a_fast_bulk_update_of_pending_jobs_only(store: Store) -> None:
    n = 10_000
    ids = store.submit([new_job() for _ in range(n)], ts=1.0)
    store.append([NewEvent(K.JOB_STARTED, 2.0, job_id=ids[0])])
    seq = store.last_seq()
    rows = [(i, "Priority" if i % 2 else "Resources", 1000.0 + i,
             {"age": i / n, "fairshare": 0.25, "qos": 1.0}) for i in ids]
    t0 = time.perf_counter()
    store.set_scheduling_info(rows)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0, f"10,000 rows took {elapsed:.2f} s"
    assert store.last_seq() == seq  # not an event
    running, pending = store.get_job(ids[0]), store.get_job(ids[1])
    assert running is not None and pending is not None
    assert (running.reason, running.eta_ts, running.priority) == (None, None, None)
    assert (pending.reason, pending.eta_ts, pending.priority) == (
        "Resources", 1000.0 + ids[1], {"age": ids[1] / n, "fairshare": 0.25, "qos": 1.0})
    store.set_scheduling_info([(ids[1], None, None, None)])
    cleared = store.get_job(ids[1])
    assert cleared is not None and (cleared.reason, cleared.eta_ts, cleared.priority) == (
        None, None, None)


def test_scheduling_info_is_derived_output_that_a_rebuild_drops(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    store.set_scheduling_info([(jid, "Priority", 5.0, {"age": 1.0})])
    assert store.rebuild_projections() == (1, 0)
    rebuilt = store.get_job(jid)
    assert rebuilt is not None and (rebuilt.reason, rebuilt.eta_ts, rebuilt.priority) == (
        None, None, None)


def test_scheduling_info_checks_its_rows(store: Store) -> None:
    (jid,) = store.submit([new_job()], ts=1.0)
    with pytest.raises(InputError) as err:
        store.set_scheduling_info([(jid, "x", 1.0, {"age": float("nan")})])
    assert err.value.field == "priority"
    with pytest.raises(InputError):
        store.set_scheduling_info([(jid, "x" * 300, 1.0, None)])
