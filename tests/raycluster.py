"""A real multi-node Ray cluster on loopback only, for tests.

Ray binds to the host's interface address by itself, and a test must neither listen on the
network nor meet another test's (or a person's) Ray. So everything Ray runs in a fresh
namespace — ``unshare --net --pid --mount-proc`` (needs root) — whose only interface is
``lo``. Its PID 1 is a tiny init that reaps orphans (a ``ray start`` leaves daemons behind)
and exits when the namespace is closed; when the PID 1 of a PID namespace exits, the kernel
kills every other process in it. No Ray process outlives the namespace, whatever the test
did, and ``ray stop`` inside it sees only its own processes (``/proc`` is the namespace's).

::

    with LoopbackNamespace() as ns:                           # ~0.1 s
        cluster = RayCluster.start(ns, nodes=4, gpus_per_node=8)  # head + 3 workers
        cluster.address                                       # "127.0.0.1:6379", inside ns
        proc = ns.run([sys.executable, "-m", "gefion.cli.main", "twin", "sweep", ...,
                       "--ray-address", cluster.address],     # any command, inside ns
                      env=cluster.driver_env())               # with the cluster's token
        cluster.nodes[1]        # RayNode(name="gefion-node2", index=2, labels=..., host_pids=...)
        cluster.kill_node("gefion-node2")   # SIGKILL its raylet and all it runs: a lost node
        cluster.stop()                      # `ray stop --force` in ns; removes the temp dir
    # leaving the block: PID 1 exits and the kernel kills whatever is left

    with loopback_ray_cluster(nodes=2) as cluster:            # both at once; cluster.ns
        ...
    run_in_loopback_ns(argv) -> CompletedProcess[str]        # one command, a fresh namespace
    raylet_pids() -> set[int]                                # host-wide, for before/after

Each node is its own ``ray start`` — its own raylet, so its own Ray node — on 127.0.0.1
(``ray start --head --port=6379`` for ``gefion-node1``, ``ray start --address=...`` for the
others), with ``--num-gpus`` GPUs declared (none need exist), ``--num-cpus``, a custom
resource ``node:gefion-nodeN`` = 1 to pin work to a node, and the labels
``gefion.io/node=gefion-nodeN`` plus any given. The namespace has its own ports, so fixed
ones (6379, per-node worker port ranges) never meet another cluster's. All nodes share one
short temp dir (Unix socket paths are limited to 107 bytes) under ``/tmp``. GCS health
checks are fast (:data:`FAST_HEALTH_CHECKS`): a killed node is marked dead in about 2 s.

Token authentication is on, as it should be on a real cluster, with a token of the
cluster's own (never ``~/.ray/auth_token``): every ``ray start`` gets ``RAY_AUTH_MODE=token``
and ``RAY_AUTH_TOKEN``, and a driver needs them too — ``driver_env()``. (Ray 2.60 turns
token authentication on by itself for a head when ``~/.ray/auth_token`` exists, and a
worker or a driver given an explicit address does not follow: set the mode explicitly.)

Defaults (fields of :class:`RayCluster`): 1 CPU and 8 GPUs per node, a 128 MiB object
store, no autoscaler monitor and no log monitor (nothing reads worker logs here: drivers
should pass ``log_to_driver=False``). Nodes start one after the other — they share the
session dir, where each picks its socket names — and each node's processes are those that
appeared during its ``ray start``.

Start-up on the 2-core development machine: a head 6–8 s, each further node 3.5–6 s; a
2-node cluster 10 s, 4 nodes 13 s when the machine is idle, 24 s when it is busy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: The namespace's PID 1: bring ``lo`` up, reap every orphan (SIGCHLD ignored), say
#: "ready", and exit when stdin closes — which makes the kernel kill the whole namespace.
_INIT = """\
import signal, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print("ready", flush=True)
sys.stdin.read()
"""

#: GCS health checks every 500 ms, dead after 3 misses (Ray's default: 3 s × 5).
FAST_HEALTH_CHECKS = {"RAY_health_check_initial_delay_ms": "0",
                      "RAY_health_check_period_ms": "500",
                      "RAY_health_check_timeout_ms": "500",
                      "RAY_health_check_failure_threshold": "3"}

_RAY = (sys.executable, "-m", "ray.scripts.scripts")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a host process, or ``None`` when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces and parens
    return fields[0], int(fields[1])


def _host_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


#: A driver that waits until ``argv[2]`` nodes are alive with CPUs to offer.
_JOINED = """
import sys, time
import ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
want, deadline = int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while sum(1 for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")) < want:
    if time.monotonic() > deadline:
        sys.exit(f"only {[n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']]} joined")
    time.sleep(0.1)
"""


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def raylet_pids() -> set[int]:
    """Host pids of every live raylet on this machine, in any namespace (``pgrep -f
    raylet``). Compare the sets before and after a test: other people's raylets may come
    and go, a test's own must all be gone."""
    return {pid for pid in _host_pids()
            if "/raylet/raylet " in _cmdline(pid) and _alive(pid)}


class LoopbackNamespace:
    """A network + PID + mount namespace with only ``lo`` up; see the module docstring.

    ``init_pid`` is the host pid of its PID 1. Commands run inside through ``nsenter``.
    """

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
             sys.executable, "-c", _INIT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            _, err = self._proc.communicate(timeout=10)
            raise RuntimeError(f"no loopback namespace (root and util-linux needed): {err}")
        children = [pid for pid in _host_pids() if (_stat(pid) or ("", 0))[1] == self._proc.pid]
        if len(children) != 1:
            self.close()
            raise RuntimeError(f"cannot find the namespace's init among {children}")
        self.init_pid = children[0]
        self._ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")

    @property
    def is_open(self) -> bool:
        return self._proc.poll() is None

    def __enter__(self) -> LoopbackNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def argv(self, argv: Sequence[str | Path], cwd: str | Path | None = None) -> list[str]:
        """``argv`` wrapped to run inside the namespace, in ``cwd`` (default: ours)."""
        return ["nsenter", f"--target={self.init_pid}", "--net", "--pid", "--mount",
                f"--wd={cwd or os.getcwd()}", "--", *map(str, argv)]

    def run(self, argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None,
            cwd: str | Path | None = None, timeout_s: float = 120,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace and wait: stdout and stderr as text, no stdin."""
        return subprocess.run(self.argv(argv, cwd), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, env=None if env is None else dict(env),
                              timeout=timeout_s, check=check)

    def popen(self, argv: Sequence[str | Path], *, cwd: str | Path | None = None,
              **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace; ``kwargs`` go to :class:`subprocess.Popen`."""
        return subprocess.Popen(self.argv(argv, cwd), **kwargs)

    def host_pids(self) -> set[int]:
        """Host pids of every process in the namespace, its PID 1 included."""
        out = set()
        for pid in _host_pids():
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") == self._ns and _alive(pid):
                    out.add(pid)
            except OSError:
                continue
        return out

    def descendants(self, pids: set[int]) -> set[int]:
        """``pids`` and every live process below them (host pids)."""
        children: dict[int, list[int]] = {}
        for pid in self.host_pids():
            stat = _stat(pid)
            if stat is not None:
                children.setdefault(stat[1], []).append(pid)
        out, todo = set(), list(pids)
        while todo:
            pid = todo.pop()
            if pid not in out and _alive(pid):
                out.add(pid)
                todo.extend(children.get(pid, ()))
        return out

    def close(self) -> None:
        """End the namespace: PID 1 exits, the kernel kills every process still in it.
        Returns when they are all gone. Idempotent."""
        if self.is_open:
            stdin: IO[str] | None = self._proc.stdin
            if stdin is not None and not stdin.closed:
                stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()  # --kill-child: its PID 1 gets SIGKILL too
                self._proc.wait(timeout=10)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


def run_in_loopback_ns(argv: Sequence[str | Path], *, env: Mapping[str, str] | None = None,
                       cwd: str | Path | None = None,
                       timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one command in a fresh loopback namespace; every process it left behind is
    killed before this returns."""
    with LoopbackNamespace() as ns:
        return ns.run(argv, env=env, cwd=cwd, timeout_s=timeout_s)


@dataclass(frozen=True)
class RayNode:
    """One Ray node of a :class:`RayCluster`: ``index`` 1 is the head. ``host_pids``: the
    processes its ``ray start`` left running (raylet and agents; GCS and friends on the
    head); what they start later (workers) is found at :meth:`RayCluster.kill_node`."""

    name: str
    index: int
    labels: Mapping[str, str]
    host_pids: frozenset[int]


@dataclass
class RayCluster:
    """Ray nodes on 127.0.0.1 inside a :class:`LoopbackNamespace`; see the module docstring.
    Make one with :meth:`start`."""

    ns: LoopbackNamespace
    port: int = 6379
    gpus_per_node: int = 8
    cpus_per_node: int = 1
    object_store_bytes: int = 128 * 1024 * 1024
    node_labels: Callable[[int], Mapping[str, str]] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    nodes: list[RayNode] = field(default_factory=list)
    temp_dir: Path = field(default_factory=lambda: Path(
        tempfile.mkdtemp(prefix="gefion-ray-", dir="/tmp")))
    token: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)

    @classmethod
    def start(cls, ns: LoopbackNamespace, nodes: int = 2, **options: Any) -> RayCluster:
        """A head and ``nodes - 1`` workers. ``options``: the fields above (``port``,
        ``gpus_per_node``, ``cpus_per_node``, ``object_store_bytes``, ``node_labels`` —
        extra labels of node ``index`` — and ``env``, added to every ``ray start``'s)."""
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, got {nodes}")
        cluster = cls(ns, **options)
        try:
            for _ in range(nodes):
                cluster.add_node()
            cluster.wait_joined()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def wait_joined(self, timeout_s: float = 60.0) -> None:
        """Until GCS lists every node of ours alive with its CPUs: ``ray start`` returns
        once its raylet runs, a moment before the cluster may schedule on it."""
        proc = self.ns.run([sys.executable, "-c", _JOINED, self.address, str(len(self.nodes)),
                            str(timeout_s)], env=self.driver_env(), timeout_s=timeout_s + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"the cluster's {len(self.nodes)} nodes did not all join:\n"
                               f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")

    @property
    def address(self) -> str:
        """The GCS address for ``ray.init(address=...)`` / ``--ray-address``, inside ns."""
        return f"127.0.0.1:{self.port}"

    @property
    def auth_env(self) -> dict[str, str]:
        """What a process needs in its environment to talk to this cluster."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def driver_env(self, **extra: str) -> dict[str, str]:
        """Our environment, plus :attr:`auth_env` and ``extra``: for ``ns.run(env=...)``."""
        return {**os.environ, **self.auth_env, **extra}

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_node(self, labels: Mapping[str, str] | None = None) -> RayNode:
        """Start the next node (the head first) and wait until it has joined."""
        index = len(self.nodes) + 1
        name = f"gefion-node{index}"
        all_labels = {"gefion.io/node": name,
                      **(self.node_labels(index) if self.node_labels else {}),
                      **(labels or {})}
        for key, value in all_labels.items():
            if any(c in f"{key}{value}" for c in ",= "):
                raise ValueError(f"label {key}={value} may not hold ',', '=' or ' '")
        lowest = 20000 + 200 * index  # each raylet its own worker ports
        argv = [*_RAY, "start", "--node-ip-address=127.0.0.1",
                f"--num-cpus={self.cpus_per_node}", f"--num-gpus={self.gpus_per_node}",
                f'--resources={{"node:{name}": 1}}',
                "--labels=" + ",".join(f"{k}={v}" for k, v in all_labels.items()),
                f"--object-store-memory={self.object_store_bytes}",
                f"--temp-dir={self.temp_dir}", "--disable-usage-stats",
                f"--min-worker-port={lowest}", f"--max-worker-port={lowest + 199}",
                f"--dashboard-agent-listen-port={52365 + index}",
                # no log monitor (nobody reads worker logs here) and no autoscaler
                "--include-log-monitor=false"]
        if index == 1:
            argv += ["--head", f"--port={self.port}", "--include-dashboard=false",
                     "--no-monitor"]
        else:
            argv += [f"--address={self.address}"]
        before = self.ns.host_pids()
        env = self.driver_env(RAY_USAGE_STATS_ENABLED="0", **FAST_HEALTH_CHECKS, **self.env)
        proc = self.ns.run(argv, env=env, cwd=self.temp_dir, timeout_s=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start of {name} failed ({proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        node = RayNode(name, index, all_labels, frozenset(self.ns.host_pids() - before))
        self.nodes.append(node)
        return node

    def node(self, name: str) -> RayNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node {name!r}; nodes: {[n.name for n in self.nodes]}")

    def kill_node(self, name: str, timeout_s: float = 10.0) -> set[int]:
        """Lose a node: SIGKILL its raylet, its agents and every process they run (its Ray
        workers), as if the machine died. Returns the host pids killed, once all are gone.
        GCS marks the node dead after its health checks fail (about 2 s here). Killing
        the head kills the cluster."""
        victims = self.ns.descendants(set(self.node(name).host_pids))
        for pid in victims:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout_s
        while any(_alive(pid) for pid in victims):
            if time.monotonic() > deadline:
                raise TimeoutError(f"processes of {name} still alive: "
                                   f"{sorted(p for p in victims if _alive(p))}")
            time.sleep(0.05)
        return victims

    def raylets(self) -> set[int]:
        """Host pids of the live raylets of this cluster (one per live node)."""
        return {pid for pid in self.ns.host_pids() if "/raylet/raylet " in _cmdline(pid)}

    def stop(self) -> None:
        """``ray stop --force`` inside the namespace (it sees only this cluster), then the
        temp dir goes. The namespace stays open; closing it is the final sweep."""
        if self.ns.is_open:
            self.ns.run([*_RAY, "stop", "--force"], env=self.driver_env(), timeout_s=60)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@contextmanager
def loopback_ray_cluster(nodes: int = 2, **options: Any) -> Iterator[RayCluster]:
    """A fresh namespace with a :class:`RayCluster` in it (``cluster.ns``); on leaving, the
    cluster is stopped and the namespace closed: no Ray process is left."""
    with LoopbackNamespace() as ns:
        cluster = RayCluster.start(ns, nodes, **options)
        try:
            yield cluster
        finally:
            cluster.stop()
