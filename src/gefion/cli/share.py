"""``gefion share``: fair share per project and user, like Slurm's ``sshare``, and each
project's grants with the hours left and when they run out at the current burn rate.

::

    $ gefion share
    PROJECT USER RAW SHARES NORM SHARES RAW USAGE GPU-H NORM USAGE EFFECTIVE USAGE FAIRSHARE
    nlp               2    0.666667           12.5    0.714286        0.714286  0.476...

    PROJECT METERED GRANTED GPU-H LEFT GPU-H BURN GPU-H/H RUNS OUT            EXPIRES
    nlp     yes           10000.0     7512.3         42.0 2025-06-09T14:02:11 N/A

Raw usage is decayed (half-life: the site's ``fairshare_half_life_s``); the factors are
those the scheduler uses, recomputed every ``priority_calc_period_s``. Members see their
projects, operators and admins every project (``GET /v1/share``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gefion.cli.jobs import JsonOption, ServerOption, TokenOption, _client, _echo_json


def share(project: Annotated[str | None, typer.Option(
              "-A", "--account", "--project", metavar="PROJECT",
              help="Only this project.")] = None,
          json_output: JsonOption = False, server: ServerOption = None,
          token: TokenOption = None) -> None:
    """Fair share (as sshare) and grant standing of the projects you may see."""
    with _client(server, token) as client:
        answer = client.share(project)
    if json_output:
        _echo_json(answer)
        return
    from gefion.cli.jobs import _print, _table, _text

    shares = _table("PROJECT", "USER", "RAW SHARES", "NORM SHARES", "RAW USAGE GPU-H",
                    "NORM USAGE", "EFFECTIVE USAGE", "FAIRSHARE",
                    right=("RAW SHARES", "NORM SHARES", "RAW USAGE GPU-H", "NORM USAGE",
                           "EFFECTIVE USAGE", "FAIRSHARE"))
    for r in answer["rows"]:
        shares.add_row(_text(r["project"] if r["user"] is None else ""),
                       _text(r["user"] or ""), f"{r['raw_shares']:g}",
                       f"{r['norm_shares']:.6f}", f"{r['raw_usage_gpu_s'] / 3600:.2f}",
                       f"{r['norm_usage']:.6f}", f"{r['effective_usage']:.6f}",
                       f"{r['fairshare']:.6f}")
    parts: list[Any] = [shares]
    if answer["grants"]:
        parts += ["", _grants_table(answer["grants"])]
    _print(*parts)


def _grants_table(grants: list[dict[str, Any]]) -> Any:
    from gefion.cli.jobs import _table, _text, when

    table = _table("PROJECT", "METERED", "GRANTED GPU-H", "CHARGED GPU-H", "LEFT GPU-H",
                   "BURN GPU-H/H", "RUNS OUT", "EXPIRES",
                   right=("GRANTED GPU-H", "CHARGED GPU-H", "LEFT GPU-H", "BURN GPU-H/H"))
    for g in grants:
        runs_out = "exhausted" if g["exhausted"] else \
            "never" if g["runs_out_ts"] is None else when(g["runs_out_ts"])
        table.add_row(_text(g["project"]), "yes" if g["metered"] else "no",
                      f"{g['granted_gpu_hours']:.1f}", f"{g['charged_gpu_hours']:.1f}",
                      f"{g['left_gpu_hours']:.1f}", f"{g['burn_gpu_hours_per_hour']:.2f}",
                      runs_out, when(g["expires_ts"]))
    return table
