"""Refusals are RFC 9457 problem bodies naming the field (and file and line), with the
status the error's kind says; a refused request writes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import ME, SCRIPT, Site

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"].startswith("urn:gefion:problem:")
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_a_bad_directive_is_400_with_file_line_and_option(site: Site) -> None:
    seq = site.last_seq()
    body = problem(site.submit("#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=soon\n"), 400)
    assert (body["source"], body["line"], body["field"]) == ("job.sh", 3, "--time")
    assert "soon" in body["detail"]
    assert site.last_seq() == seq


def test_a_bad_flag_and_an_impossible_shape_are_400(site: Site) -> None:
    seq = site.last_seq()
    assert problem(site.submit(SCRIPT, "--gpus=lots"), 400)["field"] == "--gpus"
    assert problem(site.submit(SCRIPT, "--gpus-per-node=3"), 400)["field"] == "--gpus-per-node"
    assert problem(site.submit(None), 400)["detail"]  # neither a script nor --wrap
    assert problem(site.submit(SCRIPT, user="no-such-user-here"), 400)["field"] == "user"
    assert site.last_seq() == seq


@pytest.mark.parametrize(("body", "field"), [
    ({"script": SCRIPT, "cwd": "/tmp", "user": ""}, "user"),
    ({"script": SCRIPT, "user": ME}, "cwd"),
    ({"script": 12, "cwd": "/tmp", "user": ME}, "script"),
    ({"script": SCRIPT, "cwd": "/tmp", "user": ME, "argv": ["-N", 2]}, "argv[1]"),
    ({"script": SCRIPT, "cwd": "/tmp", "user": ME, "env": {"A": None}}, "env.A"),
    ({"script": SCRIPT, "cwd": "/tmp", "user": ME, "priority": 9}, "priority"),
])
def test_a_malformed_body_is_422_naming_the_field(shared_site: Site, body: dict[str, Any],
                                                  field: str) -> None:
    seq = shared_site.last_seq()
    assert problem(shared_site.http.post("/v1/jobs", json=body), 422)["field"] == field
    assert shared_site.last_seq() == seq


def test_a_body_that_is_not_json_is_422(shared_site: Site) -> None:
    response = shared_site.http.post("/v1/jobs", content=b"{not json",
                              headers={"content-type": "application/json"})
    assert problem(response, 422)["field"] == "body"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/jobs/999"), ("GET", "/v1/jobs/999/events"), ("GET", "/v1/jobs/999/logs"),
    ("POST", "/v1/jobs/999/cancel"), ("POST", "/v1/jobs/999/hold"),
    ("POST", "/v1/jobs/999/release"), ("POST", "/v1/nodes/nowhere/resume"),
    ("GET", "/v1/no-such-route"),
])
def test_what_does_not_exist_is_404(shared_site: Site, method: str, path: str) -> None:
    problem(shared_site.http.request(method, path, json={"user": ME}), 404)


def test_a_path_id_that_is_no_number_is_422(shared_site: Site) -> None:
    assert problem(shared_site.http.get("/v1/jobs/abc"), 422)["field"] == "job_id"


def test_cancelling_an_ended_job_is_409_and_changes_nothing(site: Site) -> None:
    (job_id,) = site.submit_ok()
    site.wait(job_id, lambda r: r.state.terminal)
    seq = site.last_seq()
    for action in ("cancel", "hold", "release"):
        body = problem(site.http.post(f"/v1/jobs/{job_id}/{action}"), 409)
        assert str(job_id) in body["detail"]
    assert site.last_seq() == seq
    assert site.controller.get_job(job_id).state.value == "COMPLETED"


def test_releasing_a_job_not_held_is_409(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--hold")
    assert site.http.post(f"/v1/jobs/{job_id}/release").status_code == 200
    problem(site.http.post(f"/v1/jobs/{job_id}/release"), 409)


def test_an_action_needs_to_know_who_asks(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--hold")
    with site.client_for(None) as anonymous:
        body = problem(anonymous.post(f"/v1/jobs/{job_id}/cancel"), 401)
    assert "Bearer" in body["detail"]
    assert site.controller.get_job(job_id).state.value == "PENDING"


def test_an_unexpected_failure_is_500_without_its_details(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(site.controller, "summary", broken)
    body = problem(site.http.get("/v1/cluster"), 500)
    assert "secret internals" not in str(body)
