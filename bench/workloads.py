"""Seeded synthetic snapshots for benchmarks: a busy cluster with a deep queue."""

from __future__ import annotations

import numpy as np

from gefion.core.jobs import Job, JobSpec, JobState
from gefion.core.topology import Cluster

SIZES = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])
SIZE_P = np.array([0.30, 0.12, 0.14, 0.22, 0.08, 0.06, 0.04, 0.03, 0.01])


def busy_jobs(cluster: Cluster, running: int, pending: int, seed: int = 7,
              now: float = 100_000.0) -> list[Job]:
    """``running`` jobs packed first-fit onto ``cluster`` (as many as fit; with small jobs,
    1,000 fill Gefion's 1,528 GPUs) and ``pending`` queued: the steady state of a busy
    machine with a deep queue. Seeded, so every run measures the same snapshot."""
    rng = np.random.default_rng(seed)
    gpn = cluster.max_gpus_per_node
    free = [n.gpus for n in cluster.nodes]
    names = [n.name for n in cluster.nodes]
    jobs: list[Job] = []
    cursor = 0
    for k in range(running):
        gpus = int(rng.choice([1, 2], p=[0.55, 0.45]))
        while cursor < len(free) and free[cursor] < gpus:
            cursor += 1
        if cursor >= len(free):
            break
        free[cursor] -= gpus
        start = float(now - rng.integers(0, 40_000))
        limit = int(rng.choice([3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600]))
        if start + limit <= now:
            limit = int(now - start) + int(rng.integers(60, 86_400))
        jobs.append(Job(f"r{k}", JobSpec(gpus, limit, f"proj{k % 20}", user=f"u{k % 97}"),
                        start, JobState.RUNNING, start,
                        allocation=((names[cursor], tuple(range(gpus))),)))
    if len(jobs) < running:  # top up the holes first-fit left, so the machine is full
        for i, f in enumerate(free):
            for _ in range(f if len(jobs) < running else 0):
                k = len(jobs)
                start = float(now - rng.integers(0, 40_000))
                limit = int(now - start) + int(rng.integers(60, 86_400))
                jobs.append(Job(f"r{k}", JobSpec(1, limit, f"proj{k % 20}", user=f"u{k % 97}"),
                                start, JobState.RUNNING, start,
                                allocation=((names[i], (cluster.nodes[i].gpus - f,)),)))
                f -= 1
            free[i] = f
    sizes = rng.choice(SIZES, size=pending, p=SIZE_P)
    limits = rng.choice([1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600], size=pending)
    submits = now - rng.integers(0, 200_000, size=pending)
    qos = rng.choice(["normal", "normal", "normal", "high", "scavenger"], size=pending)
    for k in range(pending):
        gpus = int(sizes[k])
        if gpus > gpn and gpus % gpn:
            gpus = gpn
        jobs.append(Job(f"p{k}", JobSpec(gpus, int(limits[k]), f"proj{k % 20}",
                                         user=f"u{k % 97}", qos=str(qos[k])),
                        float(submits[k])))
    return jobs
