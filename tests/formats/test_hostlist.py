"""Slurm hostlist expressions: expand, compress, and errors that name the expression."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gefion.core.errors import TopologyError
from gefion.formats.hostlist import compress, expand, expand_all


@pytest.mark.parametrize(("expr", "names"), [
    pytest.param("dgx001", ["dgx001"], id="plain-name"),
    pytest.param("dgx[001-004]", ["dgx001", "dgx002", "dgx003", "dgx004"], id="padded-range"),
    pytest.param("dgx[001-004,010]", ["dgx001", "dgx002", "dgx003", "dgx004", "dgx010"],
                 id="range-and-single"),
    pytest.param("a[1-2]b[3-4]", ["a1b3", "a1b4", "a2b3", "a2b4"],
                 id="two-groups-leftmost-slowest"),
    pytest.param("dgx001,dgx[003-005]", ["dgx001", "dgx003", "dgx004", "dgx005"],
                 id="top-level-commas"),
    pytest.param("n[8-11]", ["n8", "n9", "n10", "n11"], id="unpadded-grows-in-width"),
    pytest.param("n[098-101]", ["n098", "n099", "n100", "n101"], id="padding-from-low-bound"),
    pytest.param("rack[1-2]-gpu[1]", ["rack1-gpu1", "rack2-gpu1"], id="suffix-after-group"),
    pytest.param(" x1 , x2 ", ["x1", "x2"], id="spaces-around-names"),
    pytest.param("b,a,b", ["b", "a", "b"], id="order-and-duplicates-kept"),
])
def test_expand(expr: str, names: list[str]) -> None:
    assert expand(expr) == names


def test_expand_32_nodes_of_a_scalable_unit() -> None:
    names = expand("dgx[001-032]")
    assert len(names) == 32 and names[0] == "dgx001" and names[-1] == "dgx032"


def test_expand_all_concatenates() -> None:
    assert expand_all(["a[1-2]", "b"]) == ["a1", "a2", "b"]


@pytest.mark.parametrize(("expr", "why"), [
    pytest.param("dgx[010-001]", "range 010-001 runs backwards", id="backwards-range"),
    pytest.param("dgx[01-", "'[' is never closed", id="unclosed-bracket"),
    pytest.param("dgx[a-b]", "[a-b] is not a list of numbers", id="letters-in-range"),
    pytest.param("dgx[1-2-3]", "[1-2-3] is not a list of numbers", id="double-dash"),
    pytest.param("dgx[1-]", "[1-] is not a list of numbers", id="open-range"),
    pytest.param("", "it is empty", id="empty"),
    pytest.param("   ", "it is empty", id="blank"),
    pytest.param("dgx[]", "empty brackets", id="empty-brackets"),
    pytest.param("a,,b", "an empty name between commas", id="empty-name"),
    pytest.param("dgx]1", "']' without '['", id="stray-close"),
    pytest.param("a[[1]]", "brackets cannot nest", id="nested"),
    pytest.param("a b", "contains white space", id="space-inside-name"),
    pytest.param("n[0-9999999]", "more than 1,000,000 names", id="absurdly-large"),
])
def test_malformed_expressions_name_the_expression(expr: str, why: str) -> None:
    with pytest.raises(TopologyError) as info:
        expand(expr)
    assert f"bad hostlist expression {expr!r}" in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize(("names", "expr"), [
    pytest.param([f"dgx{i:03d}" for i in range(1, 33)], "dgx[001-032]", id="one-unit"),
    pytest.param(["dgx001", "dgx002", "dgx004", "dgx005", "dgx009"], "dgx[001-002,004-005,009]",
                 id="gaps"),
    pytest.param(["dgx005"], "dgx005", id="single-name-has-no-brackets"),
    pytest.param(["n2", "n1", "n10", "n3"], "n[1-3,10]", id="unpadded-sorted"),
    pytest.param(["dgx001", "dgx100"], "dgx[001,100]", id="wide-number-joins-padded-group"),
    pytest.param(["n01", "n1"], "n01,n1", id="padded-and-unpadded-apart"),
    pytest.param(["login", "dgx001", "dgx002"], "login,dgx[001-002]", id="name-without-digits"),
    pytest.param(["a1b", "a2b", "a1c"], "a[1-2]b,a1c", id="suffixes-group-apart"),
    pytest.param(["x1", "x1", "x2"], "x[1-2]", id="duplicates-dropped"),
    pytest.param([], "", id="nothing"),
])
def test_compress(names: list[str], expr: str) -> None:
    assert compress(names) == expr


name_parts = st.tuples(st.sampled_from(["dgx", "node", "a-", "r1n"]),
                       st.integers(0, 250), st.sampled_from([0, 2, 3]),
                       st.sampled_from(["", "-ib"]))


@given(st.lists(name_parts, max_size=40))
def test_expanding_a_compressed_list_gives_the_same_names(
        parts: list[tuple[str, int, int, str]]) -> None:
    names = [f"{prefix}{number:0{width}d}{suffix}" for prefix, number, width, suffix in parts]
    if not names:
        return
    assert sorted(expand(compress(names))) == sorted(set(names))
