"""The telemetry sampler on its own: the power model's numbers, energy over each job's own
GPUs (two jobs sharing a node), the rectangle rule and the end of a run, idle flags on an
injected clock, and the checkpoint that carries running jobs across a restart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from gefion.controller.gpureader import FakeGpuReader, GpuSample
from gefion.controller.telemetry import RunningJob, Sampler
from gefion.core.topology import Node, NodeState
from gefion.twin.power import DGX_H100

T0 = 1_000_000.0
BASE_SHARE_W = DGX_H100.base_busy_w / 8  # 575 W of node base per GPU held


@dataclass
class World:
    """What the scheduler would tell the sampler: the nodes and the running jobs."""

    nodes: list[Node] = field(default_factory=lambda: [Node("n1", 8, "su1"),
                                                       Node("n2", 8, "su1")])
    running: dict[int, RunningJob] = field(default_factory=dict)
    now: float = T0

    def sampler(self, reader: FakeGpuReader | None = None, **kw: object) -> Sampler:
        return Sampler(nodes=lambda: self.nodes, running=lambda: self.running,
                       reader=reader, clock=lambda: self.now, **kw)  # type: ignore[arg-type]

    def run(self, job_id: int, gpus: Mapping[str, tuple[int, ...]], start: float = T0) -> None:
        self.running[job_id] = RunningJob(start, tuple(gpus.items()), "nlp")

    def end(self, sampler: Sampler, job_id: int, at: float) -> float:
        job = self.running.pop(job_id)
        energy: float = sampler.run_ended(job_id, at, job.start_ts, job.allocation)["energy_j"]
        return energy


def test_modeled_gpus_draw_the_twins_dgx_h100_power() -> None:
    world = World()
    world.run(1, {"n1": (0, 1)})
    world.run(2, {"n1": (2, 3, 4)})
    sampler = world.sampler()
    world.now = T0 + 10
    sampler.sample()
    # a job: its GPUs busy (550 W) plus its share of the node base at full load (575 W)
    job = sampler.job(1)
    assert job is not None and job.power_w == 2 * DGX_H100.job_gpu_w(8) == 2 * 1125.0
    assert job.util_pct is None and not job.idle  # modeled GPUs: utilization unknown
    # a node: the twin's P_node(a); an idle one 2.4 kW
    assert sampler.node_power() == {"n1": DGX_H100.node_w(8, 5), "n2": 2_400.0}
    assert sampler.node_power()["n1"] == 6_525.0
    assert sampler.power_w() == 6_525.0 + 2_400.0
    world.nodes[1] = replace(world.nodes[1], state=NodeState.DOWN)
    sampler.sample()
    assert sampler.node_power()["n2"] == 0.0  # a modeled node that is down draws nothing
    # constant power: the energy is exactly power × run time, whenever the ticks were
    assert world.end(sampler, 1, T0 + 25.5) == pytest.approx(2250.0 * 25.5)
    assert world.end(sampler, 2, T0 + 3) == pytest.approx(3375.0 * 3)  # ended before a tick


def test_jobs_sharing_a_node_each_get_their_own_gpus_energy() -> None:
    world = World()
    world.run(1, {"n1": (0, 1)})
    world.run(2, {"n1": (2,)})
    reader = FakeGpuReader()
    reader.set_node("n1", {g: GpuSample(60.0, 0.0) for g in range(8)})
    for g in (0, 1):
        reader.set("n1", g, GpuSample(400.0, 90.0))
    reader.set("n1", 2, GpuSample(100.0, 30.0))
    sampler = world.sampler(reader)
    world.now = T0 + 5
    sampler.sample()
    for g in (0, 1):
        reader.set("n1", g, GpuSample(300.0, 80.0))
    world.now = T0 + 10
    sampler.sample()
    # job 1: (800 + 1150) W for 5 s, then (600 + 1150) W for 5 s, held 2 s to its end
    assert world.end(sampler, 1, T0 + 12) == pytest.approx(1950 * 5 + 1750 * 5 + 1750 * 2)
    # job 2: one GPU at 100 W plus one base share, all along: not the node's power
    assert world.end(sampler, 2, T0 + 10) == pytest.approx((100 + BASE_SHARE_W) * 10)
    base = DGX_H100.base_idle_w + (DGX_H100.base_busy_w - DGX_H100.base_idle_w) * 3 / 8
    assert sampler.node_power()["n1"] == pytest.approx(600 + 100 + 5 * 60 + base)
    assert sampler.gpu_readings()["n1"][2] == GpuSample(100.0, 30.0)
    assert "n2" not in sampler.gpu_readings()  # modeled GPUs are no readings


def test_an_end_stamped_before_the_last_tick_takes_the_hold_back() -> None:
    world = World()
    world.run(1, {"n2": (0,)})
    reader = FakeGpuReader()
    reader.set("n2", 0, GpuSample(200.0, 50.0))
    sampler = world.sampler(reader)
    world.now = T0 + 10
    sampler.sample()
    # the supervisor stamped the end at T0 + 8; the tick at T0 + 10 had counted 2 s more
    assert world.end(sampler, 1, T0 + 8) == pytest.approx((200 + BASE_SHARE_W) * 8)
    assert sampler.job(1) is None and sampler.energy_so_far() == {}


def test_a_job_whose_gpus_stay_idle_is_flagged_after_the_threshold() -> None:
    world = World()
    world.run(1, {"n1": (0, 1)})
    world.run(2, {"n1": (2,)})
    reader = FakeGpuReader()
    reader.set_node("n1", {0: GpuSample(80.0, 1.0), 1: GpuSample(80.0, 4.9),
                           2: GpuSample(90.0, None)})
    sampler = world.sampler(reader, idle_util_pct=5.0, idle_after_s=60.0)
    versions = []
    for t in range(0, 121, 10):
        world.now = T0 + t
        sampler.sample()
        versions.append(sampler.idle_version)
        job = sampler.job(1)
        assert job is not None and job.idle == (t >= 60), t
        assert job.idle_since_ts == T0  # below the threshold since the first tick
    assert sampler.idle_jobs() == {1: T0}  # job 2's utilization is unknown: never flagged
    assert versions[5] == 0 and versions[6] == 1 and versions[-1] == 1
    reader.set("n1", 1, GpuSample(300.0, 50.0))  # one busy GPU is enough: not idle
    world.now += 10
    sampler.sample()
    job = sampler.job(1)
    assert job is not None and not job.idle and job.idle_since_ts is None
    assert sampler.idle_jobs() == {} and sampler.idle_version == 2


def test_running_jobs_energy_survives_a_restart_through_the_checkpoint(tmp_path: Path) -> None:
    world = World()
    world.run(1, {"n1": (0, 1, 2, 3)})
    checkpoint = tmp_path / "telemetry.json"
    first = world.sampler(checkpoint=checkpoint)
    world.now = T0 + 100
    first.sample()
    first.stop()  # the controller stops; the job goes on
    world.now = T0 + 160  # back a minute later
    second = world.sampler(checkpoint=checkpoint)
    assert second.energy_so_far() == {1: pytest.approx(4 * 1125.0 * 100)}
    second.sample()  # the first tick covers the minute away
    assert world.end(second, 1, T0 + 200) == pytest.approx(4 * 1125.0 * 200)
    # a run that started again (requeued) does not inherit the old run's energy
    world.run(1, {"n1": (0,)}, start=T0 + 300)
    third = world.sampler(checkpoint=checkpoint)
    world.now = T0 + 310
    third.sample()
    assert third.energy_so_far() == {1: pytest.approx(1125.0 * 10)}


def test_a_tick_that_read_a_run_before_its_end_does_not_take_it_up_again() -> None:
    world = World()
    world.run(1, {"n1": (0,)})
    sampler = world.sampler()
    world.now = T0 + 5
    sampler.sample()
    job = world.running[1]
    world.end(sampler, 1, T0 + 6)
    world.running[1] = job  # what a tick read just before the scheduler wrote the end
    world.now = T0 + 10
    sampler.sample()
    assert sampler.energy_so_far() == {} and sampler.job(1) is None
    del world.running[1]
    sampler.sample()
    world.run(1, {"n1": (0,)}, start=T0 + 20)  # requeued, and running again
    world.now = T0 + 30
    sampler.sample()
    assert sampler.energy_so_far() == {1: pytest.approx(1125.0 * 10)}


def test_the_nvml_reader_reads_this_hosts_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """NvmlReader on a stand-in for pynvml (no GPU here): milliwatts to watts, a GPU that
    cannot say its power is left out (modeled), other nodes are not seen."""
    import sys
    import types

    from gefion.controller.gpureader import NvmlReader

    class NVMLError(Exception):
        pass

    def power(handle: int) -> int:
        if handle == 2:
            raise NVMLError("not supported")
        return 250_500 + handle

    def util(handle: int) -> object:
        if handle == 1:
            raise NVMLError("not supported")
        return types.SimpleNamespace(gpu=7, memory=3)

    calls: list[str] = []
    fake = types.SimpleNamespace(
        nvmlInit=lambda: calls.append("init"), nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: 3, nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetPowerUsage=power, nvmlDeviceGetUtilizationRates=util,
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=1_000 * h))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    reader = NvmlReader.open("gpu01")
    assert reader is not None
    assert reader.read("gpu02") is None
    assert reader.read("gpu01") == {0: GpuSample(250.5, 7.0, 0), 1: GpuSample(250.501, None, 1_000)}
    reader.close()
    reader.close()
    assert calls == ["init", "shutdown"] and reader.read("gpu01") is None
    monkeypatch.setitem(sys.modules, "pynvml", types.SimpleNamespace(
        nvmlInit=lambda: (_ for _ in ()).throw(NVMLError("no driver"))))
    assert NvmlReader.open("gpu01") is None
