"""Who is looking at the portal: the API's principal of the request's portal session.

Every page and portal endpoint asks :func:`current_principal` who the request comes from;
``None`` means nobody is signed in, and a page sends the browser to ``/login``. The login
form posts an API token to ``/portal/login``; :func:`sign_in` has the API's authenticator
(:class:`gefion.api.auth.Authenticator`, installed on the app by ``create_app``) check it
and open a session, whose id goes back as the ``gefion_session`` cookie
(``HttpOnly; SameSite=Strict; Path=/``, and ``Secure`` over https). The pages' scripts then
call the ``/v1`` API with that cookie, so the portal sees and may do exactly what the API
lets the same principal see and do — one set of rules (:mod:`gefion.api.access`).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gefion.api.auth import SESSION_COOKIE, SESSION_MAX_AGE_S, Authenticator, AuthError, Principal


def _authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


def current_principal(request: Request) -> Principal | None:
    """Who sent ``request``: the principal of its portal session, None without a valid one
    (no cookie, an ended session, a revoked or expired token). May read the store once (a
    cache miss): call it from a thread, as FastAPI runs plain ``def`` handlers."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    try:
        return _authenticator(request).session(session_id)
    except AuthError:
        return None


def sign_in(request: Request, token: str) -> str:
    """A new session id for a valid API ``token``; :class:`AuthError` (its message says
    why) for a refused one. Blocking: call it from a thread."""
    return _authenticator(request).sign_in(token.strip())


def sign_out(request: Request) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        _authenticator(request).sign_out(session_id)


def whoami_json(principal: Principal) -> dict[str, Any]:
    """What the pages' scripts know of the principal: to show or hide actions (the API
    decides); ``staff``: an operator or admin."""
    return {"name": principal.name, "role": principal.role, "staff": principal.is_staff,
            "projects": dict(principal.projects)}


def same_site(request: Request) -> bool:
    """Whether a form post comes from a page of this site (its Origin, or Referer, names
    this host), or from no page at all (a script without either header): a login or logout
    forged by another site is refused."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    host = request.headers.get("host", "")
    return bool(host) and source.split("://", 1)[-1].split("/", 1)[0] == host


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, max_age=SESSION_MAX_AGE_S, path="/",
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site
    (``//evil.example``, ``https://...``, a backslash trick); ``/machine`` otherwise."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(c in target for c in "\r\n"):
        return "/machine"
    return target
