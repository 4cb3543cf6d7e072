"""Grants in the live controller: real (emulated-GPU) jobs burn a grant of GPU-hours, a
metered project without hours left waits with GRANT_EXHAUSTED until a new grant comes,
the scavenger fallback, and the forecast of when the hours run out.

Real jobs of a second cannot burn 10 GPU-hours, so the jobs run in a QOS whose usage
factor is 1,000: one second on 8 GPUs costs 8,000 GPU-seconds (2.2 GPU-hours). The usage
factor, not the injectable clock, because a job's end is stamped by its supervisor with
the host's wall clock: a controller clock moved by the test would disagree with it, while
a usage factor exercises exactly the charging rule (GPUs × seconds × factor, pro rata).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gefion.controller.accounting import Accounting
from gefion.controller.standing import grant_standing
from gefion.controller.tenancy import Tenancy, TenancyTables
from gefion.core.errors import InputError
from gefion.core.jobs import JobState
from gefion.core.tenancy import QOS, Grant, Project
from gefion.store import EventKind, EventRow
from tests.controller.tenancy_helpers import (
    BY,
    UrlFactory,
    job,
    step_until,
    stepped,
    store_of,
    submit,
)

BURST = QOS("burst", priority=10, usage_factor=1000.0)
JOB = "#!/bin/bash\n#SBATCH --gpus=8 -A lab --qos=burst -t 1\nsleep 1.5\n"


def test_a_grant_is_burnt_by_real_jobs_and_a_new_grant_lets_the_queue_go_on(
        data_dir: Path, workdir: Path, backend: str, url_factory: UrlFactory) -> None:
    with stepped(data_dir, url_factory(backend)) as c:
        store, now = store_of(c), c.now()
        store.create_project("lab", metered=True, ts=now, by=BY)
        store.create_qos(BURST, ts=now, by=BY)
        store.create_grant(Grant("g1", "lab", 10.0, valid_from_s=now - 1, funder="EU"),
                           ts=now, by=BY)
        # Each job holds 8 GPUs for >= 1.5 s at factor 1,000: >= 12,000 GPU-seconds, 1/3
        # of the grant. Three of them burn it; the fourth waits.
        ids = [submit(c, workdir, JOB) for _ in range(4)]
        step_until(c, lambda: job(c, ids[2]).state.terminal, timeout_s=30,
                   what="the third job's end")
        step_until(c, lambda: job(c, ids[3]).reason == "GRANT_EXHAUSTED",
                   what="GRANT_EXHAUSTED")
        assert job(c, ids[3]).state is JobState.PENDING
        rows = [job(c, i) for i in ids[:3]]
        assert all(r.state is JobState.COMPLETED for r in rows)
        # What was charged is what the events say: GPUs × seconds × usage factor.
        expected_s = math.fsum(8 * (r.end_ts - r.start_ts) * 1000.0 for r in rows
                               if r.end_ts is not None and r.start_ts is not None)
        (standing,) = c.grant_standings("lab")
        assert standing.charged_gpu_h == pytest.approx(expected_s / 3600, rel=1e-9)
        assert standing.exhausted and standing.left_gpu_h == 0.0
        assert standing.granted_gpu_h == 10.0
        live = c.live_view(ids[3])
        assert live is not None and live["reason"] == "GRANT_EXHAUSTED"
        assert live["priority"]["grant"] == 0.0

        store.create_grant(Grant("g2", "lab", 10.0, valid_from_s=c.now() - 1),
                           ts=c.now(), by=BY)
        step_until(c, lambda: job(c, ids[3]).state is not JobState.PENDING,
                   what="the start after a new grant")
        (standing,) = c.grant_standings("lab")
        assert not standing.exhausted and standing.left_gpu_h > 0


def test_without_a_fallback_a_metered_project_with_no_grant_waits(
        data_dir: Path, workdir: Path, url_factory: UrlFactory) -> None:
    with stepped(data_dir, url_factory("sqlite")) as c:
        store_of(c).create_project("lab", metered=True, ts=c.now(), by=BY)
        waiting = submit(c, workdir, "#!/bin/bash\n#SBATCH --gpus=1 -A lab\ntrue\n")
        free = submit(c, workdir, "#!/bin/bash\n#SBATCH --gpus=1 -A lab -q scavenger\ntrue\n")
        step_until(c, lambda: job(c, free).state.terminal, what="the scavenger job's end")
        c.step()
        assert (job(c, waiting).state, job(c, waiting).reason) == \
            (JobState.PENDING, "GRANT_EXHAUSTED")


def test_with_the_scavenger_fallback_an_exhausted_project_runs_preemptible_and_free(
        data_dir: Path, workdir: Path, url_factory: UrlFactory) -> None:
    with stepped(data_dir, url_factory("sqlite"),
                 grant_fallback_qos="scavenger") as c:
        store = store_of(c)
        store.create_project("lab", metered=True, ts=c.now(), by=BY)
        store.create_project("ops", ts=c.now(), by=BY)
        demoted = submit(c, workdir, "#!/bin/bash\n#SBATCH --gpus=8 -A lab\nsleep 30\n")
        step_until(c, lambda: job(c, demoted).state is JobState.RUNNING, what="its start")
        started = [e for e in c.job_events(demoted) if e.kind == EventKind.JOB_STARTED]
        assert started[-1].payload["qos"] == "scavenger"
        assert job(c, demoted).qos == "normal"  # the job's own QOS is left as submitted
        (standing,) = c.grant_standings("lab")
        assert standing.charged_gpu_h == 0.0  # scavenger charges nothing
        # A high-QOS job of another project evicts it: it runs preemptible.
        urgent = submit(c, workdir, "#!/bin/bash\n#SBATCH --gpus=8 -A ops -q high\ntrue\n")
        step_until(c, lambda: job(c, urgent).state.terminal, what="the urgent job's end")
        kinds = [e.kind for e in c.job_events(demoted)]
        assert EventKind.JOB_PREEMPTED in kinds and EventKind.JOB_REQUEUED in kinds


def test_a_fallback_qos_that_charges_or_cannot_be_preempted_is_refused(
        data_dir: Path, url_factory: UrlFactory) -> None:
    with pytest.raises(InputError, match="preemptible"), \
            stepped(data_dir, url_factory("sqlite"), grant_fallback_qos="normal"):
        pass


# -- the forecast, from events alone -------------------------------------------------------

def _events(*spec: tuple[str, int, float, dict[str, object]]) -> list[EventRow]:
    return [EventRow(seq, ts, kind, job_id, None, payload)
            for seq, (kind, job_id, ts, payload) in enumerate(spec, start=1)]


def test_the_forecast_is_hours_left_over_the_burn_rate_of_the_last_day() -> None:
    """A 100 GPU-hour grant; a 4-GPU job ran 2 h yesterday (outside the window), an 8-GPU
    job has run for the last 6 h and still runs: burn 8 GPU-h/h over the last 24 h ×
    (6/24) = 2 GPU-h/h; left 100 − 8 − 48 = 44 GPU-h; out in 22 h."""
    h = 3600.0
    now = 100 * h
    sub = {"project": "lab", "user": "ana", "qos": "normal"}
    tenancy = Tenancy()
    tenancy.tables = TenancyTables(projects={"lab": Project("lab", metered=True)},
                                   grants=(Grant("g", "lab", 100.0, valid_from_s=0.0,
                                                 valid_to_s=200 * h),))
    for event in _events(("job.submitted", 1, 0.0, sub), ("job.submitted", 2, 0.0, sub),
                         ("job.started", 1, now - 40 * h, {"allocation": {"n1": [0, 1, 2, 3]}}),
                         ("job.finished", 1, now - 38 * h, {"exit_code": 0}),
                         ("job.started", 2, now - 6 * h,
                          {"allocation": {"n1": list(range(8))}})):
        tenancy.observe(event)
    s = grant_standing(tenancy, "lab", now)
    assert s.charged_gpu_h == pytest.approx(8 + 48)
    assert s.left_gpu_h == pytest.approx(44)
    assert s.burn_window_s == 24 * h
    assert s.burn_gpu_h_per_h == pytest.approx(2.0)
    assert s.runs_out_ts == pytest.approx(now + 22 * h)
    assert s.expires_ts == 200 * h and not s.exhausted


def test_a_young_site_burns_over_its_age_and_an_idle_project_never_runs_out() -> None:
    h = 3600.0
    accounting = Accounting()
    sub = {"project": "lab", "user": "ana", "qos": "normal"}
    for event in _events(("job.submitted", 1, 0.0, sub),
                         ("job.started", 1, 0.0, {"allocation": {"n1": [0, 1]}}),
                         ("job.finished", 1, 2 * h, {"exit_code": 0})):
        accounting.observe(event)
    assert accounting.burn_window(4 * h) == 4 * h  # since the site started
    assert accounting.burn_rate("lab", 4 * h) == pytest.approx(1.0)  # 4 GPU-h over 4 h
    tenancy = Tenancy()
    tenancy.tables = TenancyTables(grants=(Grant("g", "idle", 5.0),))
    s = grant_standing(tenancy, "idle", 4 * h)
    assert (s.left_gpu_h, s.burn_gpu_h_per_h, s.runs_out_ts) == (5.0, 0.0, None)
