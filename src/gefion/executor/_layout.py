"""The job directory: file names and the few file operations both sides of it use.

``run_dir/<job_id>/`` is the whole contract between the controller (:mod:`.local`) and a
job's supervisor (:mod:`.supervisor`); neither holds state the other needs in memory, which is
what lets either one restart. Standard library only: the supervisor imports this module.

========================  ==========  ========================================================
file                      written by  meaning
========================  ==========  ========================================================
``spec.json``             executor    the launch spec and the supervisor's resolved plan (0600);
                                      ``flock``-ed by the supervisor for its whole life
``script``                executor    the batch script, owned by the job's user (0700)
``state.json``            supervisor  the job started: pids, process group, start time
``cancel.req``            executor    a cancel request (the supervisor is woken by SIGUSR1)
``preempt.req``           executor    a preemption request with its grace period
``exit.json``             supervisor  the job ended (or the executor, for a lost supervisor)
``exit.acked.json``       executor    ``exit.json`` after the controller stored the event
``supervisor.log``        supervisor  only when there is something to say: why a job failed to
                                      start, or how the supervisor ended it
``steps``                 srun        the job's step counter (owned by the job's user)
========================  ==========  ========================================================

Few files, because each costs: creating an inode is a good part of a launch on a busy ext4
file system (a ``run_dir`` on tmpfs, such as ``/run/gefion``, is cheaper still).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os

TYPE_CHECKING = False  # not typing's: the supervisor imports this module
if TYPE_CHECKING:
    from typing import Any

SPEC = "spec.json"  # also the supervisor's lock
SCRIPT = "script"
STATE = "state.json"
CANCEL = "cancel.req"
PREEMPT = "preempt.req"
EXIT = "exit.json"
ACKED = "exit.acked.json"
LOG = "supervisor.log"
STEPS = "steps"


def write_json_atomic(path: str, obj: Any, mode: int = 0o644) -> None:
    """Write ``obj`` as JSON to ``path`` so that a reader sees the old file or the whole new one.

    Not fsync-ed: a host crash loses the job anyway (the controller marks it NODE_FAIL).
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, json.dumps(obj, separators=(",", ":")).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    """The JSON object in ``path``, or ``None`` when the file does not exist."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def try_lock(path: str) -> int | None:
    """Take ``path``'s flock without waiting: its fd, or ``None`` while someone else holds it.

    A supervisor holds its job's lock from before it starts until it exits, so "the lock is
    free" means "no supervisor is alive", whatever the pids say. Close the fd to release it.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def proc_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or ``None`` if it does not exist.

    With the pid, this names a process for good: a reused pid has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
    fields = stat[stat.rindex(b")") + 2:].split()
    return int(fields[19])  # field 22 of proc(5), counted from field 3


def proc_is_zombie(pid: int) -> bool:
    """True when ``pid`` is a zombie (dead, not yet reaped) — gone for every purpose but its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(b")") + 2:].startswith(b"Z")
