"""The DGX H100 power model: the datasheet figures, per-job and cluster energy."""

from __future__ import annotations

import pytest

from gefion.core.errors import InputError
from gefion.core.policies import get_policy
from gefion.core.topology import preset
from gefion.twin.engine import simulate
from gefion.twin.power import DGX_H100, DGX_H100_MAX_W, H100_SXM_TDP_W, PowerModel
from gefion.twin.state import ClusterState
from gefion.twin.traces import Trace, TraceJob


def test_node_base_is_the_datasheet_maximum_less_eight_gpus_at_tdp() -> None:
    assert (DGX_H100_MAX_W, H100_SXM_TDP_W) == (10_200.0, 700.0)
    assert DGX_H100.base_busy_w == 4_600.0


@pytest.mark.parametrize(("gpus", "allocated", "watts"), [
    (8, 0, 1_800 + 8 * 75),            # idle DGX: 2.4 kW
    (8, 8, 4_600 + 8 * 550),           # busy DGX: 9.0 kW, under the 10.2 kW maximum
    (8, 4, 1_800 + 1_400 + 4 * 550 + 4 * 75),
    (4, 4, 4_600 / 2 + 4 * 550),       # a 4-GPU node: half the base
])
def test_node_power_is_linear_in_allocated_gpus(gpus: int, allocated: int,
                                                watts: float) -> None:
    assert DGX_H100.node_w(gpus, allocated) == pytest.approx(watts)
    assert DGX_H100.node_w(8, 8) <= DGX_H100_MAX_W


def test_a_job_pays_its_gpus_busy_power_and_its_share_of_the_full_base() -> None:
    assert DGX_H100.job_gpu_w(8) == 550 + 4_600 / 8  # 1,125 W per GPU held


def run_one(gpus: int) -> tuple[float, float]:
    trace = Trace("one", "hand-made", (TraceJob("a", 0, 100, gpus, "p", "u", 200),))
    result = simulate(trace, preset("synthetic:1x8"), get_policy("fifo"))
    return result.jobs[0].energy_j, result.energy_j


def test_job_and_cluster_energy_over_a_run() -> None:
    # 8 GPUs for 100 s: the job is charged all of the busy node, 9 kW × 100 s.
    assert run_one(8) == (pytest.approx(900_000.0), pytest.approx(900_000.0))
    # 4 GPUs: the job 4 × 1,125 W × 100 s; the node 2.4 kW idle + 4 × 825 W more.
    assert run_one(4) == (pytest.approx(450_000.0), pytest.approx(570_000.0))


def test_a_down_node_draws_nothing() -> None:
    state = ClusterState(preset("synthetic:2x8"), DGX_H100, 0.0)
    assert state.power_w == 2 * 2_400.0
    state.set_down(1, True)
    assert state.power_w == 2_400.0
    state.set_down(1, False)
    assert state.power_w == 2 * 2_400.0


@pytest.mark.parametrize("bad", [{"gpu_busy_w": -1.0}, {"gpu_busy_w": 50.0},
                                 {"base_busy_w": 1_000.0}, {"reference_gpus": 0}])
def test_bad_models_are_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(InputError):
        PowerModel(**bad)  # type: ignore[arg-type]
