"""``srun`` and ``scontrol`` on a job's PATH: small ``#!/bin/sh`` wrappers around
:mod:`gefion.executor.srun` and :mod:`gefion.executor.scontrol`.

The executor writes them into ``run_dir/bin`` when it starts (no package data to install).
They run Python isolated (``-I``: the job's PYTHONPATH or PYTHONHOME cannot break them) and
without site-packages (``-S``: faster, and all they import is the standard library and
``gefion``, found at :data:`PACKAGE_ROOT`). The controller's interpreter may live where the
job's user cannot go (a virtual environment under ``/root``), so the system's
``/usr/bin/python3`` is the fallback.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import gefion

#: The directory whose ``gefion`` package the shims and spawned supervisors import.
PACKAGE_ROOT = str(Path(gefion.__file__).resolve().parent.parent)
TOOLS = ("srun", "scontrol")

_SHIM = """#!/bin/sh
# Gefion's {tool} for jobs of the local executor; written by gefion.executor, do not edit.
# The controller's Python first; a job's user may not be allowed to run it.
for py in {python} /usr/bin/python3; do
    if [ -x "$py" ]; then
        exec "$py" -I -S -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); \\
from gefion.executor.{tool} import main; sys.exit(main(sys.argv[1:]))' {root} "$@"
    fi
done
echo "{tool}: error: no Python interpreter that this user may run" >&2
exit 1
"""


def write_shims(directory: Path) -> None:
    """(Re)write the shims in ``directory`` (mode 0755) when their text changed."""
    directory.mkdir(exist_ok=True)
    directory.chmod(0o755)
    for tool in TOOLS:
        text = _SHIM.format(tool=tool, python=shlex.quote(sys.executable),
                            root=shlex.quote(PACKAGE_ROOT))
        path = directory / tool
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(path)
