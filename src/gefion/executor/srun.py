"""``srun`` inside a job: start a step's tasks on this host, or on every node of a gang.

    srun [-n N] [-N N] [--ntasks-per-node N] [--gpus-per-task N] [-c N] [-l] [--] CMD [ARG...]

In a job of the Ray executor (``$GEFION_STEP_SOCKET`` set) the tasks are started on their
nodes by the gang's launchers (:mod:`gefion.executor.ray.relay`), each with its node's share
of the job's GPUs (``$GEFION_NODE_GPUS``) and the torchrun-style variables of its rank
(:mod:`gefion.executor.ray.rendezvous`); their output comes back here, each line prefixed
with its node's name. Everything else below holds for both.

In a job of the local executor every node of the job is this host, so each task is a child
process here, with its own
``SLURM_PROCID``/``SLURM_LOCALID``/``SLURM_NODEID``/``SLURM_STEP_ID`` and its share of the
job's GPUs in ``CUDA_VISIBLE_DEVICES`` (:func:`~gefion.executor.placement.place_tasks`). srun
waits for all tasks and exits with the highest task exit code (``128+N`` for a task killed by
signal N); SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGCONT are forwarded to the
tasks. Each task runs in a process group of its own (so a signal to the job's group reaches it
once, through srun) and dies with srun. Task 0 reads srun's stdin; the others read nothing.

Defaults come from the job's environment, as Slurm's srun takes them: ``SLURM_NTASKS``,
``SLURM_NTASKS_PER_NODE``, ``SLURM_GPUS_PER_TASK``, ``SLURM_CPUS_PER_TASK``. Any other option
is refused with a message naming it: a silently ignored option would make a job that looks
right and is not.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from gefion.core.errors import GefionError
from gefion.executor.placement import (
    TaskPlacement,
    place_tasks,
    task_environment,
)
from gefion.formats.hostlist import expand

#: Signals srun passes on to its tasks.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGCONT)

# option → (attribute, takes a value)
_OPTIONS: dict[str, tuple[str, bool]] = {
    "-n": ("ntasks", True), "--ntasks": ("ntasks", True),
    "-N": ("nodes", True), "--nodes": ("nodes", True),
    "--ntasks-per-node": ("ntasks_per_node", True),
    "--gpus-per-task": ("gpus_per_task", True),
    "-c": ("cpus_per_task", True), "--cpus-per-task": ("cpus_per_task", True),
    "-l": ("label", False), "--label": ("label", False),
    "-h": ("help", False), "--help": ("help", False),
}

USAGE = ("usage: srun [-n N] [-N N] [--ntasks-per-node N] [--gpus-per-task N] "
         "[-c N] [-l] [--] command [args...]")


class SrunError(Exception):
    """A command line or step srun refuses; ``str()`` is the message after ``srun: error:``."""


@dataclass
class SrunOptions:
    ntasks: int | None = None
    nodes: int | None = None
    ntasks_per_node: int | None = None
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    label: bool = False
    help: bool = False


def parse_args(argv: Sequence[str]) -> tuple[SrunOptions, list[str]]:
    """Options and the command. Accepts ``-n 2``, ``-n2``, ``--ntasks 2``, ``--ntasks=2``;
    options end at the first word that is not one (or at ``--``)."""
    opts = SrunOptions()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, value = arg, None
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        elif not arg.startswith("--") and len(arg) > 2:
            name, value = arg[:2], arg[2:]
        if name not in _OPTIONS:
            raise SrunError(f"option {name} is not supported by Gefion's local srun "
                            "(supported: -n/--ntasks, -N/--nodes, --ntasks-per-node, "
                            "--gpus-per-task, -c/--cpus-per-task, -l/--label)")
        attr, takes_value = _OPTIONS[name]
        if not takes_value:
            if value is not None:
                raise SrunError(f"option {name} takes no value")
            setattr(opts, attr, True)
            i += 1
            continue
        if value is None:
            if i + 1 >= len(argv):
                raise SrunError(f"option {name} needs a value")
            value = argv[i + 1]
            i += 1
        try:
            number = int(value)
        except ValueError:
            raise SrunError(f"option {name} needs a whole number, got {value!r}") from None
        if number < 1:
            raise SrunError(f"option {name} must be >= 1, got {number}")
        setattr(opts, attr, number)
        i += 1
    return opts, list(argv[i:])


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def plan_step(opts: SrunOptions, env: Mapping[str, str]) -> tuple[TaskPlacement, ...]:
    """Where the tasks of this step run, from the options and the job's environment."""
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist:
        raise SrunError("not inside a job: SLURM_JOB_NODELIST is not set")
    job_nodes = expand(nodelist)
    job_gpus = [int(g) for g in env.get("SLURM_JOB_GPUS", "").split(",") if g]
    per_node = opts.ntasks_per_node or _env_int(env, "SLURM_NTASKS_PER_NODE")
    if opts.nodes is not None:
        if opts.nodes > len(job_nodes):
            raise SrunError(f"{opts.nodes} nodes requested, but the job has {len(job_nodes)}")
        nnodes = opts.nodes
    elif opts.ntasks is not None:
        nnodes = min(opts.ntasks, len(job_nodes))
    else:
        nnodes = len(job_nodes)
    if opts.ntasks is not None:
        ntasks = opts.ntasks
    elif opts.nodes is not None or opts.ntasks_per_node is not None:
        ntasks = nnodes * (per_node or 1)
    else:
        ntasks = max(_env_int(env, "SLURM_NTASKS") or nnodes, nnodes)
    nodes = job_nodes[:nnodes]
    gpus_per_task = opts.gpus_per_task or _env_int(env, "SLURM_GPUS_PER_TASK")
    return place_tasks(ntasks, nodes, node_gpus(env, nodes, job_gpus),
                       ntasks_per_node=per_node, gpus_per_task=gpus_per_task)


def node_gpus(env: Mapping[str, str], nodes: Sequence[str],
              job_gpus: Sequence[int]) -> dict[str, list[int]]:
    """The job's GPU indices on each node: ``$GEFION_NODE_GPUS`` (JSON, set by a multi-node
    executor), else — every node of a local job being this host — the job's GPUs here."""
    text = env.get("GEFION_NODE_GPUS")
    if text:
        try:
            table = json.loads(text)
            return {node: [int(g) for g in table.get(node, ())] for node in nodes}
        except (ValueError, TypeError, AttributeError):
            raise SrunError("GEFION_NODE_GPUS is not a JSON map of node to GPU indices") \
                from None
    return {node: list(job_gpus) for node in nodes}


def next_step_id(env: Mapping[str, str]) -> int:
    """The job's next step id (0, 1, ...), counted in the job directory; 0 if it cannot be."""
    job_dir = env.get("GEFION_JOB_DIR")
    if not job_dir:
        return 0
    try:
        fd = os.open(os.path.join(job_dir, "steps"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 32).decode().strip()
        step = int(text) if text.isdigit() else 0
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(step + 1).encode())
        return step
    finally:
        os.close(fd)


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that makes a task die (SIGKILL) when srun does."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # srun died before the prctl
            os._exit(1)

    return preexec


def run_tasks(command: Sequence[str], envs: Sequence[Mapping[str, str]], *,
              label: bool = False) -> list[int]:
    """Start one process per environment, wait for all; their return codes (``-N``: signal).

    The local seam of task launching: with ``label``, every output line is prefixed with the
    task's rank (``0: ``), padded like Slurm's.
    """
    procs: list[subprocess.Popen[bytes]] = []
    pipe = subprocess.PIPE if label else None

    def forward(signum: int, frame: object) -> None:
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signum)

    preexec = _die_with_parent()
    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        try:
            for rank, env in enumerate(envs):
                procs.append(subprocess.Popen(
                    list(command), env=dict(env), stdout=pipe, stderr=pipe,
                    stdin=None if rank == 0 else subprocess.DEVNULL, process_group=0,
                    preexec_fn=preexec))
        except BaseException:
            for proc in procs:
                proc.kill()
                proc.wait()
            raise
        if label:
            _relay_labelled(procs)
        return [proc.wait() for proc in procs]
    finally:
        for proc in procs:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_on_gang(path: str, command: Sequence[str], step: Sequence[TaskPlacement],
                envs: Sequence[Mapping[str, str]], *, step_id: int,
                label: bool = False) -> list[int]:
    """The multi-node seam of task launching: each task starts on its node, through the
    gang's launcher at ``path``, with its rank's rendezvous variables."""
    from gefion.executor.ray.relay import RelayError, run_step
    from gefion.executor.ray.rendezvous import task_rendezvous

    tasks = [{"node": task.node, "procid": task.procid,
              "env": {**env, **task_rendezvous(step, task)}}
             for task, env in zip(step, envs, strict=True)]
    request = {"step_id": step_id, "argv": list(command), "cwd": os.getcwd(),
               "label": label, "tasks": tasks}
    try:
        codes = run_step(path, request, forwarded=FORWARDED)
    except RelayError as exc:
        raise SrunError(str(exc)) from None
    if len(codes) != len(step):
        raise SrunError("the step could not be started on the gang's nodes")
    return codes


def _relay_labelled(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    width = len(str(len(procs) - 1))
    selector = selectors.DefaultSelector()
    pending: dict[int, bytes] = {}
    for rank, proc in enumerate(procs):
        for stream, out in ((proc.stdout, sys.stdout.buffer), (proc.stderr, sys.stderr.buffer)):
            assert stream is not None
            selector.register(stream, selectors.EVENT_READ, (f"{rank:>{width}}: ".encode(), out))
    with selector:
        while selector.get_map():
            for key, _ in selector.select():
                prefix, out = key.data
                chunk = os.read(key.fd, 65536)
                data = pending.pop(key.fd, b"") + chunk
                if not chunk:
                    selector.unregister(key.fileobj)
                    if data:
                        out.write(prefix + data + b"\n")
                        out.flush()
                    continue
                *lines, rest = data.split(b"\n")
                if lines:
                    out.write(b"".join(prefix + line + b"\n" for line in lines))
                    out.flush()
                if rest:
                    pending[key.fd] = rest


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        opts, command = parse_args(args)
        if opts.help:
            print(USAGE)
            return 0
        if not command:
            raise SrunError(f"no command to run\n{USAGE}")
        step = plan_step(opts, os.environ)
    except (SrunError, GefionError) as exc:  # GefionError: a bad placement or hostlist
        print(f"srun: error: {exc}", file=sys.stderr)
        return 1
    step_id = next_step_id(os.environ)
    gpus_per_task = opts.gpus_per_task or _env_int(os.environ, "SLURM_GPUS_PER_TASK")
    envs = [task_environment(os.environ, step, task, step_id=step_id,
                             gpus_per_task=gpus_per_task, cpus_per_task=opts.cpus_per_task)
            for task in step]
    relay = os.environ.get("GEFION_STEP_SOCKET")
    try:
        if relay:
            codes = run_on_gang(relay, command, step, envs, step_id=step_id, label=opts.label)
        else:
            codes = run_tasks(command, envs, label=opts.label)
    except OSError as exc:
        print(f"srun: error: cannot execute {command[0]}: {exc.strerror}", file=sys.stderr)
        return 2
    except SrunError as exc:
        print(f"srun: error: {exc}", file=sys.stderr)
        return 1
    worst = 0
    for task, code in zip(step, codes, strict=True):
        if code:
            what = f"Exited with exit code {code}" if code > 0 else \
                f"Killed by signal {-code}"
            print(f"srun: error: {task.node}: task {task.procid}: {what}", file=sys.stderr)
        worst = max(worst, code if code >= 0 else 128 - code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
