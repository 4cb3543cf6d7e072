"""The per-job supervisor: starts one batch script, enforces its limits, records how it ended.

    python -m gefion.executor.supervisor JOB_DIR [--lock-fd N] [--ready-fd N]

One supervisor per job, in a session of its own, so it outlives the controller that started
it. It reads its plan from ``JOB_DIR/spec.json`` and holds an ``flock`` on that file for its
whole life (the controller's test of "is this job still supervised?": a dead process holds no
lock, whatever happened to its pid). It talks to the controller only through files in
``JOB_DIR`` (see :mod:`._layout`) — so a controller can die, restart and re-attach at any
moment. Its own stdout and stderr are the fork server's log (or, spawned, ``supervisor.log``):
only a supervisor's bug ever writes there.

Life of a job:

1. The script is started in a new session (its own process group), as the job's user, with
   stdout/stderr opened *as that user* (so a user can only write where the user may) and a
   parent-death signal, so it dies if the supervisor is SIGKILLed.
2. ``--ready-fd`` tells the launcher it runs; ``state.json`` records its pids.
3. The supervisor waits. ``--signal`` is sent before the time limit; at the limit, on a cancel
   (``cancel.req`` or SIGTERM to the supervisor) or a preemption (``preempt.req``) the job's
   processes get SIGTERM (or the ``--signal`` for preemption), then SIGKILL after the grace.
4. The job is over when no process of it is left — the supervisor is a child subreaper, so
   orphans of the job are re-parented to it and cannot escape. When the script ends by itself,
   whatever it left running is killed at once, as Slurm does.
5. ``exit.json`` records the outcome, a datagram wakes the controller, the lock is released.

Only the standard library and :mod:`._layout` are imported: a launch pays for every import.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import sys
import time

from gefion.executor import _layout as L

TYPE_CHECKING = False  # not typing's: a launch pays for every import
if TYPE_CHECKING:
    from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
#: After SIGKILL, give up waiting for processes (stuck in the kernel) after this long.
UNKILLABLE_TIMEOUT_S = 60.0
#: While killing, look for re-parented orphans this often.
_KILL_POLL_S = 0.05

def _load_libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_libc = _load_libc()  # at import: the fork server pays once, not every supervisor


def _prctl(option: int, arg: int) -> bool:
    if _libc is None:
        return False
    try:
        return int(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0),
                               ctypes.c_ulong(0), ctypes.c_ulong(0))) == 0
    except AttributeError:  # a libc without prctl: not Linux
        return False


def _log(job_id: object, message: str) -> None:
    """Append a line to the job's ``supervisor.log`` (created on the first line: most jobs
    have nothing to say, and a file is a cost)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    fd = os.open(L.LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{stamp} job {job_id}: {message}\n".encode(errors="replace"))
    finally:
        os.close(fd)


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


def _exec_job(plan: dict[str, Any], err_w: int, supervisor_pid: int) -> None:
    """In the forked child: become the job and exec its script. Never returns.

    A failure before exec is written to ``err_w`` as JSON (stage, errno, path); a successful
    exec closes ``err_w`` (it is close-on-exec), which the supervisor reads as "started".
    """
    stage, path = "setup", ""
    try:
        os.setsid()
        for sig in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM, signal.SIGINT,
                    signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if plan["uid"] is not None:
            stage = "user"
            os.setgroups(plan["groups"])
            os.setgid(plan["gid"])
            os.setuid(plan["uid"])
        # After the user switch: changing credentials clears the parent-death signal.
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != supervisor_pid:  # the supervisor died before prctl took effect
            os._exit(1)
        os.umask(plan["umask"])
        warning = ""
        try:
            os.chdir(plan["workdir"])
        except OSError as exc:  # Slurm runs the job in /tmp then, and says so on stderr
            warning = (f"gefion: warning: cannot chdir to {plan['workdir']}: {exc.strerror}; "
                       "running in /tmp instead\n")
            os.chdir("/tmp")
        stage = "output"
        flags = os.O_WRONLY | os.O_CREAT | (
            os.O_APPEND if plan["open_mode"] == "append" else os.O_TRUNC)
        path = plan["stdout"]
        out = os.open(path, flags, 0o644)
        if plan.get("private_output"):  # a sensitive project's: its user's eyes only
            os.fchmod(out, 0o600)
        if plan["stderr"] == plan["stdout"]:
            err = out
        else:
            path = plan["stderr"]
            err = os.open(path, flags, 0o644)
            if plan.get("private_output"):
                os.fchmod(err, 0o600)
        stage, path = "setup", "/dev/null"
        inp = os.open("/dev/null", os.O_RDONLY)
        os.dup2(inp, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        if warning:
            os.write(2, warning.encode())
        os.closerange(3, err_w)
        os.closerange(err_w + 1, os.sysconf("SC_OPEN_MAX"))
        stage, path = "exec", plan["argv"][0]
        os.execve(path, plan["argv"], plan["env"])
    except OSError as exc:
        report = {"stage": stage, "errno": exc.errno or 0, "strerror": exc.strerror or str(exc),
                  "path": path}
        os.write(err_w, json.dumps(report).encode())
    except BaseException as exc:  # a bug here must still end the child and say why
        report = {"stage": stage, "errno": 0, "strerror": repr(exc), "path": path}
        os.write(err_w, json.dumps(report).encode())
    finally:
        os._exit(127)


def _start_failure(plan: dict[str, Any], report: dict[str, Any]) -> tuple[int, str]:
    """The exit code and reason of a job whose script never ran, from the child's report."""
    stage, code, why, path = report["stage"], report["errno"], report["strerror"], report["path"]
    if stage == "output":
        return 1, f"cannot open output file {path}: {why}"
    if stage == "user":
        return 1, f"cannot switch to uid {plan['uid']}: {why}"
    if stage == "exec":
        hint = " (is the #! interpreter installed?)" if code == errno.ENOENT else ""
        return (127 if code == errno.ENOENT else 126), f"cannot execute {path}: {why}{hint}"
    return 1, f"cannot start the job: {why}"


def _children(pid: int) -> list[int]:
    """The live children of process ``pid`` (orphans of the job re-parented to us included)."""
    try:
        kids: list[int] = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(k) for k in f.read().split())
        return kids
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: scan every process
        kids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        stat = f.read()
                except OSError:
                    continue
                if int(stat[stat.rindex(b")") + 2:].split()[1]) == pid:
                    kids.append(int(entry))
        return kids


class _Supervisor:
    def __init__(self, plan: dict[str, Any], ready_fd: int | None) -> None:
        self.plan = plan
        self.job_id = plan["job_id"]
        self.ready_fd = ready_fd
        self.pid = 0  # the script's process, leader of the job's process group
        self.status: int | None = None  # its wait status, once reaped
        self.ending: str | None = None  # CANCELLED / TIMEOUT / PREEMPTED once we ended it
        self.reason: str | None = None
        self.start_ts = time.time()
        self.signal_at: float | None = None
        self.limit_at: float | None = None
        self.kill_at: float | None = None
        self.killing = False
        self.give_up_at: float | None = None
        self.sigterm = False
        self.wake_r, self.wake_w = os.pipe()

    # -- signals ---------------------------------------------------------------------------

    def _install_signals(self) -> None:
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        for sig in (signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGTERM:
            self.sigterm = True  # treated as a cancel

    def _sleep(self, timeout_s: float | None) -> None:
        try:  # noqa: SIM105 (contextlib is an import a launch would pay for)
            select.select([self.wake_r], [], [], timeout_s)
        except InterruptedError:
            pass
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # -- the job's processes -----------------------------------------------------------------

    def _start_job(self) -> tuple[int, str] | None:
        """Fork and exec the script; ``None`` once it runs, else (exit code, reason)."""
        blocked = {signal.SIGCHLD, signal.SIGUSR1, signal.SIGTERM}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        err_r, err_w = os.pipe()
        me = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            os.close(err_r)
            os.close(err_w)
            return 1, f"cannot fork: {exc}"
        if pid == 0:
            _exec_job(self.plan, err_w, me)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(err_w)
        chunks = []
        while chunk := os.read(err_r, 65536):
            chunks.append(chunk)
        os.close(err_r)
        if chunks:
            os.waitpid(pid, 0)
            return _start_failure(self.plan, json.loads(b"".join(chunks)))
        self.pid = pid
        return None

    def _signal_tree(self, sig: int) -> None:
        """Send ``sig`` to the job's process group and to every child of ours (the script and
        adopted orphans, in the group or not).

        The group only while its leader is unreaped: until then its id cannot name anyone
        else's group. Once the script is reaped its orphans are our children anyway.
        """
        targets = [(os.kill, k) for k in _children(os.getpid())]
        if self.status is None:
            targets.insert(0, (os.killpg, self.pid))
        for kill, target in targets:
            try:  # noqa: SIM105 (contextlib is an import a launch would pay for)
                kill(target, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _reap(self) -> bool:
        """Reap what has died; True while any process of the job is left."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.pid:
                self.status = status

    def _terminate(self, state: str, sig: int, grace_s: float, reason: str) -> None:
        now = time.monotonic()
        if self.ending is not None:  # a later request may only bring the SIGKILL forward
            if self.kill_at is not None:
                self.kill_at = min(self.kill_at, now + grace_s)
            return
        if self.status is not None:  # the script ended by itself first
            return
        self.ending, self.reason = state, reason
        _log(self.job_id, f"{state}: {reason}; sending {signal.Signals(sig).name}, "
                          f"SIGKILL in {grace_s:g} s")
        self._signal_tree(sig)
        self._signal_tree(signal.SIGCONT)  # a stopped job must be able to handle it
        self.kill_at = now + grace_s

    def _kill_all(self) -> None:
        if not self.killing:
            self.killing = True
            self.give_up_at = time.monotonic() + UNKILLABLE_TIMEOUT_S
        self._signal_tree(signal.SIGKILL)

    def _check_requests(self) -> None:
        if os.path.exists(L.CANCEL):
            self._terminate("CANCELLED", signal.SIGTERM, self.plan["kill_grace_s"], "cancelled")
        elif self.sigterm:  # not the controller: an operator, or the host shutting down
            self._terminate("CANCELLED", signal.SIGTERM, self.plan["kill_grace_s"],
                            "the supervisor was sent SIGTERM")
        request = L.read_json(L.PREEMPT) if os.path.exists(L.PREEMPT) else None
        if request is not None:
            sig = self.plan["signal"][0] if self.plan["signal"] else signal.SIGTERM
            grace_s = float(request["grace_s"])
            self._terminate("PREEMPTED", sig, grace_s, f"preempted with {grace_s:g} s grace")

    # -- the life of the job -----------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        try:
            failure = self._start_job()
        except BaseException:
            failure = (1, "supervisor error while starting the job")
            _log(self.job_id, _traceback())
        if failure is not None:
            exit_code, reason = failure
            _log(self.job_id, f"FAILED before the script ran: {reason}")
            self._finish("FAILED", exit_code, None, reason, ready=True)
            return 0
        try:
            self._ready()  # first: the launcher waits for it; state.json is not its business
            L.write_json_atomic(L.STATE, {
                "job_id": self.job_id, "pid": self.pid, "pgid": self.pid,
                "start_ts": self.start_ts, "start_ticks": L.proc_start_ticks(self.pid),
                "supervisor_pid": os.getpid(),
                "supervisor_ticks": L.proc_start_ticks(os.getpid())})
            self._supervise()
        except BaseException:
            _log(self.job_id, "supervisor error:\n" + _traceback())
            self._kill_all()
            deadline = time.monotonic() + 5
            while self._reap() and time.monotonic() < deadline:
                time.sleep(_KILL_POLL_S)
                self._kill_all()
            self._finish("FAILED", 1, None, "supervisor error (see supervisor.log)", ready=True)
            return 1
        status = self.status
        if status is None:
            exit_code, sig = 0, int(signal.SIGKILL)
        elif os.WIFSIGNALED(status):
            exit_code, sig = 0, os.WTERMSIG(status)
        else:
            exit_code, sig = os.waitstatus_to_exitcode(status), None
        state = self.ending or ("COMPLETED" if exit_code == 0 and sig is None else "FAILED")
        self._finish(state, exit_code, sig, self.reason, ready=False)
        return 0

    def _supervise(self) -> None:
        start = time.monotonic()
        limit = self.plan["time_limit_s"]
        if limit is not None:
            self.limit_at = start + limit
            if self.plan["signal"]:
                self.signal_at = start + max(0, limit - self.plan["signal"][1])
        while self._reap():
            if self.status is not None and self.ending is None and not self.killing:
                self._kill_all()  # what the script left running ends with it
            self._check_requests()
            now = time.monotonic()
            if self.signal_at is not None and now >= self.signal_at:
                sig = self.plan["signal"][0]
                _log(self.job_id, f"sending {signal.Signals(sig).name}: "
                                  f"{self.plan['signal'][1]} s before the time limit")
                self._signal_tree(sig)
                self.signal_at = None
            if self.limit_at is not None and now >= self.limit_at:
                self.limit_at = None
                self._terminate("TIMEOUT", signal.SIGTERM, self.plan["kill_grace_s"],
                                f"time limit of {limit} s reached")
            if self.kill_at is not None and now >= self.kill_at:
                self.kill_at = None
                self._kill_all()
            if self.killing:
                assert self.give_up_at is not None
                if now >= self.give_up_at:
                    _log(self.job_id, "processes survived SIGKILL for "
                                      f"{UNKILLABLE_TIMEOUT_S:g} s; giving up on them")
                    return
                self._kill_all()
            deadlines = [t for t in (self.signal_at, self.limit_at, self.kill_at) if t is not None]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            if self.killing:
                timeout = _KILL_POLL_S if timeout is None else min(timeout, _KILL_POLL_S)
            self._sleep(timeout)

    def _ready(self) -> None:
        if self.ready_fd is not None:
            try:  # noqa: SIM105 (contextlib is an import a launch would pay for)
                os.write(self.ready_fd, b"ok\n")
            except OSError:  # the launcher gave up waiting; the job runs all the same
                pass
            os.close(self.ready_fd)
            self.ready_fd = None

    def _finish(self, state: str, exit_code: int, sig: int | None, reason: str | None,
                *, ready: bool) -> None:
        end_ts = time.time()
        L.write_json_atomic(L.EXIT, {
            "job_id": self.job_id, "state": state, "exit_code": exit_code, "signal": sig,
            "start_ts": self.start_ts, "end_ts": end_ts, "reason": reason})
        if ready:
            self._ready()
        if reason is not None:
            _log(self.job_id, f"ended {state} exit {exit_code}:{sig or 0} after "
                              f"{end_ts - self.start_ts:.3f} s")
        notify(self.plan.get("notify"), self.job_id)


def notify(path: str | None, job_id: int) -> None:
    """Wake the controller with a datagram naming the job; best effort, never blocks."""
    if not path:
        return
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(str(job_id).encode(), socket.MSG_DONTWAIT, path)
    except OSError:  # no controller listening, or its queue is full: exit.json is there
        pass


def run(job_dir: str, *, lock_fd: int | None = None, ready_fd: int | None = None) -> int:
    """Supervise the job in ``job_dir`` until it ends; the process's exit status.

    ``lock_fd``: the job's lock, already taken by the launcher (so there is no moment in which
    a re-attaching controller could find the job unsupervised); without it the supervisor
    takes the lock itself and refuses to run if another supervisor holds it. ``ready_fd``: a
    pipe to write ``ok`` to once the script runs (or has failed to start), then closed.
    """
    os.chdir(job_dir)
    if lock_fd is None:
        lock_fd = L.try_lock(L.SPEC)
        if lock_fd is None:
            _log(job_dir, "another supervisor holds this job's lock; not starting")
            return 1
    plan = L.read_json(L.SPEC)["plan"]
    return _Supervisor(plan, ready_fd).run()


def main(argv: list[str]) -> int:
    fds: dict[str, int] = {}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in ("--lock-fd", "--ready-fd"):
            fds[arg] = int(next(args))
        else:
            rest.append(arg)
    if len(rest) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    return run(rest[0], lock_fd=fds.get("--lock-fd"), ready_fd=fds.get("--ready-fd"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
