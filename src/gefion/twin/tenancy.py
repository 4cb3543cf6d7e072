"""Tenancy in twin runs: projects, QOS, grants, usage and reservations from a YAML file.

A *tenancy file* is the tenancy part of a ``gefion plan`` file (docs/plan-format.md) —
the keys ``projects``, ``qos``, ``grants``, ``usage`` and ``reservations``, read by the plan
format's own readers — without a cluster (``--cluster`` gives it), ``now`` or jobs (the
trace gives them)::

    projects:
      proj01: {shares: 2, sensitive: true}
      proj02: {shares: 1, max_gpus: 64, metered: true}
    grants:
      - {id: g1, project: proj02, gpu_hours: 5000, valid_to: 2592000, funder: EU}
    reservations:
      - {name: weather, nodes: "dgx[001-016]", start: 0, end: 7200, period: 86400,
         projects: [weather]}

Times are seconds on the run's clock: the trace's axis after the workload model (its first
submit is 0; ``--load`` divides submit times, not these). ``usage`` is what a project had
already charged against its grants at time 0 (GPU-seconds). The ``qos`` entries replace
those of the twin's table (:data:`gefion.twin.engine.TWIN_QOS`) of the same name.

Errors name the file, line and field (``tenancy.yaml:7: field 'grants[0].gpu_hours': must
be a number >= 0, got -5``), as for plan files. ``--sensitive P1,P2`` marks projects
sensitive on top of the file (:func:`mark_sensitive`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gefion.core.errors import InputError
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant, Project
from gefion.core.topology import Cluster

# The plan format's readers of its tenancy sections: one format, one set of checks.
from gefion.formats.plan import (
    check_project,
    read_grants,
    read_projects,
    read_qos,
    read_reservations,
)
from gefion.formats.yamlsrc import YamlMap, load_yaml

TENANCY_KEYS = ("projects", "qos", "grants", "usage", "reservations")
#: Keys of a plan file that a tenancy file does not take, and what gives them instead.
_ELSEWHERE = {"cluster": "--cluster", "policy": "--policy", "policy_params": "--depth",
              "now": "the trace", "running": "the trace", "pending": "the trace",
              "drained": "the cluster", "down": "the cluster"}


@dataclass(frozen=True)
class Tenancy:
    """The tenancy of one twin run: what :func:`gefion.twin.engine.simulate` takes.

    ``qos`` is the whole QOS table of the run. ``file`` and ``sha256`` name the file it was
    read from (``None`` for ``--sensitive`` alone); ``marked`` lists the projects
    ``--sensitive`` marked.
    """

    projects: dict[str, Project] = field(default_factory=dict)
    qos: dict[str, QOS] = field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    usage_gpu_s: dict[str, float] = field(default_factory=dict)
    reservations: tuple[Reservation, ...] = ()
    file: str | None = None
    sha256: str | None = None
    marked: tuple[str, ...] = ()

    def simulate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``simulate`` for this tenancy."""
        return {"projects": self.projects, "qos": self.qos, "grants": self.grants,
                "usage_gpu_s": self.usage_gpu_s, "reservations": self.reservations}

    @property
    def sensitive(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, p in self.projects.items() if p.sensitive))

    def named_projects(self) -> set[str]:
        """Every project the tenancy names: projects, grants, usage, reservations."""
        names = set(self.projects) | {g.project for g in self.grants} | set(self.usage_gpu_s)
        for r in self.reservations:
            names |= r.projects
        return names


def _twin_qos() -> dict[str, QOS]:
    from gefion.twin.engine import TWIN_QOS

    return dict(TWIN_QOS)


def parse_tenancy(text: str, source: str, cluster: Cluster) -> Tenancy:
    """Parse tenancy YAML ``text`` (``source`` names it in errors) for a run on
    ``cluster`` (reservation nodes must be its nodes). An empty file is no tenancy."""
    root = load_yaml(text, source)
    if isinstance(root.data, YamlMap):
        for key in root.data:
            if key in _ELSEWHERE:
                raise root.at(None, root.data.key_lines.get(key, root.line), f".{key}").error(
                    f"not part of a tenancy file: a twin run takes it from "
                    f"{_ELSEWHERE[key]}")
    f = root.as_fields((), TENANCY_KEYS, null_ok=True)
    parsed = read_qos(f)
    qos = _twin_qos()
    qos.update({name: parsed[name] for name, _ in f.get("qos").as_entries()})
    projects = read_projects(f)
    known = projects if "projects" in f else None
    grants = read_grants(f, known)
    usage: dict[str, float] = {}
    for name, v in f.get("usage").as_entries():
        check_project(v, name, known)
        usage[name] = v.as_float(ge=0, finite=True)
    return Tenancy(projects, qos, grants, usage, read_reservations(f, cluster))


def load_tenancy(path: str | Path, cluster: Cluster) -> Tenancy:
    """Read the tenancy file at ``path`` (see :func:`parse_tenancy`)."""
    try:
        data = Path(path).read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the tenancy file: {e}", source=str(path),
                         field="tenancy") from None
    tenancy = parse_tenancy(text, str(path), cluster)
    return replace(tenancy, file=str(path), sha256=hashlib.sha256(data).hexdigest())


def mark_sensitive(tenancy: Tenancy, names: Iterable[str]) -> Tenancy:
    """``tenancy`` with the projects ``names`` sensitive (added with default shares when
    the tenancy does not have them)."""
    projects = dict(tenancy.projects)
    marked = tuple(names)
    for name in marked:
        p = projects.get(name)
        projects[name] = Project(name, sensitive=True) if p is None \
            else replace(p, sensitive=True)
    return replace(tenancy, projects=projects, marked=tenancy.marked + marked)


def make_tenancy(file: str | None, sensitive: Iterable[str], cluster: Cluster
                 ) -> Tenancy | None:
    """The tenancy of a run from ``--tenancy`` and ``--sensitive`` (None: neither given)."""
    names = tuple(sensitive)
    if file is None and not names:
        return None
    tenancy = load_tenancy(file, cluster) if file is not None else Tenancy(qos=_twin_qos())
    return mark_sensitive(tenancy, names) if names else tenancy


def describe(tenancy: Tenancy, trace_projects: Iterable[str]) -> dict[str, Any]:
    """The summary's ``tenancy`` section: which tenancy the run used, in short."""
    projects: Mapping[str, Project] = tenancy.projects
    return {
        "file": tenancy.file, "sha256": tenancy.sha256,
        "sensitive": list(tenancy.sensitive), "marked_sensitive": list(tenancy.marked),
        "projects": {name: {"shares": p.shares, "max_gpus": p.max_gpus,
                            "metered": p.metered, "sensitive": p.sensitive}
                     for name, p in sorted(projects.items())},
        "grants": [g.id for g in tenancy.grants],
        "reservations": [r.name for r in tenancy.reservations],
        "projects_not_in_trace": sorted(tenancy.named_projects() - set(trace_projects)),
    }
