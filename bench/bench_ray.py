"""The Ray executor: how fast a 2-node gang starts, and how fast a lost node's gang is
requeued — on a real Ray cluster of three nodes on loopback (8 declared GPUs each).

    .venv/bin/python bench/bench_ray.py                  # 20 launches, 3 node losses
    .venv/bin/python bench/bench_ray.py --launches 50 --losses 1

Needs root (the cluster runs in a network + PID namespace of its own: ``tests/raycluster.py``).
The controller (store, scheduler loop, Ray executor) runs in-process in a driver inside that
namespace, as ``gefion up --executor ray`` would. Figures:

* **submit → all ranks running**: from ``submit`` of a 2-node job (``srun`` one task per
  node) until the later of its two ranks has started (each rank writes its start time),
  one job at a time on an idle cluster; median, p95 and min of ``--launches``. Goal ≤ 2 s.
* **baseline: bare Ray gang**, measured in the same run: a placement group of two bundles
  pinned to two nodes, an actor in each, and a call to each that returns — what Ray
  itself costs for a gang, with no scheduler, store, supervisor or srun. The ratio
  Gefion ÷ baseline is the price of the rest.
* **node lost → …**: a running 2-node ``--requeue`` job, one of its nodes killed (raylet and
  all it ran, SIGKILL): until the node is DOWN (``node.down``), the gang ended NODE_FAIL, it
  is requeued (``job.requeued``; goal ≤ 10 s), and its ranks run again on healthy nodes.
  The node then rejoins for the next round. Ray's health checks are the test cluster's
  (500 ms × 3 misses); Ray's defaults (3 s × 5) add about 12 s to detection.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

GANG = """#!/bin/sh
#SBATCH -N 2 --gpus-per-node=8 -t 5 {extra}
srun sh -c 'date +%s.%N >> {ranks}/$SLURM_JOB_ID.$SLURM_PROCID; {then}'
"""


def put(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (the other side polls for it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- inside the namespace: the driver -----------------------------------------------------------

def wait_ranks(ranks: Path, job_id: int, run: int, timeout_s: float = 60,
               controller: Any = None) -> float:
    """The later start time of the job's two ranks in its run ``run`` (0: the first; each
    run's ranks append a line), once both wrote it."""
    deadline = time.monotonic() + timeout_s
    while True:
        times = []
        for procid in (0, 1):
            path = ranks / f"{job_id}.{procid}"
            lines = (path.read_text() if path.exists() else "").split("\n")[:-1]
            if len(lines) > run:
                times.append(float(lines[run]))
        if len(times) == 2:
            return max(times)
        if time.monotonic() > deadline:
            row = controller.get_job(job_id) if controller is not None else None
            raise SystemExit(f"job {job_id}: its ranks did not start within {timeout_s} s"
                             + (f" ({row.state}, {row.reason}, on {row.allocation})"
                                if row is not None else ""))
        time.sleep(0.005)


def wait_state(controller: Any, job_id: int, states: tuple[str, ...],
               timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        row = controller.get_job(job_id)
        if row.state.value in states:
            return row
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job_id} still {row.state} after {timeout_s} s")
        time.sleep(0.02)


def bare_gang(rounds: int) -> list[float]:
    """Seconds for Ray alone to place a 2-bundle gang on two pinned nodes and run a call in
    an actor on each (the driver is connected already)."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    @ray.remote(num_cpus=0.01)
    class Rank:
        def ready(self) -> float:
            return time.time()

    ids = sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])[:2]
    out = []
    for _ in range(rounds):
        t = time.time()
        pg = placement_group([{"CPU": 0.01, "GPU": 8.0}] * 2, strategy="STRICT_SPREAD",
                             bundle_label_selector=[{"ray.io/node-id": i} for i in ids])
        ray.get(pg.ready(), timeout=60)
        actors = [Rank.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=k)).remote() for k in (0, 1)]
        out.append(max(ray.get([a.ready.remote() for a in actors])) - t)
        for actor in actors:
            ray.kill(actor)
        remove_placement_group(pg)
        time.sleep(0.2)  # let the bundles go before the next round
    return out


def drive(address: str, work: Path, launches: int, losses: int) -> dict[str, Any]:
    from gefion.controller.config import ControllerConfig
    from gefion.controller.service import Controller
    from gefion.controller.submission import SubmitRequest

    ranks = work / "ranks"
    ranks.mkdir()
    controller = Controller(ControllerConfig(
        data_dir=work / "data", executor="ray", ray_address=address, kill_grace_s=1,
        refresh_s=0.5, node_name="bench"))
    controller.start()
    env = {"PATH": "/usr/bin:/bin"}

    def submit(extra: str = "", then: str = "true") -> tuple[int, float]:
        script = GANG.format(extra=extra, ranks=ranks, then=then)
        t = time.time()
        ids, _ = controller.submit(SubmitRequest(user="root", cwd=str(work), script=script,
                                                 env=env))
        return ids[0], t

    try:
        starts = []
        for _ in range(launches):
            job_id, t = submit()
            starts.append(wait_ranks(ranks, job_id, 0, controller=controller) - t)
            wait_state(controller, job_id, ("COMPLETED",))
        baseline = bare_gang(max(5, launches // 2))
        rounds = []
        for _ in range(losses):
            job_id, _ = submit("--requeue", "exec sleep 300")
            wait_ranks(ranks, job_id, 0, controller=controller)
            nodes = [n for n, _ in controller.get_job(job_id).allocation]
            victim = next(n for n in nodes if n != "gefion-node1")  # not the head
            put(work / "kill.req", victim)
            while not (work / "killed").exists():
                time.sleep(0.005)
            killed = float((work / "killed").read_text())
            (work / "killed").unlink()
            again = wait_ranks(ranks, job_id, 1, controller=controller)
            events = controller.job_events(job_id)
            node_events = [e for e in controller.store.events_since(0, limit=10_000)
                           if e.kind == "node.down" and e.node == victim]
            at = {e.kind: e.ts for e in events}
            rounds.append({"down": node_events[-1].ts - killed,
                           "node_fail": at["job.node_fail"] - killed,
                           "requeued": at["job.requeued"] - killed,
                           "running": again - killed})
            controller.cancel(job_id, by="root")
            wait_state(controller, job_id, ("CANCELLED",))
            put(work / "rejoin.req", victim)
            while (work / "rejoin.req").exists():
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while next(n for n in controller.nodes() if n.name == victim).state == "down":
                if time.monotonic() > deadline:
                    raise SystemExit(f"{victim} did not come back up")
                time.sleep(0.05)
        return {"starts": starts, "baseline": baseline, "losses": rounds}
    finally:
        controller.stop()


# -- outside: the cluster ------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--losses", type=int, default=3)
    parser.add_argument("--inner", nargs=2, metavar=("ADDRESS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        result = drive(args.inner[0], Path(args.inner[1]), args.launches, args.losses)
        (Path(args.inner[1]) / "result.json").write_text(json.dumps(result))
        return

    from tests.raycluster import loopback_ray_cluster

    work = Path(tempfile.mkdtemp(prefix="gefion-bench-ray-", dir="/tmp"))
    work.chmod(0o755)
    load = os.getloadavg()[0]
    try:
        started = time.perf_counter()
        with loopback_ray_cluster(nodes=3, gpus_per_node=8) as cluster:
            print(f"host: {os.cpu_count()} CPUs, load {load:.1f}; Ray cluster of 3 nodes "
                  f"on loopback up in {time.perf_counter() - started:.1f} s", flush=True)
            with (work / "driver.log").open("wb") as log:
                proc = cluster.ns.popen(
                    [sys.executable, __file__, "--launches", str(args.launches), "--losses",
                     str(args.losses), "--inner", cluster.address, str(work)],
                    cwd=ROOT, env=cluster.driver_env(RAY_USAGE_STATS_ENABLED="0"),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                while proc.poll() is None:
                    if (work / "kill.req").exists():
                        victim = (work / "kill.req").read_text()
                        (work / "kill.req").unlink()
                        # the Ray node that is that Gefion node now (it may have rejoined)
                        ray_node = [n for n in cluster.nodes
                                    if n.labels["gefion.io/node"] == victim][-1]
                        t = time.time()
                        cluster.kill_node(ray_node.name)
                        put(work / "killed", repr(t))
                    if (work / "rejoin.req").exists():
                        victim = (work / "rejoin.req").read_text()
                        cluster.add_node(labels={"gefion.io/node": victim})
                        (work / "rejoin.req").unlink()
                    time.sleep(0.01)
            if proc.returncode != 0:
                raise SystemExit(f"the driver failed:\n{(work / 'driver.log').read_text()}")
        result = json.loads((work / "result.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    starts, base = result["starts"], result["baseline"]
    median, base_median = statistics.median(starts), statistics.median(base)
    print(f"submit → all ranks running, 2-node job ({len(starts)} launches): median "
          f"{median:.2f} s, p95 {percentile(starts, 0.95):.2f} s, min {min(starts):.2f} s "
          f"(goal ≤ 2 s)")
    print(f"baseline: bare Ray gang (placement group + 2 actors, {len(base)} rounds): median "
          f"{base_median:.2f} s; Gefion ÷ baseline {median / base_median:.2f}")
    for k, r in enumerate(result["losses"], 1):
        print(f"node lost #{k} → node.down {r['down']:.2f} s, job.node_fail "
              f"{r['node_fail']:.2f} s, job.requeued {r['requeued']:.2f} s (goal ≤ 10 s), "
              f"ranks running again {r['running']:.2f} s")
    if result["losses"]:
        worst = max(r["requeued"] for r in result["losses"])
        print(f"node lost → requeued: worst {worst:.2f} s of {len(result['losses'])}")


if __name__ == "__main__":
    main()
