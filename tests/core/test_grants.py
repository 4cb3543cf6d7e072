"""Grant accounting: charges, balances, burn-down, burn rate and exhaustion forecast."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gefion.core.errors import InputError
from gefion.core.grants import (
    Charge,
    burn_down,
    burn_rate,
    charge_gpu_s,
    forecast_exhaustion,
    grant_balances,
)
from gefion.core.tenancy import Grant, Project

HOUR = 3600.0


# --- what a job costs ---------------------------------------------------------------------


@pytest.mark.parametrize(("gpus", "seconds", "usage_factor", "gpu_hours"), [
    pytest.param(8, 3600.0, 1.0, 8.0, id="one-node-one-hour"),
    pytest.param(8, 1800.0, 1.0, 4.0, id="half-hour-is-pro-rata-not-rounded-up"),
    pytest.param(1, 90.0, 1.0, 0.025, id="ninety-seconds"),
    pytest.param(4, 3600.0, 0.0, 0.0, id="scavenger-qos-is-free"),
    pytest.param(2, 3600.0, 1.5, 3.0, id="premium-qos-costs-more"),
    pytest.param(0, 3600.0, 1.0, 0.0, id="no-gpus-no-cost"),
])
def test_charge_is_gpus_times_seconds_times_usage_factor(
        gpus: int, seconds: float, usage_factor: float, gpu_hours: float) -> None:
    assert charge_gpu_s(gpus, seconds, usage_factor) == pytest.approx(gpu_hours * HOUR)


@pytest.mark.parametrize(("gpus", "seconds", "usage_factor", "field"), [
    pytest.param(-1, 1.0, 1.0, "gpus", id="negative-gpus"),
    pytest.param(1, -1.0, 1.0, "seconds", id="negative-seconds"),
    pytest.param(1, math.inf, 1.0, "seconds", id="infinite-seconds"),
    pytest.param(1, 1.0, -0.5, "usage_factor", id="negative-usage-factor"),
])
def test_bad_charge_inputs_are_refused(gpus: int, seconds: float, usage_factor: float,
                                       field: str) -> None:
    with pytest.raises(InputError) as err:
        charge_gpu_s(gpus, seconds, usage_factor)
    assert err.value.field == field


# --- balances from a cumulative charge ------------------------------------------------------

EARLY = Grant("early", "p", gpu_hours=10, valid_from_s=0, valid_to_s=100)
LATE = Grant("late", "p", gpu_hours=10, valid_from_s=0, valid_to_s=200)
FUTURE = Grant("future", "p", gpu_hours=10, valid_from_s=300, valid_to_s=400)
METERED = {"p": Project("p", metered=True)}


@pytest.mark.parametrize(("grants", "charged_h", "now", "left_h"), [
    pytest.param([EARLY, LATE], 0, 50, 20, id="nothing-charged-both-full"),
    pytest.param([LATE, EARLY], 5, 50, 15, id="charge-spent-from-earliest-expiring"),
    pytest.param([EARLY, LATE], 5, 150, 10, id="expired-grant-absorbed-the-charge"),
    pytest.param([EARLY, LATE], 15, 50, 5, id="overflow-spills-into-next-grant"),
    pytest.param([EARLY, LATE], 2.5, 50, 17.5, id="partial-hours-pro-rata"),
    pytest.param([EARLY, LATE], 25, 50, 0, id="overspent-balance-is-zero"),
    pytest.param([EARLY, FUTURE], 15, 50, 0, id="future-grant-neither-counted-nor-spent"),
    pytest.param([EARLY, FUTURE], 10, 350, 10, id="future-grant-counts-once-started"),
    pytest.param([EARLY], 0, 100, 0, id="grant-ends-exclusive"),
    pytest.param([], 0, 0, 0, id="no-grants"),
])
def test_grant_balances(grants: list[Grant], charged_h: float, now: float,
                        left_h: float) -> None:
    balances = grant_balances(METERED, grants, {"p": charged_h * HOUR}, now)
    assert balances == {"p": pytest.approx(left_h * HOUR)}


def test_only_metered_projects_have_balances() -> None:
    projects = {"p": Project("p", metered=True), "free": Project("free")}
    grants = [EARLY, Grant("g", "free", gpu_hours=5)]
    assert grant_balances(projects, grants, {}, 0) == {"p": 10 * HOUR}


def test_other_projects_grants_are_not_spent() -> None:
    projects = {"p": Project("p", metered=True), "q": Project("q", metered=True)}
    grants = [EARLY, Grant("q1", "q", gpu_hours=10)]
    assert grant_balances(projects, grants, {"p": 4 * HOUR}, 0) == {
        "p": 6 * HOUR, "q": 10 * HOUR}


# --- burn-down over time --------------------------------------------------------------------


@pytest.mark.parametrize(("grants", "charges", "expected"), [
    pytest.param([Grant("g", "p", gpu_hours=10)], [(100, 1 * HOUR), (200, 2 * HOUR)],
                 [(0, 10), (100, 9), (200, 7)], id="one-grant-burns-down"),
    pytest.param([Grant("g", "p", gpu_hours=10)], [(100, HOUR), (100, 0.5 * HOUR)],
                 [(0, 10), (100, 8.5)], id="charges-at-one-time-are-one-point"),
    pytest.param([EARLY, LATE], [(50, 12 * HOUR)],
                 [(0, 20), (50, 8), (100, 8), (200, 0)],
                 id="earliest-expiring-first-then-spill"),
    pytest.param([EARLY, LATE], [(50, 4 * HOUR)],
                 [(0, 20), (50, 16), (100, 10), (200, 0)],
                 id="unspent-hours-lapse-at-expiry"),
    pytest.param([EARLY, LATE], [(150, 4 * HOUR)],
                 [(0, 20), (100, 10), (150, 6), (200, 0)],
                 id="charge-after-expiry-spends-the-live-grant"),
    pytest.param([FUTURE], [(50, 4 * HOUR), (350, HOUR)],
                 [(50, 0), (300, 10), (350, 9), (400, 0)],
                 id="charge-before-any-grant-is-unfunded"),
    pytest.param([Grant("g", "p", gpu_hours=1)], [(10, 3 * HOUR)],
                 [(0, 1), (10, 0)], id="overspending-stops-at-zero"),
])
def test_burn_down(grants: list[Grant], charges: list[Charge],
                   expected: list[tuple[float, float]]) -> None:
    points = burn_down(grants, charges)
    assert [t for t, _ in points] == [t for t, _ in expected]
    assert [h for _, h in points] == pytest.approx([h for _, h in expected])


def test_burn_down_refuses_negative_charges() -> None:
    with pytest.raises(InputError) as err:
        burn_down([EARLY], [(0.0, 1.0), (1.0, -1.0)])
    assert err.value.field == "charges[1]"


grant_st = st.builds(
    lambda i, hours, to: Grant(f"g{i}", "p", gpu_hours=hours, valid_from_s=0,
                               valid_to_s=1_000 + to),
    st.integers(0, 99), st.floats(0, 100), st.sampled_from([0.0, 500.0, math.inf]))
charge_st = st.tuples(st.floats(0, 999), st.floats(0, 50 * HOUR))


@settings(max_examples=200, deadline=None)
@given(grants=st.lists(grant_st, max_size=4, unique_by=lambda g: g.id),
       charges=st.lists(charge_st, max_size=8))
def test_burn_down_agrees_with_balances_while_all_grants_are_live(
        grants: list[Grant], charges: list[Charge]) -> None:
    # Every grant is active over [0, 1000) and every charge falls inside, so the
    # time-stamped and the cumulative accounting must agree.
    points = burn_down(grants, charges)
    if not points:  # no grants and no charges
        return
    total = math.fsum(g for _, g in charges)
    now = max((t for t, _ in charges), default=0.0)
    balance = grant_balances(METERED, grants, {"p": total}, now)["p"]
    assert dict(points)[now] * HOUR == pytest.approx(balance, abs=1e-6)
    hours = [h for t, h in points if t < 1_000]
    assert all(a >= b for a, b in itertools.pairwise(hours))  # never goes up


# --- burn rate and forecast -----------------------------------------------------------------


@pytest.mark.parametrize(("charges", "now", "window_s", "rate"), [
    pytest.param([(50, 100.0), (100, 200.0)], 100, 100, 3.0, id="both-in-window"),
    pytest.param([(0, 100.0), (100, 200.0)], 100, 100, 2.0, id="window-start-excluded"),
    pytest.param([(100, 200.0), (150, 999.0)], 100, 100, 2.0, id="future-ignored"),
    pytest.param([], 100, 100, 0.0, id="no-charges"),
    pytest.param([(100, 8 * 10.0)], 100, 10, 8.0, id="eight-gpus-busy"),
])
def test_burn_rate(charges: list[Charge], now: float, window_s: float, rate: float) -> None:
    assert burn_rate(charges, now, window_s) == pytest.approx(rate)


def test_burn_rate_needs_a_positive_window() -> None:
    with pytest.raises(InputError):
        burn_rate([], 0.0, 0.0)


@pytest.mark.parametrize(("balance_gpu_s", "rate", "now", "expected"), [
    pytest.param(8 * HOUR, 8.0, 1000.0, 1000.0 + HOUR, id="eight-hours-on-eight-gpus"),
    pytest.param(10 * HOUR, 0.5, 0.0, 20 * HOUR, id="slow-burn"),
    pytest.param(0.0, 8.0, 50.0, 50.0, id="already-exhausted"),
    pytest.param(-5.0, 8.0, 50.0, 50.0, id="overdrawn"),
    pytest.param(10 * HOUR, 0.0, 0.0, None, id="no-burn-never"),
    pytest.param(10 * HOUR, -1.0, 0.0, None, id="negative-rate-never"),
])
def test_forecast_exhaustion(balance_gpu_s: float, rate: float, now: float,
                             expected: float | None) -> None:
    assert forecast_exhaustion(balance_gpu_s, rate, now) == expected
