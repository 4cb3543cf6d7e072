"""Every job that does not start carries a structured reason (table-driven)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from gefion.core.jobs import Dependency, JobState
from gefion.core.reservations import Reservation
from gefion.core.tenancy import QOS, Grant, Project
from gefion.core.topology import NodeState, preset
from gefion.core.usage import UsageLedger
from tests.core.builders import cycle, finished, pending, reasons, running

SMALL = preset("synthetic:4x8:2")  # node00001..4, su1 = 1-2, su2 = 3-4
FULL = {f"node0000{i}": 8 for i in range(1, 5)}


@dataclass
class Case:
    name: str
    jobs: list[Any]
    expected: dict[str, str]
    kw: dict[str, Any] = field(default_factory=dict)
    cluster: Any = SMALL


CASES = [
    Case("array task limit (%2) reached",
         [running("t0", {"node00001": 1}, array_id="A", array_limit=2),
          running("t1", {"node00001": 1}, array_id="A", array_limit=2),
          pending("t2", 1, array_id="A", array_limit=2, submit=1),
          pending("u0", 1, array_id="B", array_limit=1, submit=2),
          pending("u1", 1, array_id="B", array_limit=1, submit=3)],
         {"t2": "ARRAY_LIMIT", "u1": "ARRAY_LIMIT"}),
    Case("held", [pending("j", 8, held=True)], {"j": "HELD"}),
    Case("resources when the cluster is full",
         [running("r", FULL), pending("j", 8)], {"j": "RESOURCES"}),
    Case("priority when free GPUs are planned for a job ahead",
         [running("r", {"node00001": 8, "node00002": 8, "node00003": 8}, 100),
          pending("big", 32, 100, submit=0), pending("long", 8, 1000, submit=1)],
         {"big": "RESOURCES", "long": "PRIORITY"}),
    Case("dependency on a running job",
         [running("r", {"node00001": 8}),
          pending("j", 8, depends_on=Dependency.parse("afterok:r"))],
         {"j": "DEPENDENCY"}),
    Case("afterok on a failed job can never be met",
         [finished("f", JobState.FAILED, 1),
          pending("j", 8, depends_on=Dependency.parse("afterok:f"))],
         {"j": "DEPENDENCY_NEVER"}),
    Case("afternotok on a completed job can never be met",
         [finished("f", JobState.COMPLETED),
          pending("j", 8, depends_on=Dependency.parse("afternotok:f"))],
         {"j": "DEPENDENCY_NEVER"}),
    Case("singleton waits for the running one of the same name and user",
         [running("r", {"node00001": 8}, name="train", user="u",
                  depends_on=Dependency.parse("singleton")),
          pending("j", 8, name="train", user="u", depends_on=Dependency.parse("singleton"))],
         {"j": "DEPENDENCY"}),
    Case("grant exhausted",
         [pending("j", 8, project="lab")], {"j": "GRANT_EXHAUSTED"},
         {"projects": {"lab": Project("lab", metered=True)},
          "grants": [Grant("g1", "lab", 10.0)], "charged_gpu_s": {"lab": 36_000.0}}),
    Case("QOS time limit",
         [pending("j", 8, 7200, qos="short")], {"j": "QOS_LIMIT"},
         {"qos": {"normal": QOS("normal"), "short": QOS("short", max_time_limit_s=3600)}}),
    Case("project GPU limit counts running jobs",
         [running("r", {"node00001": 8}, project="lab"), pending("j", 8, project="lab")],
         {"j": "PROJECT_LIMIT"}, {"projects": {"lab": Project("lab", max_gpus=12)}}),
    Case("nodes down",
         [pending("j", 32)], {"j": "NODES_DOWN"}, {},
         SMALL.with_states({"node00004": NodeState.DOWN})),
    Case("reservation keeps others off its nodes",
         [running("r", {"node00001": 8, "node00002": 8}), pending("j", 16, project="other")],
         {"j": "RESERVATION"},
         {"reservations": [Reservation("wx", ("node00003", "node00004"), 0, 7200,
                                       projects=frozenset({"weather"}))]}),
    Case("a job waiting for its reservation window",
         [pending("j", 8, 600, project="weather", reservation="wx")], {"j": "RESERVATION"},
         {"reservations": [Reservation("wx", ("node00003",), 3600, 7200)]}),
    Case("unknown reservation",
         [pending("j", 8, reservation="nope")], {"j": "RESERVATION"}),
    Case("request too large for the cluster",
         [pending("j", 40)], {"j": "UNSATISFIABLE"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reason(case: Case) -> None:
    _, result = cycle(case.cluster, case.jobs, **case.kw)
    got = reasons(result)
    assert {k: got.get(k) for k in case.expected} == case.expected


def test_topology_reason_named_when_only_one_unit_is_required() -> None:
    jobs = [running("r", {"node00001": 8, "node00003": 8}),
            pending("j", 16, same_su="required")]
    _, result = cycle(SMALL, jobs)
    assert reasons(result)["j"] == "TOPOLOGY"


def test_planned_start_is_given_where_the_plan_has_one() -> None:
    jobs = [running("r", FULL, 500), pending("j", 8, 100)]
    _, result = cycle(SMALL, jobs, 100.0)
    v = result.verdict("j")
    assert v is not None and v.planned_start_s == 500.0


def test_priority_factors_are_visible_for_every_pending_job() -> None:
    jobs = [running("r", FULL), pending("a", 8, submit=0), pending("b", 16, submit=50)]
    _, result = cycle(SMALL, jobs, 100.0)
    a, b = result.factors["a"], result.factors["b"]
    assert a.age > b.age and b.size > a.size
    assert a.priority == pytest.approx(
        1000 * a.age + 10_000 * a.fairshare + 5000 * a.qos + 500 * a.size + 1000 * a.grant)


def test_published_factors_made_a_column_at_a_time_match_each_jobs_own() -> None:
    """``PriorityTable.rounded`` (what the controller publishes) gives each job's factors
    rounded, in the order asked, and None for a job that is not in the table."""
    from gefion.core.priority import FACTOR_NAMES, PriorityTable

    jobs = [running("r", FULL), pending("a", 8, submit=0), pending("b", 16, submit=50),
            pending("c", 2, submit=70)]
    _, result = cycle(SMALL, jobs, 100.0)
    table = result.factors
    assert isinstance(table, PriorityTable)
    out = table.rounded(["c", "nope", "a", "b"], digits=3)
    assert out[1] is None
    for job_id, got in zip("cab", [out[0], out[2], out[3]], strict=True):
        f = table[job_id]
        assert got == {name: round(getattr(f, name), 3) for name in FACTOR_NAMES}
    assert table.rounded([]) == []


def test_a_strict_queue_names_its_barrier_and_a_backfilling_one_does_not() -> None:
    jobs = [running("r", {"node00001": 4, "node00002": 4, "node00003": 4}),
            pending("first", 4, submit=0), pending("head", 16, submit=1),
            pending("behind", 1, submit=2)]
    _, strict = cycle(SMALL, jobs, 10.0, policy="fifo")
    assert [s.job_id for s in strict.starts] == ["first"]
    assert strict.barrier == ("head", 2, 8)  # everyone ahead started; nobody behind tried
    _, easy = cycle(SMALL, jobs, 10.0, policy="fifo-backfill")
    assert easy.barrier is None
    held = [*jobs, pending("held", 1, submit=-1, held=True)]  # set aside ahead of the head
    _, strict_held = cycle(SMALL, held, 10.0, policy="fifo")
    assert strict_held.barrier is None


@pytest.mark.parametrize("policy", ["fifo", "fifo-backfill", "gefion", "las"])
def test_held_jobs_keep_their_place_and_change_nothing_for_the_others(policy: str) -> None:
    """Held jobs are decided as blocks (runs of them in priority order): each says HELD at
    its place in the priority order, and the other jobs' verdicts and starts are exactly
    those of the same queue without the held jobs — before and after the planning depth."""
    others = [running("r", {"node00001": 8, "node00002": 8}), running("s", {"node00003": 4})]
    queue = [pending(f"j{k}", [4, 8, 16, 1][k % 4], submit=float(k),
                     held=(k % 7 in (2, 3) or 40 <= k < 60)) for k in range(120)]
    free = [j for j in queue if not j.held]
    _, with_held = cycle(SMALL, others + queue, 500.0, policy=policy)
    _, without = cycle(SMALL, others + free, 500.0, policy=policy)
    assert [s.job_id for s in with_held.starts] == [s.job_id for s in without.starts]
    assert [v for v in with_held.pending if v.reason.value != "HELD"] == list(without.pending)
    held_ids = {j.id for j in queue if j.held}
    assert {v.job_id for v in with_held.pending if v.reason.value == "HELD"} == held_ids
    if policy.startswith("fifo"):  # priority = submit order: held ones sit at their place
        ids = [v.job_id for v in with_held.pending]
        assert ids == sorted(ids, key=lambda i: int(i[1:]))


DAY = 86_400.0


def _hog_and_fresh(now: float) -> dict[str, Any]:
    """Project "hog" used a great deal; "fresh" nothing."""
    ledger = UsageLedger().charge("hog", "u", 5e9, 0.0, now)
    return {"projects": {"hog": Project("hog"), "fresh": Project("fresh")}, "ledger": ledger}


def test_a_starving_job_ranks_above_fair_share_and_is_planned_first() -> None:
    # The hog's one-node job has waited six days, the fresh one an hour: fair share alone
    # would keep the hog behind for as long as the imbalance lasts; after five days of
    # waiting it goes first.
    now = 10 * DAY
    people = _hog_and_fresh(now)
    jobs = [running("r", FULL, 3600, start=now - 60),
            pending("old", 8, 3600, submit=now - 6 * DAY, project="hog"),
            pending("new", 8, 3600, submit=now - 3600, project="fresh")]
    _, result = cycle(SMALL, jobs, now, **people)
    old, new = result.factors["old"], result.factors["new"]
    assert old.fairshare < new.fairshare
    assert [v.job_id for v in result.pending] == ["old", "new"]
    assert old.priority == pytest.approx(17_500 + 1.0)  # above any job not starving
    assert result.verdict("old").planned_start_s == pytest.approx(now - 60 + 3600)
    younger = [jobs[0], pending("old", 8, 3600, submit=now - 4 * DAY, project="hog"),
               jobs[2]]  # four days: not starving yet, fair share decides
    _, early = cycle(SMALL, younger, now, **people)
    assert [v.job_id for v in early.pending] == ["new", "old"]
    exactly = [jobs[0], pending("old", 8, 3600, submit=now - 5 * DAY, project="hog"),
               jobs[2]]  # five days to the second (the only threshold): it starves now
    _, on_time = cycle(SMALL, exactly, now, **people,
                       params={"weights": {"gang_starve_after_s": None}})
    assert [v.job_id for v in on_time.pending] == ["old", "new"]
    assert on_time.factors["old"].priority == pytest.approx(17_500.0)
    _, patient = cycle(SMALL, jobs, now, **people,
                       params={"weights": {"starve_after_s": None}})
    assert [v.job_id for v in patient.pending] == ["new", "old"]
    assert patient.factors["old"].priority < patient.factors["new"].priority


def test_a_large_gang_starves_sooner_and_starving_jobs_go_by_how_long_they_starved() -> None:
    # The hog's two-node gang and one-node job have both waited four days. On this
    # four-node cluster two nodes make a large gang (gang_min_nodes=2): it starves after
    # three days, the one-node job not yet (five).
    now = 10 * DAY
    people = _hog_and_fresh(now)
    large = {"weights": {"gang_min_nodes": 2}}
    jobs = [running("r", FULL, 3600, start=now - 60),
            pending("solo", 8, 3600, submit=now - 4 * DAY, project="hog"),
            pending("gang", 16, 3600, submit=now - 4 * DAY, project="hog"),
            pending("new", 8, 3600, submit=now - 3600, project="fresh")]
    _, result = cycle(SMALL, jobs, now, **people, params=large)
    assert [v.job_id for v in result.pending] == ["gang", "new", "solo"]
    assert result.factors["gang"].priority == pytest.approx(17_500 + 1.0)
    # A one-node job that waited 5.5 days has starved half a day: the gang, a day, goes
    # first although it waited less.
    later = [*jobs[:3], pending("older", 8, 3600, submit=now - 5.5 * DAY, project="hog")]
    _, result = cycle(SMALL, later, now, **people, params=large)
    assert [v.job_id for v in result.pending][:2] == ["gang", "older"]
    # By default a gang is large from 8 nodes: two nodes wait behind fair share, and so
    # does every gang with gang_starve_after_s None.
    for params in ({}, {"weights": {"gang_min_nodes": 2, "gang_starve_after_s": None}}):
        _, same = cycle(SMALL, jobs, now, **people, params=params)
        assert same.pending[0].job_id == "new"
        assert same.factors["gang"].priority < 17_500
