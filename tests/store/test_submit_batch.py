"""Batches of submissions: one transaction, all or nothing, exactly once with a key."""

from __future__ import annotations

import threading

import pytest

from gefion.core.errors import InputError
from gefion.store import NewJob, Store
from tests.store.builders import all_jobs, new_job


def test_a_batch_gives_each_submission_its_ids_in_order_and_arrays_their_own_id(
        store: Store) -> None:
    store.submit([new_job("before")], ts=1.0)
    ids = store.submit_batch([[new_job("a")],
                              [new_job("sweep", array_task_id=i) for i in (0, 1, 2)],
                              [new_job("b"), new_job("c")]], ts=2.0)
    assert ids == [[2], [3, 4, 5], [6, 7]]
    jobs = all_jobs(store)
    assert [(jobs[i].name, jobs[i].array_job_id) for i in range(2, 8)] == [
        ("a", None), ("sweep", 3), ("sweep", 3), ("sweep", 3), ("b", None), ("c", None)]
    assert store.last_seq() == 7  # one job.submitted event per job
    assert store.submit_batch([], ts=3.0) == []


def test_a_bad_submission_fails_the_whole_batch_and_names_itself(store: Store) -> None:
    with pytest.raises(InputError) as err:
        store.submit_batch([[new_job("ok")], [new_job(array_task_id=1), new_job()]], ts=1.0)
    assert err.value.field == "submissions[1].array_task_id"
    with pytest.raises(InputError) as err:
        store.submit_batch([[new_job("ok")], []], ts=1.0)
    assert err.value.field == "submissions[1]"
    assert store.last_seq() == 0 and all_jobs(store) == {}


def test_a_retried_batch_returns_the_same_ids_and_writes_nothing(store: Store) -> None:
    batch = [[new_job("a")], [new_job("b"), new_job("c")]]
    first = store.submit_batch(batch, ts=1.0, idempotency_key="k1")
    seq = store.last_seq()
    assert store.submit_batch(batch, ts=2.0, idempotency_key="k1") == first
    assert store.last_seq() == seq
    # the key of a batch is not the key of a single submission
    assert store.submit([new_job("d")], ts=3.0, idempotency_key="k1") == [4]


def test_a_key_reused_for_a_different_batch_fails_it_whole(store: Store) -> None:
    store.submit_batch([[new_job("a")], [new_job("b")]], ts=1.0, idempotency_key="k")
    seq = store.last_seq()
    with pytest.raises(InputError) as err:  # submission 1 now has two jobs, not one
        store.submit_batch([[new_job("a")], [new_job("b"), new_job("c")], [new_job("d")]],
                           ts=2.0, idempotency_key="k")
    assert err.value.field == "submissions[1].idempotency_key"
    assert store.last_seq() == seq  # submission 2, new, was not written either


def test_concurrent_retries_of_one_batch_submit_it_once(store: Store) -> None:
    batch = [[new_job(f"j{i}")] for i in range(20)]
    answers: list[list[list[int]]] = []

    def send() -> None:
        answers.append(store.submit_batch(batch, ts=1.0, idempotency_key="same"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 8 and all(a == answers[0] for a in answers)
    assert len(all_jobs(store)) == 20


def test_text_that_copy_escapes_round_trips_through_a_large_batch(store: Store) -> None:
    """A batch large enough for PostgreSQL's COPY path holds text with every character the
    COPY format escapes (tab, newline, carriage return, backslash, the \\N of NULL) and
    more; each spec and name reads back exactly, from the job row and from its event."""
    nasty = 'a\tb\nc\rd\\e \\N "q" \\\\t é ✓ \x01 end'
    batch = [[NewJob(name=f"{nasty}{i}", user="ana", project="nlp",
                     spec={"gpus": 1, "time_limit_s": 600, "project": "nlp",
                           "script": f"#!/bin/bash\n{nasty}\n", "env": {"X": nasty, "I": str(i)}},
                     array_task_id=i)
              for i in range(12)]]
    (ids,) = store.submit_batch(batch, ts=1.0)
    for i, job_id in enumerate(ids):
        row = store.get_job(job_id)
        assert row is not None and row.name == f"{nasty}{i}" and row.spec == batch[0][i].spec
        (event,) = store.events_for_job(job_id)
        assert event.payload["spec"] == batch[0][i].spec and event.payload["name"] == row.name


def test_events_submitted_here_carry_the_row_they_project_to_with_the_spec_decoded(
        store: Store) -> None:
    """A ``job.submitted`` event this process wrote carries the writer's job row: the row
    the projection makes of the event, plus the JobSpec it was submitted with, so that the
    scheduler loop neither projects the event again nor decodes the spec (JSON → JobSpec)."""
    from gefion.core.jobs import Dependency, JobSpec
    from gefion.store.codec import spec_from_json
    from gefion.store.projection import apply
    from gefion.store.records import JobRow

    specs = [JobSpec(gpus=16, time_limit_s=600, project="nlp", user="ana", name="big",
                     gpus_per_node=8, qos="high", exclusive=True),
             JobSpec(gpus=1, time_limit_s=60, project="nlp", user="ana", name="after",
                     depends_on=Dependency.parse("afterok:1"), preemptible=True)]
    jobs = [NewJob.from_spec(s, held=i == 1, script="#!/bin/sh\n", env={"A": "1"})
            for i, s in enumerate(specs)]
    ids = store.submit_batch([[jobs[0]], [jobs[1]]], ts=5.0)
    events = store.events_since(0)
    assert [e.job_id for e in events] == [i for (i,) in ids]
    for event, spec in zip(events, specs, strict=True):
        assert isinstance(event.row, JobRow)
        assert event.row == apply(event, None)
        assert event.row.decoded is spec
        assert spec_from_json(event.row.spec) == spec
        assert event.row.to_job().spec is spec  # not decoded again
    assert all_jobs(store)[ids[1][0]].decoded is None  # read back: decoded on demand
    assert all_jobs(store)[ids[1][0]].to_job().spec == specs[1]
