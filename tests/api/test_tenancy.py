"""The tenancy routes as an admin uses them: users, projects, members, QOS, grants and
reservations are created and listed; bad input is a 4xx problem naming the field and
changes nothing; every change is an audit event recorded ``by`` its author."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gefion.core.tenancy import QOS, Grant
from tests.api.helpers import ME, NODE, Site


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(site: Site, method: str, path: str, body: dict[str, Any] | None,
            status: int, field: str | None) -> dict[str, Any]:
    seq = site.last_seq()
    response = site.http.request(method, path, json=body)
    assert response.status_code == status, response.text
    problem: dict[str, Any] = response.json()
    assert problem.get("field") == field, problem
    assert site.last_seq() == seq  # nothing was written
    return problem


def test_users_projects_and_members(site: Site) -> None:
    ok(site.http.post("/v1/projects", json={"name": "chem", "shares": 2.5, "max_gpus": 64,
                                            "metered": True, "description": "chemistry"}),
       201)
    user = ok(site.http.post("/v1/users", json={"name": "ana", "default_project": "chem"}),
              201)
    assert (user["name"], user["role"], user["default_project"]) == ("ana", "user", "chem")
    ok(site.http.post("/v1/projects/chem/members", json={"user": "ana", "role": "lead"}), 201)
    project = ok(site.http.get("/v1/projects/chem"))
    assert (project["shares"], project["max_gpus"], project["metered"]) == (2.5, 64, True)
    assert [(m["user"], m["role"]) for m in project["members"]] == [("ana", "lead")]
    users = {u["name"]: u for u in ok(site.http.get("/v1/users"))["users"]}
    assert users["ana"]["projects"] == {"chem": "lead"} and users[ME]["role"] == "admin"
    changed = ok(site.http.patch("/v1/users/ana", json={"role": "operator"}))
    assert changed["role"] == "operator" and changed["default_project"] == "chem"
    cleared = ok(site.http.patch("/v1/users/ana", json={"default_project": None}))
    assert cleared["default_project"] is None and cleared["role"] == "operator"
    assert site.store.projects()["chem"].members == frozenset({"ana"})


def test_a_role_change_applies_to_the_next_request(site: Site) -> None:
    token = site.token_for("ana")
    with site.client_for(token) as ana:
        assert ana.post(f"/v1/nodes/{NODE}/drain", json={"reason": "x"}).status_code == 403
        ok(site.http.patch("/v1/users/ana", json={"role": "operator"}))
        assert ana.post(f"/v1/nodes/{NODE}/drain", json={"reason": "x"}).status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("POST", "/v1/users", {"name": "bad name"}, 422, "name"),
    ("POST", "/v1/users", {"name": "-dash"}, 422, "name"),
    ("POST", "/v1/users", {"name": "x" * 65}, 422, "name"),
    ("POST", "/v1/users", {"name": "ana", "role": "king"}, 422, "role"),
    ("POST", "/v1/users", {"name": "ana", "default_project": "nowhere"}, 404,
     "default_project"),
    ("POST", "/v1/users", {"name": ME}, 409, None),
    ("PATCH", "/v1/users/ghost", {"role": "user"}, 404, "name"),
    ("PATCH", f"/v1/users/{ME}", {}, 400, "body"),
    ("POST", "/v1/projects", {"name": "nlp"}, 409, None),
    ("POST", "/v1/projects", {"name": "p", "shares": -1}, 422, "shares"),
    ("POST", "/v1/projects", {"name": "p", "colour": "red"}, 422, "colour"),
    ("POST", "/v1/projects/nlp/members", {"user": "ghost"}, 404, "user"),
    ("POST", "/v1/projects/nowhere/members", {"user": ME}, 404, "project"),
    ("POST", "/v1/projects/nlp/members", {"user": ME, "role": "owner"}, 422, "role"),
    ("DELETE", f"/v1/projects/nlp/members/{ME}", None, 404, "user"),
    ("GET", "/v1/projects/nowhere", None, 404, "project"),
    ("POST", "/v1/qos", {"name": "q", "max_time_limit_s": 0}, 422, "max_time_limit_s"),
    ("POST", "/v1/qos", {"name": "q", "usage_factor": -1}, 422, "usage_factor"),
    ("POST", "/v1/grants", {"project": "nowhere", "gpu_hours": 1}, 404, "project"),
    ("POST", "/v1/grants", {"project": "nlp", "gpu_hours": -1}, 422, "gpu_hours"),
    ("POST", "/v1/grants", {"project": "nlp", "gpu_hours": 1, "valid_from_ts": 100,
                            "valid_to_ts": 50}, 400, "valid_to"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": ["dgx001"], "start_ts": 1,
                                  "end_ts": 2}, 400, "nodes"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": ["node[1-"], "start_ts": 1,
                                  "end_ts": 2}, 400, "nodes"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": [], "start_ts": 1, "end_ts": 2},
     422, "nodes"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": [NODE], "start_ts": 2,
                                  "end_ts": 1}, 400, "end"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": [NODE], "start_ts": 0,
                                  "end_ts": 7200, "period_s": 3600}, 400, "period"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": [NODE], "start_ts": 1,
                                  "end_ts": 2, "projects": ["nowhere"]}, 404, "projects"),
    ("POST", "/v1/reservations", {"name": "r", "nodes": [NODE], "start_ts": 1,
                                  "end_ts": 2, "users": ["ghost"]}, 404, "users"),
    ("DELETE", "/v1/reservations/none", None, 404, "name"),
])
def test_bad_input_names_the_field_and_changes_nothing(
        shared_site: Site, method: str, path: str, body: dict[str, Any] | None, status: int,
        field: str | None) -> None:
    refused(shared_site, method, path, body, status, field)


def test_qos_grants_and_reservations_are_data_the_controller_reads(site: Site) -> None:
    ok(site.http.post("/v1/qos", json={"name": "urgent", "priority": 1000,
                                       "preempts": ["scavenger"], "max_time_limit_s": 3600,
                                       "grace_s": 10}), 201)
    assert site.store.list_qos() == [QOS("urgent", priority=1000,
                                         preempts=frozenset({"scavenger"}),
                                         max_time_limit_s=3600, grace_s=10)]
    assert site.http.post("/v1/qos", json={"name": "urgent"}).status_code == 409
    first = ok(site.http.post("/v1/grants", json={
        "project": "nlp", "gpu_hours": 50_000, "funder": "EuroHPC", "valid_from_ts": 100.0,
        "valid_to_ts": 1e10}), 201)
    second = ok(site.http.post("/v1/grants", json={"project": "nlp", "gpu_hours": 10}), 201)
    named = ok(site.http.post("/v1/grants", json={"project": "bio", "gpu_hours": 1,
                                                  "id": "bio-pilot"}), 201)
    assert (first["id"], second["id"], named["id"]) == ("nlp-1", "nlp-2", "bio-pilot")
    assert second["valid_to_ts"] is None
    assert second["valid_from_ts"] == pytest.approx(time.time(), abs=60)
    assert site.store.list_grants("nlp")[0] == Grant("nlp-1", "nlp", 50_000, 100.0, 1e10,
                                                     "EuroHPC")
    assert [g["id"] for g in ok(site.http.get("/v1/grants", params={"project": "bio"}))[
        "grants"]] == ["bio-pilot"]
    start = time.time() + 3600
    made = ok(site.http.post("/v1/reservations", json={
        "name": "forecast", "nodes": ["node[1-1]"], "start_ts": start,
        "end_ts": start + 4 * 3600, "period_s": 86_400, "projects": ["nlp"],
        "users": [ME]}), 201)
    assert (made["nodes"], made["nodelist"], made["period_s"]) == ([NODE], NODE, 86_400)
    (reservation,) = site.store.list_reservations()
    assert reservation.admits("nlp", "x", None) and not reservation.admits("bio", "x", None)
    assert reservation.window_at(start + 86_400 + 60) is not None
    assert site.http.post("/v1/reservations", json={
        "name": "forecast", "nodes": [NODE], "start_ts": 1, "end_ts": 2}).status_code == 409
    assert ok(site.http.delete("/v1/reservations/forecast"))["deleted"] is True
    assert site.store.list_reservations() == []


def test_every_change_is_an_audit_event_by_its_author(site: Site) -> None:
    seq = site.last_seq()
    site.http.post("/v1/users", json={"name": "ana"})
    token = site.http.post("/v1/tokens", json={"user": "ana"}).json()
    site.http.post(f"/v1/tokens/{token['id']}/revoke")
    events = ok(site.http.get("/v1/audit", params={"after": seq}))["events"]
    assert [(e["kind"], e["payload"]["by"]) for e in events] == [
        ("user.created", ME), ("token.created", ME), ("token.revoked", ME)]
    assert "hash" not in events[1]["payload"] and token["token"] not in str(events)
    only = ok(site.http.get("/v1/audit", params={"after": seq, "kind": "token.revoked"}))
    assert [e["kind"] for e in only["events"]] == ["token.revoked"]
    page = ok(site.http.get("/v1/audit", params={"after": seq, "limit": 2}))
    assert len(page["events"]) == 2 and page["next_after"] == page["events"][1]["seq"]
