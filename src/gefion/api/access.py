"""What a principal may do, and how a refusal is answered and logged.

The rules (docs/access.md has the route table):

- **admin**: everything.
- **operator**: sees every job and project; cancels, holds and releases any job; drains and
  resumes nodes; books and deletes reservations.
- **project lead**: sees and acts on every job of the projects they lead; adds and removes
  *members* of those projects (appointing leads is an admin's).
- **member**: sees every job of their projects (and their own anywhere); submits to their
  projects only; cancels, holds and releases their own jobs.

Refusals, each an ``access.denied`` event (coalesced: :mod:`gefion.api.denials`):

- a job, project or token the principal may not *see* answers **404**, word for word the
  answer for one that does not exist (:class:`NotVisible`): whether another project's job
  12 exists is not the caller's business;
- something they may see but not do answers **403** (:class:`~gefion.core.errors.AccessError`);
- no valid token answers **401** (:class:`~gefion.api.auth.AuthError`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from gefion.api.auth import Authenticator, AuthError, Principal
from gefion.api.denials import DenialLog
from gefion.api.problems import problem
from gefion.controller.service import Controller
from gefion.core.errors import AccessError
from gefion.store import JobRow, NotFoundError


class NotVisible(NotFoundError):
    """Something the caller may not see: answered exactly as one that does not exist."""

    def __init__(self, message: str, *, field: str | None = None,
                 target: str | None = None) -> None:
        super().__init__(message, field=field)
        self.target = target


def visible_job(controller: Controller, who: Principal, job_id: int) -> JobRow:
    """The job, if ``who`` may see it; else the not-found answer."""
    row = controller.get_job(job_id)  # NotFoundError: "no job N"
    if not who.may_see(row):
        raise NotVisible(f"no job {job_id}", field="job_id", target=f"job {job_id}")
    return row


def actionable_job(controller: Controller, who: Principal, job_id: int) -> JobRow:
    """The job, if ``who`` may cancel, hold or release it; 404 or 403 otherwise."""
    row = visible_job(controller, who, job_id)
    if not who.may_act(row):
        raise AccessError(f"job {job_id} is {row.user}'s: only they, a lead of project "
                          f"{row.project}, operators and admins may change it",
                          target=f"job {job_id}")
    return row


def visible_project(who: Principal, project: str) -> None:
    if not who.sees_project(project):
        raise NotVisible(f"no project {project!r}", field="project",
                         target=f"project {project}")


def require_staff(who: Principal, doing: str, target: str | None = None) -> None:
    """Operators and admins only (nodes, reservations)."""
    if not who.is_staff:
        raise AccessError(f"only operators and admins may {doing}", target=target)


def require_admin(who: Principal, doing: str, target: str | None = None) -> None:
    if not who.is_admin:
        raise AccessError(f"only admins may {doing}", target=target)


# -- answers --------------------------------------------------------------------------

def _route(request: Request) -> str:
    """``METHOD /v1/jobs/{job_id}``: the route's template, its router's prefix included
    (newer FastAPI versions give an included route's path without it)."""
    template = getattr(request.scope.get("route"), "path", None)
    if not template:
        return f"{request.method} {request.url.path}"
    actual = request.url.path.strip("/").split("/")
    tail = template.strip("/").split("/")
    prefix = actual[:max(0, len(actual) - len(tail))]  # no route has a multi-segment param
    return f"{request.method} /" + "/".join([*prefix, *tail])


async def _log(request: Request, *, reason: str, status: int, target: str | None,
               principal: str | None = None, token_id: str | None = None) -> None:
    who: Principal | None = getattr(request.state, "principal", None)
    denials: DenialLog = request.app.state.denials
    await run_in_threadpool(
        denials.record, principal=principal or (who.name if who else "(anonymous)"),
        reason=reason, status=status, route=_route(request), target=target,
        token_id=token_id or (who.token_id if who else None))


async def on_auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    await _log(request, reason=exc.reason, status=401, target=None, principal=exc.user,
               token_id=exc.token_id)
    response = problem(401, "Unauthorized", str(exc), kind="unauthorized")
    response.headers["WWW-Authenticate"] = 'Bearer realm="gefion"'
    return response


async def on_access_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccessError)
    await _log(request, reason="forbidden", status=403, target=exc.target)
    return problem(403, "Forbidden", exc.message, kind="forbidden", field=exc.field)


async def on_not_visible(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotVisible)
    await _log(request, reason="not-visible", status=404, target=exc.target)
    return problem(404, "Not found", exc.message, kind="not-found", field=exc.field)


def install(app: FastAPI, controller: Controller) -> Authenticator:
    """Authentication, the denial log and their answers, on ``app``."""
    store = controller.store
    assert store is not None, "the controller must be started"
    auth = Authenticator(controller)
    app.state.auth = auth
    app.state.denials = DenialLog(lambda payload, ts: store.record_denial(payload, ts=ts),
                                  controller.now)
    app.add_exception_handler(AuthError, on_auth_error)
    app.add_exception_handler(AccessError, on_access_error)
    app.add_exception_handler(NotVisible, on_not_visible)
    return auth
