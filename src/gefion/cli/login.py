"""``gefion login``, ``gefion logout``, ``gefion whoami``: your API token on this machine.

``login`` reads a token (from a hidden prompt, or stdin when piped: never from the command
line, which other users can see), checks it with the server, and keeps it in
``~/.config/gefion/token`` (0600), where every ``gefion`` command finds it
(:mod:`gefion.credentials`).
"""

from __future__ import annotations

import sys

import typer

from gefion.cli.jobs import JsonOption, ServerOption, TokenOption, _client, _echo_json


def login(server: ServerOption = None) -> None:
    """Keep your API token for the gefion command (asked for, not echoed)."""
    from gefion.credentials import save_token

    if sys.stdin is not None and sys.stdin.isatty():
        token = typer.prompt("API token (gfn_...)", hide_input=True)
    else:
        token = (sys.stdin.readline() if sys.stdin is not None else "").strip()
    with _client(server, token.strip()) as client:
        me = client.me()  # a refused token is reported, and not kept
    path = save_token(token)
    typer.echo(f"signed in as {me['name']} ({me['role']}); token kept in {path}")


def logout() -> None:
    """Forget the token that gefion login kept."""
    import os

    from gefion.credentials import user_token_path

    path = user_token_path()
    try:
        os.remove(path)
    except FileNotFoundError:
        typer.echo("no token was kept")
        return
    typer.echo(f"token removed from {path} (it stays valid: revoke it with "
               "'gefion admin token revoke ID')")


def whoami(json_output: JsonOption = False, server: ServerOption = None,
           token: TokenOption = None) -> None:
    """Who your token says you are: name, role, projects, default project."""
    with _client(server, token) as client:
        me = client.me()
    if json_output:
        _echo_json(me)
        return
    projects = ", ".join(f"{p} ({r})" for p, r in sorted(me["projects"].items())) or "none"
    typer.echo(f"{me['name']} ({me['role']})\nprojects: {projects}\n"
               f"default project: {me['default_project'] or '-'}")
