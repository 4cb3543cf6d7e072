"""From a submit request (a batch script, sbatch flags, the caller's environment) to the
jobs the store keeps: parsed as ``sbatch`` parses, expanded into array tasks, with every
submission extra the executor will need (script, workdir, environment, output patterns).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gefion.core.errors import AccessError, InputError
from gefion.core.jobs import JobSpec
from gefion.slurm import Site, Submission, parse_submission
from gefion.slurm.values import ExportSpec
from gefion.store import NewJob
from gefion.store.tokens import TOKEN_PREFIX, looks_like_token

#: Environment variables of the submitter that never travel with a job (sbatch drops these
#: too, or they would point the job at the submitter's terminal or step).
_NOT_EXPORTED = ("SLURM_", "GEFION_JOB", "GEFION_TOKEN", "CUDA_VISIBLE_DEVICES")


@dataclass(frozen=True)
class SubmitRequest:
    """A submission as the API receives it. ``script`` None with ``--wrap`` in ``argv``;
    ``source`` names the script file for error messages; ``cwd`` is the submit directory;
    ``env`` the submitter's environment (exported per ``--export``, ALL by default);
    ``script_args`` are the arguments after the script name. ``default_project``: the
    project of a job without ``-A`` (None: the controller's default); ``allowed_projects``:
    the projects the submitter may submit to (None: any; the API sets it, see
    :mod:`gefion.api.access`)."""

    user: str
    cwd: str
    script: str | None = None
    argv: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    source: str = "<script>"
    script_args: Sequence[str] = ()
    default_project: str | None = None
    allowed_projects: frozenset[str] | None = None


@dataclass
class BatchMemo:
    """What the submissions of one batch (one site) share, worked out once: a sweep sends
    the same script and flags, and the same environment, many times. Parsed submissions
    are immutable, and a job's environment is read-only once made (its users copy it), so
    equal inputs may share one answer."""

    parsed: dict[tuple[str | None, tuple[str, ...], str], Submission] = \
        field(default_factory=dict)
    environment: tuple[ExportSpec | None, Mapping[str, str], dict[str, str]] | None = None


#: Whether a variable name is exported (:func:`_exported`), per name seen: a submitter's
#: environment holds the same few dozen names request after request.
_EXPORTED: dict[str, bool] = {}


def _exported(name: str) -> bool:
    exported = not name.startswith(_NOT_EXPORTED)
    if len(_EXPORTED) < 65_536:  # bounded: names are the client's to choose
        _EXPORTED[name] = exported
    return exported


def check_account(user: str) -> None:
    """When the controller runs as root, jobs run as the user who submitted them: refuse a
    user without an account on this host, before anything is stored."""
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam(user)
        except KeyError:
            raise InputError(f"no account named {user!r} on this host: jobs run as the user "
                             "who submits them", field="user") from None


def parse_request(request: SubmitRequest, site: Site,
                  memo: BatchMemo | None = None) -> Submission:
    """The parsed submission; raises the parser's InputError (file, line, option)."""
    key = (request.script, tuple(request.argv), request.source)
    if memo is not None and key in memo.parsed:
        return memo.parsed[key]
    sub = parse_submission(request.script, source=request.source, argv=key[1], site=site)
    if memo is not None:
        memo.parsed[key] = sub
    return sub


def _environment(export: ExportSpec | None, env: Mapping[str, str],
                 memo: BatchMemo | None) -> dict[str, str]:
    """:func:`job_environment`, once for a run of equal environments in a batch."""
    if memo is None:
        return job_environment(export, env)
    last = memo.environment
    if last is not None and last[0] == export and (last[1] is env or last[1] == env):
        return last[2]
    out = job_environment(export, env)
    memo.environment = (export, env, out)
    return out


def job_environment(export: ExportSpec | None, env: Mapping[str, str]) -> dict[str, str]:
    """The environment a job starts from, as ``--export`` says (sbatch's default is ALL).
    Inherited variables never include an API token (``GEFION_TOKEN``, or any value holding
    one): the environment is stored with the job, and tokens are stored nowhere in clear."""
    inherit = export is None or export.inherit
    exported = _EXPORTED
    out = {k: v for k, v in env.items()
           if exported.get(k) or (k not in exported and _exported(k))} if inherit else {}
    if TOKEN_PREFIX in "".join(out.values()):  # rare: then look at each value
        out = {k: v for k, v in out.items() if not looks_like_token(v)}
    for name, value in export.variables if export is not None else ():
        if value is not None:
            out[name] = value
        elif name in env:
            out[name] = env[name]
    return out


def new_jobs(sub: Submission, request: SubmitRequest, *, default_project: str,
             default_time_limit_s: int, node_gpus: int,
             memo: BatchMemo | None = None) -> list[NewJob]:
    """One NewJob per job (per task, for an array), specs validated by the core; raises
    :class:`AccessError` for a project the request may not submit to."""
    default_project = request.default_project or default_project
    extras: dict[str, Any] = {
        "script": sub.script, "script_args": list(request.script_args),
        "workdir": sub.chdir or request.cwd, "submit_dir": request.cwd,
        "env": _environment(sub.export, request.env, memo),
        "output": sub.output, "error": sub.error, "open_mode": sub.open_mode or "truncate",
        "partition": sub.partition, "requeue": sub.requeue,
        "ntasks": sub.ntasks, "ntasks_per_node": sub.ntasks_per_node,
        "cpus_per_task": sub.cpus_per_task, "gpus_per_task": sub.gpus_per_task,
        "signal": None if sub.signal is None else [sub.signal.number, sub.signal.time_s],
        "source": sub.source,
    }
    def spec_for(index: int | None) -> JobSpec:
        return sub.to_job_spec(user=request.user, default_project=default_project,
                               default_time_limit_s=default_time_limit_s,
                               node_gpus=node_gpus, array_index=index)

    if sub.array is None:
        return _allowed(request, [NewJob.from_spec(spec_for(None), held=sub.hold, **extras)])
    limit = sub.array.max_concurrent
    out = []
    for index in sub.array.indices:
        spec = spec_for(index)
        if limit is not None:
            spec = replace(spec, array_limit=limit)
        out.append(NewJob.from_spec(spec, held=sub.hold, **extras))
    return _allowed(request, out)


def _allowed(request: SubmitRequest, jobs: list[NewJob]) -> list[NewJob]:
    allowed = request.allowed_projects
    for project in sorted({job.project for job in jobs}):
        if allowed is not None and project not in allowed:
            mine = sorted(allowed)
            yours = ", ".join(mine[:10]) + (", ..." if len(mine) > 10 else "") or "none"
            raise AccessError(f"project {project!r} is not one you may submit to (yours: "
                              f"{yours}; choose with -A/--account)", field="project",
                              target=f"project {project}")
    return jobs


def with_array_id(spec: JobSpec, array_job_id: int | None) -> JobSpec:
    """The spec as the scheduler sees it: array tasks know their array (for ``%N``)."""
    if array_job_id is None or spec.array_id is not None:
        return spec
    return replace(spec, array_id=str(array_job_id))
