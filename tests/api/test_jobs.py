"""``/v1/jobs``: submit (idempotent, test-only), list with filters and pages, one job,
its events, cancel/hold/release — and the environment never in an answer."""

from __future__ import annotations

import json

from gefion.core.jobs import JobState
from tests.api.helpers import ME, SCRIPT, Site


def test_openapi_lists_every_route(shared_site: Site) -> None:
    paths = shared_site.http.get("/openapi.json").json()["paths"]
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events",
            "/v1/jobs/{job_id}/cancel", "/v1/jobs/{job_id}/hold", "/v1/jobs/{job_id}/release",
            "/v1/jobs/{job_id}/logs", "/v1/queue", "/v1/nodes", "/v1/nodes/{name}/drain",
            "/v1/nodes/{name}/resume", "/v1/cluster"} <= set(paths)
    assert "Idempotency-Key".lower() in json.dumps(paths["/v1/jobs"]["post"]).lower()


def test_submit_answers_the_committed_ids_and_warnings(site: Site) -> None:
    response = site.submit(SCRIPT + "#SBATCH --mem-per-gpu=1G\n", "--hold")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["array_job_id"] is None and len(body["job_ids"]) == 1
    row = site.controller.get_job(body["job_ids"][0])  # committed before the answer
    assert (row.state, row.held, row.user) == (JobState.PENDING, True, ME)


def test_an_array_submission_answers_every_task(site: Site) -> None:
    body = site.submit(SCRIPT, "--array=0-3%2", "--hold").json()
    ids = body["job_ids"]
    assert len(ids) == 4 and body["array_job_id"] == ids[0]
    page = site.http.get("/v1/jobs", params={"array_job_id": ids[0]}).json()
    assert [j["array_task_id"] for j in page["jobs"]] == [0, 1, 2, 3]


def test_the_same_idempotency_key_submits_once(site: Site) -> None:
    payload = {"script": SCRIPT, "argv": ["--hold"], "cwd": str(site.workdir), "user": ME}
    first = site.http.post("/v1/jobs", json=payload, headers={"Idempotency-Key": "k-1"})
    again = site.http.post("/v1/jobs", json=payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["job_ids"] == again.json()["job_ids"]
    assert len(site.http.get("/v1/jobs").json()["jobs"]) == 1


def test_test_only_parses_and_submits_nothing(site: Site) -> None:
    seq = site.last_seq()
    for response in (site.submit(SCRIPT, "-N", "1", "-A", "nlp", test_only=True),
                     site.submit(SCRIPT, "--test-only", "-N1", "-A", "nlp")):
        assert response.status_code == 200, response.text
        parsed = response.json()
        assert (parsed["name"], parsed["gpus"], parsed["nodes"], parsed["project"],
                parsed["time_limit_s"]) == ("job.sh", 1, 1, "nlp", 300)
        assert "script" not in parsed
    assert site.last_seq() == seq
    assert site.http.get("/v1/jobs").json()["jobs"] == []


def test_the_environment_is_in_no_answer(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--hold")
    site.controller.step()
    stored = site.controller.get_job(job_id).spec["env"]
    assert stored["SECRET_TOKEN"] == "hunter2"  # kept for the job, never shown
    for path in (f"/v1/jobs/{job_id}", "/v1/jobs", f"/v1/jobs/{job_id}/events", "/v1/queue",
                 "/v1/cluster"):
        text = site.http.get(path).text
        assert "hunter2" not in text and "SECRET_TOKEN" not in text, path
    assert "env" not in site.http.get(f"/v1/jobs/{job_id}").json()["spec"]


def test_a_job_shows_its_reason_eta_and_priority_factors(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--gpus=2")
    (waiting,) = site.submit_ok(SCRIPT, "--gpus=2")
    site.controller.step()
    job = site.http.get(f"/v1/jobs/{waiting}").json()
    assert job["state"] == "PENDING" and job["reason"] == "RESOURCES"
    assert job["eta_ts"] is not None and job["eta_ts"] > job["submit_ts"]
    assert set(job["priority"]) >= {"priority", "age", "fairshare", "qos", "size", "grant"}
    assert job["spec"]["script"] == SCRIPT and job["gpus"] == 2
    running = site.http.get(f"/v1/jobs/{job_id}").json()
    assert running["state"] == "RUNNING"
    assert running["allocation"] == {"node1": [0, 1]} and running["nodelist"] == ["node1"]
    assert running["elapsed_s"] >= 0 and running["reason"] is None


def test_pages_follow_the_ids(site: Site) -> None:
    ids = [site.submit_ok(SCRIPT, "--hold")[0] for _ in range(7)]
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"after": after} if after is not None else {})
        page = site.http.get("/v1/jobs", params=params).json()
        seen += [j["id"] for j in page["jobs"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert seen == ids and pages == 3
    for bad in (0, 10_001, "x"):
        response = site.http.get("/v1/jobs", params={"limit": bad})
        assert response.status_code == 422 and response.json()["field"] == "limit"


def test_filters(site: Site) -> None:
    a = site.submit_ok(SCRIPT, "--hold", "-A", "nlp", "-J", "train")[0]
    b = site.submit_ok(SCRIPT, "--hold", "-A", "bio")[0]
    c = site.submit_ok(SCRIPT, "--hold", "-A", "bio")[0]
    site.http.post(f"/v1/jobs/{c}/cancel")

    def ids(**params: object) -> list[int]:
        response = site.http.get("/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["jobs"]]

    assert ids(project="bio") == [b, c]
    assert ids(name="train") == [a]
    assert ids(user=ME) == [a, b, c] and ids(user="nobody") == []
    assert ids(state="CANCELLED") == [c]
    assert ids(state="pending,cancelled") == [a, b, c]
    assert ids(state=["PENDING", "CANCELLED"], project="bio") == [b, c]
    response = site.http.get("/v1/jobs", params={"state": "LOST"})
    assert response.status_code == 400 and response.json()["field"] == "state"


def test_events_tell_the_story(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--hold")
    assert site.http.post(f"/v1/jobs/{job_id}/release").status_code == 200
    site.wait(job_id, lambda r: r.state.terminal)
    events = site.http.get(f"/v1/jobs/{job_id}/events").json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds == ["job.submitted", "job.released", "job.started", "job.finished"]
    assert events[1]["payload"] == {"by": ME}
    job = site.http.get(f"/v1/jobs/{job_id}").json()
    assert (job["state"], job["exit_code"], job["signal"]) == ("COMPLETED", 0, None)


def test_cancel_hold_release_record_who_asked(site: Site) -> None:
    (job_id,) = site.submit_ok(SCRIPT, "--hold", "--gpus=2")
    with site.client_for(site.token_for("ops", role="operator")) as ops:
        held = ops.post(f"/v1/jobs/{job_id}/release")
    assert held.status_code == 200 and held.json()["held"] is False
    assert site.http.post(f"/v1/jobs/{job_id}/hold").json()["held"]
    cancelled = site.http.post(f"/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    payloads = [e.payload for e in site.controller.job_events(job_id)[1:]]
    assert payloads == [{"by": "ops"}, {"by": ME}, {"by": ME}]


def test_a_running_job_is_cancelled_through_its_supervisor(site: Site) -> None:
    (job_id,) = site.submit_ok("#!/bin/bash\nsleep 30\n")
    site.wait(job_id, lambda r: r.state is JobState.RUNNING)
    response = site.http.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    row = site.wait(job_id, lambda r: r.state.terminal)
    assert row.state is JobState.CANCELLED
