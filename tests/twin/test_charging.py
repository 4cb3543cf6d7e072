"""The twin's usage charger charges exactly what each run used, period by period."""

from __future__ import annotations

import random

import pytest

from gefion.core.usage import UsageLedger
from gefion.twin.charging import UsageCharger

#: (time, "start" | "stop" | "charge", job id, project, user, rate)
Event = tuple[float, str, str, str, str, float]


def _naive(events: list[Event]) -> UsageLedger:
    """Every run charged on its own: at each charge, from its start or the last charge."""
    ledger = UsageLedger(half_life_s=3_600.0)
    since: dict[str, float] = {}
    for now, kind, job_id, project, user, rate in events:
        if kind == "start":
            since[job_id] = now
        elif kind == "stop":
            began = since.pop(job_id)
            if now > began:
                ledger = ledger.charge(project, user, rate * (now - began), began, now)
        else:
            for run, began in since.items():
                p, u, r = _who[run]
                if now > began:
                    ledger = ledger.charge(p, u, r * (now - began), began, now)
                since[run] = now
    return ledger


_who: dict[str, tuple[str, str, float]] = {}


def _events(seed: int) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    now, n = 0.0, 0
    live: list[str] = []
    for _ in range(400):
        now += rng.choice([0.0, 7.0, 40.0, 300.0])
        roll = rng.random()
        if roll < 0.45 or not live:
            job = f"j{seed}-{n}"
            n += 1
            live.append(job)
            _who[job] = (rng.choice("ab"), rng.choice("xyz"), rng.choice([1, 2, 8]) * 0.5)
            events.append((now, "start", job, *_who[job]))
        elif roll < 0.8:
            job = live.pop(rng.randrange(len(live)))
            events.append((now, "stop", job, *_who[job]))
        else:
            events.append((now, "charge", "", "", "", 0.0))
    events.append((now + 10.0, "charge", "", "", "", 0.0))
    return events


@pytest.mark.parametrize("seed", [3, 4])
def test_charges_match_charging_every_run_on_its_own(seed: int) -> None:
    events = _events(seed)
    charger, ledger = UsageCharger(), UsageLedger(half_life_s=3_600.0)
    for at, kind, job_id, project, user, rate in events:
        if kind == "start":
            charger.started(job_id, project, user, rate, at)
        elif kind == "stop":
            charger.stopped(job_id, project, user, rate, at)
        else:
            ledger = charger.charge_into(ledger, at)
    expected = _naive(events)
    assert ledger.as_of_s == expected.as_of_s
    assert ledger.users.keys() == expected.users.keys()
    for key, usage in expected.users.items():
        assert ledger.users[key] == pytest.approx(usage, rel=1e-9)
    assert sum(expected.users.values()) > 0


def test_a_run_of_rate_zero_charges_nothing() -> None:
    charger = UsageCharger()
    charger.started("j", "a", "x", 0.0, 0.0)
    charger.stopped("j", "a", "x", 0.0, 100.0)
    assert charger.charge_into(UsageLedger(), 200.0).projects == {}
