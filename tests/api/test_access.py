"""Who may do what, over the whole API: a role × route matrix on a real controller.

Every route of the application (walked from its routes and from its OpenAPI document)
has a row here, and every cell an expected status: a route added without a row fails
``test_every_route_has_a_row``. The principals:

==========  ================================================================
anonymous   no token at all
member      a member of project ``nlp``
lead        a lead of ``nlp``; owns the target job
outsider    a member of ``bio`` only
operator    site role operator, no project
admin       the site's admin (bootstrapped as ``gefion up`` does)
==========  ================================================================

Gefion users are Unix accounts (jobs run as them when the controller is root), so the
users who submit are accounts every Debian system has.
"""

from __future__ import annotations

import itertools
import pwd
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gefion.controller.submission import SubmitRequest
from gefion.core.tenancy import Grant
from tests.api.helpers import ME, NODE, SCRIPT, Site, running_site

MEMBER, LEAD, OUTSIDER, OPERATOR = "bin", "daemon", "sys", "games"
ROLES = ("anonymous", "member", "lead", "outsider", "operator", "admin")
HOLD = SCRIPT


@dataclass
class World:
    """The site, a client per role, and a counter for fresh names."""

    site: Site
    clients: dict[str, httpx.Client]
    counter: Iterator[int]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    def job(self, user: str = LEAD, project: str = "nlp", held: bool = True) -> int:
        """A pending job of ``user`` in ``project``, made through the controller."""
        argv = ("-A", project, *(("--hold",) if held else ()))
        ids, _ = self.site.controller.submit(SubmitRequest(
            user=user, cwd=str(self.site.workdir), script=HOLD, argv=argv))
        return ids[0]

    def now(self) -> float:
        return self.site.controller.now()


Call = tuple[str, dict[str, Any] | None]  # the path, the JSON body
Prepare = Callable[[World], Call]


def plain(path: str, body: dict[str, Any] | None = None) -> Prepare:
    return lambda world: (path, body)


def on_job(action: str = "", held: bool = True) -> Prepare:
    return lambda w: (f"/v1/jobs/{w.job(held=held)}{action}", None)


def submission(w: World) -> Call:
    return "/v1/jobs", {"script": SCRIPT, "argv": ["--hold", "-A", "nlp"],
                        "cwd": str(w.site.workdir)}


def batch(w: World) -> Call:
    return "/v1/jobs/batch", {"submissions": [submission(w)[1]]}


def up_node(w: World) -> Call:
    if w.site.store.get_node(NODE).state.value != "idle":  # type: ignore[union-attr]
        w.site.controller.resume(NODE, by="test")
    return f"/v1/nodes/{NODE}/drain", {"reason": "matrix"}


def drained_node(w: World) -> Call:
    if w.site.store.get_node(NODE).state.value == "idle":  # type: ignore[union-attr]
        w.site.controller.drain(NODE, reason="matrix", by="test")
    return f"/v1/nodes/{NODE}/resume", None


def new_member(w: World) -> Call:
    name = w.fresh("newbie")
    w.site.store.create_user(name, ts=w.now(), by="test")
    return "/v1/projects/nlp/members", {"user": name}


def old_member(w: World) -> Call:
    path, body = new_member(w)
    assert body is not None
    w.site.store.add_member("nlp", body["user"], ts=w.now(), by="test")
    return f"{path}/{body['user']}", None


def members_token(w: World) -> Call:
    row, _ = w.site.store.create_token(MEMBER, ts=w.now(), by="test")
    return f"/v1/tokens/{row.id}/revoke", None


def reservation(w: World) -> Call:
    return "/v1/reservations", {"name": w.fresh("res"), "nodes": [NODE],
                                "start_ts": w.now() + 3600, "end_ts": w.now() + 7200}


def booked(w: World) -> Call:
    from gefion.core.reservations import Reservation

    name = w.fresh("booked")
    w.site.store.create_reservation(Reservation(name, (NODE,), w.now() + 10, w.now() + 20),
                                    ts=w.now(), by="test")
    return f"/v1/reservations/{name}", None


def named(path: str, **body: Any) -> Prepare:
    return lambda w: (path, {"name": w.fresh("x"), **body})


ALL_OK = (401, 200, 200, 200, 200, 200)
#: (method, route) → (how to call it, the status for each of ROLES)
MATRIX: dict[tuple[str, str], tuple[Prepare, tuple[int, ...]]] = {
    ("GET", "/v1/health"): (plain("/v1/health"), (200, 200, 200, 200, 200, 200)),
    # jobs: submit to one's own projects only
    ("POST", "/v1/jobs"): (submission, (401, 201, 201, 403, 403, 201)),
    ("POST", "/v1/jobs/batch"): (batch, (401, 201, 201, 403, 403, 201)),
    ("GET", "/v1/jobs"): (plain("/v1/jobs"), ALL_OK),
    ("GET", "/v1/queue"): (plain("/v1/queue"), ALL_OK),
    # the lead's job in nlp: the outsider may not see it; the member sees, may not act
    ("GET", "/v1/jobs/{job_id}"): (on_job(), (401, 200, 200, 404, 200, 200)),
    ("GET", "/v1/jobs/{job_id}/events"): (on_job("/events"), (401, 200, 200, 404, 200, 200)),
    ("GET", "/v1/jobs/{job_id}/logs"): (on_job("/logs"), (401, 200, 200, 404, 200, 200)),
    ("POST", "/v1/jobs/{job_id}/cancel"): (on_job("/cancel"), (401, 403, 200, 404, 200, 200)),
    ("POST", "/v1/jobs/{job_id}/hold"): (on_job("/hold", held=False),
                                         (401, 403, 200, 404, 200, 200)),
    ("POST", "/v1/jobs/{job_id}/release"): (on_job("/release"),
                                            (401, 403, 200, 404, 200, 200)),
    # nodes: everyone looks; operators and admins drain and resume
    ("GET", "/v1/nodes"): (plain("/v1/nodes"), ALL_OK),
    ("GET", "/v1/cluster"): (plain("/v1/cluster"), ALL_OK),
    ("POST", "/v1/nodes/{name}/drain"): (up_node, (401, 403, 403, 403, 200, 200)),
    ("POST", "/v1/nodes/{name}/resume"): (drained_node, (401, 403, 403, 403, 200, 200)),
    # people
    ("GET", "/v1/me"): (plain("/v1/me"), ALL_OK),
    ("GET", "/v1/users"): (plain("/v1/users"), (401, 403, 403, 403, 200, 200)),
    ("POST", "/v1/users"): (named("/v1/users"), (401, 403, 403, 403, 403, 201)),
    ("PATCH", "/v1/users/{name}"): (plain(f"/v1/users/{MEMBER}", {"default_project": "nlp"}),
                                    (401, 403, 403, 403, 403, 200)),
    ("GET", "/v1/projects"): (plain("/v1/projects"), ALL_OK),
    ("POST", "/v1/projects"): (named("/v1/projects"), (401, 403, 403, 403, 403, 201)),
    ("GET", "/v1/projects/{name}"): (plain("/v1/projects/nlp"),
                                     (401, 200, 200, 404, 200, 200)),
    ("GET", "/v1/projects/{name}/members"): (plain("/v1/projects/nlp/members"),
                                             (401, 200, 200, 404, 200, 200)),
    ("POST", "/v1/projects/{name}/members"): (new_member, (401, 403, 201, 404, 403, 201)),
    ("DELETE", "/v1/projects/{name}/members/{user}"): (old_member,
                                                       (401, 403, 200, 404, 403, 200)),
    # tokens: one's own; admins make them and see all
    ("GET", "/v1/tokens"): (plain("/v1/tokens"), ALL_OK),
    ("POST", "/v1/tokens"): (plain("/v1/tokens", {"user": MEMBER}),
                             (401, 403, 403, 403, 403, 201)),
    ("POST", "/v1/tokens/{token_id}/revoke"): (members_token, (401, 200, 404, 404, 404, 200)),
    ("GET", "/v1/audit"): (plain("/v1/audit"), (401, 403, 403, 403, 403, 200)),
    # allocations
    ("GET", "/v1/qos"): (plain("/v1/qos"), ALL_OK),
    ("POST", "/v1/qos"): (named("/v1/qos"), (401, 403, 403, 403, 403, 201)),
    ("GET", "/v1/grants"): (plain("/v1/grants"), ALL_OK),
    ("POST", "/v1/grants"): (plain("/v1/grants", {"project": "nlp", "gpu_hours": 10}),
                             (401, 403, 403, 403, 403, 201)),
    ("GET", "/v1/reservations"): (plain("/v1/reservations"), ALL_OK),
    # fair share and grant standing: everyone their projects' (staff: all)
    ("GET", "/v1/share"): (plain("/v1/share"), ALL_OK),
    ("GET", "/v1/projects/{name}/usage"): (plain("/v1/projects/nlp/usage"),
                                           (401, 200, 200, 404, 200, 200)),
    ("POST", "/v1/reservations"): (reservation, (401, 403, 403, 403, 201, 201)),
    ("DELETE", "/v1/reservations/{name}"): (booked, (401, 403, 403, 403, 200, 200)),
    # reports: everyone their projects' usage; another project's answers as none at all
    ("GET", "/v1/reports/usage"): (plain("/v1/reports/usage?by=user&project=nlp"),
                                   (401, 200, 200, 404, 200, 200)),
}


def accounts_exist() -> None:
    for name in (MEMBER, LEAD, OUTSIDER, OPERATOR):
        try:
            pwd.getpwnam(name)
        except KeyError:
            pytest.fail(f"the access tests need the Unix account {name!r} (every Debian "
                        "system has it)")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    accounts_exist()
    with running_site() as site:
        tokens = {"member": site.token_for(MEMBER, projects={"nlp": "member"}),
                  "lead": site.token_for(LEAD, projects={"nlp": "lead"}),
                  "outsider": site.token_for(OUTSIDER, projects={"bio": "member"}),
                  "operator": site.token_for(OPERATOR, role="operator"),
                  "admin": site.token}
        clients = {role: site.client_for(tokens.get(role)) for role in ROLES}
        try:
            yield World(site, clients, itertools.count(1))
        finally:
            for client in clients.values():
                client.close()


def app_routes(site: Site) -> set[tuple[str, str]]:
    """(method, path) of every route the application serves under /v1."""
    app = site.server.app
    try:  # FastAPI >= 0.16x nests included routers lazily
        from fastapi.routing import iter_route_contexts

        found = [(c.path, c.methods or set()) for c in iter_route_contexts(app.routes)]
    except ImportError:
        found = [(r.path, getattr(r, "methods", None) or set()) for r in app.routes
                 if hasattr(r, "path")]
    return {(m, path) for path, methods in found for m in methods
            if path.startswith("/v1") and m != "HEAD"}


def test_every_route_has_a_row(world: World) -> None:
    documented = {(m.upper(), path) for path, ops in
                  world.site.http.get("/openapi.json").json()["paths"].items() for m in ops}
    served = app_routes(world.site)
    assert served == documented, "a /v1 route is missing from the OpenAPI document"
    assert documented - set(MATRIX) == set(), "routes without a row in MATRIX"
    assert set(MATRIX) - documented == set(), "rows for routes that no longer exist"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_the_matrix(world: World, route: tuple[str, str]) -> None:
    prepare, expected = MATRIX[route]
    method = route[0]
    got = {}
    for role in ROLES:
        path, body = prepare(world)
        response = world.clients[role].request(method, path, json=body)
        got[role] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert got == dict(zip(ROLES, expected, strict=True))


def test_no_project_is_visible_to_a_non_member(world: World) -> None:
    """The outsider (bio) sees no job, event, log, project or grant of nlp, and a job of
    nlp answers exactly as a job that does not exist."""
    site = world.site
    nlp_job = world.job()
    world.job(user=MEMBER, held=False)
    bio_job = world.job(user=OUTSIDER, project="bio")
    site.store.create_grant(Grant("", "nlp", 100.0), ts=world.now(), by="test")
    outsider = world.clients["outsider"]
    jobs = outsider.get("/v1/jobs", params={"limit": 10_000}).json()["jobs"]
    assert bio_job in {j["id"] for j in jobs} and {j["project"] for j in jobs} == {"bio"}
    assert all(j["project"] != "nlp" for j in
               outsider.get("/v1/jobs", params={"project": "nlp"}).json()["jobs"])
    queue = outsider.get("/v1/queue").json()["jobs"]
    assert {j["project"] for j in queue} <= {"bio"}
    assert "nlp" not in outsider.get("/v1/queue", params={"format": "text"}).text
    assert {p["name"] for p in outsider.get("/v1/projects").json()["projects"]} == {"bio"}
    assert outsider.get("/v1/grants").json()["grants"] == []
    assert outsider.get("/v1/grants", params={"project": "nlp"}).status_code == 404
    missing = 10 ** 9
    for suffix in ("", "/events", "/logs"):
        hidden = outsider.get(f"/v1/jobs/{nlp_job}{suffix}")
        absent = outsider.get(f"/v1/jobs/{missing}{suffix}")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.text.replace(str(nlp_job), "N") == absent.text.replace(str(missing), "N")
    # ... while the member and the lead see them all
    for role in ("member", "lead"):
        seen = {j["project"] for j in world.clients[role].get(
            "/v1/jobs", params={"limit": 10_000}).json()["jobs"]}
        assert "nlp" in seen and "bio" not in seen


def test_members_act_on_their_own_jobs_and_leads_on_their_projects(world: World) -> None:
    own = world.job(user=MEMBER)
    colleague = world.job(user=LEAD)
    member, lead = world.clients["member"], world.clients["lead"]
    assert member.post(f"/v1/jobs/{own}/release").status_code == 200
    refused = member.post(f"/v1/jobs/{colleague}/cancel")
    assert refused.status_code == 403 and LEAD in refused.json()["detail"]
    assert lead.post(f"/v1/jobs/{own}/cancel").json()["state"] == "CANCELLED"
    assert [e.payload for e in world.site.controller.job_events(own)[1:]] == \
        [{"by": MEMBER}, {"by": LEAD}]


def test_a_member_submits_to_their_projects_only(world: World) -> None:
    member = world.clients["member"]
    body = {"script": SCRIPT, "argv": ["--hold"], "cwd": str(world.site.workdir)}
    made = member.post("/v1/jobs", json=body)  # no -A: their only project
    assert made.status_code == 201, made.text
    assert world.site.controller.get_job(made.json()["job_ids"][0]).project == "nlp"
    seq = world.site.last_seq()
    refused = member.post("/v1/jobs", json={**body, "argv": ["--hold", "-A", "bio"]})
    assert refused.status_code == 403 and refused.json()["field"] == "project"
    assert "nlp" in refused.json()["detail"]
    for other in ({**body, "user": LEAD}, {**body, "argv": ["--hold", "--test-only",
                                                            "-A", "bio"]}):
        assert member.post("/v1/jobs", json=other).status_code == 403
    assert not [e for e in world.site.store.events_since(seq) if e.kind == "job.submitted"]
    # an admin submits anywhere that exists, and for anyone
    admin = world.clients["admin"]
    for_lead = admin.post("/v1/jobs", json={**body, "user": LEAD, "argv": ["--hold", "-A",
                                                                          "bio"]})
    assert for_lead.status_code == 201, for_lead.text
    job = world.site.controller.get_job(for_lead.json()["job_ids"][0])
    assert (job.user, job.project) == (LEAD, "bio")
    nowhere = admin.post("/v1/jobs", json={**body, "argv": ["--hold", "-A", "nowhere"]})
    assert nowhere.status_code == 403 and nowhere.json()["field"] == "project"


def test_idempotency_keys_are_per_user(world: World) -> None:
    body = {"script": SCRIPT, "argv": ["--hold", "-A", "nlp"], "cwd": str(world.site.workdir)}
    key = {"Idempotency-Key": "same-key"}
    mine = world.clients["member"].post("/v1/jobs", json=body, headers=key)
    theirs = world.clients["lead"].post("/v1/jobs", json=body, headers=key)
    again = world.clients["member"].post("/v1/jobs", json=body, headers=key)
    assert mine.status_code == theirs.status_code == again.status_code == 201
    assert mine.json()["job_ids"] == again.json()["job_ids"] != theirs.json()["job_ids"]


def test_every_refusal_is_an_event(world: World) -> None:
    site = world.site
    site.denials.flush()  # close the windows the matrix opened
    seq = site.last_seq()
    nlp_job = world.job()
    world.clients["outsider"].get(f"/v1/jobs/{nlp_job}")
    world.clients["member"].post(f"/v1/nodes/{NODE}/drain", json={"reason": "x"})
    world.clients["anonymous"].get("/v1/queue")
    events = site.store.audit_events(after_seq=seq, kinds=["access.denied"])
    tokens = {role: world.site.store.list_tokens(user) for role, user in
              (("outsider", OUTSIDER), ("member", MEMBER))}
    assert [e.payload for e in events] == [
        {"principal": OUTSIDER, "reason": "not-visible", "status": 404,
         "route": "GET /v1/jobs/{job_id}", "target": f"job {nlp_job}",
         "token": tokens["outsider"][0].id},
        {"principal": MEMBER, "reason": "forbidden", "status": 403,
         "route": "POST /v1/nodes/{name}/drain", "target": f"node {NODE}",
         "token": tokens["member"][0].id},
        {"principal": "(anonymous)", "reason": "missing", "status": 401,
         "route": "GET /v1/queue"},
    ]


def test_a_flood_of_refusals_is_coalesced(world: World) -> None:
    site = world.site
    site.denials.flush()
    seq = site.last_seq()
    outsider = world.clients["outsider"]
    hidden = [world.job() for _ in range(3)]
    for i in range(150):  # probing the jobs of another project, again and again
        assert outsider.get(f"/v1/jobs/{hidden[i % 3]}").status_code == 404
    assert outsider.post(f"/v1/jobs/{hidden[0]}/cancel").status_code == 404
    written = site.store.audit_events(after_seq=seq, kinds=["access.denied"])
    assert len(written) == 1 and written[0].payload["target"] == f"job {hidden[0]}"
    site.denials.flush()  # the window closes: one summary
    (_, summary) = site.store.audit_events(after_seq=seq, kinds=["access.denied"])
    assert summary.payload["principal"] == OUTSIDER and summary.payload["suppressed"] == 150
    assert summary.payload["targets"] == [f"job {j}" for j in (hidden[1], hidden[2],
                                                              hidden[0])]
    assert summary.payload["routes"] == ["GET /v1/jobs/{job_id}",
                                         "POST /v1/jobs/{job_id}/cancel"]
    assert all(not site.controller.get_job(j).state.terminal for j in hidden)


def test_lead_manages_members_but_not_leads(world: World) -> None:
    lead = world.clients["lead"]
    name = world.fresh("pupil")
    world.site.store.create_user(name, ts=world.now(), by="test")
    assert lead.post("/v1/projects/nlp/members", json={"user": name}).status_code == 201
    members = {m["user"]: m["role"] for m in
               lead.get("/v1/projects/nlp/members").json()["members"]}
    assert members[name] == "member" and members[LEAD] == "lead"
    promote = lead.post("/v1/projects/nlp/members", json={"user": name, "role": "lead"})
    assert promote.status_code == 403 and promote.json()["field"] == "role"
    assert lead.delete(f"/v1/projects/nlp/members/{LEAD}").status_code == 403
    assert lead.post("/v1/projects/bio/members", json={"user": name}).status_code == 404
    assert lead.delete(f"/v1/projects/nlp/members/{name}").status_code == 200
    assert world.site.store.list_members("nlp", name) == []
    # the new member's token sees nlp's jobs at once, and not after removal
    token = world.site.token_for(name, projects={"nlp": "member"})
    job = world.job()
    with world.site.client_for(token) as pupil:
        assert pupil.get(f"/v1/jobs/{job}").status_code == 200
        assert lead.delete(f"/v1/projects/nlp/members/{name}").status_code == 200
        assert pupil.get(f"/v1/jobs/{job}").status_code == 404


def test_operators_drain_and_book_but_do_not_manage_people(world: World) -> None:
    ops = world.clients["operator"]
    up_node(world)
    drained = ops.post(f"/v1/nodes/{NODE}/drain", json={"reason": "fan"})
    assert drained.status_code == 200 and drained.json()["state"] == "drained"
    assert ops.post(f"/v1/nodes/{NODE}/resume").json()["state"] == "idle"
    assert ops.post("/v1/users", json={"name": "mallory"}).status_code == 403
    assert ops.post("/v1/tokens", json={"user": OPERATOR}).status_code == 403
    seen = {j["project"] for j in ops.get("/v1/jobs", params={"limit": 10_000}).json()["jobs"]}
    assert {"nlp", "bio"} <= seen


def test_me_says_who_and_what(world: World) -> None:
    me = world.clients["lead"].get("/v1/me").json()
    assert (me["name"], me["role"], me["projects"], me["default_project"]) == \
        (LEAD, "user", {"nlp": "lead"}, "nlp")
    assert set(me["token"]) == {"id", "expires_ts"}  # never the token or its hash
    assert world.clients["admin"].get("/v1/me").json()["name"] == ME


def test_open_documents(world: World) -> None:
    anonymous = world.clients["anonymous"]
    assert anonymous.get("/openapi.json").status_code == 200
    assert anonymous.get("/v1/health").json()["status"] == "ok"
    schemes = anonymous.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["token"]["scheme"].lower() == "bearer"


def test_a_fresh_site_has_no_other_principal() -> None:
    with running_site() as site, site.client_for(None) as anonymous:
        assert anonymous.get("/v1/jobs").status_code == 401
        assert [u.name for u in site.store.list_users()] == [ME]
        assert [(t.user, t.name, t.expires_ts) for t in site.store.list_tokens()] == \
            [(ME, "bootstrap", None)]
