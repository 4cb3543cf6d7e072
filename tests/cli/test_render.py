"""Formatting helpers of ``gefion.cli.render``."""

from __future__ import annotations

import pytest

from gefion.cli.render import format_duration, format_planned


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"),
    (59.4, "59s"),
    (60, "1m"),
    (3599, "59m"),
    (3600, "1h00m"),
    (3900, "1h05m"),
    (86_400, "1d00h"),
    (2 * 86_400 + 4 * 3600 + 59, "2d04h"),
    (-90, "-1m"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("planned", "now", "text"), [
    (None, 0, "-"),
    (7200.0, 0, "7200 (in 2h00m)"),
    (150.5, 100, "150.5 (in 50s)"),
])
def test_format_planned(planned: float | None, now: float, text: str) -> None:
    assert format_planned(planned, now) == text
