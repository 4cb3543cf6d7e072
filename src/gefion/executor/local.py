"""The local executor: runs jobs on this host, each under a supervisor that outlives the
controller, and tells the controller how they ended.

The controller's loop::

    executor = LocalExecutor(run_dir)
    executor.reattach()                 # after a restart: jobs still running
    executor.launch(spec)               # returns once the script runs
    executor.wait(1.0)                  # a supervisor's datagram, or the timeout
    for end in executor.poll():         # each exit once per process
        store(end)                      # persist the event first,
        executor.acknowledge(end.job_id)  # then acknowledge: never reported again

``poll`` reports an exit until it is acknowledged — across restarts too — so an event is
stored at least once and, with ``acknowledge`` after the commit, reported exactly once.

Supervisors are forked by a fork server (:mod:`.forkserver`, the default, a few ms a launch)
or spawned as ``python -m gefion.executor.supervisor`` (``launcher="spawn"``); either way
they run in sessions of their own and are found again by their job directories.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from gefion.executor import _layout as L
from gefion.executor.base import NodeChange
from gefion.executor.env import job_environment
from gefion.executor.errors import ExecutorError
from gefion.executor.forkserver import ForkServer
from gefion.executor.shims import PACKAGE_ROOT, write_shims
from gefion.executor.spec import JobExit, LaunchSpec
from gefion.executor.users import Account, resolve_account, unreachable_dir

Launcher = Literal["fork", "spawn"]
#: The reason of a job whose supervisor died before it started the script: nothing of the
#: job ran, so the controller may start it again.
NEVER_STARTED = "supervisor lost before the job started"
#: How often a running job's supervisor is checked for life (an flock test) by ``poll``.
LIVENESS_INTERVAL_S = 1.0
#: The longest path a Unix socket address may have (``sun_path`` less its NUL).
_MAX_SOCKET_PATH = 107

class LocalExecutor:
    """Runs batch jobs on this host; see the module docstring for the controller's loop.

    ``run_dir`` holds one directory per job (created 0711 if missing: a job's user must be
    able to reach its script). ``controller_socket`` is where supervisors send their
    wake-up datagrams (default ``run_dir/notify.sock``). One executor per ``run_dir``: a
    second one raises :class:`ExecutorError` until the first is closed or its process dies.
    Not thread-safe, except that :meth:`wait` may block in another thread.
    """

    def __init__(self, run_dir: Path, *, controller_socket: Path | None = None,
                 launcher: Launcher = "fork", launch_timeout_s: float = 30.0,
                 liveness_interval_s: float = LIVENESS_INTERVAL_S) -> None:
        if launcher not in ("fork", "spawn"):
            raise ExecutorError(f"unknown launcher {launcher!r}: 'fork' or 'spawn'")
        self.run_dir = Path(run_dir).absolute()
        if not self.run_dir.exists():
            self.run_dir.mkdir(parents=True)
            self.run_dir.chmod(0o711)
        lock_fd = L.try_lock(str(self.run_dir / "executor.lock"))
        if lock_fd is None:
            raise ExecutorError(f"{self.run_dir} is in use by another executor (controller)")
        self._lock_fd: int | None = lock_fd
        self.launcher: Launcher = launcher
        self.launch_timeout_s = launch_timeout_s
        self.liveness_interval_s = liveness_interval_s
        self.shim_dir = self.run_dir / "bin"
        write_shims(self.shim_dir)
        self.controller_socket = Path(controller_socket or self.run_dir / "notify.sock")
        self._sock = self._bind(self.controller_socket)
        self._active: dict[int, float] = {}  # job id → when its supervisor was last checked
        self._reported: set[int] = set()  # reported by poll, not yet acknowledged
        self._spawned: set[int] = set()  # supervisors spawned (not forked) still to reap
        self._reachable: set[int] = set()  # uids known to reach run_dir
        self._submit_host = socket.gethostname()
        self._forkserver = ForkServer(self.run_dir / "forkserver.log") \
            if launcher == "fork" else None

    # -- set-up ------------------------------------------------------------------------------

    @staticmethod
    def _bind(path: Path) -> socket.socket | None:
        """The controller's datagram socket; ``None`` when the path is too long for one
        (``wait`` then polls the job directories instead)."""
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            return None
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        """Let go of the run directory. Running jobs and their supervisors go on."""
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None
        if self._sock is not None:
            ours = os.fstat(self._sock.fileno()).st_ino
            self._sock.close()
            self._sock = None
            try:
                if os.stat(self.controller_socket).st_ino == ours:
                    self.controller_socket.unlink()
            except FileNotFoundError:
                pass
        self._reap_spawned()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- launching ---------------------------------------------------------------------------

    def job_dir(self, job_id: int) -> Path:
        return self.run_dir / str(job_id)

    def launch(self, spec: LaunchSpec) -> None:
        """Start ``spec``'s script under a new supervisor; return once it runs.

        A script that cannot start (missing output directory, bad interpreter) is not an
        error here: the job ends FAILED with a reason, reported by :meth:`poll`. Raises
        :class:`ExecutorError` — with nothing started — for a user with no account, a job id
        already in use, or a run directory the user cannot reach.
        """
        error = self.launch_many([spec])[0]
        if error is not None:
            raise error

    def launch_many(self, specs: list[LaunchSpec]) -> list[ExecutorError | None]:
        """Launch several jobs at once: every supervisor is forked before any is waited
        for, so a cycle that starts many jobs pays one round of supervisor start-up, not
        one per job. Per spec, None once its script runs, or the error :meth:`launch`
        would have raised (nothing of that job started)."""
        results: list[ExecutorError | None] = [None] * len(specs)
        begun: list[tuple[int, LaunchSpec, Path, int, int]] = []  # k, spec, dir, lock, ready
        for k, spec in enumerate(specs):
            try:
                job_dir = self.job_dir(spec.job_id)
                account = resolve_account(spec.user, node=spec.node)
                self._check_reachable(account)
                self._clear_old_run(spec.job_id, job_dir)
                try:
                    os.mkdir(job_dir, 0o711)
                except FileExistsError:
                    raise ExecutorError(f"job {spec.job_id} is already known to this "
                                        "executor") from None
                try:
                    lock_fd = self._write_job_dir(spec, account, job_dir, time.time())
                except BaseException:
                    shutil.rmtree(job_dir, ignore_errors=True)
                    raise
            except ExecutorError as exc:
                results[k] = exc
                continue
            try:
                ready_r = self._begin_supervisor(job_dir, lock_fd)
            except BaseException:
                os.close(lock_fd)
                raise
            begun.append((k, spec, job_dir, lock_fd, ready_r))
        for k, spec, job_dir, lock_fd, ready_r in begun:
            try:
                self._finish_supervisor(spec.job_id, job_dir, ready_r)
                self._active[spec.job_id] = time.monotonic()
            except ExecutorError as exc:
                results[k] = exc
            finally:
                os.close(lock_fd)
        return results

    def _write_job_dir(self, spec: LaunchSpec, account: Account, job_dir: Path,
                       now: float) -> int:
        """Write the job's files; an fd of ``spec.json``, locked, for the supervisor."""
        os.chmod(job_dir, 0o711)
        # The script, and srun's step counter, belong to the job's user (a job of the
        # executor's own user can create the counter itself).
        files = [(L.SCRIPT, 0o700, spec.script)]
        if account.switch:
            files.append((L.STEPS, 0o600, ""))
        for name, mode, text in files:
            fd = os.open(job_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            try:
                os.write(fd, text.encode())
                if account.switch:
                    os.fchown(fd, account.uid, account.gid)
            finally:
                os.close(fd)
        plan = self._plan(spec, account, job_dir, now)
        fd = os.open(job_dir / L.SPEC, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Locked before a byte is written: should this process die mid-launch, the lock
            # goes with it, and a re-attaching controller reads "never started", not garbage.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, json.dumps({"spec": spec.to_json(), "plan": plan},
                                    separators=(",", ":")).encode())
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _plan(self, spec: LaunchSpec, account: Account, job_dir: Path,
              now: float) -> dict[str, Any]:
        """What the supervisor needs, resolved here so that it imports nothing of ours."""
        def absolute(path: str) -> str:
            return os.path.normpath(os.path.join(spec.workdir, path))

        env = job_environment(spec, user=account.name, uid=account.uid, gid=account.gid,
                              home=account.home, shim_dir=str(self.shim_dir),
                              job_dir=str(job_dir), submit_host=self._submit_host,
                              start_ts=now)
        return {
            "job_id": spec.job_id,
            "argv": [str(job_dir / L.SCRIPT), *spec.argv],
            "env": env,
            "uid": account.uid if account.switch else None,
            "gid": account.gid,
            "groups": list(account.groups),
            "umask": 0o077 if spec.private_output else 0o022,
            "private_output": spec.private_output,
            "workdir": spec.workdir,
            "stdout": absolute(spec.stdout_path),
            "stderr": absolute(spec.stderr_path),
            "open_mode": spec.open_mode,
            "time_limit_s": spec.time_limit_s,
            "kill_grace_s": spec.kill_grace_s,
            "signal": list(spec.signal) if spec.signal else None,
            "notify": str(self.controller_socket) if self._sock is not None else None,
        }

    def _check_reachable(self, account: Account) -> None:
        if not account.switch or account.uid in self._reachable:
            return
        blocked = unreachable_dir(self.run_dir, account)
        if blocked is not None:
            raise ExecutorError(f"user {account.name!r} cannot reach the executor's run "
                                f"directory {self.run_dir}: {blocked} is closed to them "
                                "(every directory above a job's script needs o+x)")
        self._reachable.add(account.uid)

    def _clear_old_run(self, job_id: int, job_dir: Path) -> None:
        """A requeued job keeps its id: an earlier, acknowledged run's directory goes."""
        if (job_dir / L.ACKED).exists():
            shutil.rmtree(job_dir)
            self._reported.discard(job_id)

    def _begin_supervisor(self, job_dir: Path, lock_fd: int) -> int:
        """Hand the job to a new supervisor; the read end of its "started" pipe."""
        ready_r, ready_w = os.pipe()
        try:
            self._hand_over(job_dir, lock_fd, ready_w)
        except BaseException:
            os.close(ready_r)
            raise
        finally:
            os.close(ready_w)
        return ready_r

    def _finish_supervisor(self, job_id: int, job_dir: Path, ready_r: int) -> None:
        """Wait until the supervisor started the script (or failed to)."""
        try:
            answer = b""
            readable, _, _ = select.select([ready_r], [], [], self.launch_timeout_s)
            if readable:
                answer = os.read(ready_r, 64)
        finally:
            os.close(ready_r)
        if answer.startswith(b"ok"):
            return
        if not readable:
            L.write_json_atomic(str(job_dir / L.CANCEL), {}, mode=0o600)
            raise ExecutorError(
                f"job {job_id}: its supervisor did not report within "
                f"{self.launch_timeout_s:g} s; a cancel is queued for it in {job_dir}")
        # The supervisor died before starting the script; we still hold its lock.
        state = L.read_json(str(job_dir / L.STATE))
        if state is not None:
            _kill_job_group(state)
        why = _last_line(job_dir / L.LOG) or (
            f"see {self.run_dir / 'forkserver.log'}" if self._forkserver else "no log")
        shutil.rmtree(job_dir, ignore_errors=True)
        raise ExecutorError(f"job {job_id}: its supervisor failed to start it ({why})")

    def _hand_over(self, job_dir: Path, lock_fd: int, ready_w: int) -> None:
        if self._forkserver is not None:
            try:
                self._forkserver.fork_supervisor(str(job_dir), lock_fd, ready_w)
                return
            except OSError:  # the fork server died: start another once
                self._forkserver.close()
                self._forkserver = ForkServer(self.run_dir / "forkserver.log")
                self._forkserver.fork_supervisor(str(job_dir), lock_fd, ready_w)
                return
        with _inheritable(lock_fd, ready_w):
            env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
            log = str(job_dir / L.LOG)
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-S", "-m", "gefion.executor.supervisor", str(job_dir),
                 "--lock-fd", str(lock_fd), "--ready-fd", str(ready_w)],
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2)],
                setsid=True)
        self._spawned.add(pid)

    def _reap_spawned(self) -> None:
        for pid in list(self._spawned):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self._spawned.discard(pid)

    # -- control -----------------------------------------------------------------------------

    def cancel(self, job_id: int) -> None:
        """End the job: SIGTERM to all its processes, SIGKILL after its ``kill_grace_s``;
        it ends CANCELLED. A job that already ended is left alone."""
        self._request(job_id, L.CANCEL, {})

    def preempt(self, job_id: int, grace_s: float) -> None:
        """Evict the job: its ``--signal`` (else SIGTERM), SIGKILL after ``grace_s``; it ends
        PREEMPTED. A job that already ended is left alone."""
        if grace_s < 0:
            raise ExecutorError(f"job {job_id}: preemption grace must be >= 0 s, got {grace_s}")
        self._request(job_id, L.PREEMPT, {"grace_s": grace_s})

    def _request(self, job_id: int, name: str, body: dict[str, Any]) -> None:
        job_dir = self.job_dir(job_id)
        if not (job_dir / L.SPEC).exists():
            raise ExecutorError(f"job {job_id} is not known to this executor")
        if (job_dir / L.EXIT).exists() or (job_dir / L.ACKED).exists():
            return
        L.write_json_atomic(str(job_dir / name), body, mode=0o600)
        state = L.read_json(str(job_dir / L.STATE))
        if state is None:  # not started yet: the supervisor reads the request when it is
            return
        pid = state["supervisor_pid"]
        if L.proc_start_ticks(pid) == state["supervisor_ticks"]:
            with suppress(ProcessLookupError):  # it just ended
                os.kill(pid, signal.SIGUSR1)

    # -- learning how jobs ended -------------------------------------------------------------

    def poll(self) -> list[JobExit]:
        """Jobs that ended since the last call (each once per executor), oldest end first.

        A job whose supervisor died without recording the end is found here too (within
        ``liveness_interval_s``), reported FAILED with reason "supervisor lost", its
        processes killed.
        """
        self._reap_spawned()
        now = time.monotonic()
        ended: list[JobExit] = []
        for job_id, checked in list(self._active.items()):
            record = L.read_json(str(self.job_dir(job_id) / L.EXIT))
            if record is None and now - checked >= self.liveness_interval_s:
                self._active[job_id] = now
                record = self._check_lost(job_id)
            if record is not None:
                del self._active[job_id]
                self._reported.add(job_id)
                ended.append(JobExit.from_json(record))
        return sorted(ended, key=lambda e: (e.end_ts, e.job_id))

    def wait(self, timeout_s: float) -> bool:
        """Block until a supervisor reports an exit or ``timeout_s`` passes; True if one did.

        Best effort: a lost supervisor sends nothing, so call :meth:`poll` after every wait,
        whatever it returns. Unlike the other methods, ``wait`` may run in a thread of its own
        while another launches and polls; after :meth:`close` it returns False.
        """
        sock = self._sock
        if sock is None:
            deadline = time.monotonic() + timeout_s
            while self._lock_fd is not None:
                if any((self.job_dir(j) / L.EXIT).exists() for j in tuple(self._active)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                time.sleep(min(left, 0.02))
            return False
        try:
            readable, _, _ = select.select([sock], [], [], timeout_s)
            if not readable:
                return False
            while sock.recv(64):
                pass
        except BlockingIOError:
            pass
        except (OSError, ValueError):  # closed meanwhile
            return False
        return True

    def acknowledge(self, job_id: int) -> None:
        """The controller stored this job's exit: never report it again, even after a restart."""
        job_dir = self.job_dir(job_id)
        try:
            os.replace(job_dir / L.EXIT, job_dir / L.ACKED)
        except FileNotFoundError:
            if not (job_dir / L.ACKED).exists():
                raise ExecutorError(f"job {job_id} has no exit to acknowledge") from None
        self._reported.discard(job_id)
        self._active.pop(job_id, None)

    def purge(self, job_id: int) -> None:
        """Remove an acknowledged job's directory (its spec, script and supervisor log)."""
        job_dir = self.job_dir(job_id)
        if not (job_dir / L.ACKED).exists():
            raise ExecutorError(f"job {job_id} is not acknowledged; its directory stays")
        shutil.rmtree(job_dir)

    def reattach(self) -> list[int]:
        """After a restart: watch every job of ``run_dir`` whose exit is not acknowledged.

        Returns the ids of jobs still running under a live supervisor. Jobs that ended
        meanwhile are reported by the next :meth:`poll` with their true exits; a job whose
        supervisor died unrecorded is reported FAILED ("supervisor lost").
        """
        running: list[int] = []
        for entry in os.scandir(self.run_dir):
            if not entry.name.isdigit() or not entry.is_dir():
                continue
            job_id = int(entry.name)
            job_dir = Path(entry.path)
            if job_id in self._reported or (job_dir / L.ACKED).exists():
                continue
            self._active[job_id] = time.monotonic()
            if (job_dir / L.EXIT).exists():
                continue
            if self._check_lost(job_id) is None:
                running.append(job_id)
        return sorted(running)

    def node_changes(self) -> list[NodeChange]:
        """Nodes that left or came back: never, here (this host is the only node)."""
        return []

    @property
    def active(self) -> list[int]:
        """Ids of the jobs this executor watches and has not yet reported."""
        return sorted(self._active)

    def _check_lost(self, job_id: int) -> dict[str, Any] | None:
        """``None`` while the job's supervisor lives; else its exit record — the one it wrote,
        or, if it died without one, a FAILED record written here."""
        job_dir = self.job_dir(job_id)
        fd = L.try_lock(str(job_dir / L.SPEC))
        if fd is None:
            return None
        try:
            record: dict[str, Any] | None = L.read_json(str(job_dir / L.EXIT))
            if record is not None:  # written just before the supervisor exited
                return record
            state = L.read_json(str(job_dir / L.STATE))
            now = time.time()
            if state is not None:
                _kill_job_group(state)
                reason = ("supervisor lost: it died without recording the job's end; "
                          "the job's processes were killed")
            else:
                reason = NEVER_STARTED
            record = {"job_id": job_id, "state": "FAILED", "exit_code": 1, "signal": None,
                      "start_ts": state["start_ts"] if state else now, "end_ts": now,
                      "reason": reason}
            L.write_json_atomic(str(job_dir / L.EXIT), record)
            return record
        finally:
            os.close(fd)


def _kill_job_group(state: dict[str, Any]) -> None:
    """SIGKILL what is left of a job whose supervisor is gone (its process group).

    The group's id is its leader's pid. While the leader lives, its start time proves it is
    ours; once it is gone, a pid still in use as a process group id cannot have been handed
    to anyone else, so the group's members are the job's.
    """
    pgid = state["pgid"]
    ticks = L.proc_start_ticks(pgid)
    if ticks is not None and ticks != state.get("start_ticks"):
        return  # the pid now names another process
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


@contextmanager
def _inheritable(*fds: int) -> Iterator[None]:
    for fd in fds:
        os.set_inheritable(fd, True)
    try:
        yield
    finally:
        for fd in fds:
            os.set_inheritable(fd, False)
