"""The ``gefion`` command.

Start-up must stay fast (``gefion --help``, and scripts that call ``gefion`` in a loop): this
module and the command modules it imports at the top import only typer and the small error
module; everything heavy (YAML, numpy, the scheduler, Rich tables) is imported inside the
command that needs it. ``tests/cli/test_plan_cli.py`` checks that.

Adding a command group is two lines here::

    from gefion.cli.twin import twin_app
    app.add_typer(twin_app, name="twin")

It then runs under the central error handler of :mod:`gefion.cli.errors` like every other
command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gefion.cli.admin import admin_app
from gefion.cli.errors import GefionGroup
from gefion.cli.jobs import register as register_job_commands
from gefion.cli.login import login, logout, whoami
from gefion.cli.plan import plan
from gefion.cli.report import report_app
from gefion.cli.share import share
from gefion.cli.twin import twin_app
from gefion.cli.up import up

app = typer.Typer(
    name="gefion",
    cls=GefionGroup,
    help="Gefion: the control plane of a sovereign AI supercomputer.",
    no_args_is_help=True,
    add_completion=False,
    # Expected errors never reach a traceback (GefionGroup); an unexpected one is a bug, and
    # a plain traceback is what a bug report needs.
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from gefion import __version__

        typer.echo(f"gefion {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.",
                     callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Gefion: the control plane of a sovereign AI supercomputer."""
    # A callback also keeps `plan` a subcommand: a Typer app with one command and no callback
    # would collapse into that command (`gefion JOBS.yaml`).


app.command("plan")(plan)
app.command("up")(up)
app.add_typer(twin_app, name="twin")
register_job_commands(app)
app.add_typer(admin_app, name="admin")
app.add_typer(report_app, name="report")
app.command("login")(login)
app.command("logout")(logout)
app.command("whoami")(whoami)
app.command("share")(share)


if __name__ == "__main__":
    app(prog_name="gefion")
