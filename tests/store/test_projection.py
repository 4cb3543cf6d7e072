"""The projections are a pure function of the log: replay equals the live tables."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gefion.core.errors import GefionError, InputError, StateError
from gefion.core.jobs import JobState
from gefion.core.topology import NodeState
from gefion.store import EventKind, EventRow, JobRow, NewEvent, NotFoundError, Store
from gefion.store.projection import apply, apply_node, submitted_payload
from tests.store.builders import all_jobs, new_job

K = EventKind


def _submitted(job_id: int = 1, seq: int = 1, held: bool = False) -> JobRow:
    payload = submitted_payload(name="n", user="u", project="p", qos="normal", spec={},
                                held=held, array_job_id=None, array_task_id=None)
    return apply(EventRow(seq, 10.0, K.JOB_SUBMITTED, job_id, None, payload), None)


def _ev(kind: EventKind, seq: int = 2, ts: float = 20.0, job_id: int | None = 1,
        node: str | None = None, **payload: object) -> EventRow:
    return EventRow(seq, ts, kind, job_id, node, payload)


def test_apply_is_pure_and_builds_the_row_from_the_submitted_payload() -> None:
    job = _submitted(job_id=7, seq=3)
    assert job == JobRow(id=7, name="n", user="u", project="p", qos="normal",
                         state=JobState.PENDING, spec={}, submit_ts=10.0, updated_seq=3)
    started = apply(_ev(K.JOB_STARTED, job_id=7, allocation={"a": [1]}), job)
    assert job.state is JobState.PENDING  # the input is untouched
    assert (started.state, started.updated_seq, started.allocation) == (
        JobState.RUNNING, 2, (("a", (1,)),))


@pytest.mark.parametrize(("events", "error"), [
    ([_ev(K.JOB_SUBMITTED)], StateError),      # the job exists already
    ([_ev(K.JOB_FINISHED, exit_code=0)], StateError),
    ([_ev(K.JOB_STARTED), _ev(K.JOB_FINISHED, exit_code="0")], InputError),
    ([_ev(K.NODE_DOWN, node="n")], InputError),  # a node event is no job event
    ([_ev("job.unknown")], InputError),        # type: ignore[arg-type]
])
def test_apply_rejects(events: list[EventRow], error: type[GefionError]) -> None:
    job = _submitted()
    with pytest.raises(error):
        for event in events:
            job = apply(event, job)


def test_apply_on_a_missing_job_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        apply(_ev(K.JOB_CANCELLED), None)


def test_apply_node_transitions() -> None:
    node = apply_node(_ev(K.NODE_REGISTERED, job_id=None, node="n", gpus=8, su="su1"), None)
    assert (node.state, node.gpus, node.su) == (NodeState.IDLE, 8, "su1")
    down = apply_node(_ev(K.NODE_DOWN, seq=3, job_id=None, node="n", reason="psu"), node)
    assert (down.state, down.reason, down.updated_seq) == (NodeState.DOWN, "psu", 3)
    with pytest.raises(StateError):
        apply_node(_ev(K.NODE_DRAINED, job_id=None, node="n"), down)
    assert apply_node(_ev(K.NODE_RESUMED, job_id=None, node="n"), down).state is NodeState.IDLE


# -- replay = live, on random histories --------------------------------------------------

JOB_KINDS = [K.JOB_STARTED, K.JOB_FINISHED, K.JOB_CANCELLED, K.JOB_PREEMPTED,
             K.JOB_REQUEUED, K.JOB_HELD, K.JOB_RELEASED, K.JOB_NODE_FAIL]
NODE_KINDS = [K.NODE_REGISTERED, K.NODE_DRAINED, K.NODE_RESUMED, K.NODE_DOWN, K.NODE_UP]

operations = st.lists(st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 3), st.booleans(), st.booleans()),
    st.tuples(st.just("job"), st.sampled_from(JOB_KINDS), st.integers(0, 40),
              st.integers(0, 2)),
    st.tuples(st.just("job"), st.sampled_from(JOB_KINDS), st.integers(0, 40),
              st.integers(0, 2)),
    st.tuples(st.just("node"), st.sampled_from(NODE_KINDS), st.integers(0, 2),
              st.integers(0, 2)),
    st.tuples(st.just("run"), st.integers(0, 40), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("queue"), st.integers(0, 40), st.integers(0, 2), st.booleans()),
), min_size=1, max_size=20)


def _payload(kind: EventKind, variant: int) -> dict[str, object]:
    if kind is K.JOB_STARTED:
        return {"allocation": {f"dgx{variant}": [variant, variant + 1]}}
    if kind is K.JOB_FINISHED:
        return {"exit_code": variant, **({"state": "TIMEOUT"} if variant == 2 else {})}
    if kind is K.NODE_REGISTERED:
        return {"gpus": 8 * variant, "su": f"su{variant}"}
    return {"reason": f"r{variant}"} if variant else {}


def _without_queue_view(jobs: dict[int, JobRow]) -> dict[int, JobRow]:
    return {i: replace(j, reason=None, eta_ts=None, priority=None) for i, j in jobs.items()}


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_replay_and_rebuild_equal_the_live_projections(
        store: Store, ops: list[tuple[Any, ...]]) -> None:
    ts = float(store.last_seq())
    ids = sorted(all_jobs(store))
    for op in ops:
        ts += 1.0
        seq = store.last_seq()
        try:
            match op:
                case ("submit", n, array, held):
                    ids += store.submit([new_job(held=held, array_task_id=i if array else None)
                                         for i in range(n)], ts=ts)
                case ("job", kind, pick, variant) if ids:
                    store.append([NewEvent(kind, ts, job_id=ids[pick % len(ids)],
                                           node=f"dgx{variant}", payload=_payload(kind, variant))])
                case ("node", kind, which, variant):
                    store.append([NewEvent(kind, ts, node=f"dgx{which}",
                                           payload=_payload(kind, variant))])
                case ("run", pick, variant, finish) if ids:
                    jid = ids[pick % len(ids)]
                    store.append([NewEvent(K.JOB_STARTED, ts, job_id=jid,
                                           payload=_payload(K.JOB_STARTED, variant))]
                                 + [NewEvent(K.JOB_FINISHED, ts, job_id=jid,
                                             payload={"exit_code": variant})] * finish)
                case ("queue", pick, variant, has_priority) if ids:
                    store.set_scheduling_info([(ids[pick % len(ids)], f"Resources{variant}",
                                                ts + 100, {"age": 0.5} if has_priority
                                                else None)])
        except (StateError, NotFoundError):
            assert store.last_seq() == seq  # refused: nothing written
    live_jobs, live_nodes = all_jobs(store), {n.name: n for n in store.list_nodes()}
    replayed_jobs, replayed_nodes = store.replay()
    assert replayed_jobs == _without_queue_view(live_jobs)
    assert replayed_nodes == live_nodes
    assert store.rebuild_projections() == (len(live_jobs), len(live_nodes))
    assert all_jobs(store) == _without_queue_view(live_jobs)
    assert {n.name: n for n in store.list_nodes()} == live_nodes
    # the log head is untouched: new ids continue after the old ones
    if ids:
        assert store.submit([new_job()], ts=ts + 1) == [max(ids) + 1]
