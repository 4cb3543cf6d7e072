"""``GET /v1/reports/usage`` through the API: what a report holds for each role — every
project for staff, one's own projects for the others, nothing of a project one is not in —
and how a bad window is refused."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import SCRIPT, Site


def report(site: Site, token: str | None = None, **params: Any) -> dict[str, Any]:
    with site.client_for(token or site.token) as client:
        response = client.get("/v1/reports/usage", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r[body["by"]]: r for r in body["rows"]}


def test_everyone_sees_their_projects_usage_and_no_other(site: Site) -> None:
    jobs = {project: site.submit_ok(SCRIPT, "-A", project)[0] for project in ("nlp", "bio")}
    ended = {p: site.wait(j, lambda r: r.state.terminal) for p, j in jobs.items()}
    everything = report(site, by="project")
    assert set(rows(everything)) == {"nlp", "bio"}
    nlp = rows(everything)["nlp"]
    assert nlp["jobs"] == 1
    assert nlp["raw_gpu_hours"] == round(ended["nlp"].gpu_s / 3600, 6) == nlp["gpu_hours"]
    assert ended["nlp"].energy_j is not None
    assert nlp["energy_kwh"] == round(ended["nlp"].energy_j / 3.6e6, 6)
    assert everything["total"]["jobs"] == 2
    member = site.token_for("ana", projects={"nlp": "member"})
    assert set(rows(report(site, member, by="user"))) == {ended["nlp"].user}  # nlp's only
    assert set(rows(report(site, member))) == {"nlp"}
    outsider = site.token_for("cid", projects={"bio": "lead"})
    assert set(rows(report(site, outsider))) == {"bio"}
    with site.client_for(outsider) as client:
        hidden = client.get("/v1/reports/usage", params={"project": "nlp"})
        absent = client.get("/v1/reports/usage", params={"project": "nowhere"})
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["detail"].replace("nlp", "X") == \
        absent.json()["detail"].replace("nowhere", "X")
    nobody = report(site, site.token_for("dee"))
    assert nobody["rows"] == [] and nobody["total"]["jobs"] == 0
    staff = report(site, site.token_for("ops", role="operator"), by="funder")
    assert set(rows(staff)) == {"(no grant)"}


def test_a_bad_window_is_refused(shared_site: Site) -> None:
    backwards = shared_site.http.get("/v1/reports/usage", params={"from": 20, "to": 10})
    assert backwards.status_code == 400 and backwards.json()["field"] == "to"
    assert shared_site.http.get("/v1/reports/usage", params={"by": "colour"}).status_code \
        == 422
