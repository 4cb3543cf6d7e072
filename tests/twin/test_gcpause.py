"""A replay runs with the cyclic garbage collector paused, and leaves it as it found it."""

from __future__ import annotations

import gc

import pytest

from gefion.core.policies import get_policy
from gefion.core.topology import preset
from gefion.twin.engine import simulate
from gefion.twin.gcpause import paused_gc
from gefion.twin.workload import generate


@pytest.mark.parametrize("enabled", [True, False])
def test_a_replay_pauses_the_collector_and_restores_it(enabled: bool) -> None:
    seen: list[bool] = []
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        simulate(generate(40, seed=2, offered_gpus=24.0, max_gpus=8), preset("synthetic:2x8"),
                 get_policy("gefion"), on_cycle=lambda snap, result: seen.append(gc.isenabled()))
        assert seen and not any(seen)  # paused in every cycle
        assert gc.isenabled() is enabled  # as it was before
    finally:
        gc.enable() if was else gc.disable()


def test_the_collector_comes_back_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
