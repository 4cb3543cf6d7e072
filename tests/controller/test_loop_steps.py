"""The controller's loop, step by step, against the in-package fake executor: a job
submitted in this process is taken in without decoding its spec again; the exits of one
poll are recorded in one transaction, and one the store refuses loses none of the others;
a lost node goes DOWN before its gangs end NODE_FAIL; a gang is requeued when
``--requeue`` says so, or by default when its QOS is preemptible; the node stays DOWN
until it rejoins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gefion.controller.scheduler import Scheduler
from gefion.controller.submission import SubmitRequest, new_jobs, parse_request
from gefion.core.jobs import JobState
from gefion.core.policies import get_policy
from gefion.core.topology import Cluster, Node, NodeState
from gefion.executor.fake import FakeExecutor
from gefion.slurm import Site
from gefion.store import EventKind, NewEvent, Store

CLUSTER = Cluster("three", tuple(Node(f"n{i}", 8, "su1") for i in (1, 2, 3)))
SCRIPT = "#!/bin/sh\nsrun hostname\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'gefion.db'}")
    s.append([NewEvent(EventKind.NODE_REGISTERED, 0.0, node=n.name,
                       payload={"gpus": n.gpus, "su": n.su}) for n in CLUSTER.nodes])
    yield s
    s.close()


@pytest.fixture
def fake() -> FakeExecutor:
    return FakeExecutor()


@pytest.fixture
def scheduler(store: Store, fake: FakeExecutor) -> Scheduler:
    s = Scheduler(store, fake, CLUSTER, get_policy("gefion"), kill_grace_s=1)
    s.load()
    return s


def submit(store: Store, *argv: str) -> int:
    request = SubmitRequest(user="root", cwd="/tmp", script=SCRIPT, argv=argv)
    sub = parse_request(request, Site(node_names=CLUSTER.names))
    jobs = new_jobs(sub, request, default_project="default", default_time_limit_s=600,
                    node_gpus=8)
    return store.submit(jobs, ts=1.0)[0]


def kinds(store: Store, job_id: int) -> list[str]:
    return [e.kind for e in store.events_for_job(job_id)]


@pytest.mark.parametrize(("argv", "requeued"), [
    (("--requeue",), True),
    ((), False),  # normal QOS: not preemptible, so not requeued
    (("--qos=scavenger",), True),  # preemptible: requeued by default
    (("--qos=scavenger", "--no-requeue"), False),
], ids=["requeue", "normal-qos", "preemptible-qos", "preemptible-no-requeue"])
def test_a_gang_on_a_lost_node_ends_node_fail_and_requeues_as_asked(
        store: Store, fake: FakeExecutor, scheduler: Scheduler, argv: tuple[str, ...],
        requeued: bool) -> None:
    job_id = submit(store, "-N", "2", "--gpus-per-node=8", *argv)
    scheduler.step()
    first = fake.launched[job_id]
    assert first.nodelist == ("n1", "n2")
    assert first.node_gpus == {"n1": tuple(range(8)), "n2": tuple(range(8))}
    assert fake.lose_node("n2") == [job_id]
    scheduler.step()

    events = store.events_since(0, limit=1000)
    down = next(e for e in events if e.kind == EventKind.NODE_DOWN)
    fail = next(e for e in events if e.kind == EventKind.JOB_NODE_FAIL)
    assert down.node == "n2" and fail.node == "n2" and down.seq < fail.seq
    assert fail.payload["reason"] == "node n2 was lost"
    assert scheduler.node_state("n2") is NodeState.DOWN
    row = store.get_job(job_id)
    assert row is not None
    if requeued:  # and started again at once, on the two nodes left
        assert kinds(store, job_id) == ["job.submitted", "job.started", "job.node_fail",
                                        "job.requeued", "job.started"]
        assert fake.launched[job_id].nodelist == ("n1", "n3")
        assert row.state is JobState.RUNNING and row.restarts == 1
    else:
        assert kinds(store, job_id) == ["job.submitted", "job.started", "job.node_fail"]
        assert row.state is JobState.NODE_FAIL and job_id not in fake.launched


def test_a_lost_node_stays_down_until_it_rejoins(store: Store, fake: FakeExecutor,
                                                 scheduler: Scheduler) -> None:
    fake.lose_node("n3")
    scheduler.step()
    job_id = submit(store, "-N", "3", "--gpus-per-node=8")
    scheduler.step()
    assert job_id not in fake.launched  # two nodes up: a 3-node gang waits
    fake.lose_node("n3")  # told again: no second node.down
    scheduler.step()
    fake.rejoin("n3")
    scheduler.step()
    assert scheduler.node_state("n3") is NodeState.IDLE
    assert fake.launched[job_id].nodelist == ("n1", "n2", "n3")
    nodes = [(e.kind, e.node) for e in store.events_since(0, limit=1000)
             if e.kind in (EventKind.NODE_DOWN, EventKind.NODE_UP)]
    assert nodes == [(EventKind.NODE_DOWN, "n3"), (EventKind.NODE_UP, "n3")]


def test_a_drained_node_that_comes_back_stays_drained(store: Store, fake: FakeExecutor,
                                                      scheduler: Scheduler) -> None:
    store.append([NewEvent(EventKind.NODE_DRAINED, 2.0, node="n1",
                           payload={"reason": "maintenance"})])
    scheduler.step()
    fake.rejoin("n1")  # Ray says it is alive: that does not undo the operator's drain
    scheduler.step()
    assert scheduler.node_state("n1") is NodeState.DRAINED


def test_a_gang_lost_before_its_node_is_reported_is_not_placed_on_that_node_again(
        store: Store, fake: FakeExecutor, scheduler: Scheduler) -> None:
    # The executor may report the gang's NODE_FAIL a step before its node table reports
    # the node gone (as Ray does under load): the node goes DOWN with the failure, so the
    # requeued gang starts on healthy nodes, and the late report changes nothing.
    job_id = submit(store, "-N", "2", "--gpus-per-node=8", "--requeue")
    scheduler.step()
    assert fake.launched[job_id].nodelist == ("n1", "n2")
    fake.end(job_id, JobState.NODE_FAIL, exit_code=1, reason="node n2 was lost", node="n2")
    scheduler.step()
    assert scheduler.node_state("n2") is NodeState.DOWN
    assert "n2" not in fake.launched[job_id].nodelist
    fake.lose_node("n2")  # the node table catches up
    scheduler.step()
    events = store.events_since(0, limit=1000)
    assert [e.node for e in events if e.kind == EventKind.NODE_DOWN] == ["n2"]
    row = store.get_job(job_id)
    assert row is not None and row.restarts == 1


def test_the_exits_of_one_poll_are_recorded_in_one_transaction(
        store: Store, fake: FakeExecutor, scheduler: Scheduler,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [submit(store, "--gpus=8") for _ in range(3)]
    scheduler.step()
    for job_id, code in zip(ids, (0, 3, 0), strict=True):
        fake.end(job_id, JobState.COMPLETED if code == 0 else JobState.FAILED,
                 exit_code=code)
    writes: list[list[str]] = []
    real = store.append
    monkeypatch.setattr(store, "append", lambda events: writes.append(
        [e.kind for e in events]) or real(events))
    scheduler.step()
    assert writes[0] == ["job.finished"] * 3  # the three exits, one commit
    rows = [store.get_job(j) for j in ids]
    assert [(r.state, r.exit_code) for r in rows if r is not None] == [
        (JobState.COMPLETED, 0), (JobState.FAILED, 3), (JobState.COMPLETED, 0)]
    assert fake.poll() == []  # every exit acknowledged


def test_an_exit_the_store_refuses_loses_none_of_the_others(
        store: Store, fake: FakeExecutor, scheduler: Scheduler) -> None:
    ids = [submit(store, "--gpus=8") for _ in range(3)]
    scheduler.step()
    # The middle job ended in the store first (another controller wrote it, say).
    store.append([NewEvent(EventKind.JOB_CANCELLED, 2.0, job_id=ids[1])])
    for job_id, code in zip(ids, (5, 3, 0), strict=True):
        fake.end(job_id, JobState.FAILED if code else JobState.COMPLETED, exit_code=code)
    scheduler.step()
    rows = [store.get_job(j) for j in ids]
    assert [(r.state, r.exit_code) for r in rows if r is not None] == [
        (JobState.FAILED, 5), (JobState.CANCELLED, None), (JobState.COMPLETED, 0)]
    assert fake.poll() == []


def test_a_job_submitted_here_is_scheduled_without_decoding_its_spec(
        store: Store, fake: FakeExecutor, scheduler: Scheduler,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop takes the row (and JobSpec) the writer made of a submission in this
    process: with decoding a stored spec broken, a job submitted here still starts. (An
    event the loop reads from the database before this process has noted it decodes.)"""
    from gefion.store import records

    def broken(obj: object) -> None:
        raise AssertionError("a spec submitted here was decoded again")

    monkeypatch.setattr(records, "spec_from_json", broken)
    job_id = submit(store, "--gpus=8")
    scheduler.step()
    assert fake.launched[job_id].nodelist == ("n1",)


def test_the_time_a_step_waits_for_launches_does_not_pace_the_loop(
        store: Store, fake: FakeExecutor, scheduler: Scheduler,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop rests after a step in proportion to its work; waiting for the executor to
    launch (the file system, the supervisors) is not work, and resting after it would only
    delay the exits that came meanwhile."""
    import time

    real = fake.launch_many

    def slow(specs: list[Any]) -> list[Any]:
        time.sleep(0.5)  # what launching a hundred jobs can take on a busy disk
        return real(specs)

    monkeypatch.setattr(fake, "launch_many", slow)
    job_id = submit(store, "--gpus=8")
    scheduler.start()
    scheduler.wake()  # as the API does after a submission
    try:
        deadline = time.monotonic() + 30
        while job_id not in fake.launched and time.monotonic() < deadline:
            time.sleep(0.01)
        while scheduler.last_step_s == 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert job_id in fake.launched
    assert 0.0 < scheduler.last_step_s < 0.5
