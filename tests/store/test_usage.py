"""Accounting in the store, on SQLite and PostgreSQL: each run's GPU-seconds and measured
energy on the jobs projection (and the same after a rebuild from the log, and after the
0003 migration fills in history), the runs of a window, and the usage report over them
by project, user, QOS and funder with a window that cuts runs pro rata."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from gefion.controller.reports import NO_GRANT, controller_report
from gefion.core.errors import InputError
from gefion.core.tenancy import QOS, Grant
from gefion.store import EventKind, NewEvent, NewJob, Store
from gefion.store.engine import alembic_config
from tests.store.builders import new_job

START, END, PREEMPT, REQUEUE = (EventKind.JOB_STARTED, EventKind.JOB_FINISHED,
                                EventKind.JOB_PREEMPTED, EventKind.JOB_REQUEUED)


def run(store: Store, job_id: int, start: float, end: float | None, gpus: int,
        energy_j: float | None = None, end_kind: EventKind = END) -> None:
    """One run of ``job_id`` on ``gpus`` GPUs of node n1 from ``start`` to ``end``."""
    events = [NewEvent(START, start, job_id=job_id,
                       payload={"allocation": {"n1": list(range(gpus))}})]
    if end is not None:
        payload: dict[str, Any] = {"exit_code": 0}
        if energy_j is not None:
            payload["energy_j"] = energy_j
        events.append(NewEvent(end_kind, end, job_id=job_id, payload=payload))
    store.append(events)


def submit(store: Store, user: str, project: str, qos: str = "normal") -> int:
    job = new_job(user=user, project=project)
    (job_id,) = store.submit([NewJob(job.name, user, project, qos, job.spec)], ts=0.0)
    return job_id


def test_every_run_adds_its_gpu_seconds_and_energy_and_a_rebuild_agrees(store: Store) -> None:
    job = submit(store, "ana", "nlp")
    run(store, job, 100.0, 400.0, 2, energy_j=1_500.0, end_kind=PREEMPT)
    store.append([NewEvent(REQUEUE, 400.0, job_id=job)])
    run(store, job, 500.0, 600.0, 4)  # a run that was not measured: no energy
    unmeasured = submit(store, "bob", "nlp")
    run(store, unmeasured, 0.0, 10.0, 1)
    row = store.get_job(job)
    assert row is not None and (row.gpu_s, row.energy_j) == (2 * 300 + 4 * 100, 1_500.0)
    other = store.get_job(unmeasured)
    assert other is not None and (other.gpu_s, other.energy_j) == (10.0, None)
    jobs, _ = store.replay()
    assert (jobs[job].gpu_s, jobs[job].energy_j) == (1_000.0, 1_500.0)
    store.rebuild_projections()
    assert store.get_job(job) == row
    totals = {(t.project, t.qos): (t.gpu_s, t.energy_j) for t in store.usage_totals()}
    assert totals == {("nlp", "normal"): (1_010.0, 1_500.0)}


@pytest.mark.parametrize("energy", [-1.0, "a lot", math.inf, True])
def test_a_malformed_energy_is_refused_and_changes_nothing(store: Store, energy: Any) -> None:
    job = submit(store, "ana", "nlp")
    store.append([NewEvent(START, 1.0, job_id=job, payload={"allocation": {"n1": [0]}})])
    seq = store.last_seq()
    with pytest.raises((InputError, ValueError)):
        store.append([NewEvent(END, 2.0, job_id=job,
                               payload={"exit_code": 0, "energy_j": energy})])
    assert store.last_seq() == seq


def test_the_0003_migration_fills_in_the_gpu_seconds_of_history(store_url: str) -> None:
    with Store.open(store_url) as store:
        job = submit(store, "ana", "nlp")
        run(store, job, 10.0, 70.0, 3, end_kind=PREEMPT)
        store.append([NewEvent(REQUEUE, 70.0, job_id=job)])
        run(store, job, 100.0, 110.0, 2)
        engine = store._engine
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0002")
        with engine.connect() as conn:
            assert "gpu_s" not in {c["name"] for c in sa.inspect(conn).get_columns("jobs")}
    with Store.open(store_url) as store:
        row = store.get_job(job)
        assert row is not None and (row.gpu_s, row.energy_j) == (3 * 60 + 2 * 10, None)


# -- the report ---------------------------------------------------------------------------

class _Stub:
    """What controller_report needs of a controller."""

    def __init__(self, store: Store, now: float, live: dict[int, float]) -> None:
        self.store, self._now = store, now
        self.sampler = type("S", (), {"energy_so_far": lambda _self: dict(live)})()

    def now(self) -> float:
        return self._now


@pytest.fixture
def history(store: Store) -> Callable[..., dict[str, Any]]:
    """Five jobs around the window [1000, 2500) (times in seconds):

    1 nlp/ana normal  2 GPUs [1000, 2000]  1,000 J
    2 nlp/bob half    4 GPUs [1500, 3500]  4,000 J   (half its run in the window)
    3 bio/ana normal  1 GPU  [500, 1200] 700 J preempted, requeued, [3000, 4000] 50 J
    4 bio/cid normal  1 GPU  [2600, 2700]            (outside)
    5 nlp/bob normal  2 GPUs [2400, running at 2600]  500 J so far

    QOS ``half`` charges 0.5; nlp's grants are EU 300 h and DK 100 h, bio has none.
    """
    store.create_qos(QOS("half", usage_factor=0.5), ts=0.0, by="test")
    for project in ("nlp", "bio"):
        store.create_project(project, ts=0.0, by="test")
    store.create_grant(Grant("g-eu", "nlp", 300.0, funder="EU"), ts=0.0, by="test")
    store.create_grant(Grant("g-dk", "nlp", 100.0, funder="DK"), ts=0.0, by="test")
    store.create_grant(Grant("g-old", "nlp", 900.0, 0.0, 500.0, funder="OLD"), ts=0.0,
                       by="test")
    ids = [submit(store, "ana", "nlp"), submit(store, "bob", "nlp", "half"),
           submit(store, "ana", "bio"), submit(store, "cid", "bio"),
           submit(store, "bob", "nlp")]
    run(store, ids[0], 1000.0, 2000.0, 2, energy_j=1_000.0)
    run(store, ids[1], 1500.0, 3500.0, 4, energy_j=4_000.0)
    run(store, ids[2], 500.0, 1200.0, 1, energy_j=700.0, end_kind=PREEMPT)
    store.append([NewEvent(REQUEUE, 1200.0, job_id=ids[2])])
    run(store, ids[2], 3000.0, 4000.0, 1, energy_j=50.0)
    run(store, ids[3], 2600.0, 2700.0, 1)
    run(store, ids[4], 2400.0, None, 2)
    stub = _Stub(store, 2600.0, {ids[4]: 500.0})

    def report(by: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("from_ts", 1000.0)
        kw.setdefault("to_ts", 2500.0)
        body = controller_report(stub, by=by, **kw).to_json()  # type: ignore[arg-type]
        return {r[by]: {k: v for k, v in r.items() if k != by} for r in body["rows"]} | \
            {"TOTAL": body["total"]}

    return report


def hours(seconds: float) -> float:
    return round(seconds / 3600, 6)


def usage(jobs: int, raw_s: float, charged_s: float, energy_j: float,
          unmeasured_s: float = 0.0) -> dict[str, Any]:
    return {"jobs": jobs, "gpu_hours": hours(charged_s), "raw_gpu_hours": hours(raw_s),
            "energy_kwh": round(energy_j / 3.6e6, 6),
            "unmeasured_gpu_hours": hours(unmeasured_s)}


def test_report_by_project_cuts_runs_at_the_window_pro_rata(
        history: Callable[..., dict[str, Any]]) -> None:
    # nlp: job 1 whole (2,000 GPU-s, 1,000 J); job 2 half (4,000 GPU-s raw, charged
    # 2,000, 2,000 J); job 5 half of its 200 s so far (200 GPU-s, 250 J)
    # bio: job 3's first run, 200 of its 700 s (200 GPU-s, 200 J); job 4 is outside
    assert history("project") == {
        "nlp": usage(3, 6_200, 4_200, 3_250),
        "bio": usage(1, 200, 200, 200),
        "TOTAL": usage(4, 6_400, 4_400, 3_450)}


def test_report_by_user_qos_and_funder(history: Callable[..., dict[str, Any]]) -> None:
    assert history("user") == {"ana": usage(2, 2_200, 2_200, 1_200),
                               "bob": usage(2, 4_200, 2_200, 2_250),
                               "TOTAL": usage(4, 6_400, 4_400, 3_450)}
    assert history("qos") == {"normal": usage(3, 2_400, 2_400, 1_450),
                              "half": usage(1, 4_000, 2_000, 2_000),
                              "TOTAL": usage(4, 6_400, 4_400, 3_450)}
    # nlp's active grants split its usage 3:1 (the expired OLD grant takes none)
    by_funder = history("funder")
    assert by_funder["EU"] == usage(3, 0.75 * 6_200, 0.75 * 4_200, 0.75 * 3_250)
    assert by_funder["DK"] == usage(3, 0.25 * 6_200, 0.25 * 4_200, 0.25 * 3_250)
    assert by_funder[NO_GRANT] == usage(1, 200, 200, 200)
    assert set(by_funder) == {"EU", "DK", NO_GRANT, "TOTAL"}


def test_report_of_some_projects_and_of_an_empty_window(
        history: Callable[..., dict[str, Any]]) -> None:
    assert set(history("project", projects=["bio"])) == {"bio", "TOTAL"}
    assert history("project", projects=[]) == {"TOTAL": usage(0, 0, 0, 0)}
    # after job 1's end, before job 5's start: job 2 alone, unmeasured runs none
    assert history("project", from_ts=2100.0, to_ts=2300.0) == {
        "nlp": usage(1, 800, 400, 400), "TOTAL": usage(1, 800, 400, 400)}
    # job 4 ran unmeasured
    assert history("user", from_ts=2600.0, to_ts=2700.0)["cid"] == usage(1, 100, 100, 0, 100)
    with pytest.raises(InputError, match="after"):
        history("project", from_ts=2500.0, to_ts=1000.0)
