"""``gefion twin run`` through the console entry point answers without Typer
(gefion.cli.fasttwin), exactly as the Typer command answers — output, files, errors — and
leaves every command line it is not sure of to Typer."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from gefion.cli.fasttwin import FLAGS, OPTIONS, parse
from gefion.cli.twin import twin_app
from gefion.cli.twinrun import run_command
from tests.twin.test_run import small_csv

#: Prints on stderr, at exit, whether Typer was ever imported.
TELL_TYPER = ("import atexit, sys\n"
              "atexit.register(lambda: print('typer loaded' if 'typer' in sys.modules "
              "else 'no typer', file=sys.stderr))\n"
              "from gefion.cli.fastqueue import main\n"
              "sys.argv[0] = 'gefion'\n"
              "main()\n")


def entry(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The console script (``gefion = gefion.cli.fastqueue:main``), as a shell runs it."""
    return subprocess.run([sys.executable, "-c", TELL_TYPER, *map(str, args)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
                          timeout=120, check=False)


def typer_app(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The same command line through the Typer app only."""
    return subprocess.run([sys.executable, "-m", "gefion.cli.main", *map(str, args)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
                          timeout=120, check=False)


def test_the_lean_parser_reads_the_typer_commands_options_with_its_defaults() -> None:
    command = typer.main.get_command(twin_app).commands["run"]  # type: ignore[attr-defined]
    defaults = {name: p.default for name, p in inspect.signature(run_command).parameters.items()}
    seen: set[str] = set()
    for param in command.params:
        for flag in param.opts:
            if param.is_flag:
                assert FLAGS[flag] == param.name, flag
            else:
                assert OPTIONS[flag][0] == param.name, flag
                kind = OPTIONS[flag][1]
                assert (kind is list) == bool(param.multiple), flag
            seen.add(flag)
        if not param.required:
            assert defaults[param.name] == param.default, param.name
    assert seen == set(OPTIONS) | set(FLAGS)  # and no flag Typer does not know


def test_the_lean_parser_leaves_what_it_is_not_sure_of_to_typer() -> None:
    assert parse(["--trace", "t", "--load=1.5", "-q", "--set", "a=1", "--set=b=2"]) == {
        "trace": "t", "load": 1.5, "quiet": True, "settings": ["a=1", "b=2"]}
    assert parse(["--trace=x", "--seed", "-3", "--json", "-"]) == {
        "trace": "x", "seed": -3, "json_out": Path("-")}
    for args in (["--trace", "t", "--help"], ["--trace", "t", "--lode", "2"],
                 ["--trace", "t", "--load", "abc"], ["--trace", "t", "--seed", "1.5"],
                 ["--trace", "t", "--load", "1", "--load", "2"], ["--trace"],
                 ["--cluster", "gefion"], ["--trace", "t", "extra"], ["-q=1", "--trace", "t"],
                 ["--trace", "t", "--check", "--check"]):
        assert parse(args) is None, args


def test_twin_run_answers_without_typer_as_typer_does(tmp_path: Path) -> None:
    trace = small_csv(tmp_path)
    common = ("--trace", trace, "--cluster", "synthetic:2x8", "--seed", "1", "--policy",
              "gefion", "--set", "weights.fairshare=0")
    lean = entry("twin", "run", *common, "--json", tmp_path / "lean.json")
    full = typer_app("twin", "run", *common, "--json", tmp_path / "full.json")
    assert lean.returncode == full.returncode == 0, (lean.stderr, full.stderr)
    assert lean.stderr.splitlines()[-1] == "no typer"
    assert lean.stdout == full.stdout and "avg JCT" in lean.stdout
    assert lean.stderr.splitlines()[:-1] == [
        line.replace("full.json", "lean.json") for line in full.stderr.splitlines()]
    assert (tmp_path / "lean.json").read_text() == (tmp_path / "full.json").read_text()
    piped = entry("twin", "run", *common, "--json=-", "-q")
    assert json.loads(piped.stdout) == json.loads((tmp_path / "lean.json").read_text())


@pytest.mark.parametrize("bad,needle", [
    (("--cluster", "synthetic:0x8"), "cluster"),
    (("--depth", "deep"), "--depth"),
    (("--set", "nonsense"), "set"),
])
def test_bad_input_on_the_lean_path_is_the_error_typer_gives(
        tmp_path: Path, bad: tuple[str, ...], needle: str) -> None:
    args = ("twin", "run", "--trace", small_csv(tmp_path), *bad)
    lean, full = entry(*args), typer_app(*args)
    assert lean.returncode == full.returncode == 2
    assert lean.stderr.splitlines()[-1] == "no typer"
    message = lean.stderr.splitlines()[:-1]
    assert message == full.stderr.splitlines() and len(message) == 1
    assert message[0].startswith("error: ") and needle in message[0]
    assert lean.stdout == full.stdout == ""


def test_what_the_lean_parser_leaves_goes_to_typer(tmp_path: Path) -> None:
    typo = entry("twin", "run", "--trace", small_csv(tmp_path), "--load", "much")
    assert typo.returncode == 2 and "Invalid value" in typo.stderr
    assert typo.stderr.splitlines()[-1] == "typer loaded"
    shown = entry("twin", "run", "--help")
    assert shown.returncode == 0 and "--policy" in shown.stdout
