"""People and access through the API (a base class of :class:`~gefion.client.Client`):
``me``, users, projects and members, tokens, QOS, grants, reservations, the audit trail.

Answers are the API's JSON objects as dicts (see the OpenAPI document); a refusal raises
:class:`~gefion.client.errors.ApiError` (403: not your role; 404: not yours to see).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx


def _path(name: str) -> str:
    return quote(name, safe="")


class AdminCalls:
    """Tenancy calls; see the module."""

    if TYPE_CHECKING:
        def _get(self, path: str, params: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]: ...

        def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                  json: Any = None, headers: Mapping[str, str] | None = None,
                  retry: bool = False) -> httpx.Response: ...

    def _post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._send("POST", path, json=dict(body)).json()
        return answer

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: name, role, projects (name → role), default project."""
        return self._get("/v1/me")

    # -- users ----------------------------------------------------------------------------
    def users(self) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = self._get("/v1/users")["users"]
        return users

    def create_user(self, name: str, *, role: str = "user",
                    default_project: str | None = None) -> dict[str, Any]:
        return self._post("/v1/users", {"name": name, "role": role,
                                        "default_project": default_project})

    def update_user(self, name: str, **fields: Any) -> dict[str, Any]:
        """Change ``role`` and/or ``default_project`` (None clears it)."""
        answer: dict[str, Any] = self._send("PATCH", f"/v1/users/{_path(name)}",
                                            json=fields).json()
        return answer

    # -- projects and members -------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        projects: list[dict[str, Any]] = self._get("/v1/projects")["projects"]
        return projects

    def project(self, name: str) -> dict[str, Any]:
        return self._get(f"/v1/projects/{_path(name)}")

    def create_project(self, name: str, **fields: Any) -> dict[str, Any]:
        """``shares``, ``max_gpus``, ``metered``, ``sensitive``, ``description``."""
        return self._post("/v1/projects", {"name": name, **fields})

    def members(self, project: str) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = \
            self._get(f"/v1/projects/{_path(project)}/members")["members"]
        return members

    def add_member(self, project: str, user: str, role: str = "member") -> dict[str, Any]:
        return self._post(f"/v1/projects/{_path(project)}/members", {"user": user,
                                                                     "role": role})

    def remove_member(self, project: str, user: str) -> None:
        self._send("DELETE", f"/v1/projects/{_path(project)}/members/{_path(user)}")

    # -- tokens ---------------------------------------------------------------------------
    def tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        tokens: list[dict[str, Any]] = self._get("/v1/tokens", {"user": user})["tokens"]
        return tokens

    def create_token(self, user: str, *, name: str = "", expires_in_s: float | None = None,
                     expires_ts: float | None = None,
                     never_expires: bool = False) -> dict[str, Any]:
        """A new token for ``user`` (admins): the answer's ``token`` is shown only here."""
        body: dict[str, Any] = {"user": user, "name": name, "never_expires": never_expires}
        if expires_in_s is not None:
            body["expires_in_s"] = expires_in_s
        if expires_ts is not None:
            body["expires_ts"] = expires_ts
        return self._post("/v1/tokens", body)

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._post(f"/v1/tokens/{_path(token_id)}/revoke", {})

    # -- QOS, grants, reservations --------------------------------------------------------
    def qos(self) -> list[dict[str, Any]]:
        qos: list[dict[str, Any]] = self._get("/v1/qos")["qos"]
        return qos

    def create_qos(self, name: str, **fields: Any) -> dict[str, Any]:
        return self._post("/v1/qos", {"name": name, **fields})

    def grants(self, project: str | None = None) -> list[dict[str, Any]]:
        grants: list[dict[str, Any]] = self._get("/v1/grants", {"project": project})["grants"]
        return grants

    def create_grant(self, project: str, gpu_hours: float, **fields: Any) -> dict[str, Any]:
        """``valid_from_ts``, ``valid_to_ts``, ``funder``, ``id``."""
        return self._post("/v1/grants", {"project": project, "gpu_hours": gpu_hours,
                                         **fields})

    def reservations(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get("/v1/reservations")["reservations"]
        return found

    def create_reservation(self, name: str, nodes: Iterable[str], start_ts: float,
                           end_ts: float, **fields: Any) -> dict[str, Any]:
        """``period_s``, ``until_ts``, ``projects``, ``users``, ``maintenance``."""
        return self._post("/v1/reservations", {"name": name, "nodes": list(nodes),
                                               "start_ts": start_ts, "end_ts": end_ts,
                                               **fields})

    def delete_reservation(self, name: str) -> None:
        self._send("DELETE", f"/v1/reservations/{_path(name)}")

    # -- fair share and grant standing ----------------------------------------------------
    def share(self, project: str | None = None) -> dict[str, Any]:
        """The sshare view: ``rows`` (each project, then its users) and ``grants`` (hours
        left and forecast per project) of the projects you may see."""
        return self._get("/v1/share", {"project": project})

    def project_usage(self, project: str) -> dict[str, Any]:
        """One project's fair-share lines and grant standing with its forecast."""
        return self._get(f"/v1/projects/{_path(project)}/usage")

    def audit(self, *, after: int = 0, kinds: Iterable[str] = (),
              limit: int = 100) -> dict[str, Any]:
        """Tenancy changes and refused requests after ``after`` (admins): ``events`` and
        ``next_after``."""
        return self._get("/v1/audit", {"after": after, "kind": list(kinds) or None,
                                        "limit": limit})
