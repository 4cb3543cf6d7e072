"""Usage ledger (decay, continuous accrual) and the classic fair-share factor."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gefion.core.errors import InputError
from gefion.core.tenancy import Project
from gefion.core.usage import (
    DEFAULT_HALF_LIFE_S,
    FairShare,
    UsageLedger,
    accrual_weight,
    fairshare,
)

DAY = 86_400.0
H = 1_000.0  # a short half-life keeps the arithmetic readable


def ledger_with(usage: dict[tuple[str, str], float], *, half_life_s: float = H,
                as_of_s: float = 0.0) -> UsageLedger:
    """A ledger holding point charges (GPU-seconds) at ``as_of_s``."""
    ledger = UsageLedger(half_life_s=half_life_s, as_of_s=as_of_s)
    for (project, user), gpu_s in usage.items():
        ledger = ledger.charge(project, user, gpu_s, as_of_s, as_of_s)
    return ledger


# --- decay ----------------------------------------------------------------------------


@pytest.mark.parametrize(("elapsed_s", "left"), [
    pytest.param(0.0, 1.0, id="no-time-no-decay"),
    pytest.param(H, 0.5, id="one-half-life-halves-exactly"),
    pytest.param(2 * H, 0.25, id="two-half-lives-quarter"),
    pytest.param(H / 2, 2 ** -0.5, id="half-a-half-life"),
])
def test_decay_follows_the_half_life(elapsed_s: float, left: float) -> None:
    ledger = ledger_with({("p", "u"): 1000.0}).decayed_to(elapsed_s)
    assert ledger.project_usage("p") == pytest.approx(1000.0 * left, rel=1e-15)
    assert ledger.user_usage("p", "u") == pytest.approx(1000.0 * left, rel=1e-15)
    assert ledger.as_of_s == elapsed_s


def test_default_half_life_is_seven_days() -> None:
    ledger = ledger_with({("p", "u"): 8.0}, half_life_s=DEFAULT_HALF_LIFE_S)
    assert UsageLedger().half_life_s == 7 * DAY
    assert ledger.decayed_to(7 * DAY).project_usage("p") == 4.0


def test_infinite_half_life_never_decays() -> None:
    ledger = ledger_with({("p", "u"): 5.0}, half_life_s=math.inf).decayed_to(1e9)
    assert ledger.project_usage("p") == 5.0


def test_decaying_backwards_is_refused() -> None:
    ledger = UsageLedger(as_of_s=100.0)
    with pytest.raises(InputError, match="backwards"):
        ledger.decayed_to(99.0)


def test_ledger_is_immutable_and_updates_are_copies() -> None:
    empty = UsageLedger(half_life_s=H)
    charged = empty.charge("p", "u", 10.0, 0.0, 0.0)
    assert empty.total_usage() == 0.0
    assert charged.total_usage() == 10.0
    with pytest.raises(AttributeError):
        charged.as_of_s = 5.0  # type: ignore[misc]


def test_ledger_copies_the_mappings_it_is_given() -> None:
    projects = {"p": 1.0}
    ledger = UsageLedger(projects=projects)
    projects["p"] = 99.0
    assert ledger.project_usage("p") == 1.0


@pytest.mark.parametrize(("kwargs", "field"), [
    pytest.param({"gpu_s": -1.0}, "gpu_s", id="negative-usage"),
    pytest.param({"gpu_s": math.nan}, "gpu_s", id="nan-usage"),
    pytest.param({"start_s": 10.0, "end_s": 5.0}, "end", id="end-before-start"),
    pytest.param({"end_s": math.inf}, "start", id="infinite-end"),
])
def test_bad_charges_are_refused(kwargs: dict[str, float], field: str) -> None:
    args = {"gpu_s": 1.0, "start_s": 0.0, "end_s": 1.0} | kwargs
    with pytest.raises(InputError) as err:
        UsageLedger().charge("p", "u", args["gpu_s"], args["start_s"], args["end_s"])
    assert err.value.field == field


def test_bad_half_life_is_refused() -> None:
    with pytest.raises(InputError):
        UsageLedger(half_life_s=0.0)


# --- continuous accrual -----------------------------------------------------------------


@pytest.mark.parametrize(("start_s", "end_s", "as_of_s"), [
    pytest.param(0.0, H, H, id="one-half-life-long-ends-now"),
    pytest.param(0.0, 5 * H, 5 * H, id="five-half-lives-long"),
    pytest.param(100.0, 350.0, 2 * H, id="ended-before-now"),
    pytest.param(0.0, 1e-3, 10.0, id="very-short"),
])
def test_accrual_integral_matches_a_fine_numeric_sum(start_s: float, end_s: float,
                                                     as_of_s: float) -> None:
    gpu_s, steps = 3600.0, 20_000
    dt = (end_s - start_s) / steps
    numeric = math.fsum(gpu_s / steps * 2 ** (-(as_of_s - (start_s + (i + 0.5) * dt)) / H)
                        for i in range(steps))
    ledger = UsageLedger(half_life_s=H, as_of_s=as_of_s).charge("p", "u", gpu_s,
                                                                start_s, end_s)
    assert ledger.project_usage("p") == pytest.approx(numeric, rel=1e-8)


def test_one_half_life_of_steady_use_is_worth_one_over_two_ln2_of_it() -> None:
    # ∫_0^h 2^(-(h-t)/h) dt / h = 1 / (2 ln 2) ≈ 0.7213: less than charged, more than half.
    ledger = UsageLedger(half_life_s=H).charge("p", "u", 1.0, 0.0, H)
    assert ledger.project_usage("p") == pytest.approx(1 / (2 * math.log(2)), rel=1e-14)
    assert ledger.as_of_s == H


def test_charge_first_decays_the_ledger_to_the_interval_end() -> None:
    ledger = ledger_with({("p", "u"): 8.0}).charge("q", "v", 4.0, 2 * H, 2 * H)
    assert ledger.as_of_s == 2 * H
    assert ledger.project_usage("p") == 2.0
    assert ledger.project_usage("q") == 4.0
    assert ledger.total_usage() == 6.0


def test_late_charge_is_decayed_to_the_ledger_time() -> None:
    ledger = UsageLedger(half_life_s=H, as_of_s=3 * H).charge("p", "u", 8.0, H, H)
    assert ledger.as_of_s == 3 * H
    assert ledger.project_usage("p") == pytest.approx(2.0, rel=1e-15)


def test_zero_length_interval_is_a_point_charge() -> None:
    assert accrual_weight(5.0, 5.0, 5.0 + H, H) == 0.5


interval = st.tuples(
    st.sampled_from(["a", "b"]), st.sampled_from(["x", "y"]),
    st.floats(0.0, 1e6, allow_nan=False),    # gpu_s
    st.floats(0.0, 1e5, allow_nan=False),    # start_s
    st.floats(0.0, 5e4, allow_nan=False),    # duration_s
)


@settings(max_examples=200, deadline=None)
@given(charges=st.lists(interval, min_size=1, max_size=6), data=st.data(),
       half_life_s=st.floats(1e3, 1e7), extra_s=st.floats(0.0, 1e5))
def test_charges_commute(charges: list[tuple[str, str, float, float, float]],
                         data: st.DataObject, half_life_s: float, extra_s: float) -> None:
    shuffled = data.draw(st.permutations(charges))
    end = max(s + d for _, _, _, s, d in charges) + extra_s

    def apply(order: list[tuple[str, str, float, float, float]]) -> UsageLedger:
        ledger = UsageLedger(half_life_s=half_life_s)
        for project, user, gpu_s, start, duration in order:
            ledger = ledger.charge(project, user, gpu_s, start, start + duration)
        return ledger.decayed_to(end)

    one, two = apply(charges), apply(shuffled)
    for project in ("a", "b"):
        assert one.project_usage(project) == pytest.approx(two.project_usage(project),
                                                           rel=1e-9, abs=1e-9)
        for user in ("x", "y"):
            assert one.user_usage(project, user) == pytest.approx(
                two.user_usage(project, user), rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(gpu_s=st.floats(0.0, 1e6), start=st.floats(0.0, 1e5),
       duration=st.floats(1.0, 1e5), cut=st.floats(0.0, 1.0))
def test_splitting_an_interval_changes_nothing(gpu_s: float, start: float, duration: float,
                                               cut: float) -> None:
    mid, end = start + cut * duration, start + duration
    whole = UsageLedger(half_life_s=H).charge("p", "u", gpu_s, start, end)
    split = (UsageLedger(half_life_s=H)
             .charge("p", "u", gpu_s * cut, start, mid)
             .charge("p", "u", gpu_s * (1 - cut), mid, end))
    assert split.project_usage("p") == pytest.approx(whole.project_usage("p"),
                                                      rel=1e-9, abs=1e-12)


# --- fair share: projects -----------------------------------------------------------------


def factors(shares: dict[str, float], usage: dict[str, float]) -> Mapping[str, float]:
    projects = {name: Project(name, shares=s) for name, s in shares.items()}
    ledger = ledger_with({(p, "u"): u for p, u in usage.items()})
    return fairshare(projects, ledger, 0.0).projects


@pytest.mark.parametrize(("shares", "usage", "expected"), [
    pytest.param({"a": 1, "b": 1}, {}, {"a": 1.0, "b": 1.0}, id="no-usage-all-one"),
    pytest.param({"a": 1, "b": 1}, {"a": 50, "b": 50}, {"a": 0.5, "b": 0.5},
                 id="usage-equals-shares-gives-half"),
    pytest.param({"a": 1, "b": 3}, {"a": 25, "b": 75}, {"a": 0.5, "b": 0.5},
                 id="unequal-shares-used-in-proportion-give-half"),
    pytest.param({"a": 1, "b": 1}, {"a": 100}, {"a": 0.25, "b": 1.0},
                 id="one-project-used-everything"),
    pytest.param({"a": 1, "b": 1, "c": 2}, {"a": 100}, {"a": 2 ** -4, "b": 1.0, "c": 1.0},
                 id="quarter-share-used-everything"),
    pytest.param({"a": 0, "b": 1}, {}, {"a": 0.0, "b": 1.0}, id="zero-shares-zero-factor"),
])
def test_project_factor_is_two_to_the_minus_usage_over_shares(
        shares: dict[str, float], usage: dict[str, float], expected: dict[str, float]) -> None:
    assert factors(shares, usage) == pytest.approx(expected, rel=1e-12)


def test_project_over_its_share_ranks_below_one_under_it() -> None:
    f = factors({"over": 1, "under": 1}, {"over": 70, "under": 30})
    assert f["over"] < 0.5 < f["under"]


def test_project_only_in_the_ledger_takes_part_with_one_share() -> None:
    projects = {"a": Project("a", shares=1)}
    ledger = ledger_with({("a", "u"): 50.0, ("ghost", "v"): 50.0})
    fs = fairshare(projects, ledger, 0.0)
    assert fs.projects == pytest.approx({"a": 0.5, "ghost": 0.5})
    ghost = next(r for r in fs.rows() if r.project == "ghost" and r.user is None)
    assert (ghost.raw_shares, ghost.shares_norm) == (1.0, 0.5)


def test_no_projects_configured_gives_equal_shares() -> None:
    fs = fairshare({}, ledger_with({("a", "u"): 75.0, ("b", "v"): 25.0}), 0.0)
    assert fs.projects == pytest.approx({"a": 2 ** -1.5, "b": 2 ** -0.5})


def test_unknown_project_and_user_get_full_factor() -> None:
    fs = fairshare({}, UsageLedger(), 0.0)
    assert fs.factor("nobody", "nobody") == 1.0
    assert FairShare({}, {}).factor("p", "u") == 1.0


def test_decay_does_not_change_factors_but_does_change_raw_usage() -> None:
    projects = {"a": Project("a"), "b": Project("b")}
    ledger = ledger_with({("a", "u"): 80.0, ("b", "v"): 20.0})
    now, later = fairshare(projects, ledger, 0.0), fairshare(projects, ledger, 3 * H)
    assert later.projects == pytest.approx(now.projects, rel=1e-12)
    assert later.rows()[0].raw_usage_gpu_s == pytest.approx(10.0)
    assert now.rows()[0].raw_usage_gpu_s == 80.0


def test_factors_without_rows_are_the_factors_with_rows() -> None:
    projects = {"a": Project("a", shares=2, members=frozenset({"m"})), "b": Project("b")}
    ledger = ledger_with({("a", "u"): 80.0, ("a", "v"): 5.0, ("b", "w"): 20.0,
                          ("c", "x"): 7.0})
    full, lean = fairshare(projects, ledger, H), fairshare(projects, ledger, H, rows=False)
    assert (lean.projects, lean.users) == (full.projects, full.users)
    assert len(full.users) == 5 and full.rows() and not lean.rows()


def test_fairshare_refuses_a_ledger_from_the_future() -> None:
    with pytest.raises(InputError):
        fairshare({}, UsageLedger(as_of_s=10.0), 5.0)


# --- fair share: users ----------------------------------------------------------------------


def test_users_within_a_project() -> None:
    # a: S=1/2, U=1/2 -> F_a = 1/2. Users x (used all of a's) and y, z (members, no use):
    # S_user = 1/6; UE_x = 1/2 + (1/2 - 1/2)/3 = 1/2; UE_y = 0 + (1/2 - 0)/3 = 1/6.
    projects = {"a": Project("a", members=frozenset({"x", "y", "z"})), "b": Project("b")}
    ledger = ledger_with({("a", "x"): 50.0, ("b", "w"): 50.0})
    fs = fairshare(projects, ledger, 0.0)
    assert fs.factor("a", "x") == pytest.approx(2 ** -3)
    assert fs.factor("a", "y") == pytest.approx(0.5)
    assert fs.factor("a", "z") == pytest.approx(0.5)
    assert fs.factor("b", "w") == pytest.approx(0.5)  # a project's only user: its factor


def test_heavier_user_ranks_below_lighter_user_of_the_same_project() -> None:
    fs = fairshare({}, ledger_with({("a", "heavy"): 30.0, ("a", "light"): 10.0,
                                    ("b", "w"): 60.0}), 0.0)
    assert fs.factor("a", "heavy") < fs.factor("a", "light") < fs.projects["a"]


def test_user_factor_carries_the_project_standing() -> None:
    # Same personal usage, but b's project used far more than its share.
    fs = fairshare({}, ledger_with({("a", "x"): 10.0, ("a", "y"): 10.0,
                                    ("b", "x"): 10.0, ("b", "y"): 70.0}), 0.0)
    assert fs.factor("a", "x") > fs.factor("b", "x")


def test_user_never_seen_gets_the_project_factor() -> None:
    fs = fairshare({}, ledger_with({("a", "x"): 30.0, ("b", "w"): 10.0}), 0.0)
    assert fs.factor("a", "newcomer") == fs.projects["a"]


def test_rows_list_projects_then_their_users() -> None:
    projects = {"a": Project("a", shares=3, members=frozenset({"y"})), "b": Project("b")}
    fs = fairshare(projects, ledger_with({("a", "x"): 60.0, ("b", "w"): 40.0}), 0.0)
    assert [(r.project, r.user) for r in fs.rows()] == [
        ("a", None), ("a", "x"), ("a", "y"), ("b", None), ("b", "w")]
    a, x, y, b, _ = fs.rows()
    assert (a.raw_shares, a.shares_norm, a.usage_norm, a.effective_usage) == pytest.approx(
        (3.0, 0.75, 0.6, 0.6))
    assert a.factor == pytest.approx(2 ** -0.8)
    assert (x.shares_norm, x.usage_norm, x.effective_usage) == pytest.approx(
        (0.375, 0.6, 0.6))
    assert (y.raw_usage_gpu_s, y.effective_usage) == pytest.approx((0.0, 0.3))
    assert b.factor == pytest.approx(2 ** -1.6)


usage_map = st.dictionaries(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", "z"])),
    st.floats(0.0, 1e9), max_size=9)


@settings(max_examples=200, deadline=None)
@given(usage=usage_map, shares=st.dictionaries(st.sampled_from(["a", "b", "d"]),
                                               st.floats(0.0, 100.0), max_size=3))
def test_factors_are_between_zero_and_one(usage: dict[tuple[str, str], float],
                                          shares: dict[str, float]) -> None:
    projects = {n: Project(n, shares=s) for n, s in shares.items()}
    fs = fairshare(projects, ledger_with(usage), 0.0)
    for f in [*fs.projects.values(), *fs.users.values()]:
        assert 0.0 <= f <= 1.0
    for name, f in fs.projects.items():
        unused = all(u == 0 for (p, _), u in usage.items() if p == name)
        if unused and projects.get(name, Project(name)).shares > 0:
            assert f == 1.0


@settings(max_examples=200, deadline=None)
@given(usage=usage_map, shares=st.dictionaries(st.sampled_from(["a", "b", "d"]),
                                               st.floats(0.0, 100.0), max_size=3),
       members=st.lists(st.sampled_from(["x", "y", "m", "m"]), max_size=4))
def test_factors_alone_are_exactly_the_factors_of_the_rows(
        usage: dict[tuple[str, str], float], shares: dict[str, float],
        members: list[str]) -> None:
    # rows=False takes its own path (a replay's): the very same numbers, bit for bit,
    # with members the ledger has and has not seen, no usage, and shares of 0
    projects = {n: Project(n, shares=s, members=frozenset(members)) for n, s in shares.items()}
    ledger = ledger_with(usage)
    full, lean = fairshare(projects, ledger, 0.0), fairshare(projects, ledger, 0.0, rows=False)
    assert lean.projects == full.projects and list(lean.projects) == list(full.projects)
    assert lean.users == full.users and not lean.rows()


def test_charge_many_is_each_charge_in_turn() -> None:
    charges = [("a", "x", 100.0, 0.0, 50.0), ("b", "y", 30.0, 20.0, 400.0),
               ("a", "z", 7.0, 10.0, 10.0), ("a", "x", 5.0, 100.0, 300.0)]
    one_by_one = UsageLedger(half_life_s=200.0)
    for project, user, gpu_s, start_s, end_s in charges:
        one_by_one = one_by_one.charge(project, user, gpu_s, start_s, end_s)
    at_once = UsageLedger(half_life_s=200.0).charge_many(charges)
    assert at_once.as_of_s == one_by_one.as_of_s == 400.0
    assert at_once.projects == pytest.approx(one_by_one.projects, rel=1e-12)
    assert at_once.users == pytest.approx(one_by_one.users, rel=1e-12)
    assert UsageLedger().charge_many([]) == UsageLedger()
