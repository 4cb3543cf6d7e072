"""What a cycle's memo rules out (core.memo): a job asking at least as much as one that
failed, in every dimension and of the same class key, fails too; :class:`Ruled` keeps that
for a row of candidates as they fail in turn."""

from __future__ import annotations

import random

import numpy as np

from gefion.core.memo import FailureMemo, Ruled

KEY = ("plain",)


def _dominated(shape: tuple[int, int, int], failures: list[tuple[int, int, int]]) -> bool:
    return any(all(a >= b for a, b in zip(shape, f, strict=True)) for f in failures)


def test_ruled_out_is_what_some_failure_dominates_as_candidates_fail_in_turn() -> None:
    rng = random.Random(3)
    skipped_some = 0
    for _ in range(400):
        n = rng.randint(1, 12)
        shapes = [(rng.randint(1, 8), rng.randint(1, 3), rng.choice([60, 600, 3600]))
                  for _ in range(n)]
        open_ = [rng.random() < 0.8 for _ in range(n)]
        memo, before = FailureMemo(), []
        for _ in range(rng.randint(0, 2)):  # failures from before the row
            f = (rng.randint(1, 8), rng.randint(1, 3), rng.choice([60, 600, 3600]))
            memo.add("start", KEY, *f)
            before.append(f)
        memo.add("start", ("other key",), 1, 1, 1)  # another key rules out nothing here
        g, count, d = (np.array(col, dtype=np.int64) for col in zip(*shapes, strict=True))
        ruled = Ruled(memo, "start", KEY, np.array(open_), g, count, d)
        failed: list[int] = []
        k = 0
        while True:
            nxt = ruled.next_open(k)
            for j in range(k, nxt):  # skipped: open, and beaten by a failure ahead of it
                assert open_[j] and _dominated(
                    shapes[j], before + [shapes[i] for i in failed if open_[i]])
                skipped_some += 1
            if nxt == n:
                break
            # not skipped: closed, or no failure ahead of it dominates it
            assert not open_[nxt] or not _dominated(
                shapes[nxt], before + [shapes[i] for i in failed if open_[i]])
            if rng.random() < 0.6:  # it failed: the ones behind it that it dominates go
                ruled.failed(nxt)
                failed.append(nxt)
            k = nxt + 1
    assert skipped_some > 100


def test_a_failure_rules_out_only_those_behind_it_that_ask_at_least_as_much() -> None:
    memo = FailureMemo()
    g = np.array([4, 8, 2, 8, 4], dtype=np.int64)
    count = np.array([1, 1, 1, 2, 1], dtype=np.int64)
    d = np.array([600, 600, 600, 600, 60], dtype=np.int64)
    ruled = Ruled(memo, "start", KEY, np.array([True, True, True, False, True]), g, count, d)
    assert ruled.next_open(0) == 0
    ruled.failed(0)  # 4 GPUs × 1 node for 600 s failed
    # 8 × 1 × 600 asks more: out; 2 × 1 asks fewer GPUs: open; 8 × 2 is not open (another
    # key); 4 × 1 for 60 s asks less time: open
    assert ruled.out.tolist() == [False, True, False, False, False]
    assert ruled.next_open(1) == 2
    ruled.failed(2)  # 2 × 1 × 600 failed: now everything behind it that is open asks more
    assert ruled.out.tolist() == [False, True, False, False, False]  # 60 s < 600 s: open
    assert ruled.next_open(3) == 3 and ruled.next_open(5) == 5


def test_the_memo_answers_as_the_failures_added_whatever_it_keeps() -> None:
    # It keeps only the smallest failures (the others say nothing more): failed() still
    # answers exactly "some failure added so far is at most this shape in every dimension"
    rng = random.Random(5)
    for _ in range(200):
        memo, added = FailureMemo(), []
        for _ in range(rng.randint(1, 8)):
            f = (rng.randint(1, 8), rng.randint(1, 3), rng.choice([60, 600, 3600]))
            if not memo.failed("start", KEY, *f):  # as the cycle adds: only new failures
                memo.add("start", KEY, *f)
                added.append(f)
            for _ in range(10):
                shape = (rng.randint(1, 8), rng.randint(1, 3), rng.choice([60, 600, 3600]))
                assert memo.failed("start", KEY, *shape) == _dominated(shape, added)
                got = memo.failed_all("start", KEY, *(np.array([x]) for x in shape))
                assert bool(got[0]) == _dominated(shape, added)
