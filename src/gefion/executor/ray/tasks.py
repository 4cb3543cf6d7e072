"""The tasks of job steps on one node of a gang: started as the job's user, their output read
line by line with a prefix, signalled and killed by step.

Used by the node's agent (:mod:`.agent`); no Ray here, so it is tested on its own.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress

from gefion.executor.ray.relay import EXIT, STDERR, STDOUT
from gefion.executor.users import Account

#: What :meth:`NodeTasks.run` yields: output (``STDOUT``/``STDERR``, bytes) and, last, the
#: tasks' return codes (``EXIT``, a list; ``-N`` for a task killed by signal N).
Chunk = tuple[bytes, bytes | list[int]]


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn``: the task gets SIGKILL when the launcher thread that started it
    (and so the launcher) goes away."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class NodeTasks:
    """Step tasks on node ``node``. ``prefix_nodes``: prefix every output line with the
    node's name (a multi-node job, whose lines from every node meet in one file)."""

    def __init__(self, node: str, *, prefix_nodes: bool) -> None:
        self.node, self.prefix_nodes = node, prefix_nodes
        self._lock = threading.Lock()
        self._procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self._killed: set[str] = set()
        self._preexec = _die_with_parent()

    def prefix(self, procid: int, label: bool) -> bytes:
        text = (f"{self.node}: " if self.prefix_nodes else "") + (f"{procid}: " if label else "")
        return text.encode()

    def run(self, key: str, argv: Sequence[str], cwd: str,
            tasks: Sequence[tuple[int, Mapping[str, str]]], account: Account,
            label: bool = False) -> Iterator[Chunk]:
        """Start one process per ``(procid, env)`` and yield their output, then their codes.

        A task that cannot start (no such command) makes every task of the batch report
        127 (126 for other errors), with the reason on stderr, as a shell would."""
        procs: list[subprocess.Popen[bytes]] = []
        ids = account.switch
        with self._lock:
            killed = key in self._killed
            if not killed:
                self._procs[key] = procs
        if killed:
            yield EXIT, [-int(signal.SIGKILL)] * len(tasks)
            return
        try:
            try:
                with self._lock:  # a kill waits until every task of the batch has started
                    for _, env in tasks:
                        procs.append(subprocess.Popen(
                            list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0,
                            preexec_fn=self._preexec,
                            user=account.uid if ids else None,
                            group=account.gid if ids else None,
                            extra_groups=list(account.groups) if ids else None))
            except OSError as exc:
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                yield STDERR, (f"srun: error: {self.node}: cannot execute {argv[0]}: "
                               f"{exc.strerror}\n").encode()
                yield EXIT, [code] * len(tasks)
                return
            yield from self._relay(procs, [self.prefix(procid, label) for procid, _ in tasks])
            yield EXIT, [proc.wait() for proc in procs]
        finally:
            with self._lock:
                self._procs.pop(key, None)
            self._kill(procs, signal.SIGKILL)  # a consumer that stopped reading: no orphans
            for proc in procs:
                proc.wait()
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()

    def _relay(self, procs: Sequence[subprocess.Popen[bytes]],
               prefixes: Sequence[bytes]) -> Iterator[Chunk]:
        selector = selectors.DefaultSelector()
        pending: dict[int, bytes] = {}
        for proc, prefix in zip(procs, prefixes, strict=True):
            for stream, tag in ((proc.stdout, STDOUT), (proc.stderr, STDERR)):
                assert stream is not None
                selector.register(stream, selectors.EVENT_READ, (prefix, tag))
        with selector:
            while selector.get_map():
                out: dict[bytes, list[bytes]] = {STDOUT: [], STDERR: []}
                ready = selector.select(timeout=0.5)
                if not ready and all(p.poll() is not None for p in procs):
                    break  # the tasks ended; what they left running keeps its pipes
                for key, _ in ready:
                    prefix, tag = key.data
                    chunk = os.read(key.fd, 65536)
                    data = pending.pop(key.fd, b"") + chunk
                    if not chunk:
                        selector.unregister(key.fileobj)
                        if data:
                            out[tag].append(prefix + data + b"\n")
                        continue
                    *lines, rest = data.split(b"\n")
                    out[tag].extend(prefix + line + b"\n" for line in lines)
                    if rest:
                        pending[key.fd] = rest
                for tag, lines in out.items():
                    if lines:
                        yield tag, b"".join(lines)

    def signal(self, key: str, signum: int) -> None:
        """Send ``signum`` to every task of step ``key`` here (and their process groups)."""
        with self._lock:
            procs = list(self._procs.get(key, ()))
        self._kill(procs, signum)

    def kill(self, key: str | None = None) -> None:
        """SIGKILL the tasks of step ``key`` (None: of every step), now and if they start
        later."""
        with self._lock:
            if key is not None:
                self._killed.add(key)
            keys = list(self._procs) if key is None else [key]
            procs = [p for k in keys for p in self._procs.get(k, ())]
        self._kill(procs, signal.SIGKILL)

    def running(self) -> list[int]:
        """Pids of the tasks running here."""
        with self._lock:
            return [p.pid for procs in self._procs.values() for p in procs
                    if p.returncode is None]

    @staticmethod
    def _kill(procs: Sequence[subprocess.Popen[bytes]], signum: int) -> None:
        for proc in procs:
            if proc.returncode is None:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signum)  # the task's group: what it started too
                with suppress(ProcessLookupError, PermissionError):
                    os.kill(proc.pid, signum)
