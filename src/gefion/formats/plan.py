"""The input of ``gefion plan JOBS.yaml``: one scheduling cycle, offline (docs/plan-format.md).

A plan file holds a cluster, a time ``now``, the running and pending jobs and the tenancy
(projects, QOS, grants, usage, reservations). :func:`parse_plan` checks all of it and returns
a :class:`PlanInput` of core records; every error is an
:class:`~gefion.core.errors.InputError` naming file, line and field path, e.g.
``jobs.yaml:14: field 'pending[2].gpus': must be a whole number >= 0, got -4``.

Cross-checks beyond the types: job ids are unique; a job's QOS exists; when ``projects:`` is
given, every project a job, grant or usage entry names is in it; a named reservation exists;
``submit <= start <= now`` for running jobs and ``submit <= now`` for pending ones; a running
job's placement names known nodes and fits beside the other running jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gefion.core.errors import InputError
from gefion.core.jobs import Dependency, Job, JobSpec, JobState, TopologyConstraint
from gefion.core.reservations import Reservation
from gefion.core.snapshot import Snapshot, build_snapshot
from gefion.core.tenancy import DEFAULT_QOS, QOS, Grant, Project
from gefion.core.topology import Cluster, NodeState
from gefion.formats.cluster import load_cluster
from gefion.formats.hostlist import expand
from gefion.formats.topology_yaml import expand_nodes, topology_from_value
from gefion.formats.yamlsrc import Fields, Value, load_yaml, to_plain

PLAN_KEYS = ("now", "policy", "policy_params", "running", "pending", "reservations",
             "projects", "qos", "grants", "usage", "drained", "down")
PROJECT_KEYS = ("shares", "members", "max_gpus", "metered", "sensitive")
QOS_KEYS = ("priority", "preemptible", "preempts", "max_time_limit", "max_gpus_per_user",
            "grace", "usage_factor", "requeue")


@dataclass(frozen=True)
class PlanInput:
    """Everything one offline cycle needs. Times in seconds, ``charged_gpu_s`` in
    GPU-seconds already charged against each project's grants."""

    cluster: Cluster
    now: float
    policy: str
    policy_params: dict[str, object]
    jobs: tuple[Job, ...]
    reservations: tuple[Reservation, ...]
    projects: dict[str, Project]
    qos: dict[str, QOS]
    grants: tuple[Grant, ...]
    charged_gpu_s: dict[str, float]

    @property
    def running(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.state is JobState.RUNNING)

    @property
    def pending(self) -> tuple[Job, ...]:
        return tuple(j for j in self.jobs if j.state is JobState.PENDING)

    def snapshot(self) -> Snapshot:
        """The cycle's snapshot at ``now``, built by the core's one builder."""
        return build_snapshot(self.cluster, self.jobs, self.now,
                              reservations=self.reservations, projects=self.projects,
                              qos=self.qos, grants=self.grants,
                              charged_gpu_s=self.charged_gpu_s)


def load_plan(path: Path) -> PlanInput:
    """Read and parse the plan file at ``path``; relative topology paths are taken from its
    folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the plan file: {e}", source=str(path)) from None
    return parse_plan(text, str(path), path.parent)


def parse_plan(text: str, source: str, base_dir: Path) -> PlanInput:
    """Parse plan YAML ``text``; ``source`` names it in errors, ``base_dir`` anchors
    relative topology file paths."""
    f = load_yaml(text, source).as_fields(["cluster"], PLAN_KEYS)
    cluster = _node_states(f, _cluster(f.get("cluster"), base_dir))
    now = f.number("now", 0.0, finite=True)
    policy = f.string("policy", "gefion")
    params_value = f.opt("policy_params")
    params: dict[str, object] = {} if params_value is None else {
        key: to_plain(v.data) for key, v in params_value.as_entries()}

    qos = read_qos(f)
    projects = read_projects(f)
    known_projects = projects if "projects" in f else None
    grants = read_grants(f, known_projects)
    charged: dict[str, float] = {}
    for name, v in f.get("usage").as_entries():
        check_project(v, name, known_projects)
        charged[name] = v.as_float(ge=0, finite=True)
    reservations = read_reservations(f, cluster)

    jobs = JobReader(cluster, now, qos, known_projects,
                     {r.name for r in reservations}).read(f)
    return PlanInput(cluster, now, policy, params, jobs, reservations, projects, qos,
                     grants, charged)


def _cluster(v: Value, base_dir: Path) -> Cluster:
    """``cluster:`` is a preset name, a topology file path or an inline topology mapping."""
    try:
        if isinstance(v.data, dict):
            return topology_from_value(v)
        return load_cluster(v.as_str(), base_dir=base_dir)
    except InputError as e:
        raise v.relocate(e) from None


def _node_states(f: Fields, cluster: Cluster) -> Cluster:
    """Apply the optional ``drained:``/``down:`` node lists (hostlists or lists of them)."""
    states: dict[str, NodeState] = {}
    for key, state in (("drained", NodeState.DRAINED), ("down", NodeState.DOWN)):
        v = f.opt(key)
        for name, where in [] if v is None else expand_nodes(v):
            if not cluster.has_node(name):
                raise where.error(f"no node named {name!r} in cluster {cluster.name!r}")
            if name in states:
                raise where.error(f"node {name!r} is listed as both drained and down")
            states[name] = state
    return cluster.with_states(states) if states else cluster


def check_project(v: Value, name: str, known: dict[str, Project] | None) -> None:
    if known is not None and name not in known:
        raise v.error(f"unknown project {name!r}; the file's projects are "
                      f"{', '.join(sorted(known)) or 'none'}")


def read_qos(f: Fields) -> dict[str, QOS]:
    """``DEFAULT_QOS`` updated with the file's: an entry replaces a default of its name."""
    out = dict(DEFAULT_QOS)
    preempts: list[tuple[str, Value]] = []
    for name, v in f.get("qos").as_entries():
        q = v.as_fields((), QOS_KEYS, null_ok=True)
        kw: dict[str, Any] = {}
        if "priority" in q:
            kw["priority"] = q.number("priority", finite=True)
        if "preemptible" in q:
            kw["preemptible"] = q.boolean("preemptible")
        if "requeue" in q:
            kw["requeue"] = q.boolean("requeue")
        if "max_time_limit" in q:
            kw["max_time_limit_s"] = q.integer("max_time_limit", ge=1)
        if "max_gpus_per_user" in q:
            kw["max_gpus_per_user"] = q.integer("max_gpus_per_user", ge=0)
        if "grace" in q:
            kw["grace_s"] = q.integer("grace", ge=0)
        if "usage_factor" in q:
            kw["usage_factor"] = q.number("usage_factor", ge=0, finite=True)
        if "preempts" in q:
            victims = q.get("preempts").as_strings()
            kw["preempts"] = frozenset(s.data for s in victims)
            preempts.extend((s.data, s) for s in victims)
        try:
            out[name] = QOS(name, **kw)
        except InputError as e:
            raise q.relocate(e) from None
    for victim, where in preempts:  # checked once all QOS are known: order must not matter
        if victim not in out:
            raise where.error(f"unknown QOS {victim!r}; known: {', '.join(sorted(out))}")
    return out


def read_projects(f: Fields) -> dict[str, Project]:
    out: dict[str, Project] = {}
    for name, v in f.get("projects").as_entries():
        p = v.as_fields((), PROJECT_KEYS, null_ok=True)
        kw: dict[str, Any] = {"members": frozenset(p.strings("members"))}
        if "shares" in p:
            kw["shares"] = p.number("shares", ge=0, finite=True)
        if "max_gpus" in p:
            kw["max_gpus"] = p.integer("max_gpus", ge=0)
        if "metered" in p:
            kw["metered"] = p.boolean("metered")
        if "sensitive" in p:
            kw["sensitive"] = p.boolean("sensitive")
        try:
            out[name] = Project(name, **kw)
        except InputError as e:
            raise p.relocate(e) from None
    return out


def read_grants(f: Fields, projects: dict[str, Project] | None) -> tuple[Grant, ...]:
    out: list[Grant] = []
    seen: dict[str, Value] = {}
    for item in f.items("grants"):
        g = item.as_fields(["id", "project", "gpu_hours"],
                           ["valid_from", "valid_to", "funder"])
        grant_id = g.ident("id")
        if grant_id in seen:
            raise g.error("id", f"duplicate grant id {grant_id!r} (first on line "
                                f"{seen[grant_id].line})")
        seen[grant_id] = g.get("id")
        project = g.string("project")
        check_project(g.get("project"), project, projects)
        try:
            out.append(Grant(grant_id, project, g.number("gpu_hours", ge=0, finite=True),
                             g.number("valid_from", 0.0),
                             g.number("valid_to", float("inf")),
                             g.string("funder", "")))
        except InputError as e:
            raise g.relocate(e) from None
    return tuple(out)


def read_reservations(f: Fields, cluster: Cluster) -> tuple[Reservation, ...]:
    out: list[Reservation] = []
    seen: dict[str, Value] = {}
    for item in f.items("reservations"):
        r = item.as_fields(["name", "nodes", "start", "end"],
                           ["period", "until", "projects", "users", "maintenance"])
        name = r.ident("name")
        if name in seen:
            raise r.error("name", f"duplicate reservation {name!r} (first on line "
                                  f"{seen[name].line})")
        seen[name] = r.get("name")
        nodes: list[str] = []
        for node, where in expand_nodes(r.get("nodes")):
            if not cluster.has_node(node):
                raise where.error(f"no node named {node!r} in cluster {cluster.name!r}")
            if node in nodes:
                raise where.error(f"node {node!r} is listed twice")
            nodes.append(node)
        try:
            out.append(Reservation(
                name, tuple(nodes), r.number("start", finite=True), r.number("end"),
                r.number("period", None, ge=0), r.number("until", None),
                frozenset(r.strings("projects")), frozenset(r.strings("users")),
                r.boolean("maintenance", False)))
        except InputError as e:
            raise r.relocate(e) from None
    return tuple(out)


# -- jobs ---------------------------------------------------------------------------------

JOB_REQUIRED = ("id", "gpus", "time_limit", "project")
JOB_OPTIONAL = ("nodes", "gpus_per_node", "submit", "qos", "user", "name", "same_su",
                "preemptible", "grace", "depends_on", "reservation", "array_index",
                "exclusive", "service_gpu_s")


class JobReader:
    """Reads ``running:`` and ``pending:`` into :class:`Job` records and owns the checks
    across jobs: ids are unique, and each GPU of a node is handed to one running job."""

    def __init__(self, cluster: Cluster, now: float, qos: dict[str, QOS],
                 projects: dict[str, Project] | None, reservations: set[str]) -> None:
        self.cluster = cluster
        self.now = now
        self.qos = qos
        self.projects = projects
        self.reservations = reservations
        self.ids: dict[str, Value] = {}
        self.owners: dict[str, list[str | None]] = {}  # node → job id per GPU index
        self.exclusive: dict[str, str] = {}  # node → the exclusive job that holds it

    def read(self, f: Fields) -> tuple[Job, ...]:
        jobs = [self._running(item) for item in f.items("running")]
        jobs += [self._pending(item) for item in f.items("pending")]
        return tuple(jobs)

    def _running(self, item: Value) -> Job:
        j = item.as_fields((*JOB_REQUIRED, "start", "placement"), JOB_OPTIONAL)
        job_id, spec = self._spec(j)
        start = j.number("start", finite=True)
        submit = j.number("submit", min(0.0, start), finite=True)
        if start > self.now:
            raise j.error("start", f"a running job must have started by now "
                                   f"({self.now:g}), got {start:g}")
        if submit > start:
            raise j.error("submit", f"must be <= start ({start:g}), got {submit:g}")
        return Job(job_id, spec, submit, JobState.RUNNING, start_s=start,
                   allocation=self._place(j, job_id, spec),
                   service_gpu_s=j.number("service_gpu_s", 0.0, ge=0, finite=True))

    def _pending(self, item: Value) -> Job:
        j = item.as_fields(JOB_REQUIRED, (*JOB_OPTIONAL, "held"))
        job_id, spec = self._spec(j)
        submit = j.number("submit", 0.0, finite=True)
        if submit > self.now:
            raise j.error("submit", f"must be <= now ({self.now:g}), got {submit:g}")
        return Job(job_id, spec, submit, held=j.boolean("held", False),
                   service_gpu_s=j.number("service_gpu_s", 0.0, ge=0, finite=True))

    def _spec(self, j: Fields) -> tuple[str, JobSpec]:
        job_id = j.ident("id")
        if job_id in self.ids:
            raise j.error("id", f"duplicate job id {job_id!r} (first on line "
                                f"{self.ids[job_id].line})")
        self.ids[job_id] = j.get("id")
        project = j.string("project")
        check_project(j.get("project"), project, self.projects)
        qos = j.string("qos", "normal")
        if qos not in self.qos:
            raise j.error("qos", f"unknown QOS {qos!r}; known: {', '.join(sorted(self.qos))}")
        reservation = j.string("reservation", None)
        if reservation is not None and reservation not in self.reservations:
            raise j.error("reservation", f"unknown reservation {reservation!r}; the file's "
                          f"reservations are {', '.join(sorted(self.reservations)) or 'none'}")
        deps: list[Dependency] = []
        for text in j.get("depends_on").as_strings() if "depends_on" in j else []:
            try:
                deps.extend(Dependency.parse(text.data))
            except InputError as e:
                raise text.relocate(e) from None
        try:
            spec = JobSpec(
                gpus=j.integer("gpus", ge=0), time_limit_s=j.integer("time_limit", ge=1),
                project=project, user=j.string("user", ""), name=j.string("name", ""),
                nodes=j.integer("nodes", None, ge=1),
                gpus_per_node=j.integer("gpus_per_node", None, ge=0), qos=qos,
                depends_on=tuple(deps), array_index=j.integer("array_index", None, ge=0),
                reservation=reservation, same_su=_same_su(j),
                preemptible=j.boolean("preemptible", None),
                grace_s=j.integer("grace", None, ge=0),
                exclusive=j.boolean("exclusive", False))
        except InputError as e:
            raise j.relocate(e) from None
        return job_id, spec

    def _place(self, j: Fields, job_id: str,
               spec: JobSpec) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """The allocation of a running job: GPU indices lowest-first among those still free
        on each node, in placement order."""
        v = j.get("placement")
        wanted: list[tuple[str, int, Value]] = []  # node, GPUs there, where it was written
        if isinstance(v.data, dict):  # node (or hostlist) → GPUs on each
            for key, count_value in v.as_entries(null_ok=False):
                count = count_value.as_int(ge=0)
                try:
                    wanted.extend((name, count, count_value) for name in expand(key))
                except InputError as e:
                    raise count_value.relocate(e) from None
            total = sum(count for _, count, _ in wanted)
            if total != spec.gpus:
                raise v.error(f"places {total} GPUs, but the job has gpus={spec.gpus}")
        else:  # node names: the job's GPUs split evenly
            names = expand_nodes(v)
            if not names or spec.gpus % len(names):
                raise v.error(f"gpus={spec.gpus} do not split evenly over {len(names)} "
                              "nodes; give a mapping of node name to GPU count")
            wanted = [(name, spec.gpus // len(names), where) for name, where in names]
        if spec.nodes is not None and len(wanted) != spec.nodes:
            raise v.error(f"places the job on {len(wanted)} nodes, but it asks for "
                          f"nodes={spec.nodes}")
        alloc: list[tuple[str, tuple[int, ...]]] = []
        for name, count, where in wanted:
            if spec.gpus_per_node is not None and count != spec.gpus_per_node:
                raise where.error(f"places {count} GPUs on {name!r}, but the job asks for "
                                  f"gpus_per_node={spec.gpus_per_node}")
            if not self.cluster.has_node(name):
                raise where.error(f"no node named {name!r} in cluster {self.cluster.name!r}")
            if any(name == placed for placed, _ in alloc):
                raise where.error(f"node {name!r} is listed twice")
            node = self.cluster.nodes[self.cluster.index_of(name)]
            owners = self.owners.setdefault(name, [None] * node.gpus)
            free = [i for i, owner in enumerate(owners) if owner is None]
            holders = sorted({owner for owner in owners if owner is not None})
            if name in self.exclusive or (spec.exclusive and holders):
                other = self.exclusive.get(name) or ", ".join(holders)
                raise where.error(f"node {name!r} cannot hold job {job_id!r} beside job(s) "
                                  f"{other}: one of them is exclusive")
            if count > len(free):
                raise where.error(
                    f"node {name!r} is over-committed: job {job_id!r} needs {count} GPUs "
                    f"there, but only {len(free)} of {node.gpus} are free (held by "
                    f"{', '.join(holders)})")
            for i in free[:count]:
                owners[i] = job_id
            if spec.exclusive:
                self.exclusive[name] = job_id
            alloc.append((name, tuple(free[:count])))
        return tuple(alloc)


def _same_su(j: Fields) -> TopologyConstraint:
    """``same_su``: true = required, false or absent = preferred, or the word itself."""
    v = j.opt("same_su")
    if v is None:
        return TopologyConstraint.PREFERRED
    if isinstance(v.data, bool):
        return TopologyConstraint.REQUIRED if v.data else TopologyConstraint.PREFERRED
    if isinstance(v.data, str) and v.data in {c.value for c in TopologyConstraint}:
        return TopologyConstraint(v.data)
    raise v.error(f"must be true, false, 'required' or 'preferred', got {v.data!r}")
