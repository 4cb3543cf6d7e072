"""``gefion twin sweep``: policies × loads × traces as Ray tasks, for real.

Ray runs only inside loopback network namespaces (:mod:`tests.raycluster`): a local Ray that
the sweep starts itself, and a 2-node cluster it joins with ``--ray-address``. Both give
exactly the JSON of the same runs made one by one with ``run_twin`` (issue #6: "a sweep of
2 policies × 2 loads gives the same JSON as four serial runs"). Bad input exits 2 naming
the field before Ray is even imported. This process never imports Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from gefion.core.errors import InputError
from gefion.twin.compare import run_cell
from gefion.twin.run import RunOptions
from gefion.twin.sweep import check_ray_address, make_sweep
from tests.cli.test_twin_cli import assert_png, assert_user_error, ok
from tests.conftest import GefionRunner
from tests.raycluster import LoopbackNamespace, loopback_ray_cluster, raylet_pids
from tests.twin.test_run import SMALL_CSV, small_csv

SMALL = ("--cluster", "synthetic:2x8", "--seed", "1")
GRID = ("--policies", "fifo,las", "--loads", "1,2")
#: run_gefion's environment, for the sweeps run inside a namespace
CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}

# The second trace: the same jobs, but the 16-GPU gang j04 is an 8-GPU job that runs longer.
OTHER_CSV = SMALL_CSV.replace("j04,130,7200,16", "j04,130,9000,8")


def gefion(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "gefion.cli.main", *map(str, args)]


def serial(traces: dict[str, Path]) -> list[dict[str, Any]]:
    """The sweep's ``runs``, made one at a time in this process with ``run_twin``."""
    base = RunOptions(trace="-", cluster="synthetic:2x8", seed=1)
    return [{"trace": label, **run_cell(base.with_(trace=str(path), policy=policy,
                                                   load=load)).to_json()}
            for label, path in traces.items()
            for policy in ("fifo", "las") for load in (1.0, 2.0)]


# -- the acceptance test: a local Ray gives the runs alone ----------------------------------------

@pytest.mark.early
def test_a_local_sweep_gives_the_json_of_serial_runs(tmp_path: Path) -> None:
    trace = small_csv(tmp_path)
    out, report = tmp_path / "sweep.json", tmp_path / "report"
    # Ray's files in a folder of the test's (not /tmp/ray; socket paths must stay short),
    # and a home of its own: the sweep must leave no ~/.ray/auth_token behind
    ray_tmp, home = Path(tempfile.mkdtemp(prefix="gefion-ray-", dir="/tmp")), tmp_path / "home"
    home.mkdir()
    env = {**os.environ, **CLI_ENV, "RAY_TMPDIR": str(ray_tmp), "HOME": str(home),
           "MPLCONFIGDIR": matplotlib.get_cachedir()}  # keep the font cache
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        env.pop(name, None)
    started = time.perf_counter()
    try:
        with LoopbackNamespace() as ns:
            proc = ns.run(gefion("twin", "sweep", "--traces", trace.name, *GRID, *SMALL,
                                 "--json", out, "--report", report),
                          env=env, cwd=tmp_path, timeout_s=180)
            sweep_s = time.perf_counter() - started
            # the sweep stopped the Ray it started: nothing but the namespace's PID 1 is left
            assert _settles(lambda: ns.host_pids() == {ns.init_pid}), ns.host_pids()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    ok(proc)
    assert list(home.iterdir()) == []
    started = time.perf_counter()
    expected = serial({"small.csv": trace})
    serial_s = time.perf_counter() - started
    doc = json.loads(out.read_text())
    assert doc["runs"] == expected
    assert doc["traces"] == ["small.csv"] and doc["cluster"] == "synthetic:2x8"
    assert doc["seed"] == 1 and doc["ray"]["nodes"] == 1 and len(doc["ray"]["node_ids"]) == 4
    assert out.read_text() == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    # one table: a row per run, the trace on the first row of its group only
    rows = [line.split() for line in proc.stdout.splitlines()
            if {"fifo", "las"} & set(line.split()[:2])]
    assert [row[:4] for row in rows] == [["small.csv", "fifo", "1", "12"],
                                         ["fifo", "2", "12", *rows[1][3:4]],
                                         ["las", "1", "12", *rows[2][3:4]],
                                         ["las", "2", "12", *rows[3][3:4]]]
    assert proc.stdout.count("· seed 1") == 1
    md = (report / "sweep.md").read_text()
    assert "| trace | policy | load | jobs |" in md and md.count("| small.csv | ") == 4
    assert_png(report / "sweep.png")
    print(f"\nlocal sweep of 4 runs (Ray start included): {sweep_s:.1f} s; "
          f"the same 4 runs serially in-process: {serial_s:.1f} s")


# -- a real 2-node cluster -------------------------------------------------------------------------

@pytest.mark.early
def test_a_sweep_on_a_two_node_cluster_uses_both_nodes(tmp_path: Path) -> None:
    traces = {"small.csv": small_csv(tmp_path), "other.csv": tmp_path / "other.csv"}
    traces["other.csv"].write_text(OTHER_CSV)
    out = tmp_path / "sweep.json"
    before = raylet_pids()
    started = time.perf_counter()
    with loopback_ray_cluster(nodes=2) as cluster:
        start_s = time.perf_counter() - started
        ours = cluster.raylets()
        assert len(ours) == 2 and ours <= raylet_pids() - before
        started = time.perf_counter()
        proc = cluster.ns.run(
            gefion("twin", "sweep", "--traces", "small.csv,other.csv", *GRID, *SMALL,
                   "--ray-address", cluster.address, "--json", out, "--quiet"),
            env=cluster.driver_env(**CLI_ENV), cwd=tmp_path, timeout_s=180)
        sweep_s = time.perf_counter() - started
        ok(proc)
        doc = json.loads(out.read_text())
        assert doc["runs"] == serial(traces)
        assert doc["traces"] == ["small.csv", "other.csv"]
        assert doc["ray"]["nodes"] == 2 and len(set(doc["ray"]["node_ids"])) == 2

        # the helper's node loss: one raylet and all it ran go; Ray sees the node dead
        killed = cluster.kill_node("gefion-node2")
        assert cluster.raylets() == ours - killed and len(cluster.raylets()) == 1
        alive = cluster.ns.run([sys.executable, "-c", ALIVE_NODES, cluster.address],
                               env=cluster.driver_env(), timeout_s=60)
        assert alive.returncode == 0, alive.stderr
        assert json.loads(alive.stdout.splitlines()[-1]) == {"gefion-node1": True,
                                                             "gefion-node2": False}
        ns_pids = cluster.ns.host_pids()
    # stopped and closed: none of the namespace's processes is left, raylets included
    assert not (ours & raylet_pids())
    assert not any(Path(f"/proc/{pid}").exists() for pid in ns_pids)
    print(f"\n2-node Ray cluster started in {start_s:.1f} s; sweep of 8 runs on it "
          f"{sweep_s:.1f} s")


#: A driver that waits until GCS has marked a killed node dead, then prints name → alive.
ALIVE_NODES = textwrap.dedent("""
    import json, sys, time
    import ray
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    deadline = time.monotonic() + 30
    while True:
        alive = {n["Labels"]["gefion.io/node"]: n["Alive"] for n in ray.nodes()}
        if all(alive.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        print(json.dumps(alive, sort_keys=True))
        break
""")


# -- bad input: exit 2, the field named, Ray never imported -------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("args", "needles"), [
    (("--traces", "{small}", "--policies", "fifo,nope"),
     ("field 'policies'", "unknown policy 'nope'")),
    (("--traces", "{small}", "--policies", "fifo", "--loads", "1,0"), ("field 'loads'",)),
    (("--traces", "{small},no-such-trace", "--policies", "fifo"),
     ("field 'traces'", "no-such-trace", "known:")),
    (("--traces", "{small}", "--policies", "fifo", "--ray-address", "127.0.0.1:{port}"),
     ("field 'ray-address'", "cannot reach a Ray cluster at 127.0.0.1:")),
    (("--traces", "{small}", "--policies", "fifo", "--ray-address", "head-node"),
     ("field 'ray-address'", "HOST:PORT")),
    (("--traces", "{small}", "--policies", "fifo", "--cluster", "synthetic:0x8"),
     ("field 'cluster'",)),
], ids=["policy", "load", "trace", "unreachable-ray", "ray-address-form", "cluster"])
def test_bad_input_exits_2_before_ray_is_imported(tmp_path: Path, run_gefion: GefionRunner,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  args: tuple[str, ...],
                                                  needles: tuple[str, ...]) -> None:
    # a `ray` that fails on import: any Ray start-up would turn the error into a traceback
    fake = tmp_path / "no-ray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('ray imported before the input "
                                      "was checked')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    values = {"small": str(small_csv(tmp_path)), "port": str(free_port())}
    proc = run_gefion("twin", "sweep", *(a.format(**values) for a in args), timeout_s=60)
    assert_user_error(proc, *needles)


@pytest.mark.parametrize(("address", "message"), [
    ("nonsense", "HOST:PORT"), ("http://head:6379", "HOST:PORT"), ("head:port", "HOST:PORT"),
    ("ray://head", "HOST:PORT"), ("127.0.0.1:{port}", "cannot reach"),
])
def test_ray_addresses_are_checked(address: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_ray_address(address.format(port=free_port()), timeout_s=2)
    assert info.value.field == "ray-address" and message in info.value.message


def test_ray_address_of_a_listening_port_passes() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            assert check_ray_address(f" {address} ") == address


def test_the_grid_is_trace_major_with_paths_any_node_can_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_csv(tmp_path)
    monkeypatch.chdir(tmp_path)
    cells = make_sweep(RunOptions(trace="small.csv", cluster="synthetic:2x8"),
                       ["small.csv", "itp-elasticflow/cluster10"], ["fifo", "las"], [1.0, 2.0])
    assert [(c.trace, c.options.policy, c.options.load) for c in cells][:3] == [
        ("small.csv", "fifo", 1.0), ("small.csv", "fifo", 2.0), ("small.csv", "las", 1.0)]
    assert [c.trace for c in cells] == ["small.csv"] * 4 + ["itp-elasticflow/cluster10"] * 4
    assert cells[0].options.trace == str(tmp_path / "small.csv")
    assert cells[4].options.trace == "itp-elasticflow/cluster10"
    assert all(c.options.traces and Path(c.options.traces).is_absolute() for c in cells)


def test_sweep_help_imports_nothing_heavy() -> None:
    code = textwrap.dedent("""
        import sys
        from gefion.cli.main import app
        try:
            app(["twin", "sweep", "--help"], prog_name="gefion")
        except SystemExit:
            pass
        heavy = ("ray", "yaml", "numpy", "matplotlib", "gefion.core.cycle", "gefion.twin.")
        print("HEAVY:", *sorted(m for m in sys.modules if m.startswith(heavy)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert "--ray-address" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "HEAVY:", proc.stdout


# -- helpers ---------------------------------------------------------------------------------------

def _settles(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
