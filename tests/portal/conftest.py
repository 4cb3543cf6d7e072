"""Fixtures of the portal's browser tests: a real ``gefion up --cluster gefion`` and a real
headless Chromium (Debian's ``chromium``, driven by Playwright; never a downloaded browser).

One server and one browser per module; each test gets fresh browser contexts (their own
cookies), signed in as an admin unless it asks otherwise, whose console errors and uncaught
exceptions fail the test. Screenshots go to ``build/portal-screenshots/`` (docs/portal.md),
never into the source tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gefion.client import login_name
from gefion.core.errors import GefionError
from gefion.core.reservations import Reservation
from gefion.core.tenancy import Grant
from gefion.store import Store
from tests.twin.test_run import small_csv

CHROMIUM = Path(os.environ.get("GEFION_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "portal-screenshots"
VIEWPORT = {"width": 1440, "height": 900}
ME = login_name()
#: A user of project ``bio`` only (no Unix account needed: they submit nothing).
MEMBER = "portal-member"
DAY_S = 86_400
#: The nodes of the test's daily reservation.
RESERVED = tuple(f"dgx{n}" for n in range(181, 192))
#: The report folder the twin page must show (written by a real ``gefion twin run``).
REPORT = "small-gefion"

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # the dev extra is not installed
    sync_playwright = None  # type: ignore[assignment]


def add_people(store: Store, reserve: tuple[str, ...] = ()) -> tuple[str, str]:
    """Projects ``default``, ``climate`` and ``bio``; an admin named as the user running the
    tests (jobs run as them) and :data:`MEMBER` in ``bio``; a grant of ``default``; nodes
    ``reserve`` booked daily for an hour from two hours from now (``forecast``), and a
    maintenance window next month. Their API tokens (admin, member). What already exists
    (a site's own admin) is kept."""
    now = time.time()

    def keep(make: Callable[[], object]) -> None:
        with contextlib.suppress(GefionError):  # there already
            make()

    keep(lambda: store.create_user(ME, ts=now, by="tests", role="admin"))
    for project in ("default", "climate", "bio"):
        keep(lambda project=project: store.create_project(project, ts=now, by="tests"))
    keep(lambda: store.create_user(MEMBER, ts=now, by="tests"))
    keep(lambda: store.add_member("bio", MEMBER, ts=now, by="tests"))
    keep(lambda: store.create_grant(Grant("default-1", "default", 500.0,
                                          valid_from_s=now - DAY_S, valid_to_s=now + 30 * DAY_S,
                                          funder="Novo Nordisk Foundation"), ts=now, by="tests"))
    if reserve:
        start = now - DAY_S + 2 * 3600  # today's window is two hours away: no job is kept out
        keep(lambda: store.create_reservation(Reservation(
            "forecast", reserve, start, start + 3600, period_s=DAY_S,
            projects=frozenset({"climate"})), ts=now, by="tests"))
        keep(lambda: store.create_reservation(Reservation(
            "maintenance", reserve[:1], now + 30 * DAY_S, now + 31 * DAY_S, maintenance=True),
            ts=now, by="tests"))
    return (store.create_token(ME, ts=now, by="tests")[1],
            store.create_token(MEMBER, ts=now, by="tests")[1])


@dataclass
class Portal:
    """A running ``gefion up``: its ``url``, an ``http`` client on it (the admin's token), a
    ``workdir`` open to jobs, the ``reports`` folder the twin page lists, and the tokens of
    the admin and of :data:`MEMBER`."""

    url: str
    http: httpx.Client
    workdir: Path
    reports: Path
    admin_token: str
    member_token: str
    jobs: list[int] = field(default_factory=list)

    def submit(self, body: str, *argv: str, name: str = "portal-test") -> int:
        """Submit a batch script of ``body`` lines through the API; its job id."""
        script = f"#!/bin/bash\n#SBATCH -J {name}\n#SBATCH --time=5\n{body}\n"
        answer = self.http.post("/v1/jobs", json={
            "script": script, "argv": list(argv), "cwd": str(self.workdir), "user": ME,
            "env": {"PATH": "/usr/bin:/bin"}})
        assert answer.status_code == 201, answer.text
        job_id: int = answer.json()["job_ids"][0]
        self.jobs.append(job_id)
        return job_id

    def job(self, job_id: int) -> dict[str, Any]:
        answer = self.http.get(f"/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def wait(self, job_id: int, done: Callable[[dict[str, Any]], bool],
             timeout_s: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while not done(job := self.job(job_id)):
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        return job

    def cancel_all(self) -> None:
        for job_id in self.jobs:
            if self.job(job_id)["end_ts"] is None:
                self.http.post(f"/v1/jobs/{job_id}/cancel")


def _read_url(proc: subprocess.Popen[str], timeout_s: float = 60) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not any("Ctrl-C" in line for line in lines):
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "gefion up failed:\n" + "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        lines.append(line)
    return next(line.split()[1] for line in lines if line.strip().startswith("API"))


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    """``gefion up --cluster gefion`` (191 emulated nodes) with a twin report to show."""
    data = Path(tempfile.mkdtemp(prefix="gefion-portal-test-", dir="/tmp"))
    data.chmod(0o755)
    workdir, reports, state = data / "work", data / "reports", data / "gefion"
    workdir.mkdir()
    gefion = [sys.executable, "-m", "gefion.cli.main"]
    twin = subprocess.Popen([*gefion, "twin", "run", "--trace", str(small_csv(data)),
                             "--cluster", "synthetic:2x8", "--seed", "1", "--quiet",
                             "--report", str(reports / REPORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    up = subprocess.Popen([*gefion, "up", "--data-dir", str(state), "--port", "0",
                           "--cluster", "gefion", "--kill-grace", "1",
                           "--reports-dir", str(reports)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL)
    try:
        url = _read_url(up)
        store = Store.open(f"sqlite:///{state / 'gefion.db'}")  # beside the server: SQLite WAL
        try:
            admin_token, member_token = add_people(store, RESERVED)
        finally:
            store.close()
        _, err = twin.communicate(timeout=120)
        assert twin.returncode == 0, err
        with httpx.Client(base_url=url, timeout=30,
                          headers={"Authorization": f"Bearer {admin_token}"}) as http:
            site = Portal(url, http, workdir, reports, admin_token, member_token)
            try:
                yield site
            finally:
                site.cancel_all()
    finally:
        if twin.poll() is None:
            twin.kill()
            twin.communicate()
        up.send_signal(signal.SIGINT)
        try:
            up.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            up.communicate()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from the system (CI installs Debian's package: .ci/run)."""
    if sync_playwright is None or not CHROMIUM.exists():
        why = f"needs the playwright package and {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    profile = tempfile.mkdtemp(prefix="gefion-chromium-")
    with sync_playwright() as pw:
        # A fresh profile each run: launch() makes a temporary user-data-dir of its own.
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True, env={**os.environ, "HOME": profile})
        try:
            yield chromium
        finally:
            chromium.close()
    shutil.rmtree(profile, ignore_errors=True)


class Browsing:
    """Fresh browser contexts at 1440×900 for one test, each a separate visitor; every
    console error and uncaught exception in any of them is kept in ``problems``."""

    def __init__(self, browser: Browser, portal: Portal) -> None:
        self._browser, self._portal = browser, portal
        self._contexts: list[Any] = []
        self.problems: list[str] = []

    def page(self, token: str | None = None) -> Page:
        """A page of a new visitor, signed in with ``token`` (None: not signed in)."""
        context = self._browser.new_context(viewport=VIEWPORT, base_url=self._portal.url)
        self._contexts.append(context)
        context.on("page", self._watch)
        if token is not None:
            answer = context.request.post("/portal/login", form={"token": token},
                                          max_redirects=0)
            assert answer.status == 303, answer.text()
        return context.new_page()

    def allow(self, text: str) -> None:
        """Forget the problems that mention ``text`` (an answer the test asked for)."""
        self.problems = [p for p in self.problems if text not in p]

    def _watch(self, tab: Page) -> None:
        tab.on("console", lambda m: self.problems.append(f"console: {m.text} ({m.location})")
               if m.type == "error" else None)
        tab.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def browsing(browser: Browser, portal: Portal) -> Iterator[Browsing]:
    """Visitors for the test; it fails on any console error or uncaught exception."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    visits = Browsing(browser, portal)
    try:
        yield visits
        assert visits.problems == [], visits.problems
    finally:
        visits.close()


@pytest.fixture
def page(browsing: Browsing, portal: Portal) -> Page:
    """A page of a visitor signed in as the admin."""
    return browsing.page(portal.admin_token)


def screenshot(tab: Page, name: str) -> Path:
    """``build/portal-screenshots/<name>.png`` of the viewport (1440×900)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    tab.screenshot(path=str(path))
    return path
