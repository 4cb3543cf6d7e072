"""Usage ledger and fair share (interface; see docs/fairshare.md).

PLACEHOLDER — being completed: decayed usage with a half-life, classic fair-share factor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gefion.core.tenancy import Project

DEFAULT_HALF_LIFE_S = 7 * 86_400.0


@dataclass(frozen=True)
class UsageLedger:
    """Decayed usage in GPU-seconds (already × QOS usage factor) as of ``as_of_s``."""

    half_life_s: float = DEFAULT_HALF_LIFE_S
    as_of_s: float = 0.0
    projects: Mapping[str, float] = field(default_factory=dict)
    users: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def project_usage(self, project: str) -> float:
        return self.projects.get(project, 0.0)


@dataclass(frozen=True)
class FairShare:
    """Fair-share factors in 0..1 per project and per (project, user)."""

    projects: Mapping[str, float]
    users: Mapping[tuple[str, str], float]

    def factor(self, project: str, user: str) -> float:
        f = self.users.get((project, user))
        if f is not None:
            return f
        return self.projects.get(project, 1.0)


def fairshare(projects: Mapping[str, Project], ledger: UsageLedger, now: float) -> FairShare:
    return FairShare({p: 1.0 for p in projects}, {})
