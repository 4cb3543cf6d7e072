"""``/v1/nodes``, drain and resume, and ``/v1/cluster``."""

from __future__ import annotations

from tests.api.helpers import NODE, SCRIPT, Site


def test_nodes_drain_and_resume(site: Site) -> None:
    (node,) = site.http.get("/v1/nodes").json()["nodes"]
    assert node == {"name": NODE, "gpus": 2, "su": "su1", "state": "idle", "reason": None,
                    "gpus_allocated": 0, "reservation": None, "maint_start_ts": None}
    with site.client_for(site.token_for("ops", role="operator")) as ops:
        drained = ops.post(f"/v1/nodes/{NODE}/drain", json={"reason": "bad fan"})
        assert drained.status_code == 200, drained.text
        assert (drained.json()["state"], drained.json()["reason"]) == ("drained", "bad fan")
        (job_id,) = site.submit_ok()
        site.controller.step()
        assert site.controller.get_job(job_id).state.value == "PENDING"  # nothing starts
        resumed = ops.post(f"/v1/nodes/{NODE}/resume")
        assert resumed.json()["state"] == "idle"
    site.wait(job_id, lambda r: r.state.terminal)
    assert [e.payload.get("by") for e in site.store.events_since(0)
            if e.kind in ("node.drained", "node.resumed")] == ["ops", "ops"]


def test_a_drain_needs_a_reason_and_a_known_node(site: Site) -> None:
    seq = site.last_seq()
    response = site.http.post(f"/v1/nodes/{NODE}/drain", json={})
    assert response.status_code == 422 and response.json()["field"] == "reason"
    response = site.http.post(f"/v1/nodes/{NODE}/drain", json={"reason": ""})
    assert response.status_code == 422 and response.json()["field"] == "reason"
    response = site.http.post("/v1/nodes/nowhere/drain", json={"reason": "x"})
    assert response.status_code == 404
    assert site.last_seq() == seq


def test_the_cluster_summary(site: Site) -> None:
    site.submit_ok(SCRIPT, "--hold")
    site.controller.step()
    summary = site.http.get("/v1/cluster").json()
    assert summary["gpus"] == 2 and summary["nodes"] == 1
    assert summary["jobs_by_state"]["PENDING"] == 1
    assert summary["queue_by_reason"] == {"HELD": 1}
