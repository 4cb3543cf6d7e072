"""Request bodies of the tenancy routes (people, projects, tokens, QOS, grants,
reservations), validated by FastAPI: a bad field is a 422 problem naming it. Names are
checked again by the store (1-64 letters, digits, ``_ . -``), which answers 400.

Units: ``*_ts`` seconds since the epoch, ``*_s`` seconds, ``gpu_hours`` GPU-hours.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=64,
                            pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
#: What a token lives unless told otherwise: 90 days.
DEFAULT_TOKEN_LIFETIME_S = 90 * 86_400


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserBody(_Body):
    name: Name
    role: Literal["admin", "operator", "user"] = "user"
    default_project: str | None = Field(None, description="where jobs without -A go")


class UserPatchBody(_Body):
    """Only the fields given change; ``default_project: null`` clears it."""

    role: Literal["admin", "operator", "user"] | None = None
    default_project: str | None = None


class ProjectBody(_Body):
    name: Name
    shares: float = Field(1.0, ge=0, description="fair-share weight")
    max_gpus: int | None = Field(None, ge=0, description="GPUs its jobs may hold at once")
    metered: bool = Field(False, description="jobs need an active grant with hours left")
    sensitive: bool = Field(False, description="its jobs share nodes with no other project")
    description: str = Field("", max_length=255)


class MemberBody(_Body):
    user: Name
    role: Literal["member", "lead"] = "member"


class TokenBody(_Body):
    """A token for ``user``. It expires ``expires_in_s`` from now (default 90 days), or at
    ``expires_ts``; ``never_expires`` for none (service accounts)."""

    user: Name
    name: str = Field("", max_length=255, description="a label: what the token is for")
    expires_in_s: float | None = Field(None, gt=0)
    expires_ts: float | None = None
    never_expires: bool = False


class QosBody(_Body):
    name: Name
    priority: float = Field(0.0, description="raw weight, normalised by the largest QOS's")
    preemptible: bool = False
    preempts: list[str] = Field(default_factory=list, description="QOS this one may evict")
    max_time_limit_s: int | None = Field(None, gt=0)
    max_gpus_per_user: int | None = Field(None, ge=0)
    grace_s: int = Field(60, ge=0, description="between the preemption signal and the kill")
    usage_factor: float = Field(1.0, ge=0, description="multiplies the GPU-seconds charged")
    requeue: bool | None = Field(None, description="null: requeue exactly when preemptible")


class GrantBody(_Body):
    project: Name
    gpu_hours: float = Field(ge=0)
    valid_from_ts: float | None = Field(None, description="default: now")
    valid_to_ts: float | None = Field(None, description="null: open-ended")
    funder: str = Field("", max_length=255)
    id: Name | None = Field(None, description="default: PROJECT-N")


class ReservationBody(_Body):
    name: Name
    nodes: list[str] = Field(min_length=1, description="node names or hostlist expressions "
                                                       "(dgx[001-004])")
    start_ts: float
    end_ts: float
    period_s: float | None = Field(None, gt=0, description="repeat every period (86400: "
                                                           "daily)")
    until_ts: float | None = Field(None, description="no window starts after this")
    projects: list[str] = Field(default_factory=list,
                                description="projects whose jobs may use it")
    users: list[str] = Field(default_factory=list, description="users whose jobs may use it")
    maintenance: bool = Field(False, description="no job at all runs on its nodes")
