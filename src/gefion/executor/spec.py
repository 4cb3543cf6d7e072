"""What the controller asks the executor to run (:class:`LaunchSpec`) and what it hears back
(:class:`JobExit`).

Units: every ``*_s`` field is in seconds, ``*_ts`` fields are Unix timestamps (seconds).
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gefion.core.jobs import JobState
from gefion.executor.errors import ExecutorError

OpenMode = Literal["truncate", "append"]

#: The states a job can end in on an executor. NODE_FAIL comes only from a multi-node
#: executor (a node of the gang was lost); the controller decides whether it requeues.
EXIT_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT,
                         JobState.CANCELLED, JobState.PREEMPTED, JobState.NODE_FAIL})


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """One job's batch step on this node, fully resolved by the controller.

    ``env`` is the environment the job starts from (``--export`` already applied);
    ``stdout_path``/``stderr_path`` are expanded file names (relative ones are taken from
    ``workdir``; equal ones share one file); ``gpus`` are GPU indices on this node;
    ``node_gpus`` maps every node of ``nodelist`` to the job's GPU indices there (empty:
    ``node`` has ``gpus``, the others are unknown — a single-host executor needs no more);
    ``signal`` is ``(signal number, seconds before the time limit)`` as in
    ``--signal=USR1@60``, sent to every process of the job (the batch shell included), and
    also the signal a preemption sends; ``extra_env`` holds Gefion's own variables and is
    applied last. ``private_output``: the job's output files are created (or, if they exist,
    set to) mode 0600 and it runs with umask 077, so only its user reads what it writes.
    """

    job_id: int
    name: str
    user: str
    script: str
    workdir: str
    node: str
    stdout_path: str
    stderr_path: str
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    nodelist: tuple[str, ...] = ()  # empty: just ``node``
    gpus: tuple[int, ...] = ()
    node_gpus: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    time_limit_s: int | None = None
    kill_grace_s: int = 30  # Slurm's KillWait: SIGTERM, this long, then SIGKILL
    open_mode: OpenMode = "truncate"
    array_job_id: int | None = None
    array_task_id: int | None = None
    submit_dir: str = ""  # empty: ``workdir``
    partition: str = ""
    account: str = ""
    qos: str = "normal"
    ntasks: int = 1
    ntasks_per_node: int | None = None
    cpus_per_task: int = 1
    gpus_per_task: int | None = None
    signal: tuple[int, int] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    #: a sensitive project's job: output files mode 0600 and umask 077 (docs/controller.md)
    private_output: bool = False

    def __post_init__(self) -> None:
        if not self.nodelist:
            object.__setattr__(self, "nodelist", (self.node,))
        if not self.submit_dir:
            object.__setattr__(self, "submit_dir", self.workdir)
        object.__setattr__(self, "node_gpus", {
            str(node): tuple(gpus) for node, gpus in (self.node_gpus or {}).items()})
        problems = list(self._problems())
        if problems:
            raise ExecutorError(f"job {self.job_id}: bad launch spec: {'; '.join(problems)}")

    def _problems(self) -> Any:
        if not isinstance(self.job_id, int) or self.job_id <= 0:
            yield f"job_id must be a whole number > 0, got {self.job_id!r}"
        if not self.user:
            yield "user is empty"
        if not self.script.startswith("#!"):
            yield "the script must start with '#!' (an interpreter line)"
        if not self.workdir:
            yield "workdir is empty"
        if self.node not in self.nodelist:
            yield f"node {self.node!r} is not in the nodelist {list(self.nodelist)}"
        if not self.stdout_path or not self.stderr_path:
            yield "stdout_path and stderr_path are required"
        if self.open_mode not in ("truncate", "append"):
            yield f"open_mode must be 'truncate' or 'append', got {self.open_mode!r}"
        if any(not isinstance(g, int) or g < 0 for g in self.gpus) or \
                len(set(self.gpus)) != len(self.gpus):
            yield f"gpus must be distinct indices >= 0, got {list(self.gpus)}"
        unknown = [n for n in self.node_gpus if n not in self.nodelist]
        if unknown:
            yield f"node_gpus names nodes outside the nodelist: {unknown}"
        if self.node_gpus and tuple(self.node_gpus.get(self.node, ())) != tuple(self.gpus):
            yield f"node_gpus[{self.node!r}] differs from gpus {list(self.gpus)}"
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            yield f"time_limit_s must be > 0 or None, got {self.time_limit_s}"
        if self.kill_grace_s < 0:
            yield f"kill_grace_s must be >= 0, got {self.kill_grace_s}"
        if self.ntasks < 1 or self.cpus_per_task < 1:
            yield "ntasks and cpus_per_task must be >= 1"
        elif self.ntasks < len(self.nodelist):
            yield (f"ntasks={self.ntasks} is fewer than the {len(self.nodelist)} nodes: "
                   "every node runs at least one task")
        for mapping in (self.env, self.extra_env):
            bad = [k for k, v in mapping.items() if not isinstance(k, str) or not k
                   or "=" in k or "\0" in k or not isinstance(v, str) or "\0" in v]
            if bad:
                yield f"environment variables need a name without '=' and text values: {bad}"
        for name in ("ntasks_per_node", "gpus_per_task"):
            value = getattr(self, name)
            if value is not None and value < 1:
                yield f"{name} must be >= 1 or None, got {value}"
        if self.signal is not None:
            number, before_s = self.signal
            if number not in _signal.valid_signals() or number in (0, _signal.SIGKILL,
                                                                    _signal.SIGSTOP):
                yield f"signal {number} cannot be sent to a job"
            if before_s < 0:
                yield f"the signal's lead time must be >= 0 s, got {before_s}"
        if (self.array_job_id is None) != (self.array_task_id is None):
            yield "array_job_id and array_task_id go together"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (mappings as dicts, tuples as lists)."""
        out = dict(self.__dict__)
        for name in ("env", "extra_env"):
            out[name] = dict(out[name])
        out["node_gpus"] = {node: list(gpus) for node, gpus in self.node_gpus.items()}
        for name in ("argv", "nodelist", "gpus", "signal"):
            if out[name] is not None:
                out[name] = list(out[name])
        return out


@dataclass(frozen=True, slots=True)
class JobExit:
    """How a job ended.

    ``node`` names the node whose loss ended a NODE_FAIL job (None otherwise).
    ``exit_code`` and ``signal`` are the two halves of sacct's ``ExitCode`` (``code:signal``):
    a script that ran ``exit 3`` gives ``(3, None)``; one killed by SIGKILL gives ``(0, 9)``
    (a shell whose child was killed reports ``128+sig`` itself, as an exit code). ``reason`` says
    why the executor, not the script, ended it: a job that could not start, a lost supervisor.
    """

    job_id: int
    state: JobState
    exit_code: int
    signal: int | None
    start_ts: float
    end_ts: float
    reason: str | None = None
    node: str | None = None

    @property
    def sacct_exit_code(self) -> str:
        """The exit as sacct prints it: ``3:0``, ``0:9``."""
        return f"{self.exit_code}:{self.signal or 0}"

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> JobExit:
        return cls(job_id=int(record["job_id"]), state=JobState(record["state"]),
                   exit_code=int(record["exit_code"]),
                   signal=None if record.get("signal") is None else int(record["signal"]),
                   start_ts=float(record["start_ts"]), end_ts=float(record["end_ts"]),
                   reason=record.get("reason"), node=record.get("node"))

    def to_json(self) -> dict[str, Any]:
        """The record :meth:`from_json` reads."""
        return {"job_id": self.job_id, "state": self.state.value, "exit_code": self.exit_code,
                "signal": self.signal, "start_ts": self.start_ts, "end_ts": self.end_ts,
                "reason": self.reason, "node": self.node}
