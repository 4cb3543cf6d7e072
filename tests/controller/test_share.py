"""Fair share in the live controller: its usage and factors are what the events say — the
core's own ledger and formula, fed each run's GPU-seconds × usage factor over the run — the
cycle uses those factors, and a restart rebuilds them from the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from gefion.controller.service import Controller
from gefion.core.jobs import JobState
from gefion.core.tenancy import DEFAULT_QOS, Project
from gefion.core.usage import UsageLedger, fairshare
from gefion.store import EventKind
from tests.controller.tenancy_helpers import (
    BY,
    UrlFactory,
    job,
    step_until,
    stepped,
    store_of,
    submit,
)

HALF_LIFE_S = 600.0  # short, so that decay shows between runs


def ledger_from_events(c: Controller, ids: list[int]) -> UsageLedger:
    """The ledger the docs describe, folded here from the jobs' events alone."""
    ledger = UsageLedger(HALF_LIFE_S)
    for job_id in ids:
        row = c.get_job(job_id)
        start: tuple[float, int, str] | None = None
        for e in c.job_events(job_id):
            if e.kind == EventKind.JOB_STARTED:
                gpus = sum(len(g) for g in e.payload["allocation"].values())
                start = (e.ts, gpus, e.payload.get("qos", row.qos))
            elif e.kind in (EventKind.JOB_FINISHED, EventKind.JOB_CANCELLED) and start:
                ts, gpus, qos = start
                gpu_s = gpus * (e.ts - ts) * DEFAULT_QOS[qos].usage_factor
                if gpu_s > 0:
                    ledger = ledger.charge(row.project, row.user, gpu_s, ts, e.ts)
                start = None
    return ledger


def check_rows(c: Controller, projects: dict[str, Project], ledger: UsageLedger) -> None:
    view = c.share()
    at = max(view.as_of_ts, ledger.as_of_s)
    expected = fairshare(projects, ledger, at).rows()
    assert [(r.project, r.user) for r in view.rows] == [(r.project, r.user) for r in expected]
    for got, want in zip(view.rows, expected, strict=True):
        assert got.raw_usage_gpu_s == pytest.approx(want.raw_usage_gpu_s, rel=1e-9)
        assert got.shares_norm == pytest.approx(want.shares_norm, rel=1e-12)
        assert got.usage_norm == pytest.approx(want.usage_norm, rel=1e-9)
        assert got.factor == pytest.approx(want.factor, rel=1e-9)


def test_usage_and_factors_are_what_the_events_say_and_survive_a_restart(
        data_dir: Path, workdir: Path, backend: str, url_factory: UrlFactory) -> None:
    url = url_factory(backend)
    config = {"fairshare_half_life_s": HALF_LIFE_S, "priority_calc_period_s": 0.0}
    with stepped(data_dir, url, **config) as c:
        store = store_of(c)
        store.create_project("a", shares=2, ts=c.now(), by=BY)
        store.create_project("b", shares=1, ts=c.now(), by=BY)
        store.create_user("daemon", ts=c.now(), by=BY)
        store.add_member("a", "daemon", ts=c.now(), by=BY)
        ids = [submit(c, workdir, "#!/bin/bash\n#SBATCH -G 4 -A a\nsleep 0.4\n"),
               submit(c, workdir, "#!/bin/bash\n#SBATCH -G 2 -A b\nsleep 0.2\n"),
               submit(c, workdir, "#!/bin/bash\n#SBATCH -G 2 -A b -q high\nsleep 0.2\n"),
               # scavenger charges nothing: no usage, no effect on anyone's factor
               submit(c, workdir, "#!/bin/bash\n#SBATCH -G 2 -A b -q scavenger\nsleep 0.2\n")]
        step_until(c, lambda: all(job(c, i).state.terminal for i in ids), what="the ends")
        assert all(job(c, i).state is JobState.COMPLETED for i in ids)
        c.step()
        projects = store.projects()
        ledger = ledger_from_events(c, ids)
        assert ledger.project_usage("a") > 0 and ledger.project_usage("b") > 0
        check_rows(c, projects, ledger)
        # The cycle ranks by the same factors: a waiting job of a/root carries its factor.
        held = submit(c, workdir, "#!/bin/bash\n#SBATCH -G 1 -A a -H\ntrue\n")
        c.step()
        live = c.live_view(held)
        row = next(r for r in c.share().rows if (r.project, r.user) == ("a", "root"))
        assert live is not None and live["priority"]["fairshare"] == round(row.factor, 6)
    with stepped(data_dir, url, **config) as again:  # rebuilt from the log at start
        again.step()
        check_rows(again, projects, ledger)
