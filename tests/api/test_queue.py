"""``/v1/queue``: the jobs not yet ended, from the API's in-memory view of the log — fresh
on every request, with the scheduler's reasons, rendered as JSON or as squeue's table."""

from __future__ import annotations

import json
from typing import Any

from gefion.api.queue import QueueRow
from gefion.api.queue_render import render_json, render_text, squeue_time
from tests.api.helpers import ME, SCRIPT, Site, running_site


def queue(site: Site, **params: Any) -> list[dict[str, Any]]:
    response = site.http.get("/v1/queue", params=params)
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


def test_a_job_is_queued_as_soon_as_it_is_acknowledged(site: Site) -> None:
    assert queue(site) == []
    (job_id,) = site.submit_ok(SCRIPT, "--hold", "-J", "first")
    (row,) = queue(site)  # no scheduling step in between
    assert (row["id"], row["name"], row["state"], row["reason"], row["held"]) == \
        (job_id, "first", "PENDING", "HELD", True)
    site.http.post(f"/v1/jobs/{job_id}/cancel")
    assert queue(site) == []


def test_reasons_etas_and_running_jobs(site: Site) -> None:
    (running,) = site.submit_ok("#!/bin/bash\n#SBATCH --gpus=2\nsleep 20\n")
    (waiting,) = site.submit_ok(SCRIPT, "--gpus=2")
    site.controller.step()
    rows = {r["id"]: r for r in queue(site)}
    assert rows[running]["state"] == "RUNNING" and rows[running]["nodelist"] == ["node1"]
    assert rows[running]["start_ts"] is not None and rows[running]["reason"] is None
    assert rows[waiting]["reason"] == "RESOURCES" and rows[waiting]["eta_ts"] is not None
    assert [r["id"] for r in queue(site, start="true")] == [running, waiting]
    text = site.http.get("/v1/queue", params={"format": "text", "start": "true"}).text
    header, first, second = text.splitlines()
    assert header.split() == ["JOBID", "NAME", "USER", "PROJECT", "STATE", "TIME", "NODES",
                              "START_TIME", "NODELIST(REASON)"]
    assert first.split()[4:] [0] == "RUNNING" and first.endswith("node1")
    assert second.endswith("(RESOURCES)")


def test_filters(site: Site) -> None:
    a = site.submit_ok(SCRIPT, "--hold", "-A", "nlp")[0]
    b = site.submit_ok(SCRIPT, "--hold", "-A", "bio")[0]
    arr = site.submit_ok(SCRIPT, "--hold", "--array=1-2")

    def ids(**params: Any) -> list[int]:
        return [r["id"] for r in queue(site, **params)]

    assert ids(project="bio") == [b]
    assert ids(project="nlp,bio") == [a, b]
    assert ids(user=ME) == [a, b, *arr] and ids(user="nobody") == []
    assert ids(state="pending") == [a, b, *arr] and ids(state="RUNNING") == []
    assert ids(job=str(arr[0])) == arr  # an array's id names its tasks
    assert ids(job=[str(a), str(b)]) == [a, b]
    for params, field in (({"state": "COMPLETED"}, "state"), ({"state": "LOST"}, "state"),
                          ({"job": "x"}, "job"), ({"format": "xml"}, "format")):
        response = site.http.get("/v1/queue", params=params)
        assert response.status_code in (400, 422) and response.json()["field"] == field


def test_the_view_loads_jobs_submitted_before_the_api_and_follows_the_log() -> None:
    with running_site() as site:
        early = site.submit_ok(SCRIPT, "--hold")[0]
        site.controller.step()
        late = site.submit_ok(SCRIPT, "--hold")[0]
        assert [r["id"] for r in queue(site)] == [early, late]
        site.http.post(f"/v1/jobs/{late}/release")
        site.wait(late, lambda r: r.state.terminal)
        assert [r["id"] for r in queue(site)] == [early]


def test_json_is_one_job_a_line_and_the_same_for_the_same_queue(site: Site) -> None:
    site.submit_ok(SCRIPT, "--hold")
    site.submit_ok(SCRIPT, "--hold")
    first = site.http.get("/v1/queue").text
    assert first == site.http.get("/v1/queue").text
    lines = first.splitlines()
    assert lines[0] == '{"jobs": [' and lines[-1] == "]}" and len(lines) == 4
    assert json.loads(first)["jobs"][0]["id"] == 1


def test_squeue_times_and_the_table() -> None:
    assert [squeue_time(s) for s in (0, 5, 65, 3600, 3725, 90_061)] == \
        ["0:00", "0:05", "1:05", "1:00:00", "1:02:05", "1-01:01:01"]
    rows = [QueueRow(7, "a-very-long-name", "ana", "nlp", "RUNNING", None,
                     ("dgx001", "dgx002"), 0.0, 100.0, None, 600, 2, 16, None, None, False),
            QueueRow(12, "b", "bo", "bio", "PENDING", None, (), 0.0, None, 7200.0, 600, 1, 1,
                     None, None, False)]
    text = render_text(rows, now=165.0, by_start=True).decode()
    assert text.splitlines() == [
        "JOBID NAME             USER PROJECT STATE   TIME NODES START_TIME          "
        "NODELIST(REASON)",
        "    7 a-very-long-name ana  nlp     RUNNING 1:05     2 1970-01-01T00:01:40 "
        "dgx001,dgx002",
        "   12 b                bo   bio     PENDING 0:00     1 1970-01-01T02:00:00 (None)",
    ]


def test_an_empty_table_is_its_header() -> None:
    assert render_text([], now=0.0).decode() == \
        "JOBID NAME USER PROJECT STATE TIME NODES NODELIST(REASON)\n"
    assert render_json([]) == b'{"jobs": []}\n'
