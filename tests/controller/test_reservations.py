"""Reservations in the live controller, on an emulated cluster of four 8-GPU nodes and a
clock the test moves: a recurring daily window that keeps others off its nodes in every
window and lets its project in, ``--reservation NAME``, and maintenance that drains its
nodes ahead of its start and shows them ``maint`` while it lasts."""

from __future__ import annotations

from pathlib import Path

from gefion.controller.service import Controller
from gefion.core.jobs import JobState
from gefion.core.reservations import Reservation
from tests.controller.tenancy_helpers import (
    BY,
    FakeClock,
    UrlFactory,
    job,
    step_until,
    stepped,
    store_of,
    submit,
)

DAY = 86_400.0
HOUR = 3600.0
MONDAY = 1_748_822_400.0  # 2025-06-02T00:00:00Z
RESERVED = ("node00001", "node00002")
OTHERS = ("node00003", "node00004")


def whole_node(project: str, minutes: int, *extra: str) -> str:
    flags = " ".join(extra)
    return (f"#!/bin/bash\n#SBATCH -N1 --gpus=8 -A {project} -t {minutes} {flags}\n"
            "sleep 300\n")


def clear(c: Controller) -> None:
    """Cancel every job not ended, and step until they have ended."""
    for row in c.list_jobs(states=[JobState.PENDING, JobState.RUNNING], limit=1000):
        c.cancel(row.id, by=BY)
    step_until(c, lambda: not c.list_jobs(states=[JobState.PENDING, JobState.RUNNING]),
               what="every job's end")


def wait_running(c: Controller, ids: list[int], count: int | None = None) -> None:
    """Step until ``count`` of ``ids`` run (None: all of them)."""
    want = len(ids) if count is None else count
    step_until(c, lambda: sum(job(c, i).state is JobState.RUNNING for i in ids) == want,
               what=f"{want} of {ids} running")


def nodes_of(c: Controller, ids: list[int]) -> set[str]:
    return {node for i in ids for node, _ in job(c, i).allocation}


def test_a_daily_window_keeps_others_off_in_every_window_and_lets_its_project_in(
        data_dir: Path, workdir: Path, backend: str, url_factory: UrlFactory) -> None:
    clock = FakeClock(MONDAY - HOUR)
    with stepped(data_dir, url_factory(backend), cluster="synthetic:4x8", clock=clock) as c:
        store = store_of(c)
        for name in ("weather", "others"):
            store.create_project(name, ts=clock.t, by=BY)
        # The weather service's daily window: 2 of 4 nodes, 00:00-02:00 UTC.
        store.create_reservation(Reservation("weather", RESERVED, MONDAY, MONDAY + 2 * HOUR,
                                             period_s=DAY, projects=frozenset({"weather"})),
                                 ts=clock.t, by=BY)
        for day in (0, 1, 2):
            clock.t = MONDAY + day * DAY + 0.5 * HOUR  # inside the day's window
            others = [submit(c, workdir, whole_node("others", 30)) for _ in range(4)]
            wait_running(c, others, 2)
            c.step()
            running = [i for i in others if job(c, i).state is JobState.RUNNING]
            waiting = [i for i in others if job(c, i).state is JobState.PENDING]
            assert nodes_of(c, running) == set(OTHERS), f"day {day}"
            # Free GPUs, but in the window: kept off by the reservation.
            assert [job(c, i).reason for i in waiting] == ["RESERVATION"] * 2, f"day {day}"
            weather = [submit(c, workdir, whole_node("weather", 30)) for _ in range(2)]
            wait_running(c, weather)
            assert nodes_of(c, weather) == set(RESERVED), f"day {day}"
            view = {n.name: n for n in c.nodes()}
            assert {view[n].reservation for n in RESERVED} == {"weather"}
            assert {view[n].reservation for n in OTHERS} == {None}
            clear(c)
            # Between windows the reserved nodes are everyone's (for jobs that end before
            # the next window opens).
            clock.t = MONDAY + day * DAY + 3 * HOUR
            others = [submit(c, workdir, whole_node("others", 30)) for _ in range(4)]
            wait_running(c, others)
            assert nodes_of(c, others) == set(RESERVED + OTHERS)
            clear(c)


def test_a_job_naming_the_reservation_runs_only_inside_it(
        data_dir: Path, workdir: Path, url_factory: UrlFactory) -> None:
    clock = FakeClock(MONDAY + 3 * HOUR)  # between two windows
    with stepped(data_dir, url_factory("sqlite"), cluster="synthetic:4x8", clock=clock) as c:
        store_of(c).create_project("weather", ts=clock.t, by=BY)
        store_of(c).create_reservation(
            Reservation("weather", RESERVED, MONDAY, MONDAY + 2 * HOUR, period_s=DAY,
                        projects=frozenset({"weather"})), ts=clock.t, by=BY)
        named = submit(c, workdir, whole_node("weather", 30, "--reservation=weather"))
        unknown = submit(c, workdir, whole_node("weather", 30, "--reservation=nope"))
        c.step()
        c.step()
        assert (job(c, named).state, job(c, named).reason) == (JobState.PENDING, "RESERVATION")
        live = c.live_view(named)
        assert live is not None and live["eta_ts"] == MONDAY + DAY  # its next window
        assert job(c, unknown).reason == "RESERVATION"
        clock.t = MONDAY + DAY + 0.25 * HOUR
        step_until(c, lambda: job(c, named).state is JobState.RUNNING, what="its start")
        assert nodes_of(c, [named]) <= set(RESERVED)


def test_maintenance_drains_its_nodes_ahead_of_its_start_and_shows_them_maint(
        data_dir: Path, workdir: Path, url_factory: UrlFactory) -> None:
    start = MONDAY + 10 * HOUR
    clock = FakeClock(start - HOUR)
    with stepped(data_dir, url_factory("sqlite"), cluster="synthetic:4x8", clock=clock) as c:
        store_of(c).create_reservation(
            Reservation("fw-update", ("node00001",), start, start + 2 * HOUR,
                        maintenance=True), ts=clock.t, by=BY)
        # Two hours would run into the maintenance: not on node00001.
        long = [submit(c, workdir, whole_node("others", 120)) for _ in range(4)]
        wait_running(c, long, 3)
        assert "node00001" not in nodes_of(c, long)
        (waiting,) = [i for i in long if job(c, i).state is JobState.PENDING]
        assert job(c, waiting).reason == "RESERVATION"
        # A job that ends before the maintenance still runs there.
        short = submit(c, workdir, whole_node("others", 30))
        step_until(c, lambda: job(c, short).state is JobState.RUNNING, what="its start")
        assert nodes_of(c, [short]) == {"node00001"}
        node = {n.name: n for n in c.nodes()}["node00001"]
        assert (node.state, node.maint_start_ts, node.reservation) == \
            ("allocated", start, None)
        clear(c)
        clock.t = start + 0.5 * HOUR  # in the maintenance: nobody at all
        node = {n.name: n for n in c.nodes()}["node00001"]
        assert (node.state, node.reservation) == ("maint", "fw-update")
        brief = [submit(c, workdir, whole_node("others", 10)) for _ in range(4)]
        wait_running(c, brief, 3)
        assert "node00001" not in nodes_of(c, brief)
