"""Sensitive-data projects in the live controller: their jobs share no node with another
project's, their output files are the job user's alone (0600, umask 077), and the log API
serves them to the project's members only."""

from __future__ import annotations

import stat
from pathlib import Path

from gefion.core.jobs import JobState
from tests.api.helpers import running_site
from tests.controller.tenancy_helpers import (
    BY,
    UrlFactory,
    job,
    step_until,
    stepped,
    store_of,
    submit,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_sensitive_projects_jobs_run_alone_and_write_private_files(
        data_dir: Path, workdir: Path, url_factory: UrlFactory) -> None:
    with stepped(data_dir, url_factory("sqlite"), cluster="synthetic:2x8") as c:
        store = store_of(c)
        store.create_project("clinic", sensitive=True, ts=c.now(), by=BY)
        store.create_project("others", ts=c.now(), by=BY)
        script = "#!/bin/bash\n#SBATCH -G 2 -A {p} -o {p}-%j.out\necho hi\n" \
                 "touch {p}-made-$SLURM_JOB_ID\nsleep 30\n"
        mine = submit(c, workdir, script.format(p="clinic"))
        theirs = submit(c, workdir, script.format(p="others"))
        step_until(c, lambda: all(job(c, i).state is JobState.RUNNING
                                  for i in (mine, theirs)), what="both starts")
        # 2 + 2 GPUs would fit on one node; a sensitive project's job shares none.
        assert job(c, mine).allocation[0][0] != job(c, theirs).allocation[0][0]
        step_until(c, lambda: (workdir / f"clinic-made-{mine}").exists() and
                   (workdir / f"others-made-{theirs}").exists(), what="the files")
        assert mode(workdir / f"clinic-{mine}.out") == 0o600
        assert mode(workdir / f"clinic-made-{mine}") == 0o600  # umask 077: all it writes
        assert mode(workdir / f"others-{theirs}.out") == 0o644
        assert mode(workdir / f"others-made-{theirs}") == 0o644


def test_only_members_read_a_sensitive_projects_logs() -> None:
    with running_site() as site:
        store, now = site.store, site.controller.now()
        store.create_project("clinic", sensitive=True, ts=now, by=BY)
        member = site.token_for("bin", projects={"clinic": "member"})
        operator = site.token_for("games", role="operator")
        outsider = site.token_for("sys", projects={"bio": "member"})
        job_id = site.submit_ok("#!/bin/bash\n#SBATCH -G 1 -A clinic\necho patient-42\n")[0]
        site.wait(job_id, lambda row: row.state.terminal)
        path = f"/v1/jobs/{job_id}/logs"
        with site.client_for(member) as http:
            answer = http.get(path)
            assert (answer.status_code, answer.text) == (200, "patient-42\n")
        for token in (operator, site.token):  # staff see the job, not its output
            with site.client_for(token) as http:
                assert http.get(f"/v1/jobs/{job_id}").status_code == 200
                answer = http.get(path)
                assert answer.status_code == 403 and "sensitive" in answer.json()["detail"]
        with site.client_for(outsider) as http:
            assert http.get(path).status_code == 404
