"""Job arrays: ranges, steps, lists, '%' limits, MaxArraySize, and the canonical form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gefion.slurm.arrays import ArraySpec
from gefion.slurm.errors import BadValue


@pytest.mark.parametrize(("text", "indices", "limit"), [
    pytest.param("0-15:4%2", (0, 4, 8, 12), 2, id="range-step-limit"),
    pytest.param("1,3,5-7", (1, 3, 5, 6, 7), None, id="list-and-range"),
    pytest.param("0-9%2", tuple(range(10)), 2, id="range-limit"),
    pytest.param("7", (7,), None, id="single"),
    pytest.param("5,1,3,1", (1, 3, 5), None, id="sorted-and-unique"),
    pytest.param("0-1000", tuple(range(1001)), None, id="up-to-default-max"),
    pytest.param("1-10:3", (1, 4, 7, 10), None, id="step-reaching-the-end"),
    pytest.param("1-9:20", (1,), None, id="step-past-the-end"),
])
def test_parse(text: str, indices: tuple[int, ...], limit: int | None) -> None:
    spec = ArraySpec.parse(text)
    assert spec.indices == indices
    assert spec.max_concurrent == limit


@pytest.mark.parametrize(("text", "why"), [
    pytest.param("0-10:0", "step 0 must be at least 1", id="zero-step"),
    pytest.param("9-1", "range 9-1 runs backwards", id="descending"),
    pytest.param("0-1001", "index 1001 is above the maximum 1000", id="above-max-array-size"),
    pytest.param("0-9%0", "limit after '%' must be at least 1", id="zero-limit"),
    pytest.param("0-9%x", "must be a whole number", id="word-limit"),
    pytest.param("0-9%", "must be a whole number", id="empty-limit"),
    pytest.param("", "'' is not N, N-M or N-M:STEP", id="empty"),
    pytest.param("1,,2", "'' is not N", id="empty-item"),
    pytest.param("a-b", "'a-b' is not N", id="letters"),
    pytest.param("5:2", "'5:2' is not N", id="step-without-range"),
    pytest.param("-3", "'-3' is not N", id="negative"),
    pytest.param("1-2-3", "'1-2-3' is not N", id="double-range"),
])
def test_errors_name_the_specification(text: str, why: str) -> None:
    with pytest.raises(BadValue) as info:
        ArraySpec.parse(text)
    assert f"invalid array specification {text!r}" in str(info.value)
    assert why in str(info.value)


def test_max_array_size_is_a_parameter() -> None:
    assert ArraySpec.parse("0-4999", max_array_size=5000).indices[-1] == 4999
    with pytest.raises(BadValue, match="MaxArraySize=10"):
        ArraySpec.parse("10", max_array_size=10)


def test_arrays_disabled() -> None:
    with pytest.raises(BadValue, match="disabled"):
        ArraySpec.parse("1", max_array_size=0)


def test_a_huge_range_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(BadValue, match="above the maximum"):
        ArraySpec.parse("0-999999999999")


@pytest.mark.parametrize(("text", "canonical"), [
    pytest.param("0-15:4%2", "0-12:4%2", id="step-range"),
    pytest.param("1,3,5-7", "1,3,5-7", id="runs-before-progressions"),
    pytest.param("1,3,5,7,8", "1-5:2,7-8", id="progression-stops-before-a-run"),
    pytest.param("0,1", "0-1", id="pair"),
    pytest.param("0,10", "0,10", id="far-pair-listed"),
    pytest.param("3", "3", id="single"),
    pytest.param("0-9%2", "0-9%2", id="plain-range"),
])
def test_str_is_canonical(text: str, canonical: str) -> None:
    assert str(ArraySpec.parse(text)) == canonical


@given(st.sets(st.integers(0, 1000), min_size=1), st.none() | st.integers(1, 50))
def test_str_round_trips(indices: set[int], limit: int | None) -> None:
    spec = ArraySpec(tuple(sorted(indices)), limit)
    assert ArraySpec.parse(str(spec)) == spec


def test_constructor_checks_its_invariants() -> None:
    with pytest.raises(BadValue, match="sorted, unique"):
        ArraySpec((3, 1))
    with pytest.raises(BadValue, match="at least one index"):
        ArraySpec(())
