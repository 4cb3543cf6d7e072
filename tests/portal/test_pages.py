"""The portal's routes over HTTP, without a browser: pages and their headers, who may see
them, the live feed, static assets, twin plots, and login's cookie and redirect rules."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gefion.portal.auth import safe_next
from tests.api.helpers import Site, running_site
from tests.portal.conftest import ME, MEMBER, add_people

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
PAGES = ["/machine", "/queue", "/projects", "/projects/default", "/operator", "/twin",
         "/login"]


@dataclass
class Visit:
    """The site, a browser-like client signed in as its admin (``http``: cookies), one
    signed in as :data:`MEMBER`, and one signed in as nobody."""

    site: Site
    http: httpx.Client
    member: httpx.Client
    nobody: httpx.Client
    admin_token: str

    @property
    def url(self) -> str:
        return self.site.url


def signed_in(url: str, token: str) -> httpx.Client:
    """A client that logs in and acts as the portal's scripts do (with this site's Origin,
    which the API asks of a change made with a session cookie)."""
    client = httpx.Client(base_url=url, timeout=30, headers={"Origin": url})
    answer = client.post("/portal/login", data={"token": token})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture(scope="module")
def visit() -> Iterator[Visit]:
    reports = Path(tempfile.mkdtemp(prefix="gefion-reports-"))
    (reports / "run1").mkdir()
    (reports / "run1" / "report.md").write_text("# Run one\n\n![plot](plot.png)\n")
    (reports / "run1" / "plot.png").write_bytes(PNG)
    (reports / "run1" / "secret.txt").write_text("no")
    try:
        with running_site(loop=True, reports_dir=reports) as s:
            assert s.controller.store is not None
            admin, member = add_people(s.controller.store)
            clients = [signed_in(s.url, admin), signed_in(s.url, member),
                       httpx.Client(base_url=s.url, timeout=30)]
            try:
                yield Visit(s, *clients, admin)
            finally:
                for client in clients:
                    client.close()
    finally:
        shutil.rmtree(reports, ignore_errors=True)


def submit(visit: Visit, *argv: str) -> int:
    answer = visit.http.post("/v1/jobs", json={
        "script": "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --time=5\necho hello\n",
        "argv": list(argv), "cwd": str(visit.site.workdir), "user": ME})
    assert answer.status_code == 201, answer.text
    job_id: int = answer.json()["job_ids"][0]
    return job_id


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_html_with_a_strict_content_security_policy(visit: Visit,
                                                                  path: str) -> None:
    answer = visit.http.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert '<html lang="en">' in answer.text and 'href="#main"' in answer.text


def test_home_is_the_machine_page(visit: Visit) -> None:
    answer = visit.http.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (307, "/machine")


def test_a_job_page_exists_for_those_who_may_see_the_job_as_in_the_api(visit: Visit) -> None:
    job_id = submit(visit, "--account=climate")
    page = visit.http.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and f'data-job-id="{job_id}"' in page.text
    for path in (f"/jobs/{job_id}", "/jobs/999999"):
        missing = visit.member.get(path)
        assert missing.status_code == 404, path
        assert f"There is no job {path.rsplit('/', 1)[1]}." in missing.text
    assert visit.member.get(f"/v1/jobs/{job_id}").status_code == 404


def test_a_project_page_exists_for_those_who_may_see_the_project(visit: Visit) -> None:
    assert visit.member.get("/projects/bio").status_code == 200
    for name in ("climate", "no-such-project"):
        assert visit.member.get(f"/projects/{name}").status_code == 404, name
        assert visit.member.get(f"/v1/projects/{name}").status_code == 404, name
    assert visit.http.get("/projects/climate").status_code == 200  # an admin sees all


def test_nobody_signed_in_is_sent_to_login_and_back(visit: Visit) -> None:
    for path in PAGES[:-1]:
        answer = visit.nobody.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=%2F")
    for path in ("/portal/events", "/portal/whoami", "/portal/reports/run1/plot.png"):
        assert visit.nobody.get(path).status_code == 401, path
    assert visit.nobody.get("/v1/nodes").status_code == 401  # the API's own answer


def test_the_operator_page_is_for_operators_and_admins(visit: Visit) -> None:
    answer = visit.member.get("/operator")
    assert answer.status_code == 403 and "for operators and admins" in answer.text
    assert 'href="/operator"' not in visit.member.get("/machine").text
    assert 'href="/operator"' in visit.http.get("/machine").text


def test_values_put_into_a_page_are_escaped(visit: Visit) -> None:
    answer = visit.http.get('/projects/<img src=x onerror="alert(1)">')
    assert answer.status_code == 404  # no such project, and its name stays text
    assert "<img src=x" not in answer.text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in answer.text


def test_the_projects_form_opens_the_named_project(visit: Visit) -> None:
    answer = visit.http.get("/projects", params={"name": "climate lab"}, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/projects/climate%20lab")


def test_portal_routes_stay_out_of_the_openapi_document(visit: Visit) -> None:
    paths = visit.http.get("/openapi.json").json()["paths"]
    assert all(p.startswith("/v1/") for p in paths), sorted(paths)


def test_the_live_feed_says_when_the_controller_changed(visit: Visit) -> None:
    with visit.http.stream("GET", "/portal/events") as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.iter_lines()
        assert next(lines) == "retry: 2000"
        while next(lines) != "event: change":
            pass
        data = json.loads(next(lines).removeprefix("data: "))
        assert 0 < data["seq"] <= visit.site.last_seq() and data["cycles"] >= 1
        submit(visit)
        while next(lines) != "event: change":
            pass
        assert json.loads(next(lines).removeprefix("data: "))["seq"] > data["seq"]


def test_static_assets_are_served_with_etags(visit: Visit) -> None:
    first = visit.http.get("/portal/static/lib.js")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    again = visit.http.get("/portal/static/lib.js",
                           headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    for name in ("nope.js", "..%2Fpages.py", "../auth.py"):
        assert visit.http.get(f"/portal/static/{name}").status_code == 404


def test_only_a_reports_plots_are_served(visit: Visit) -> None:
    plot = visit.http.get("/portal/reports/run1/plot.png")
    assert (plot.status_code, plot.content) == (200, PNG)
    assert plot.headers["content-type"] == "image/png"
    for path in ("run1/secret.txt", "run1/report.md", "..%2Frun1/plot.png", "run1/..%2F..%2Fx.png"):
        assert visit.http.get(f"/portal/reports/{path}").status_code == 404, path
    page = visit.http.get("/twin")
    assert "<h1>Run one</h1>" in page.text and 'src="/portal/reports/run1/plot.png"' in page.text
    assert visit.http.get("/twin", params={"report": "nope"}).status_code == 404


def test_login_sets_an_http_only_strict_cookie_and_goes_back(visit: Visit) -> None:
    client = httpx.Client(base_url=visit.url, timeout=30)
    with client:
        answer = client.post("/portal/login", data={"token": visit.admin_token,
                                                    "next": "/queue?state=RUNNING"})
        assert (answer.status_code, answer.headers["location"]) == (303, "/queue?state=RUNNING")
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("gefion_session=") and visit.admin_token not in cookie
        for attribute in ("HttpOnly", "Path=/", "SameSite=strict"):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # plain http here; Secure over https
        assert client.get("/portal/whoami").json()["name"] == ME
        out = client.post("/portal/logout")
        assert out.status_code == 303 and 'gefion_session=""' in out.headers["set-cookie"]
        assert client.get("/portal/whoami").status_code == 401


@pytest.mark.parametrize("token", ["", "nonsense", "gfn_" + "x" * 43])
def test_a_bad_token_does_not_sign_in(visit: Visit, token: str) -> None:
    answer = visit.nobody.post("/portal/login", data={"token": token})
    assert answer.status_code == 401 and "Not signed in" in answer.text
    assert "set-cookie" not in answer.headers


def test_a_login_posted_from_another_site_is_refused(visit: Visit) -> None:
    answer = visit.nobody.post("/portal/login", data={"token": visit.admin_token},
                               headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


@pytest.mark.parametrize(("target", "where"), [
    ("/queue", "/queue"), ("/jobs/3?x=1", "/jobs/3?x=1"), (None, "/machine"),
    ("", "/machine"), ("https://evil.example/", "/machine"), ("//evil.example", "/machine"),
    ("/\\evil.example", "/machine"), ("queue", "/machine"), ("/a\r\nSet-Cookie: x", "/machine"),
])
def test_after_login_the_browser_only_goes_somewhere_on_this_site(target: str | None,
                                                                  where: str) -> None:
    assert safe_next(target) == where


def test_whoami_tells_the_scripts_who_is_signed_in(visit: Visit) -> None:
    assert visit.http.get("/portal/whoami").json() == {
        "name": ME, "role": "admin", "staff": True, "projects": {}}
    assert visit.member.get("/portal/whoami").json() == {
        "name": MEMBER, "role": "user", "staff": False, "projects": {"bio": "member"}}

