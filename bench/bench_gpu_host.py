"""The live controller on a host with real NVIDIA GPUs (issue #4: "NVML detects real ones
where present"): what CI, on a machine without GPUs, cannot show.

    python bench/bench_gpu_host.py [--json out.json] [--load-s 15]

It needs a GPU driver, ``nvidia-smi`` and, for the load, PyTorch in the ``python3`` on PATH.
A real ``gefion up`` (SQLite, no ``--emulate-gpus``) on 127.0.0.1, then:

- **detection**: the node has as many GPUs as ``nvidia-smi -L`` lists, and telemetry reads
  them through NVML (power, utilization, memory);
- **pinning**: a job of one GPU sees exactly one device, the one ``CUDA_VISIBLE_DEVICES``
  names (``nvidia-smi -L`` and ``torch.cuda.device_count()`` inside the job);
- **measured energy**: that job multiplies bf16 matrices for ``--load-s`` seconds; its
  utilization and power while it runs, and the energy recorded when it ends, come from the
  GPU (against the power model's figure for the same run: the baseline);
- **idle flag**: a job holding a GPU it never uses is flagged idle (``--idle-after 4``);
- **too big**: a job asking for more GPUs than the host has waits with a reason;
- **submit → running** on the real node, median of 10 (goal ≤ 50 ms).

Every check prints its figure; the exit status is 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from bench_controller import free_port, start, submit_to_running
from gefion.client import Client
from gefion.controller.gpureader import NvmlReader
from gefion.controller.node import detect_gpus
from gefion.twin.power import DGX_H100

LOAD = """#!/bin/bash
#SBATCH -J burn --gpus=1 -t 5:00
exec 2>&1
echo "PATH=$PATH"; command -v python3
echo "CVD=$CUDA_VISIBLE_DEVICES GPUS_ON_NODE=$SLURM_GPUS_ON_NODE"
nvidia-smi -L
python3 - <<'PY'
import time, torch
print("torch_devices", torch.cuda.device_count(), torch.cuda.get_device_name(0), flush=True)
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
end = time.time() + {load_s}
n = 0
while time.time() < end:
    for _ in range(20):
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
    n += 20
print("products", n, flush=True)
PY
"""
IDLE = "#!/bin/sh\n#SBATCH -J idle --gpus=1\nsleep 60\n"


def wait(client: Client, job_id: int, until: str | tuple[str, ...], timeout: float) -> Any:
    states = (until,) if isinstance(until, str) else until
    deadline = time.monotonic() + timeout
    while True:
        job = client.job(job_id)
        if job.state in states or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def metric(text: str, name: str) -> list[float]:
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--load-s", type=float, default=15.0, help="seconds of GPU load")
    args = parser.parse_args()
    console = Console()
    figures: dict[str, Any] = {}
    failed: list[str] = []

    def check(name: str, ok: bool, detail: Any) -> None:
        figures[name] = {"ok": bool(ok), "detail": detail}
        console.print(f"[{'green' if ok else 'red'}]{'ok  ' if ok else 'FAIL'}[/] {name}: "
                      f"{detail}")
        if not ok:
            failed.append(name)

    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    check("detect_gpus equals nvidia-smi -L", detect_gpus() == len(listed),
          {"nvml": detect_gpus(), "nvidia-smi": listed})
    reader = NvmlReader.open("probe")
    samples = reader.read("probe") if reader else None
    if reader:
        reader.close()
    check("NVML reader reads every GPU", bool(samples) and len(samples or {}) == len(listed),
          {gpu: asdict(sample) for gpu, sample in (samples or {}).items()})

    root = Path(tempfile.mkdtemp(prefix="gefion-gpu-", dir="/tmp"))
    root.chmod(0o755)
    work = root / "work"
    work.mkdir()
    port = free_port()
    proc, token = start(root / "data", port, None,
                        ("--sample-interval", "1", "--idle-after", "4", "--idle-util", "5"))
    try:
        with Client(f"http://127.0.0.1:{port}", token=token) as client:
            nodes = client.nodes()
            check("one node with the host's GPUs",
                  len(nodes) == 1 and nodes[0].gpus == len(listed),
                  [{"name": n.name, "gpus": n.gpus} for n in nodes])

            # the submitter's environment, as `gefion submit` sends it (Slurm's --export=ALL):
            # the python3 on PATH with PyTorch
            job_id = client.submit(LOAD.replace("{load_s}", str(args.load_s)),
                                   cwd=str(work), env=dict(os.environ)).job_ids[0]
            wait(client, job_id, "RUNNING", 60)
            utils, powers, job_powers = [], [], []
            while not (job := client.job(job_id)).ended:
                text = client._http.get("/metrics").text
                utils += metric(text, "gefion_gpu_utilization_percent")
                powers += metric(text, "gefion_gpu_power_watts")
                if job.power_w is not None:
                    job_powers.append(job.power_w)
                time.sleep(0.5)
            out = client.logs(job_id)
            check("the load job COMPLETED, exit 0",
                  job.state == "COMPLETED" and job.exit_code == 0,
                  {"state": job.state, "exit": job.exit, "elapsed_s": job.elapsed_s,
                   "output": out[-1500:]})
            cvd = next((line for line in out.splitlines() if line.startswith("CVD=")), "")
            torch_line = next((line for line in out.splitlines()
                               if line.startswith("torch_devices")), "")
            gpu_lines = [line for line in out.splitlines() if line.startswith("GPU ")]
            check("the job sees exactly its one GPU",
                  cvd.startswith("CVD=0 ") and torch_line.startswith("torch_devices 1 ")
                  and len(gpu_lines) == 1,
                  {"env": cvd, "torch": torch_line, "nvidia-smi -L": gpu_lines,
                   "allocation": dict(job.allocation)})
            peak_util = max(utils, default=0.0)
            check("utilization measured under load", peak_util >= 50,
                  {"peak_util_pct": peak_util, "samples": len(utils)})
            elapsed = job.elapsed_s or 0.0
            modeled_j = DGX_H100.job_gpu_w(len(listed)) * elapsed
            measured_w = (job.energy_j or 0.0) / elapsed if elapsed else 0.0
            check("energy recorded from NVML, not the model",
                  job.energy_j is not None and abs((job.energy_j or 0) - modeled_j) > 1.0,
                  {"energy_j": job.energy_j, "avg_w": round(measured_w, 1),
                   "model_j": round(modeled_j, 1), "peak_gpu_w": max(powers, default=None),
                   "job_power_w_seen": sorted(set(round(p) for p in job_powers))[-5:],
                   "products": [line for line in out.splitlines()
                                if line.startswith("products")]})

            idle_id = client.submit(IDLE, cwd=str(work)).job_ids[0]
            wait(client, idle_id, "RUNNING", 60)
            deadline = time.monotonic() + 30
            while not (idle := client.job(idle_id)).idle_gpus and time.monotonic() < deadline:
                time.sleep(0.5)
            check("a job not using its GPU is flagged idle", idle.idle_gpus,
                  {"idle_since_ts": idle.idle_since_ts, "power_w": idle.power_w})
            client.cancel(idle_id)
            idle = wait(client, idle_id, "CANCELLED", 60)
            check("cancelled", idle.state == "CANCELLED", idle.state)

            big = client.submit(f"#!/bin/sh\n#SBATCH --gpus={len(listed) + 1}\ntrue\n",
                                cwd=str(work)).job_ids[0]
            time.sleep(2)
            info = client.job(big)
            check("a job bigger than the host waits with a reason",
                  info.state == "PENDING" and bool(info.reason),
                  {"state": info.state, "reason": info.reason,
                   "detail": info.reason_detail})
            client.cancel(big)

            latencies = submit_to_running(client, str(work), n=10)
            median = statistics.median(latencies) * 1000
            check("submit → running median ≤ 50 ms", median <= 50,
                  {"median_ms": round(median, 1),
                   "all_ms": [round(x * 1000, 1) for x in latencies]})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log = root / "data" / "logs" / "controller.log"
        if failed and log.exists():
            console.print(log.read_text()[-4000:])
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
