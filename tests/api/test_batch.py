"""``POST /v1/jobs/batch``: several submissions in one transaction, all or nothing."""

from __future__ import annotations

from typing import Any

from gefion.api.schemas import MAX_BATCH
from gefion.core.jobs import JobState
from tests.api.helpers import SCRIPT, Site


def item(site: Site, script: str | None = SCRIPT, *argv: str, **extra: Any) -> dict[str, Any]:
    return {"script": script, "argv": list(argv), "cwd": str(site.workdir),
            "source": "job.sh", **extra}


def test_a_batch_commits_every_submission_and_answers_each_in_order(site: Site) -> None:
    body = {"submissions": [item(site, SCRIPT, "--hold", "-J", "one"),
                            item(site, SCRIPT, "--hold", "--array=0-2"),
                            item(site, SCRIPT + "#SBATCH --mem-per-gpu=1G\n", "--hold")]}
    response = site.http.post("/v1/jobs/batch", json=body)
    assert response.status_code == 201, response.text
    results = response.json()["results"]
    assert [len(r["job_ids"]) for r in results] == [1, 3, 1]
    assert results[1]["array_job_id"] == results[1]["job_ids"][0]
    assert results[0]["array_job_id"] is None and results[2]["warnings"]
    first = site.controller.get_job(results[0]["job_ids"][0])  # committed before the answer
    assert (first.name, first.state, first.held) == ("one", JobState.PENDING, True)


def test_one_bad_script_refuses_the_batch_names_it_and_stores_nothing(site: Site) -> None:
    seq = site.last_seq()
    bad = "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=never\necho hi\n"
    response = site.http.post("/v1/jobs/batch", json={"submissions": [
        item(site, SCRIPT, "--hold"), item(site, bad, "--hold")]})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["field"].startswith("submissions[1]") and problem["line"] == 3
    assert site.last_seq() == seq


def test_test_only_and_oversized_batches_are_refused(site: Site) -> None:
    seq = site.last_seq()
    response = site.http.post("/v1/jobs/batch", json={"submissions": [
        item(site, SCRIPT, "--hold"), item(site, SCRIPT, test_only=True)]})
    assert response.status_code == 400 and "submissions[1].test_only" in response.text
    response = site.http.post("/v1/jobs/batch", json={"submissions": [
        item(site, SCRIPT, "--hold"), item(site, SCRIPT, "--test-only")]})
    assert response.status_code == 400 and "submissions[1]" in response.text
    too_many = {"submissions": [item(site, SCRIPT, "--hold")] * (MAX_BATCH + 1)}
    assert site.http.post("/v1/jobs/batch", json=too_many).status_code == 422
    assert site.http.post("/v1/jobs/batch", json={"submissions": []}).status_code == 422
    assert site.last_seq() == seq


def test_a_retried_batch_is_submitted_once(site: Site) -> None:
    body = {"submissions": [item(site, SCRIPT, "--hold"), item(site, SCRIPT, "--hold")]}
    first = site.http.post("/v1/jobs/batch", json=body, headers={"Idempotency-Key": "b-1"})
    again = site.http.post("/v1/jobs/batch", json=body, headers={"Idempotency-Key": "b-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(site.http.get("/v1/jobs").json()["jobs"]) == 2


def test_a_malformed_submission_is_named_by_its_index_and_field(site: Site) -> None:
    seq = site.last_seq()
    good = item(site, SCRIPT, "--hold")
    for bad, field in (({"script": SCRIPT}, "submissions[1].cwd"),
                       ({**good, "argv": "--hold"}, "submissions[1].argv"),
                       ({**good, "env": {"A": 1}}, "submissions[1].env.A"),
                       ({**good, "colour": "red"}, "submissions[1].colour")):
        response = site.http.post("/v1/jobs/batch", json={"submissions": [good, bad]})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["field"] == field
    response = site.http.post("/v1/jobs/batch", content=b'{"submissions": [',
                              headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["field"] == "body"
    assert site.last_seq() == seq


def test_submissions_sharing_a_script_keep_their_own_flags_and_environment(
        site: Site) -> None:
    env = {"HOME": "/home/ana", "SWEEP": "0"}
    body = {"submissions": [item(site, SCRIPT, "--hold", env=env),
                            item(site, SCRIPT, "--hold", "-J", "two", env=env),
                            item(site, SCRIPT, "--hold", env={**env, "SWEEP": "2"}),
                            item(site, SCRIPT, "--hold", env=env)]}
    response = site.http.post("/v1/jobs/batch", json=body)
    assert response.status_code == 201, response.text
    rows = [site.controller.get_job(r["job_ids"][0]) for r in response.json()["results"]]
    assert [r.name for r in rows] == ["job.sh", "two", "job.sh", "job.sh"]
    assert [r.spec["env"]["SWEEP"] for r in rows] == ["0", "0", "2", "0"]


def test_a_batch_body_must_be_json(shared_site: Site) -> None:
    body = b'{"submissions": [{"script": "#!/bin/sh\\n", "cwd": "/tmp"}]}'
    for headers, content in (({"content-type": "text/plain"}, body), ({}, body),
                             ({"content-type": "application/json"}, b"")):
        response = shared_site.http.post("/v1/jobs/batch", content=content, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "body"


def test_the_openapi_document_shows_the_batch_body(shared_site: Site) -> None:
    doc = shared_site.http.get("/openapi.json").json()
    schema = doc["paths"]["/v1/jobs/batch"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    items = schema["properties"]["submissions"]
    assert schema["required"] == ["submissions"] and items["maxItems"] == MAX_BATCH
    assert items["items"]["$ref"].rsplit("/", 1)[1] in doc["components"]["schemas"]
