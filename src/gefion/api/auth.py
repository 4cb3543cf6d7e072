"""Who a request comes from: an API token (``Authorization: Bearer gfn_...``) or a portal
session (the ``gefion_session`` cookie), resolved to a :class:`Principal`.

Every ``/v1`` route but ``/v1/health`` depends on :func:`authenticate`; a request without
a valid token is answered 401 (:class:`AuthError`) before its handler runs. The token is
looked up by its SHA-256 (:mod:`gefion.store.tokens`), and the answer is cached in the
process, so that a request costs a hash and a dict lookup, not a database read:

- an entry lives :data:`CACHE_TTL_S` at most, and is dropped as soon as this process
  commits any tenancy change (a revoked token, a removed member, a changed role: the
  store's ``tenancy_version`` moves), so a revocation made through this API takes effect
  on the next request; one made by another process sharing the database, within the TTL;
- expiry is checked on every request against the controller's clock, not cached;
- unknown tokens are cached too (bounded), so guessing costs the guesser, not the database.

A token is never logged, put in an error message or stored (see ``docs/access.md``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gefion.core.errors import GefionError
from gefion.store import tokens as token_lib
from gefion.store.tenancy import TokenRow, default_project_for

if TYPE_CHECKING:
    from gefion.controller.service import Controller
    from gefion.store import JobRow, Store

SESSION_COOKIE = "gefion_session"
#: How long a portal session lives (seconds).
SESSION_MAX_AGE_S = 12 * 3600
#: How long a resolved token is trusted without looking again (seconds).
CACHE_TTL_S = 10.0
_MAX_CACHE = 10_000
_MAX_SESSIONS = 10_000
ADMIN, OPERATOR, USER = "admin", "operator", "user"
LEAD, MEMBER = "lead", "member"


class AuthError(GefionError):
    """No valid credentials (401). ``reason``: ``missing``, ``malformed``, ``unknown``,
    ``revoked``, ``expired`` or ``csrf``; ``user`` and ``token_id`` when the token is
    known (an expired or revoked one), for the audit trail."""

    def __init__(self, message: str, *, reason: str, user: str | None = None,
                 token_id: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.user, self.token_id = reason, user, token_id


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: a user, their site ``role`` (``admin``, ``operator``, ``user``) and their
    projects (name → ``lead`` or ``member``). See docs/access.md for what each may do."""

    name: str
    role: str
    projects: Mapping[str, str] = field(default_factory=dict)
    default_project: str | None = None
    token_id: str | None = None
    expires_ts: float | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_staff(self) -> bool:
        """An admin or an operator: sees every job and node, drains, books reservations."""
        return self.role in (ADMIN, OPERATOR)

    def leads(self, project: str) -> bool:
        return self.projects.get(project) == LEAD

    def sees_project(self, project: str) -> bool:
        return self.is_staff or project in self.projects

    def may_see(self, job: JobRow) -> bool:
        """Staff see every job; others their projects' jobs, and their own anywhere."""
        return self.is_staff or job.project in self.projects or job.user == self.name

    def may_act(self, job: JobRow) -> bool:
        """Cancel, hold, release: staff, the job's user, or a lead of its project."""
        return self.is_staff or job.user == self.name or self.leads(job.project)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "projects": dict(self.projects),
                "default_project": self.default_project,
                "token": None if self.token_id is None else
                {"id": self.token_id, "expires_ts": self.expires_ts}}


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal | None  # None: unknown token
    token: TokenRow | None
    version: int
    loaded_at: float  # monotonic


class Authenticator:
    """Tokens and sessions to principals, with the cache described in the module."""

    def __init__(self, controller: Controller, *, ttl_s: float = CACHE_TTL_S) -> None:
        self._controller = controller
        self._ttl_s = ttl_s
        self._cache: dict[str, _Entry] = {}
        self._sessions: dict[str, tuple[str, float]] = {}  # id → (token hash, deadline)
        self._projects: tuple[int, float, frozenset[str]] = (-1, 0.0, frozenset())
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        store = self._controller.store
        if store is None:
            raise GefionError("the controller is not started")
        return store

    # -- tokens -------------------------------------------------------------------------
    def cached(self, token: str) -> Principal | None:
        """The principal of ``token`` from the cache (None: it must be looked up, with
        :meth:`resolve`); raises :class:`AuthError` for a refused token. No I/O."""
        digest = self._digest(token)
        entry = self._cache.get(digest)
        if entry is None or not self._fresh(entry):
            return None
        return self._check(entry)

    def resolve(self, token: str) -> Principal:
        """The principal of ``token`` (one database read on a cache miss), or AuthError."""
        return self._resolve_digest(self._digest(token))

    def _resolve_digest(self, digest: str) -> Principal:
        entry = self._cache.get(digest)
        if entry is None or not self._fresh(entry):
            entry = self._load(digest)
        return self._check(entry)

    def _digest(self, token: str) -> str:
        if not token_lib.TOKEN_PATTERN.fullmatch(token):
            raise AuthError("not a Gefion token (they look like gfn_ and 43 characters)",
                            reason="malformed")
        return token_lib.token_hash(token)

    def _fresh(self, entry: _Entry) -> bool:
        return entry.version == self.store.tenancy_version and \
            time.monotonic() - entry.loaded_at < self._ttl_s

    def _load(self, digest: str) -> _Entry:
        store = self.store
        version = store.tenancy_version  # before reading: a change after it voids the entry
        found = store.principal_rows(digest)
        if found is None:
            entry = _Entry(None, None, version, time.monotonic())
        else:
            token, user, projects = found
            default = default_project_for(user, projects,
                                          self._controller.config.default_project)
            entry = _Entry(Principal(user.name, user.role, projects, default, token.id,
                                     token.expires_ts), token, version, time.monotonic())
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[digest] = entry
        return entry

    def _check(self, entry: _Entry) -> Principal:
        token, principal = entry.token, entry.principal
        if principal is None or token is None:
            raise AuthError("unknown token: ask an admin for one (gefion admin token create)",
                            reason="unknown")
        status = token.status(self._controller.now())
        if status == "revoked":
            raise AuthError(f"token {token.prefix}... was revoked", reason="revoked",
                            user=token.user, token_id=token.id)
        if status == "expired":
            raise AuthError(f"token {token.prefix}... has expired; ask for a new one",
                            reason="expired", user=token.user, token_id=token.id)
        return principal

    def forget(self) -> None:
        """Drop every cached answer (the next request of each token reads the store)."""
        self._cache.clear()

    def project_names(self) -> frozenset[str]:
        """Every project's name (cached as tokens are): where an admin may submit."""
        version, at, names = self._projects
        store = self.store
        if version != store.tenancy_version or time.monotonic() - at >= self._ttl_s:
            version = store.tenancy_version
            names = frozenset(p.name for p in store.list_projects())
            self._projects = (version, time.monotonic(), names)
        return names

    # -- portal sessions ----------------------------------------------------------------
    def sign_in(self, token: str) -> str:
        """A new session id for a valid ``token`` (the portal's login), else AuthError.
        Sessions live in this process, :data:`SESSION_MAX_AGE_S` at most, and end with
        their token (revoked or expired)."""
        digest = self._digest(token)
        self._resolve_digest(digest)
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._sessions) >= _MAX_SESSIONS:  # drop the oldest
                del self._sessions[next(iter(self._sessions))]
            self._sessions[session_id] = (digest, time.monotonic() + SESSION_MAX_AGE_S)
        return session_id

    def session(self, session_id: str) -> Principal:
        """The principal of a portal session, or AuthError."""
        found = self._sessions.get(session_id)
        if found is None or time.monotonic() >= found[1]:
            self._sessions.pop(session_id, None)
            raise AuthError("not signed in, or the session has ended", reason="unknown")
        return self._resolve_digest(found[0])

    def sign_out(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)


bearer = HTTPBearer(auto_error=False, scheme_name="token", bearerFormat="gfn_...",
                    description="An API token: `Authorization: Bearer gfn_...` "
                                "(`gefion admin token create`, `gefion login`).")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Security(bearer)]) -> Principal:
    """The request's principal (kept in ``request.state.principal``), or AuthError."""
    auth: Authenticator = request.app.state.auth
    if credentials is not None:
        token = credentials.credentials
        principal = auth.cached(token)
        if principal is None:  # not cached: one database read, off the event loop
            principal = await run_in_threadpool(auth.resolve, token)
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            raise AuthError("authentication required: send 'Authorization: Bearer <token>' "
                            "(gefion login, or GEFION_TOKEN)", reason="missing")
        if request.method not in _SAFE_METHODS and not _same_origin(request):
            raise AuthError("a change with a session cookie must come from this site",
                            reason="csrf")
        principal = await run_in_threadpool(auth.session, session_id)
    request.state.principal = principal
    return principal


def _same_origin(request: Request) -> bool:
    """Whether a cookie-authenticated change comes from a page of this site (Origin, or
    Referer, names this host): the portal's scripts do; a forged cross-site form does not."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    return bool(host) and source.split("://", 1)[-1].split("/", 1)[0] == host


#: A handler's parameter for the principal: ``who: Who``.
Who = Annotated[Principal, Depends(authenticate)]
