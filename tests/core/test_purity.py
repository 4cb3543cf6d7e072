"""The core is pure (DESIGN.md, invariant 1): every module of ``src/gefion/core`` is read with
``ast`` and checked against the tables below. No I/O, no clock, no unseeded randomness, no
global state, and nothing from the bodies (twin, controller, CLI, formats).

A failure names the module, the line and the rule. If a rule blocks something the core truly
needs, change the table here, in review, with the reason beside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# -- the rules ------------------------------------------------------------------------------

#: Modules the core may not import (a dotted name also bans its submodules), and why.
FORBIDDEN_MODULES: dict[str, str] = {
    "os": "I/O and environment", "sys": "I/O and interpreter state", "io": "I/O",
    "pathlib": "files", "shutil": "files", "glob": "files", "fnmatch": "file names",
    "tempfile": "files", "fcntl": "files", "mmap": "files", "csv": "file formats",
    "json": "file formats", "pickle": "file formats", "shelve": "files",
    "sqlite3": "a database", "yaml": "file formats", "zipfile": "files",
    "tarfile": "files", "gzip": "files", "socket": "network", "ssl": "network",
    "http": "network", "urllib": "network", "requests": "network", "httpx": "network",
    "select": "I/O waiting", "selectors": "I/O waiting", "signal": "process signals",
    "subprocess": "processes", "multiprocessing": "processes", "threading": "threads",
    "concurrent": "threads and processes", "asyncio": "an event loop", "queue": "threads",
    "time": "the clock", "datetime": "the clock", "calendar": "the clock", "sched": "the clock",
    "random": "unseeded randomness", "secrets": "randomness", "uuid": "clock and randomness",
    "numpy.random": "unseeded randomness", "logging": "I/O", "warnings": "I/O to stderr",
    "importlib": "dynamic imports", "ctypes": "native calls", "atexit": "process state",
    "platform": "the host", "getpass": "the host", "builtins": "patching builtins",
}

#: Built-ins the core may not call.
FORBIDDEN_CALLS: dict[str, str] = {
    "open": "I/O", "print": "I/O", "input": "I/O", "breakpoint": "a debugger",
    "eval": "dynamic code", "exec": "dynamic code", "compile": "dynamic code",
    "__import__": "dynamic imports", "globals": "global state",
}

#: Methods that read or wait on a clock, whatever object they are called on.
CLOCK_METHODS: dict[str, str] = {
    name: "the clock" for name in (
        "time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
        "process_time", "process_time_ns", "clock_gettime", "now", "utcnow", "today",
        "sleep")
}

#: ``np.random`` in any use (a call, an import, an annotation): randomness belongs to the
#: twin, which seeds it. A core function that needs a generator takes one as an argument.
NUMPY_NAMES = frozenset({"numpy", "np"})

#: The core may import from these ``gefion`` packages only.
ALLOWED_GEFION = "gefion.core"

CORE = Path(__file__).resolve().parents[2] / "src" / "gefion" / "core"


# -- the checker ----------------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _forbidden_module(name: str) -> str | None:
    for banned, why in FORBIDDEN_MODULES.items():
        if name == banned or name.startswith(banned + "."):
            return f"imports {name} ({why})"
    if name.split(".")[0] == "gefion" and not (
            name == ALLOWED_GEFION or name.startswith(ALLOWED_GEFION + ".")):
        return f"imports {name} (the core imports nothing outside {ALLOWED_GEFION})"
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module of ``from ... import``, resolving relative imports."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def violations(source: str, module: str = "gefion.core.example",
               is_package: bool = False) -> list[str]:
    """Every rule ``source`` breaks, as ``line N: what``."""
    tree = ast.parse(source)
    found: list[str] = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"line {getattr(node, 'lineno', '?')}: {what}")

    numpy_aliases = set(NUMPY_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if why := _forbidden_module(alias.name):
                    flag(node, why)
                if alias.name == "numpy":
                    numpy_aliases.add(alias.asname or "numpy")
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            # `from gefion import twin` and `from numpy import random` import submodules, so
            # each name is checked as one too. The root `gefion` alone is no body: every
            # `gefion.core` import loads it.
            names = [f"{base}.{a.name}" for a in node.names]
            for name in names if base == "gefion" else [base, *names]:
                if why := _forbidden_module(name):
                    flag(node, why)
                    break
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                flag(node, f"calls {func.id}() ({FORBIDDEN_CALLS[func.id]})")
            elif isinstance(func, ast.Attribute) and func.attr in CLOCK_METHODS:
                flag(node, f"calls .{func.attr}() ({CLOCK_METHODS[func.attr]})")
        elif isinstance(node, ast.Global):
            flag(node, f"global {', '.join(node.names)} (global state)")
    for node in ast.walk(tree):  # after the imports, so every numpy alias is known
        if (isinstance(node, ast.Attribute) and node.attr == "random"
                and isinstance(node.value, ast.Name) and node.value.id in numpy_aliases):
            flag(node, f"uses {node.value.id}.random (unseeded randomness)")
    return sorted(set(found), key=lambda v: (int(v.split()[1].rstrip(":")), v))


# -- the core, module by module ---------------------------------------------------------------

CORE_MODULES = sorted(CORE.rglob("*.py"))


def test_the_core_is_where_we_think() -> None:
    # Guards the parametrisation below against silently checking nothing.
    assert (CORE / "decisions.py") in CORE_MODULES


@pytest.mark.parametrize("path", CORE_MODULES, ids=module_name)
def test_core_module_is_pure(path: Path) -> None:
    found = violations(path.read_text(encoding="utf-8"), module_name(path),
                       is_package=path.name == "__init__.py")
    assert not found, f"{module_name(path)} breaks the core's purity:\n  " + "\n  ".join(found)


# -- the checker itself -----------------------------------------------------------------------

def test_checker_flags_a_clock_a_body_and_a_file() -> None:
    source = "import time\nfrom gefion.twin import x\nopen('f')\n"
    assert violations(source) == [
        "line 1: imports time (the clock)",
        "line 2: imports gefion.twin (the core imports nothing outside gefion.core)",
        "line 3: calls open() (I/O)",
    ]


@pytest.mark.parametrize(("source", "expected"), [
    ("import os.path", "imports os.path"),
    ("import datetime as dt", "imports datetime"),
    ("from time import monotonic", "imports time"),
    ("from random import Random", "imports random"),
    ("from numpy import random", "imports numpy.random"),
    ("from numpy.random import default_rng", "imports numpy.random"),
    ("import numpy as xp\nxp.random.default_rng(1)", "uses xp.random"),
    ("import numpy as np\ndef f(rng: np.random.Generator) -> None: ...", "uses np.random"),
    ("from gefion import twin", "imports gefion.twin"),
    ("from gefion.formats.plan import load_plan", "imports gefion.formats.plan"),
    ("from ... import cli", "imports gefion.cli"),
    ("from ...control.store import Store", "imports gefion.control.store"),
    ("print('hi')", "calls print()"),
    ("eval('1')", "calls eval()"),
    ("import time as t\nt.perf_counter()", "calls .perf_counter()"),
    ("clock.now()", "calls .now()"),
    ("def f():\n    global CACHE\n    CACHE = 1", "global CACHE"),
], ids=lambda v: v.splitlines()[-1] if "\n" in v else v)
def test_checker_flags(source: str, expected: str) -> None:
    found = violations(source, "gefion.core.policies.example")
    assert any(expected in v for v in found), found


@pytest.mark.parametrize("source", [
    "import math, heapq, bisect, itertools, functools, re",
    "from collections.abc import Mapping\nfrom dataclasses import dataclass",
    "import numpy as np\nnp.zeros(3)",
    "from gefion.core.jobs import Job",
    "from gefion.core import errors",
    "from . import base",
    "from ..snapshot import Snapshot",
    "def f(now: float) -> float:\n    return now + 1",
    "result.now",  # reading a field called `now` is no clock; calling `.now()` is
])
def test_checker_allows(source: str) -> None:
    assert violations(source, "gefion.core.policies.example") == []
