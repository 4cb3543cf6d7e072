"""``gefion plan JOBS.yaml``: one offline scheduling cycle — the debugging tool and the
driver of golden tests.

It does exactly what the two bodies do each cycle (build the snapshot with the one builder,
call the one cycle function), only from a file and once, so what it prints is what the
controller and the twin would decide. The file format is docs/plan-format.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gefion.core.errors import InputError  # tiny; the error handler imports it anyway

if TYPE_CHECKING:
    from gefion.core.decisions import CycleResult


def plan(
    jobs: Annotated[
        Path,
        typer.Argument(metavar="JOBS.yaml", show_default=False,
                       help="Cluster, time and jobs to plan (docs/plan-format.md)."),
    ],
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print the result as JSON (the stable contract) only."),
    ] = False,
    policy: Annotated[
        str | None,
        typer.Option("--policy", metavar="NAME", show_default=False,
                     help="Policy to use instead of the file's (fifo, fifo-backfill, las, "
                          "gefion). The file's policy parameters apply only to its own "
                          "policy."),
    ] = None,
    depth: Annotated[
        str | None,
        typer.Option("--depth", metavar="N", show_default=False,
                     help="Reservation depth of the backfill: 0 = none, 1 = EASY, a larger "
                          "N plans N jobs ahead, 'unlimited' = conservative."),
    ] = None,
) -> None:
    """Run one scheduling cycle over JOBS.yaml: placements, preemptions, reasons, ETAs."""
    from gefion.core.policies import parse_depth

    result = compute_plan(jobs, policy=policy, depth=parse_depth(depth))
    if json_output:
        import json

        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    from gefion.cli.render import print_plan

    print_plan(result)


def compute_plan(path: Path, *, policy: str | None = None,
                 depth: int | None = None) -> CycleResult:
    """Load ``path``, build the snapshot and run one cycle at the file's ``now``.

    ``policy`` replaces the file's policy; the file's ``policy_params`` are kept only when the
    name stays the same, since parameters of one policy may mean nothing to another.
    ``depth`` sets the policy's reservation-depth parameter (UNLIMITED: conservative).
    """
    # Checked here for a message in the usual "file: what" form; the loader may still meet an
    # OSError (permissions), which the central handler reports the same way.
    if not path.exists():
        raise InputError("no such file", source=str(path))
    if path.is_dir():
        raise InputError("is a directory, not a plan file", source=str(path))

    from gefion.formats.plan import load_plan

    spec = load_plan(path)  # the file first: bad input fails before the scheduler loads

    from gefion.core.cycle import run_cycle
    from gefion.core.policies import UNLIMITED, get_policy
    from gefion.core.snapshot import build_snapshot

    name = policy or spec.policy
    params = dict(spec.policy_params) if name == spec.policy else {}
    if depth is not None:
        params["depth"] = None if depth == UNLIMITED else depth
    chosen = get_policy(name, **params)
    snapshot = build_snapshot(
        spec.cluster, spec.jobs, spec.now,
        reservations=spec.reservations, projects=spec.projects, qos=spec.qos,
        grants=spec.grants, charged_gpu_s=spec.charged_gpu_s,
    )
    result: CycleResult = run_cycle(snapshot, spec.now, chosen)
    return result
