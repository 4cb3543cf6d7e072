"""The portal's routes: pages, login, the live feed, static assets and twin plots.

Pages are HTML shells; their scripts fetch what they show from the ``/v1`` API (the same
answers the CLI gets) and refetch when :mod:`gefion.portal.feed` says something changed.
The twin page is rendered here, on the server: reports are files that do not change while
one reads them.

Every route asks :func:`gefion.portal.auth.current_principal` first: nobody signed in goes to
``/login``; the operator page is for operators and admins (403 otherwise); a job page the
principal may not see answers 404, word for word as the API does.
"""

from __future__ import annotations

import hashlib
from html import escape
from importlib.resources import files
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from gefion.api.access import visible_job, visible_project
from gefion.api.auth import AuthError, Principal
from gefion.controller.service import Controller
from gefion.core.errors import GefionError
from gefion.portal import auth
from gefion.portal.auth import current_principal
from gefion.portal.feed import ChangeFeed
from gefion.portal.html import body, error_page, page
from gefion.portal.reports import ReportShelf, report_html
from gefion.store import NotFoundError

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
#: The most bytes a login form may post.
MAX_FORM_BYTES = 16 * 1024


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """name → (content, media type, ETag) of every asset, read once."""
    out = {}
    for entry in (files("gefion.portal") / "static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            data = entry.read_bytes()
            out[entry.name] = (data, STATIC_TYPES[suffix],
                               '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
    return out


def _to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


def router(controller: Controller) -> APIRouter:
    portal = APIRouter(include_in_schema=False)
    feed = ChangeFeed(controller)
    shelf = ReportShelf(controller.config.reports_path)
    assets = _static_files()

    def gate(request: Request, *, staff: bool = False) -> Principal | Response:
        """The principal, or the answer for one who may not see the page."""
        principal = current_principal(request)
        if principal is None:
            return _to_login(request)
        if staff and not principal.is_staff:
            return error_page(name="machine", status=403, title="Not allowed",
                              message="This page is for operators and admins.",
                              principal=principal)
        return principal

    # -- pages ----------------------------------------------------------------------------
    @portal.get("/")
    def home() -> Response:
        return RedirectResponse("/machine", status_code=307)

    @portal.get("/machine")
    def machine(request: Request) -> Response:
        who = gate(request)
        if isinstance(who, Response):
            return who
        return page(name="machine", title="Machine", main=body("machine.html"),
                    principal=who, script="machine.js",
                    data={"cluster": controller.cluster.name})

    @portal.get("/queue")
    def queue(request: Request) -> Response:
        who = gate(request)
        if isinstance(who, Response):
            return who
        return page(name="queue", title="Queue", main=body("queue.html"), principal=who,
                    script="queue.js")

    @portal.get("/jobs/{job_id}")
    def job(request: Request, job_id: int) -> Response:
        who = gate(request)
        if isinstance(who, Response):
            return who
        try:  # the API's own rule: a job one may not see is a job that does not exist
            visible_job(controller, who, job_id)
        except NotFoundError:
            return error_page(name="queue", status=404, title=f"No job {job_id}",
                              message=f"There is no job {job_id}.", principal=who)
        return page(name="queue", title=f"Job {job_id}", main=body("job.html",
                                                                   job_id=str(job_id)),
                    principal=who, script="job.js", data={"job-id": str(job_id)})

    @portal.get("/projects")
    def projects(request: Request, name: str | None = None) -> Response:
        who = gate(request)
        if isinstance(who, Response):
            return who
        if name and name.strip():
            return RedirectResponse(f"/projects/{quote(name.strip(), safe='')}",
                                    status_code=303)
        return page(name="projects", title="Projects", main=body("projects.html"),
                    principal=who, script="projects.js")

    @portal.get("/projects/{name}")
    def project(request: Request, name: str) -> Response:
        who = gate(request)
        if isinstance(who, Response):
            return who
        try:  # as GET /v1/projects/{name}: a project one may not see does not exist
            visible_project(who, name)
            if controller.store is None or controller.store.get_project(name) is None:
                raise NotFoundError(f"no project {name!r}", field="project")
        except NotFoundError:
            return error_page(name="projects", status=404, title="No such project",
                              message=f"There is no project {name!r}.", principal=who)
        return page(name="projects", title=f"Project {name}",
                    main=body("project.html", project=name), principal=who,
                    script="project.js", data={"project": name})

    @portal.get("/operator")
    def operator(request: Request) -> Response:
        who = gate(request, staff=True)
        if isinstance(who, Response):
            return who
        return page(name="operator", title="Operator", main=body("operator.html"),
                    principal=who, script="operator.js")

    @portal.get("/twin")
    def twin(request: Request, report: str | None = None) -> Response:
        who = gate(request)
        if isinstance(who, Response):
            return who
        return _twin_page(shelf, who, report)

    # -- signing in -------------------------------------------------------------------------
    @portal.get("/login")
    def login(request: Request, next: str | None = None) -> Response:
        return _login_page(current_principal(request), auth.safe_next(next))

    @portal.post("/portal/login")
    async def do_login(request: Request) -> Response:
        raw = await request.body()
        form = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        target = auth.safe_next((form.get("next") or [""])[0])
        if not auth.same_site(request):
            return _login_page(None, target, problem="Log in from this site's own page.",
                               status=403)
        try:
            session = await run_in_threadpool(auth.sign_in, request,
                                              (form.get("token") or [""])[0])
        except AuthError as exc:
            return _login_page(None, target, problem=f"Not signed in: {exc}", status=401)
        answer = RedirectResponse(target, status_code=303)
        auth.set_session_cookie(answer, request, session)
        return answer

    @portal.post("/portal/logout")
    def logout(request: Request) -> Response:
        if auth.same_site(request):
            auth.sign_out(request)
        answer = RedirectResponse("/login", status_code=303)
        auth.clear_session_cookie(answer, request)
        return answer

    @portal.get("/portal/whoami")
    def whoami(request: Request) -> Response:
        principal = current_principal(request)
        if principal is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        return JSONResponse(auth.whoami_json(principal), headers={"Cache-Control": "no-store"})

    # -- live updates, assets, plots --------------------------------------------------------
    @portal.get("/portal/events")
    def events(request: Request) -> Response:
        if current_principal(request) is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        return feed.response()

    @portal.get("/portal/static/{name}")
    def static(request: Request, name: str) -> Response:
        asset = assets.get(name)
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain")
        data, media_type, etag = asset
        headers = {"ETag": etag, "Cache-Control": "no-cache",
                   "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media_type, headers=headers)

    @portal.get("/portal/reports/{name}/{file}")
    def report_file(request: Request, name: str, file: str) -> Response:
        if current_principal(request) is None:
            return JSONResponse({"detail": "not signed in"}, status_code=401)
        try:
            path, media_type = shelf.image(name, file)
        except NotFoundError:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type=media_type,
                            headers={"X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "no-cache"})

    return portal


def _login_page(principal: Principal | None, target: str, *, problem: str = "",
                status: int = 200) -> Response:
    return page(name="login", title="Log in", principal=principal, status=status,
                main=body("login.html", next=target, problem=problem))


def _twin_page(shelf: ReportShelf, principal: Principal, chosen: str | None) -> Response:
    reports = shelf.reports()
    status, problem, shown = 200, "", None
    if chosen:
        try:
            shown = shelf.get(chosen)
        except GefionError as exc:
            status, problem = 404, str(exc)
    elif reports:
        shown = reports[0]
    if reports:
        items = "".join(
            f'<li><a href="/twin?report={quote(r.name, safe="")}"'
            + (' aria-current="page"' if shown is not None and r.name == shown.name else "")
            + f">{escape(r.title)}</a> <span class=\"hint\">{escape(r.name)}</span></li>"
            for r in reports)
        listing = f'<ul class="report-list">{items}</ul>'
    else:
        listing = (f'<p class="empty-state">No reports yet in <code>{escape(str(shelf.root))}'
                   "</code>. Write one with <code>gefion twin run --trace TRACE --report "
                   f"{escape(str(shelf.root))}/NAME</code> (or <code>gefion twin compare"
                   "</code>).</p>")
    content = report_html(shown) if shown is not None else ""
    alert = f'<p class="problem" role="alert">{escape(problem)}</p>' if problem else ""
    main = ('<h1>Twin reports</h1>' + alert + '<div class="twin">'
            '<nav aria-labelledby="reports-h" class="report-nav"><h2 id="reports-h">Reports'
            f"</h2>{listing}</nav>"
            f'<section class="report" aria-label="Report">{content}</section></div>')
    return page(name="twin", title="Twin reports", main=main, principal=principal,
                status=status)
