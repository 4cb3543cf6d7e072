"""A fork server for supervisors: a launch costs a ``fork()``, not a Python start-up.

    python -m gefion.executor.forkserver FD

Starting ``python -m gefion.executor.supervisor`` costs a fresh interpreter and its imports
(15–30 ms on a small machine), which caps a controller that launches jobs one after another
well below 100 jobs/s. The fork server is that interpreter, started once per executor with the
supervisor already imported; each launch sends it a job directory and two descriptors (the
job's lock, already taken, and the pipe to say "started" on) over a ``SOCK_SEQPACKET`` pair,
and it forks a supervisor, which leaves for a session of its own and runs
:func:`gefion.executor.supervisor.run` — the same code the ``-m`` entry point runs.

The fork server reaps the supervisors it forked while it lives. When the controller goes away
(closed or killed) the socket reads end-of-file and the fork server exits; its supervisors are
re-parented to init and go on, exactly as spawned ones do.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import socket
import sys
import traceback

from gefion.executor import supervisor

TYPE_CHECKING = False  # not typing's: every module the fork server holds, a fork copies
if TYPE_CHECKING:
    from pathlib import Path

#: The largest request (a job directory path) the fork server reads.
_MAX_REQUEST = 8192


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _fork_supervisor(sock: socket.socket, job_dir: str, fds: list[int]) -> None:
    try:
        pid = os.fork()
    except OSError:
        traceback.print_exc()
        pid = -1
    if pid == 0:
        code = 1
        try:
            sock.close()
            os.setsid()
            code = supervisor.run(job_dir, lock_fd=fds[0], ready_fd=fds[1])
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in fds:  # the supervisor has its copies; a failed fork closes the ready pipe: EOF
        os.close(fd)


def serve(fd: int) -> None:
    """Fork a supervisor for each request on the socket ``fd`` until it reads end-of-file."""
    sock = socket.socket(fileno=fd)
    # What is here now stays here: a supervisor's collections never walk (and so never copy)
    # the pages it shares with the fork server.
    gc.freeze()
    while True:
        ready, _, _ = select.select([sock], [], [], 1.0)
        _reap()
        if not ready:
            continue
        try:
            message, fds, _, _ = socket.recv_fds(sock, _MAX_REQUEST, 2)
        except InterruptedError:
            continue
        except ConnectionResetError:
            return
        if not message and not fds:
            return  # the executor is gone
        if len(fds) != 2:
            for extra in fds:
                os.close(extra)
            continue
        _fork_supervisor(sock, os.fsdecode(message), fds)


class ForkServer:
    """The executor's end: starts the fork server and hands it launches."""

    def __init__(self, log_path: Path) -> None:
        import subprocess

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # -S: no site-packages to scan, nothing of them in memory; gefion comes from its path.
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": package_root}
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-m", "gefion.executor.forkserver",
                 str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        theirs.close()
        self._sock = ours

    def alive(self) -> bool:
        return self._proc.poll() is None

    def fork_supervisor(self, job_dir: str, lock_fd: int, ready_fd: int) -> None:
        """Ask for a supervisor of ``job_dir``; raises ``OSError`` if the fork server is gone."""
        socket.send_fds(self._sock, [os.fsencode(job_dir)], [lock_fd, ready_fd])

    def close(self) -> None:
        """Stop the fork server; supervisors it started go on."""
        import subprocess

        self._sock.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        serve(int(sys.argv[1]))
