"""The step relay: how ``srun`` in a gang's batch script starts tasks on every node.

``srun`` (a plain process of the job, on the first node) cannot call Ray; the gang's
first-node agent (a Ray actor, :mod:`.agent`) can. They talk over a Unix socket in the
job's run directory (``$GEFION_STEP_SOCKET``), only the job's user (or root) may connect::

    srun → launcher   one JSON line: {"step_id", "argv", "cwd", "label",
                                      "tasks": [{"node", "procid", "env"}, ...]}
    launcher → srun   frames: b"O"/b"E" + 4-byte length + bytes   (task output, prefixed)
                              b"X" + 4-byte length + JSON [code per task, in procid order]
    srun → launcher   lines "signal N" — a signal srun received, for every task

A code is a process's return code (``-N``: killed by signal N). When srun goes away before
the step ends (killed with the job), the launcher kills the step's tasks on every node.

Standard library only: the ``srun`` shim imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import threading

TYPE_CHECKING = False  # not typing's: srun pays for every import
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

_HEADER = struct.Struct(">cI")
STDOUT, STDERR, EXIT = b"O", b"E", b"X"


class RelayError(Exception):
    """The launcher could not be reached, or left before the step ended."""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BrokenPipeError:
            return


# -- srun's side -------------------------------------------------------------------------------

def run_step(path: str, request: Mapping[str, Any], *,
             forwarded: Sequence[int] = ()) -> list[int]:
    """Send a step to the launcher at ``path``; relay its tasks' output to our stdout and
    stderr and the ``forwarded`` signals we receive to the tasks, until the step ends.
    Returns a code per task (procid order). Raises :class:`RelayError`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise RelayError(f"cannot reach the gang's launcher at {path}: {exc.strerror}") from None
    lock = threading.Lock()

    def forward(signum: int, frame: object) -> None:
        try:
            with lock:
                sock.sendall(f"signal {signum}\n".encode())
        except OSError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        with lock:
            sock.sendall(json.dumps(request, separators=(",", ":")).encode() + b"\n")
        while True:
            try:
                tag, size = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
                payload = _recv_exact(sock, size)
            except (EOFError, ConnectionResetError):
                raise RelayError("the gang's launcher went away before the step ended") \
                    from None
            if tag == EXIT:
                return [int(code) for code in json.loads(payload)]
            _write_all(1 if tag == STDOUT else 2, payload)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


# -- the launcher's side -----------------------------------------------------------------------

class FrameWriter:
    """Frames to one srun connection, from any thread; a vanished srun is ignored."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self.broken = False

    def send(self, tag: bytes, payload: bytes) -> None:
        if self.broken:
            return
        try:
            with self._lock:
                self._sock.sendall(_HEADER.pack(tag, len(payload)) + payload)
        except OSError:
            self.broken = True


class StepHandle:
    """What a launcher gives back for a started step (see :class:`StepServer`)."""

    def signal(self, signum: int) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def wait(self) -> list[int]:
        raise NotImplementedError


class StepServer:
    """Accepts srun connections at ``path`` and hands each step to ``start(request,
    writer)``, which returns a :class:`StepHandle`. ``uid``: who besides root may connect
    (the job's user; the socket file is theirs, mode 0600)."""

    def __init__(self, path: str, start: Callable[[dict[str, Any], FrameWriter], StepHandle],
                 *, uid: int, gid: int) -> None:
        self.path, self._start, self.uid = path, start, uid
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        os.chmod(path, 0o600)
        if os.geteuid() == 0 and uid != 0:
            os.chown(path, uid, gid)
        self._sock.listen(64)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="gefion-steps", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="gefion-step",
                             daemon=True).start()

    def _peer_allowed(self, conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        return uid in (0, self.uid)

    def _serve(self, conn: socket.socket) -> None:
        writer = FrameWriter(conn)
        try:
            if not self._peer_allowed(conn):
                return
            reader = conn.makefile("rb")
            line = reader.readline()
            if not line:
                return
            try:
                step = self._start(json.loads(line), writer)
            except Exception as exc:  # a bad request, a node gone: srun says why and fails
                writer.send(STDERR, f"srun: error: {exc}\n".encode())
                writer.send(EXIT, b"[]")
                return
            done = threading.Event()

            def finish() -> None:
                codes = step.wait()
                writer.send(EXIT, json.dumps(codes).encode())
                done.set()

            threading.Thread(target=finish, name="gefion-step-wait", daemon=True).start()
            for control in reader:  # until srun closes: it read the exit, or it died
                words = control.split()
                if len(words) == 2 and words[0] == b"signal" and words[1].isdigit():
                    step.signal(int(words[1]))
            if not done.is_set():
                step.kill()
        finally:
            conn.close()
