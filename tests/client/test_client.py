"""The typed client against the real API: every call, its answers as dataclasses, errors
as ApiError with the problem body, and submissions neither lost nor doubled on retries."""

from __future__ import annotations

import socket

import httpx
import pytest

from gefion.client import (
    ApiError,
    Client,
    JobInfo,
    ServerUnreachable,
    server_url,
)
from gefion.core.errors import GefionError
from tests.api.helpers import ME, NODE, SCRIPT, Site, Stepper


def submit(client: Client, site: Site, *argv: str, script: str | None = SCRIPT) -> int:
    return client.submit(script, argv=argv, cwd=str(site.workdir), source="job.sh",
                         env={"PATH": "/usr/bin:/bin"}).job_id


def test_submit_run_and_read_back(client: Client, site: Site) -> None:
    result = client.submit("#!/bin/bash\n#SBATCH -J hi --gpus=1\necho out; echo err >&2\n",
                           argv=["-e", "err.txt"], cwd=str(site.workdir), source="hi.sh",
                           env={"PATH": "/usr/bin:/bin"})
    assert result.job_ids == (result.job_id,) and result.array_job_id is None
    assert len(result.idempotency_key) == 36  # a uuid4 the client made up
    site.wait(result.job_id, lambda r: r.state.terminal)
    job = client.job(result.job_id)
    assert isinstance(job, JobInfo)
    assert (job.name, job.user, job.state, job.exit, job.gpus) == ("hi", ME, "COMPLETED",
                                                                  "0:0", 1)
    assert job.nodelist == (NODE,) and job.allocation == {NODE: [0]}
    assert job.elapsed_s is not None and job.gpu_hours == pytest.approx(job.elapsed_s / 3600)
    assert "env" not in job.spec and job.spec["source"] == "hi.sh"
    assert [e.kind for e in client.events(job.id)] == ["job.submitted", "job.started",
                                                       "job.finished"]
    assert client.logs(job.id) == "out\n" and client.logs(job.id, "stderr") == "err\n"
    assert client.logs(job.id, tail=0) == ""


def test_an_array_and_its_warnings(client: Client, site: Site) -> None:
    result = client.submit(SCRIPT, argv=["--array=1-3", "--hold", "--mail-type=END"],
                           cwd=str(site.workdir), source="arr.sh")
    assert result.job_id == result.array_job_id == result.job_ids[0]
    assert len(result.job_ids) == 3
    assert result.warnings and result.warnings[0].startswith("<command line>: --mail-type: ")


def test_a_batch_of_submissions_in_one_call(client: Client, site: Site) -> None:
    work = str(site.workdir)
    results = client.submit_batch([
        {"script": SCRIPT, "argv": ["--hold", "-J", "a"], "cwd": work},
        {"script": SCRIPT, "argv": ["--hold", "--array=0-1"], "cwd": work}],
        idempotency_key="sweep-7")
    assert [len(r.job_ids) for r in results] == [1, 2]
    assert results[1].job_id == results[1].array_job_id
    assert [r.idempotency_key for r in results] == ["sweep-7#0", "sweep-7#1"]
    assert client.job(results[0].job_id).name == "a"
    with pytest.raises(ApiError) as err:
        client.submit_batch([{"script": SCRIPT, "cwd": work}, {"script": "echo", "cwd": work}])
    assert err.value.status == 400 and (err.value.field or "").startswith("submissions[1]")
    assert len(client.jobs().jobs) == 3


def test_test_only_submits_nothing(client: Client, site: Site) -> None:
    parsed = client.test_only(SCRIPT, argv=["-N", "1", "-A", "nlp"], cwd=str(site.workdir),
                              source="job.sh")
    assert (parsed["name"], parsed["nodes"], parsed["project"]) == ("job.sh", 1, "nlp")
    assert client.jobs().jobs == ()


def test_pages_and_filters(client: Client, site: Site) -> None:
    ids = [submit(client, site, "--hold", "-A", "bio" if i % 2 else "nlp") for i in range(5)]
    page = client.jobs(limit=2)
    assert [j.id for j in page.jobs] == ids[:2] and page.next_after == ids[1]
    assert [j.id for j in client.iter_jobs(page_size=2)] == ids
    assert [j.id for j in client.iter_jobs(page_size=2, project="bio")] == ids[1::2]
    assert [j.id for j in client.jobs(states=["PENDING"], user=ME).jobs] == ids
    assert [e.id for e in client.queue(projects=["nlp"])] == ids[::2]
    entry = client.queue(jobs=[ids[0]])[0]
    assert (entry.state, entry.reason, entry.held, entry.gpus) == ("PENDING", "HELD", True, 1)
    assert client.queue_rendered(fmt="text").startswith("JOBID ")


def test_cancel_hold_release(client: Client, site: Site) -> None:
    job_id = submit(client, site, "--hold")
    assert client.release(job_id).held is False
    assert client.hold(job_id).held is True
    assert client.cancel(job_id).state == "CANCELLED"
    assert [e.payload for e in client.events(job_id)[1:]] == [{"by": ME}] * 3
    with pytest.raises(ApiError) as error:
        client.cancel(job_id)
    assert error.value.status == 409 and "already ended" in str(error.value)


def test_follow_logs_until_the_job_ends(client: Client, site: Site) -> None:
    job_id = submit(client, site, script="#!/bin/bash\necho a\nsleep 0.3\necho b\n")
    with Stepper(site.controller):
        text = "".join(client.follow_logs(job_id))
    assert text == "a\nb\n"


def test_nodes_and_the_cluster(client: Client) -> None:
    (node,) = client.nodes()
    assert (node.name, node.gpus, node.state) == (NODE, 2, "idle")
    drained = client.drain(NODE, "maintenance")
    assert (drained.state, drained.reason) == ("drained", "maintenance")
    assert client.resume(NODE).state == "idle"
    assert client.cluster()["gpus"] == 2


def test_errors_carry_the_problem(client: Client, site: Site) -> None:
    with pytest.raises(ApiError) as error:
        client.submit("#!/bin/bash\n#SBATCH --time=soon\n", cwd=str(site.workdir),
                      source="bad.sh")
    e = error.value
    assert isinstance(e, GefionError)
    assert (e.status, e.field, e.source, e.line) == (400, "--time", "bad.sh", 2)
    assert str(e).startswith("bad.sh:2: field '--time': ")
    assert e.problem["type"] == "urn:gefion:problem:bad-input"
    with pytest.raises(ApiError) as error:
        client.job(12345)
    assert error.value.status == 404 and str(error.value) == "field 'job_id': no job 12345"


def test_an_unreachable_server_is_named() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with Client(url, retries=1) as client, pytest.raises(ServerUnreachable) as error:
        client.submit(SCRIPT, cwd="/tmp")
    assert error.value.status == 0
    assert url in str(error.value) and "gefion up" in str(error.value)


class FlakyTransport(httpx.BaseTransport):
    """Fails the first ``lose`` submissions: before sending them, or — worse — after the
    server has committed them, as a connection cut before the answer would."""

    def __init__(self, lose: int, *, after_commit: bool) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose, self.after_commit = lose, after_commit
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/jobs":
            self.keys.append(request.headers["idempotency-key"])
            if self.lose:
                self.lose -= 1
                if not self.after_commit:
                    raise httpx.ConnectError("connection refused", request=request)
                self.inner.handle_request(request).read()
                raise httpx.ReadError("connection reset", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("after_commit", [False, True])
def test_a_submission_is_retried_once_and_made_once(site: Site, after_commit: bool) -> None:
    transport = FlakyTransport(2, after_commit=after_commit)
    with Client(site.url, transport=transport, token=site.token) as client:
        result = client.submit(SCRIPT, argv=["--hold"], cwd=str(site.workdir))
        assert len(transport.keys) == 3 and set(transport.keys) == {result.idempotency_key}
        assert [j.id for j in client.iter_jobs()] == list(result.job_ids)


def test_the_server_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEFION_SERVER", raising=False)
    assert server_url() == "http://127.0.0.1:8642"
    monkeypatch.setenv("GEFION_SERVER", "http://gefion:9000/")
    assert server_url() == "http://gefion:9000"
    assert server_url("http://other:1") == "http://other:1"


