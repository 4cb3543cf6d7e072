"""Energy through the real controller, on SQLite and PostgreSQL: two jobs sharing a node
each get their own GPUs' energy in the event that ends them, durable in the store and the
same when the log is replayed; and a job running across a controller restart keeps the
energy measured before it (the checkpoint)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gefion.controller.config import ControllerConfig
from gefion.controller.gpureader import FakeGpuReader, GpuSample
from gefion.controller.service import Controller
from gefion.core.jobs import JobState
from gefion.store import JobRow, Store
from gefion.twin.power import DGX_H100
from tests.controller.conftest import NODE, ended, state_is, submit, wait_for

BASE_SHARE_W = DGX_H100.base_busy_w / 8


def gpu_w(gpu: int) -> float:
    """The fake reading of GPU ``gpu``: each GPU draws differently."""
    return 100.0 + 10.0 * gpu


def gpus_of(row: JobRow) -> list[int]:
    return [g for _, idx in row.allocation for g in idx]


def test_jobs_sharing_a_node_get_their_own_energy_durably(controller: Controller,
                                                          workdir: Path) -> None:
    assert controller.sampler is not None
    reader = FakeGpuReader()
    reader.set_node(NODE, {g: GpuSample(gpu_w(g), 50.0) for g in range(8)})
    controller.sampler.reader = reader  # the test's NVML
    controller.sampler.sample()  # a run no tick saw is charged the last tick's readings
    two = submit(controller, workdir, "#!/bin/sh\n#SBATCH -G 2 -t 1\nsleep 0.3\n")[0]
    three = submit(controller, workdir, "#!/bin/sh\n#SBATCH -G 3 -t 1\nsleep 0.6\n")[0]
    rows = {job: wait_for(controller, job, ended) for job in (two, three)}
    for job, row in rows.items():
        assert row.state is JobState.COMPLETED and row.start_ts and row.end_ts
        gpus, seconds = gpus_of(row), row.end_ts - row.start_ts
        power = sum(gpu_w(g) for g in gpus) + len(gpus) * BASE_SHARE_W
        assert row.energy_j == pytest.approx(power * seconds, abs=0.01), job
        assert row.gpu_s == pytest.approx(len(gpus) * seconds)
        end = controller.job_events(job)[-1]
        assert end.kind == "job.finished" and end.payload["energy_j"] == row.energy_j
    assert set(gpus_of(rows[two])).isdisjoint(gpus_of(rows[three]))
    # another process opening the store, and the log replayed, say the same
    with Store.open(controller.config.database_url) as again:
        replayed, _ = again.replay()
        for job, row in rows.items():
            stored = again.get_job(job)
            assert stored is not None
            assert (stored.energy_j, stored.gpu_s) == (row.energy_j, row.gpu_s)
            assert (replayed[job].energy_j, replayed[job].gpu_s) == (row.energy_j, row.gpu_s)


def test_a_job_running_across_a_restart_keeps_the_energy_measured_before(
        data_dir: Path, workdir: Path, url_factory: Callable[[str], str]) -> None:
    config = ControllerConfig(data_dir=data_dir, db_url=url_factory("sqlite"),
                              node_name=NODE, emulate_gpus=8, kill_grace_s=1, refresh_s=0.2,
                              sample_s=0.1)
    first = Controller(config)
    first.start()
    try:
        assert first.sampler is not None
        reader = FakeGpuReader()  # measured: 500 W a GPU
        reader.set_node(NODE, {g: GpuSample(500.0, 90.0) for g in range(8)})
        first.sampler.reader = reader
        first.sampler.sample()
        (job,) = submit(first, workdir, "#!/bin/sh\n#SBATCH -G 4 -t 1\nsleep 2\n")
        wait_for(first, job, state_is(JobState.RUNNING))
        time.sleep(0.5)  # a few ticks
    finally:
        first.stop()  # the job goes on under its supervisor; the integral is kept
    kept = json.loads((data_dir / "telemetry.json").read_text())["jobs"][str(job)]
    second = Controller(config)
    assert second.start(loop=False) == [job]
    try:
        assert second.sampler is not None and second.scheduler is not None
        assert second.sampler.energy_so_far() == {job: kept["energy_j"]}
        second.scheduler.start()
        second.sampler.start()  # emulated from here on: 1,125 W a GPU, the model's
        row = wait_for(second, job, ended)
    finally:
        second.stop()
    assert row.start_ts is not None and row.end_ts is not None
    assert kept["energy_j"] == pytest.approx((4 * 500 + 4 * BASE_SHARE_W)
                                             * (kept["last_ts"] - row.start_ts), abs=0.01)
    assert row.energy_j == pytest.approx(
        kept["energy_j"] + 4 * DGX_H100.job_gpu_w(8) * (row.end_ts - kept["last_ts"]), abs=0.01)
