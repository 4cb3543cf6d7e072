"""Submissions: ids, arrays, idempotency keys, concurrency, group commit."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from gefion.core.errors import InputError
from gefion.core.jobs import Dependency, DependencyKind, JobSpec, JobState, TopologyConstraint
from gefion.store import EventKind, NewJob, Store, spec_from_json
from gefion.store.hotpath import _ENCODER, dumps, submitted_json
from tests.store.builders import all_jobs, new_job


def test_ids_are_monotonic_from_one_and_each_job_has_its_submitted_event(store: Store) -> None:
    ids = [store.submit([new_job(f"j{i}")], ts=100.0 + i)[0] for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    row = store.get_job(3)
    assert row is not None
    assert (row.name, row.state, row.submit_ts, row.held) == ("j2", JobState.PENDING, 102.0,
                                                              False)
    events = store.events_for_job(3)
    assert [(e.kind, e.ts, e.job_id) for e in events] == [("job.submitted", 102.0, 3)]
    assert row.updated_seq == events[0].seq


def test_a_submission_of_several_jobs_gets_contiguous_ids_in_one_transaction(
        store: Store) -> None:
    assert store.submit([new_job("a"), new_job("b", held=True)], ts=1.0) == [1, 2]
    assert [j.array_job_id for j in all_jobs(store).values()] == [None, None]
    held = store.get_job(2)
    assert held is not None and held.held
    assert store.submit([], ts=2.0) == []
    assert store.last_seq() == 2


def test_an_array_shares_the_first_tasks_id_as_array_job_id(store: Store) -> None:
    store.submit([new_job()], ts=1.0)
    ids = store.submit([new_job("sweep", array_task_id=i) for i in (0, 5, 7)], ts=2.0)
    assert ids == [2, 3, 4]
    rows = store.list_jobs(array_job_id=2)
    assert [(j.id, j.array_job_id, j.array_task_id) for j in rows] == [
        (2, 2, 0), (3, 2, 5), (4, 2, 7)]


@pytest.mark.parametrize(("tasks", "field"), [
    ([0, None], "array_task_id"), ([None, 1], "array_task_id"), ([1, 1], "array_task_id"),
])
def test_an_array_needs_distinct_task_ids_on_every_job(
        store: Store, tasks: list[int | None], field: str) -> None:
    with pytest.raises(InputError) as err:
        store.submit([new_job(array_task_id=t) for t in tasks], ts=1.0)
    assert err.value.field == field
    assert store.last_seq() == 0


def test_the_same_idempotency_key_returns_the_same_ids_and_writes_nothing(
        store: Store) -> None:
    first = store.submit([new_job(array_task_id=i) for i in range(3)], ts=1.0,
                         idempotency_key="req-1")
    seq = store.last_seq()
    again = store.submit([new_job(array_task_id=i) for i in range(3)], ts=5.0,
                         idempotency_key="req-1")
    assert again == first == [1, 2, 3]
    assert store.last_seq() == seq
    assert len(all_jobs(store)) == 3
    assert store.submit([new_job()], ts=6.0, idempotency_key="req-2") == [4]


def test_reusing_a_key_for_a_different_number_of_jobs_is_an_input_error(store: Store) -> None:
    store.submit([new_job()], ts=1.0, idempotency_key="k")
    with pytest.raises(InputError, match="idempotency key") as err:
        store.submit([new_job(), new_job()], ts=2.0, idempotency_key="k")
    assert err.value.field == "idempotency_key"
    assert store.last_seq() == 1


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"ts": float("nan")}, "ts"),
    ({"ts": "now"}, "ts"),
    ({"ts": 1.0, "idempotency_key": ""}, "idempotency_key"),
    ({"ts": 1.0, "idempotency_key": "k" * 256}, "idempotency_key"),
])
def test_bad_submission_arguments_are_input_errors(
        store: Store, kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        store.submit([new_job()], **kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize(("job", "field"), [
    (NewJob("n", "u", ""), "jobs[0].project"),
    (NewJob("n" * 256, "u", "p"), "jobs[0].name"),
    (NewJob("n", "u", "p", spec={"limit": float("inf")}), "jobs[0].spec"),
    (NewJob("n", "u", "p", spec={"when": object()}), "jobs[0].spec"),
    ({"name": "n", "user": "u", "project": "p"}, "jobs[0]"),
])
def test_bad_jobs_name_the_field_and_write_nothing(store: Store, job: NewJob,
                                                   field: str) -> None:
    with pytest.raises(InputError) as err:
        store.submit([job], ts=1.0)
    assert err.value.field == field
    assert store.last_seq() == 0


def test_a_jobspec_round_trips_through_the_stored_spec(store: Store) -> None:
    spec = JobSpec(gpus=16, time_limit_s=3600, project="nlp", user="ana", name="big",
                   nodes=2, depends_on=(Dependency(DependencyKind.AFTEROK, "7"),),
                   array_index=3, same_su=TopologyConstraint.REQUIRED)
    (job_id,) = store.submit([NewJob.from_spec(spec, script="/home/ana/run.sh")], ts=1.0)
    row = store.get_job(job_id)
    assert row is not None
    assert (row.name, row.user, row.project, row.qos, row.array_task_id) == (
        "big", "ana", "nlp", "normal", 3)
    assert row.spec["script"] == "/home/ana/run.sh"
    assert spec_from_json(row.spec) == spec
    core = row.to_job()
    assert (core.id, core.spec, core.submit_s, core.state) == (str(job_id), spec, 1.0,
                                                              JobState.PENDING)


@pytest.mark.parametrize("group_commit", [True, False], ids=["group", "per-call"])
def test_concurrent_submitters_get_unique_ids_each_present_exactly_once(
        backend: str, url_factory: Callable[[str], str], group_commit: bool) -> None:
    threads, per_thread = 16, 15 if group_commit else 6
    acknowledged: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []
    with Store.open(url_factory(backend), group_commit=group_commit) as store:
        barrier = threading.Barrier(threads)

        def client(t: int) -> None:
            barrier.wait()
            try:
                for i in range(per_thread):
                    tasks = 1 + (t + i) % 3
                    ids = store.submit(
                        [new_job(f"c{t}", array_task_id=k if tasks > 1 else None)
                         for k in range(tasks)],
                        ts=float(i), idempotency_key=f"{t}-{i}")
                    # a client retry of the same request: same answer, nothing new
                    if i % 5 == 0:
                        assert store.submit(
                            [new_job(f"c{t}", array_task_id=k if tasks > 1 else None)
                             for k in range(tasks)],
                            ts=float(i), idempotency_key=f"{t}-{i}") == ids
                    acknowledged[t].extend(ids)
            except BaseException as e:
                errors.append(e)

        workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert errors == []
        acked = [i for ids in acknowledged for i in ids]
        assert len(acked) == len(set(acked))
        for ids in acknowledged:
            assert ids == sorted(ids)  # each client sees its ids increase
        rows = all_jobs(store)
        assert set(rows) == set(acked)
        submitted = Counter(e.job_id for e in store.events_since(0, limit=10_000)
                            if e.kind == EventKind.JOB_SUBMITTED)
        assert set(submitted.values()) == {1}
        assert set(submitted) == set(acked)
        seqs = [e.seq for e in store.events_since(0, limit=10_000)]
        assert seqs == list(range(1, len(seqs) + 1))  # gap-free, in order
        transactions, ops = store.write_stats()
        if group_commit:
            assert transactions < ops  # submissions shared transactions
        else:
            assert transactions >= ops


@pytest.mark.parametrize("group_commit", [True, False], ids=["group", "per-call"])
def test_concurrent_retries_of_one_key_submit_once(
        backend: str, url_factory: Callable[[str], str], group_commit: bool) -> None:
    results: list[list[int]] = []
    with Store.open(url_factory(backend), group_commit=group_commit) as store:
        barrier = threading.Barrier(8)

        def client() -> None:
            barrier.wait()
            results.append(store.submit([new_job(), new_job()], ts=1.0,
                                        idempotency_key="same"))

        workers = [threading.Thread(target=client) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert results == [[1, 2]] * 8
        assert len(all_jobs(store)) == 2


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**80, max_value=2**80)
    | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers(0, 9), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_JSON)
def test_dumps_stores_and_refuses_what_the_standard_encoder_does(value: object) -> None:
    # orjson encodes where it agrees with the reference encoder (strict: no NaN or inf);
    # anything else is the reference's to store or refuse. (A bare None is SQL NULL.)
    value = {"v": value}
    try:
        expected: object = json.loads(_ENCODER.encode(value))
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            dumps(value)
        return
    text = dumps(value)
    assert text is not None and json.loads(text) == expected


@pytest.mark.parametrize("payload", [
    pytest.param({"name": "é", "spec": {"env": {"A": "1"}}, "held": False}, id="middle"),
    pytest.param({"spec": {}, "held": True}, id="first"),
    pytest.param({"name": "a", "spec": {"x": [1, 2.5, None]}}, id="last"),
    pytest.param({"spec": {"quote": "\"spec\":0"}}, id="alone"),
])
def test_a_payload_around_an_encoded_spec_is_the_payload_encoded_whole(
        payload: dict[str, object]) -> None:
    assert submitted_json(payload, dumps(payload["spec"]) or "") == dumps(payload)


def test_the_spec_is_stored_as_encoded_once_in_the_event_and_the_row(store: Store) -> None:
    spec = {"gpus": 1, "time_limit_s": 600, "project": "nlp", "env": {"HOME": "/h", "Ü": "é"},
            "script": "#!/bin/sh\necho \"hi\"\n"}
    ids = store.submit([NewJob("a", "ana", "nlp", spec=spec, held=True),
                        NewJob("b", "ana", "nlp", spec=spec)], ts=1.0, idempotency_key="k")
    with store._engine.connect() as conn:
        payloads = conn.execute(sa.text(
            "SELECT CAST(payload AS TEXT) FROM events WHERE kind = 'job.submitted' "
            "ORDER BY seq")).scalars().all()
        specs = conn.execute(sa.text("SELECT CAST(spec AS TEXT) FROM jobs ORDER BY id")
                             ).scalars().all()
    events = [store.events_for_job(i)[0] for i in ids]
    assert payloads == [dumps(e.payload) for e in events]
    assert specs == [dumps(spec)] * 2
    assert [e.payload["spec"] for e in events] == [spec, spec]
    assert events[0].payload["idempotency_key"] == "k" and events[0].payload["held"]
