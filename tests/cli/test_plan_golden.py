"""`gefion plan --json` on scenario files, against golden files (the real command)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).parent / "scenarios"
GOLDEN = Path(__file__).parents[1] / "core" / "golden"


def plan(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-m", "gefion.cli.main", "plan", *args, "--json"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(proc.stdout)
    return data


@pytest.mark.parametrize(("depth", "golden"), [("1", "easy.json"),
                                               ("unlimited", "conservative.json")])
def test_plan_command_reproduces_the_hand_computed_backfill(depth: str, golden: str) -> None:
    got = plan(str(SCENARIOS / "easy-vs-conservative.yaml"), "--depth", depth)
    assert got == json.loads((GOLDEN / golden).read_text())
