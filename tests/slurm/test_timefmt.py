"""Slurm time limits: every --time format, the unlimited spellings, and refusals."""

from __future__ import annotations

import pytest

from gefion.slurm.errors import BadValue
from gefion.slurm.timefmt import format_time_limit, parse_time_limit


@pytest.mark.parametrize(("text", "seconds"), [
    pytest.param("90", 5_400, id="minutes"),
    pytest.param("90:30", 5_430, id="minutes:seconds"),
    pytest.param("1:30:00", 5_400, id="hours:minutes:seconds"),
    pytest.param("2-12", 216_000, id="days-hours"),
    pytest.param("2-12:30", 217_800, id="days-hours:minutes"),
    pytest.param("2-12:30:15", 217_815, id="days-hours:minutes:seconds"),
    pytest.param("0:30", 30, id="seconds-kept-exactly"),
    pytest.param("1:90:00", 9_000, id="fields-not-range-checked-as-in-slurm"),
    pytest.param(" 5 ", 300, id="surrounding-space"),
])
def test_formats(text: str, seconds: int) -> None:
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize("text", [
    pytest.param("UNLIMITED", id="unlimited"),
    pytest.param("infinite", id="infinite-any-case"),
    pytest.param("-1", id="minus-one"),
    pytest.param("0", id="zero-means-no-limit"),
    pytest.param("0-0:0:0", id="zero-in-any-form"),
])
def test_no_limit_is_none(text: str) -> None:
    assert parse_time_limit(text) is None


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param("1h", id="unit-suffix"),
    pytest.param("1:2:3:4", id="four-fields"),
    pytest.param("1-2:3:4:5", id="day-and-four-fields"),
    pytest.param("1-", id="trailing-dash"),
    pytest.param("-5", id="negative"),
    pytest.param("1.5", id="fraction"),
    pytest.param("1--2", id="double-dash"),
    pytest.param("١٢", id="non-ascii-digits"),
])
def test_bad_input_names_the_value(text: str) -> None:
    with pytest.raises(BadValue) as info:
        parse_time_limit(text)
    assert f"invalid time limit {text!r}" in str(info.value)
    assert "days-hours:minutes:seconds" in str(info.value)


@pytest.mark.parametrize(("seconds", "text"), [
    pytest.param(None, "UNLIMITED", id="unlimited"),
    pytest.param(59, "00:00:59", id="under-a-minute"),
    pytest.param(5_400, "01:30:00", id="under-a-day-has-no-day-part"),
    pytest.param(86_400, "1-00:00:00", id="one-day"),
    pytest.param(217_815, "2-12:30:15", id="days-and-clock"),
])
def test_format(seconds: int | None, text: str) -> None:
    assert format_time_limit(seconds) == text


def test_format_refuses_negative() -> None:
    with pytest.raises(BadValue, match="cannot be negative"):
        format_time_limit(-1)


@pytest.mark.parametrize("seconds", [1, 59, 60, 3_599, 86_399, 86_400, 1_000_000])
def test_format_round_trips(seconds: int) -> None:
    assert parse_time_limit(format_time_limit(seconds)) == seconds
