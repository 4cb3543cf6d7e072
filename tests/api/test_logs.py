"""``/v1/jobs/{id}/logs``: the last lines of a file, and a follow that ends with the job."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from gefion.api import logs
from gefion.api.logs import read_tail
from tests.api.helpers import SCRIPT, Site, Stepper

TEXT = b"one\ntwo\nthree\n"


@pytest.mark.parametrize(("content", "lines", "expected"), [
    (TEXT, None, TEXT),
    (TEXT, 0, b""),
    (TEXT, 1, b"three\n"),
    (TEXT, 2, b"two\nthree\n"),
    (TEXT, 3, TEXT),
    (TEXT, 10, TEXT),
    (b"one\ntwo", 1, b"two"),              # no final newline: the last line is still one
    (b"one\ntwo", 2, b"one\ntwo"),
    (b"\n\n\n", 2, b"\n\n"),
    (b"", 5, b""),
])
def test_read_tail(tmp_path: Path, content: bytes, lines: int | None,
                   expected: bytes) -> None:
    path = tmp_path / "out"
    path.write_bytes(content)
    assert read_tail(path, lines) == (expected, len(content), False)


def test_read_tail_finds_lines_across_blocks_and_caps_the_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out"
    body = b"".join(b"line %05d\n" % i for i in range(20_000))  # 200 kB: several blocks
    path.write_bytes(body)
    data, _, cut = read_tail(path, 15_000)
    assert data.splitlines()[0] == b"line 05000" and len(data.splitlines()) == 15_000
    assert not cut
    monkeypatch.setattr(logs, "MAX_LOG_BYTES", 1000)
    for lines in (None, 500):
        data, offset, cut = read_tail(path, lines)
        assert cut and offset == len(body) and len(data) <= 1000
        assert data.startswith(b"line ") and data.endswith(b"line 19999\n")
    assert read_tail(tmp_path / "missing", None) == (b"", 0, False)


def test_logs_are_tailed_per_stream(site: Site) -> None:
    script = ("#!/bin/bash\n#SBATCH --gpus=1 -e err-%j.txt\n"
              "for i in 1 2 3 4 5; do echo out $i; done\necho oops >&2\n")
    (job_id,) = site.submit_ok(script)
    site.wait(job_id, lambda r: r.state.terminal)
    url = f"/v1/jobs/{job_id}/logs"
    assert site.http.get(url).text == "".join(f"out {i}\n" for i in range(1, 6))
    assert site.http.get(url, params={"tail": 2}).text == "out 4\nout 5\n"
    assert site.http.get(url, params={"tail": 0}).text == ""
    assert site.http.get(url, params={"stream": "stderr"}).text == "oops\n"
    assert (site.workdir / f"err-{job_id}.txt").exists()
    response = site.http.get(url, params={"stream": "both"})
    assert response.status_code == 422 and response.json()["field"] == "stream"


def test_a_pending_job_has_empty_logs(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--hold")
    response = site.http.get(f"/v1/jobs/{job_id}/logs")
    assert response.status_code == 200 and response.text == ""


def test_follow_streams_until_the_job_ends(site: Site) -> None:
    script = ("#!/bin/bash\n#SBATCH --gpus=1\necho first\nsleep 0.4\necho second\n"
              "sleep 0.4\necho third\n")
    (job_id,) = site.submit_ok(script)
    chunks: list[str] = []
    with Stepper(site.controller), site.http.stream(
            "GET", f"/v1/jobs/{job_id}/logs", params={"follow": "true"},
            timeout=httpx.Timeout(20)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        for chunk in response.iter_text():  # returns when the server ends the stream
            chunks.append(chunk)
    assert "".join(chunks) == "first\nsecond\nthird\n"
    assert len(chunks) >= 2  # it came as it was written, not at the end
    assert site.controller.get_job(job_id).state.terminal


def test_follow_of_an_ended_job_sends_the_tail_and_stops(site: Site) -> None:
    (job_id,) = site.submit_ok()
    site.wait(job_id, lambda r: r.state.terminal)
    response = site.http.get(f"/v1/jobs/{job_id}/logs", params={"follow": "1", "tail": 1})
    assert response.status_code == 200 and response.text == "hello\n"


def test_only_a_file_of_the_jobs_user_is_shown(site: Site) -> None:
    """--output may name anything; the server (with its own rights) reads no file the job's
    user does not own, and opens no FIFO in a way that could block."""
    other = site.workdir / "not-mine.txt"
    other.write_text("secret\n")
    try:
        os.chown(other, 65534, 65534)  # nobody
    except PermissionError:
        pytest.skip("needs root to give a file away")
    fifo = site.workdir / "pipe"
    os.mkfifo(fifo)
    for target in (other, fifo, site.workdir):
        (job_id,) = site.submit_ok(SCRIPT, "--hold", f"--output={target}")
        for params in ({}, {"follow": "true"}):
            response = site.http.get(f"/v1/jobs/{job_id}/logs", params=params)
            assert response.status_code == 403, (target, response.text)
            assert "secret" not in response.text
