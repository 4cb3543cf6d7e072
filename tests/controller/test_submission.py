"""From a submit request to the jobs stored: the environment a job keeps, and what the
submissions of one batch share (:mod:`gefion.controller.submission`)."""

from __future__ import annotations

import pytest

from gefion.controller.submission import (
    BatchMemo,
    SubmitRequest,
    job_environment,
    new_jobs,
    parse_request,
)
from gefion.slurm import Site
from gefion.slurm.values import ExportSpec
from gefion.store.tokens import new_token

SCRIPT = "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=5\necho hello\n"
TOKEN = new_token()


@pytest.mark.parametrize(("env", "kept"), [
    pytest.param({"HOME": "/h", "PATH": "/bin"}, {"HOME": "/h", "PATH": "/bin"}, id="plain"),
    pytest.param({"GEFION_TOKEN": "x", "SLURM_JOB_ID": "3", "CUDA_VISIBLE_DEVICES": "0",
                  "A": "1"}, {"A": "1"}, id="never-exported-names"),
    pytest.param({"CI_AUTH": f"Bearer {TOKEN}", "A": "1"}, {"A": "1"}, id="a-token-in-a-value"),
    pytest.param({"NOTE": "gfn_ is our prefix", "A": "1"},
                 {"NOTE": "gfn_ is our prefix", "A": "1"}, id="the-prefix-alone"),
    pytest.param({"X": "...gf", "Y": "n_" + "a" * 43}, {"X": "...gf", "Y": "n_" + "a" * 43},
                 id="a-prefix-across-two-values"),
])
def test_an_inherited_environment_never_keeps_a_token(env: dict[str, str],
                                                      kept: dict[str, str]) -> None:
    assert job_environment(None, env) == kept


def test_an_export_list_sets_and_forwards_variables() -> None:
    export = ExportSpec(inherit=False, variables=(("A", "set"), ("HOME", None)))
    assert job_environment(export, {"HOME": "/h", "B": "2"}) == {"A": "set", "HOME": "/h"}


def request(*argv: str, **env: str) -> SubmitRequest:
    return SubmitRequest(user="ana", cwd="/home/ana", script=SCRIPT, argv=argv, env=env,
                         source="job.sh", default_project="nlp")


def jobs_of(req: SubmitRequest, memo: BatchMemo) -> dict[str, object]:
    sub = parse_request(req, Site(), memo)
    (job,) = new_jobs(sub, req, default_project="default", default_time_limit_s=600,
                      node_gpus=8, memo=memo)
    return dict(job.spec)


def test_a_batch_parses_a_repeated_submission_once_and_keeps_each_its_own() -> None:
    memo = BatchMemo()
    first = parse_request(request("--hold"), Site(), memo)
    assert parse_request(request("--hold"), Site(), memo) is first
    other = parse_request(request("--hold", "-J", "two"), Site(), memo)
    assert (first.name, other.name) == ("job.sh", "two")


def test_submissions_of_a_batch_get_their_own_environment() -> None:
    memo = BatchMemo()
    specs = [jobs_of(request(SWEEP=str(i), HOME="/h"), memo) for i in (0, 0, 1, 0)]
    assert [s["env"] for s in specs] == [{"SWEEP": i, "HOME": "/h"} for i in "0010"]
    assert specs[0]["env"] is specs[1]["env"]  # equal in a row: made once
