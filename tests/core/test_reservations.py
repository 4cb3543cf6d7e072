"""Advance reservations: windows (one-off, recurring) and who they admit."""

from __future__ import annotations

import pytest

from gefion.core.errors import SpecError
from gefion.core.reservations import Reservation
from gefion.core.topology import preset
from tests.core.builders import cycle, pending, reasons, running, started

DAY = 86_400.0


def daily() -> Reservation:
    # The weather service: 16 nodes, 00:00-02:00 every day.
    return Reservation("forecast", tuple(f"dgx{i:03d}" for i in range(176, 192)), 0.0,
                       7200.0, period_s=DAY, projects=frozenset({"weather"}))


def test_recurring_windows() -> None:
    res = daily()
    assert list(res.windows(DAY + 3600, 3 * DAY)) == [
        (DAY, DAY + 7200), (2 * DAY, 2 * DAY + 7200)]
    assert res.window_at(5 * DAY + 100) == (5 * DAY, 5 * DAY + 7200)
    assert res.window_at(5 * DAY + 7200) is None


def test_until_ends_recurrence() -> None:
    res = Reservation("r", ("dgx001",), 0, 10, period_s=100, until_s=250)
    assert list(res.windows(0, 1000)) == [(0, 10), (100, 110), (200, 210)]


@pytest.mark.parametrize("kw", [{"end_s": 0.0}, {"nodes": ()}, {"period_s": 10.0}])
def test_bad_reservations(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"name": "r", "nodes": ("a",), "start_s": 0.0, "end_s": 100.0}
    with pytest.raises(SpecError):
        Reservation(**(args | kw))  # type: ignore[arg-type]


def test_daily_window_keeps_others_off_in_every_window_and_lets_its_project_in() -> None:
    gefion = preset("gefion")
    res = daily()
    reserved = set(res.nodes)
    busy = {f"dgx{i:03d}": 8 for i in range(1, 176)}  # everything else is full
    for day in range(3):
        now = day * DAY + 600  # ten minutes into the day's window
        jobs = [running("r", busy, 30 * 86_400), pending("other", 8, 600, project="lab"),
                pending("wx", 64, 3600, project="weather")]
        _, result = cycle(gefion, jobs, now, reservations=[res])
        # Eight reserved nodes stay free, yet the other project may not use them.
        assert reasons(result)["other"] == "RESERVATION"
        assert set(started(result)["wx"]) <= reserved


def test_job_does_not_start_when_it_would_run_into_a_window() -> None:
    gefion = preset("gefion")
    res = daily()
    busy = {f"dgx{i:03d}": 8 for i in range(1, 176)}
    # At 23:00 a 2-hour job on the reserved nodes would overlap the 00:00 window.
    jobs = [running("r", busy, 30 * 86_400), pending("late", 8, 7200, project="lab"),
            pending("short", 8, 1800, project="lab")]
    _, result = cycle(gefion, jobs, DAY - 3600, reservations=[res])
    assert "late" not in started(result)
    assert "short" in started(result)
    verdict = result.verdict("late")
    assert verdict is not None and verdict.planned_start_s == DAY + 7200


def test_maintenance_admits_nobody() -> None:
    res = Reservation("maint", ("node00001",), 0, 1000, maintenance=True,
                      projects=frozenset({"p"}))
    assert not res.admits("p", "u", "maint")
    _, result = cycle(preset("synthetic:1x8"), [pending("j", 8, 100)], 0.0,
                      reservations=[res])
    assert reasons(result)["j"] == "RESERVATION"
