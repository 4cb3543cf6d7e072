"""People and access under ``/v1``: who am I, users, projects and their members, API tokens,
and the audit trail. The rules are :mod:`gefion.api.access`'s; each change is a tenancy
event recorded ``by`` the principal (:mod:`gefion.store.tenancy_store`).

A token is in one answer only: the one to ``POST /v1/tokens`` that made it. Listings show
its id and prefix, never the token or its hash.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.responses import Response

from gefion.api.access import NotVisible, require_admin, require_staff, visible_project
from gefion.api.auth import Who
from gefion.api.tenancy_schemas import (
    DEFAULT_TOKEN_LIFETIME_S,
    MemberBody,
    ProjectBody,
    TokenBody,
    UserBody,
    UserPatchBody,
)
from gefion.api.views import json_response
from gefion.controller.service import Controller
from gefion.core.errors import AccessError, InputError
from gefion.store import (
    EventRow,
    MemberRow,
    NotFoundError,
    ProjectRow,
    Store,
    TokenRow,
    UserRow,
)
from gefion.store.tenancy_store import UNSET


def user_json(user: UserRow, projects: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": user.name, "role": user.role,
                           "default_project": user.default_project,
                           "created_ts": user.created_ts}
    if projects is not None:
        out["projects"] = projects
    return out


def project_json(project: ProjectRow, role: str | None = None) -> dict[str, Any]:
    return {"name": project.name, "shares": project.shares, "max_gpus": project.max_gpus,
            "metered": project.metered, "sensitive": project.sensitive,
            "description": project.description, "created_ts": project.created_ts,
            "your_role": role}


def member_json(member: MemberRow) -> dict[str, Any]:
    return {"project": member.project, "user": member.user, "role": member.role,
            "since_ts": member.since_ts}


def token_json(token: TokenRow, now: float) -> dict[str, Any]:
    """A token's listing: never the token, never its hash."""
    return {"id": token.id, "user": token.user, "name": token.name, "prefix": token.prefix,
            "created_ts": token.created_ts, "expires_ts": token.expires_ts,
            "revoked_ts": token.revoked_ts, "created_by": token.created_by,
            "status": token.status(now)}


def audit_json(event: EventRow) -> dict[str, Any]:
    payload = {k: v for k, v in event.payload.items() if k != "hash"}
    return {"seq": event.seq, "ts": event.ts, "kind": event.kind, "payload": payload}


def router(controller: Controller) -> APIRouter:
    api = APIRouter(tags=["people"])

    def store() -> Store:
        assert controller.store is not None
        return controller.store

    # -- who am I, users ----------------------------------------------------------------
    @api.get("/me", summary="Who you are: your role, projects and token")
    def me(who: Who) -> Response:
        return json_response(who.to_json())

    @api.get("/users", summary="Every user, their role and projects (operators, admins)")
    def list_users(who: Who) -> Response:
        require_staff(who, "list users")
        projects: dict[str, dict[str, str]] = {}
        for m in store().list_members():
            projects.setdefault(m.user, {})[m.project] = m.role
        return json_response({"users": [user_json(u, projects.get(u.name, {}))
                                        for u in store().list_users()]})

    @api.post("/users", status_code=201, summary="Add a user (admins)")
    def create_user(body: UserBody, who: Who) -> Response:
        require_admin(who, "add users", target=f"user {body.name}")
        user = store().create_user(body.name, role=body.role,
                                   default_project=body.default_project,
                                   ts=controller.now(), by=who.name)
        return json_response(user_json(user), 201)

    @api.patch("/users/{name}", summary="Change a user's role or default project (admins)")
    def update_user(name: str, body: UserPatchBody, who: Who) -> Response:
        require_admin(who, "change users", target=f"user {name}")
        given = body.model_fields_set
        if not given:
            raise InputError("nothing to change: give role or default_project", field="body")
        user = store().update_user(
            name, role=body.role, ts=controller.now(), by=who.name,
            default_project=body.default_project if "default_project" in given else UNSET)
        return json_response(user_json(user))

    # -- projects and members -----------------------------------------------------------
    @api.get("/projects", summary="Projects you belong to (operators, admins: all)")
    def list_projects(who: Who) -> Response:
        rows = [p for p in store().list_projects() if who.sees_project(p.name)]
        return json_response({"projects": [project_json(p, who.projects.get(p.name))
                                           for p in rows]})

    @api.post("/projects", status_code=201, summary="Add a project (admins)")
    def create_project(body: ProjectBody, who: Who) -> Response:
        require_admin(who, "add projects", target=f"project {body.name}")
        project = store().create_project(
            body.name, shares=body.shares, max_gpus=body.max_gpus, metered=body.metered,
            sensitive=body.sensitive, description=body.description, ts=controller.now(),
            by=who.name)
        return json_response(project_json(project), 201)

    @api.get("/projects/{name}", summary="A project and its members")
    def get_project(name: str, who: Who) -> Response:
        visible_project(who, name)
        project = store().get_project(name)
        if project is None:
            raise NotFoundError(f"no project {name!r}", field="project")
        return json_response({**project_json(project, who.projects.get(name)),
                              "members": [member_json(m)
                                          for m in store().list_members(project=name)]})

    @api.get("/projects/{name}/members", summary="A project's members and their roles")
    def list_members(name: str, who: Who) -> Response:
        visible_project(who, name)
        if store().get_project(name) is None:
            raise NotFoundError(f"no project {name!r}", field="project")
        return json_response({"members": [member_json(m)
                                          for m in store().list_members(project=name)]})

    def may_manage(who: Who, project: str, role: str, doing: str) -> None:
        """Admins manage every membership; a project's leads manage its members."""
        if who.is_admin:
            return
        visible_project(who, project)
        if not who.leads(project):
            raise AccessError(f"only a lead of project {project!r} or an admin may {doing}",
                              target=f"project {project}")
        if role == "lead":
            raise AccessError("only admins appoint or remove project leads",
                              field="role", target=f"project {project}")

    @api.post("/projects/{name}/members", status_code=201,
              summary="Add a member, or change their role (admins; leads add members)")
    def add_member(name: str, body: MemberBody, who: Who) -> Response:
        existing = {m.user: m.role for m in store().list_members(project=name)}
        may_manage(who, name, "lead" if existing.get(body.user) == "lead" else body.role,
                   "add members")
        member = store().add_member(name, body.user, role=body.role, ts=controller.now(),
                                    by=who.name)
        return json_response(member_json(member), 201)

    @api.delete("/projects/{name}/members/{user}",
                summary="Remove a member (admins; leads remove members)")
    def remove_member(name: str, user: str, who: Who) -> Response:
        existing = {m.user: m.role for m in store().list_members(project=name)}
        may_manage(who, name, existing.get(user, "member"), "remove members")
        store().remove_member(name, user, ts=controller.now(), by=who.name)
        return json_response({"project": name, "user": user, "removed": True})

    # -- tokens -------------------------------------------------------------------------
    @api.get("/tokens", summary="Your tokens (admins: anyone's, ?user=)")
    def list_tokens(who: Who, user: str | None = None) -> Response:
        if not who.is_admin:
            if user not in (None, who.name):
                raise AccessError("only admins list other users' tokens", field="user",
                                  target=f"user {user}")
            user = who.name
        now = controller.now()
        return json_response({"tokens": [token_json(t, now)
                                         for t in store().list_tokens(user)]})

    @api.post("/tokens", status_code=201,
              summary="Make a token for a user (admins); the answer is the only place the "
                      "token is shown")
    def create_token(body: TokenBody, who: Who) -> Response:
        require_admin(who, "make tokens", target=f"user {body.user}")
        now = controller.now()
        given = [f for f in ("expires_in_s", "expires_ts")
                 if getattr(body, f) is not None]
        if len(given) > 1 or (given and body.never_expires):
            raise InputError("give one of expires_in_s, expires_ts and never_expires",
                             field=given[-1])
        expires: float | None = None
        if body.expires_ts is not None:
            expires = body.expires_ts
        elif not body.never_expires:
            expires = now + (body.expires_in_s or DEFAULT_TOKEN_LIFETIME_S)
        row, secret = store().create_token(body.user, name=body.name, expires_ts=expires,
                                           ts=now, by=who.name)
        return json_response({**token_json(row, now), "token": secret}, 201)

    @api.post("/tokens/{token_id}/revoke", summary="Revoke a token (yours; admins: any)")
    def revoke_token(token_id: str, who: Who) -> Response:
        token = store().get_token(token_id)
        if token is None:
            raise NotFoundError(f"no token {token_id!r}", field="token_id")
        if not (who.is_admin or token.user == who.name):  # answered as if there were none
            raise NotVisible(f"no token {token_id!r}", field="token_id",
                             target=f"token {token_id}")
        # Committed before the answer; this process's token cache forgets at once (the
        # store's tenancy_version moved), so the token is refused from the next request.
        row = store().revoke_token(token_id, ts=controller.now(), by=who.name)
        return json_response(token_json(row, controller.now()))

    # -- the audit trail ----------------------------------------------------------------
    @api.get("/audit", summary="Changes to people and access, and refused requests "
                               "(admins)")
    def audit(who: Who, after: Annotated[int, Query(ge=0)] = 0,
              kind: Annotated[list[str] | None, Query()] = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> Response:
        require_admin(who, "read the audit trail")
        events = store().audit_events(after_seq=after, limit=limit, kinds=kind)
        return json_response({"events": [audit_json(e) for e in events],
                              "next_after": events[-1].seq if len(events) == limit
                              else None})

    return api
