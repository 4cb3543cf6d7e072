"""``gefion admin``: users, projects, members, tokens, QOS, grants, reservations and the
audit trail, through the API (the same routes, the same rules: an admin does everything,
an operator books reservations, a project lead manages their project's members).

::

    gefion admin project add nlp --shares 2
    gefion admin user add ana --default-project nlp
    gefion admin member add nlp ana --role lead
    gefion admin token create ana --name laptop --expires 30d   # printed once
    gefion admin grant add nlp --gpu-hours 50000 --funder EuroHPC --to 2026-01-01
    gefion admin reservation add forecast --nodes 'dgx[001-016]' --start 02:00 \\
        --duration 4h --daily --projects weather

Listings have ``--json`` (the API's objects). Times are taken as ``gefion history`` takes
them (``2025-05-01T13:00``, ``13:00``, ``now+2hours``, epoch seconds) and shown local.
``bootstrap-token`` is the way back in when no admin token is left: it opens the database
directly (so it needs the rights to), not the API.

Imports stay light (typer only) until a command runs: ``gefion admin --help`` is fast.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gefion.cli.errors import GefionGroup
from gefion.cli.jobs import JsonOption, ServerOption, TokenOption, _client, _echo_json
from gefion.core.errors import InputError

if TYPE_CHECKING:
    from gefion.client import Client

admin_app = typer.Typer(cls=GefionGroup, no_args_is_help=True, add_completion=False,
                        help="Manage users, projects, members, tokens, QOS, grants and "
                             "reservations (admins; see docs/access.md).")
user_app = typer.Typer(no_args_is_help=True, help="Users: add, set, list.")
project_app = typer.Typer(no_args_is_help=True, help="Projects: add, list.")
member_app = typer.Typer(no_args_is_help=True, help="Project members: add, remove, list.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens: create, list, revoke.")
qos_app = typer.Typer(no_args_is_help=True, help="QOS: add, list.")
grant_app = typer.Typer(no_args_is_help=True, help="GPU-hour grants: add, list.")
reservation_app = typer.Typer(no_args_is_help=True,
                              help="Advance reservations: add, list, delete.")
for _name, _app in (("user", user_app), ("project", project_app), ("member", member_app),
                    ("token", token_app), ("qos", qos_app), ("grant", grant_app),
                    ("reservation", reservation_app)):
    admin_app.add_typer(_app, name=_name)

Name = Annotated[str, typer.Argument(show_default=False)]
Csv = Annotated[str | None, typer.Option(metavar="A,B,...", show_default=False)]
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


def duration_s(text: str, *, field: str) -> float:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or plain seconds, in seconds."""
    m = _DURATION.fullmatch(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise InputError(f"not a duration: {text!r} (90d, 12h, 30m, 45s, 2w)", field=field)
    return float(m.group(1)) * _UNIT_S[(m.group(2) or "s").lower()]


def _time(text: str | None, field: str) -> float | None:
    import time

    from gefion.cli.jobs import parse_when

    return None if text is None else parse_when(text, field=field, now=time.time())


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _show(rows: list[dict[str, Any]], columns: list[tuple[str, str]], as_json: bool,
          right: tuple[str, ...] = ()) -> None:
    """``rows`` as JSON, or as a table of ``columns`` (header, key)."""
    if as_json:
        _echo_json(rows)
        return
    from gefion.cli.jobs import _print, _table, _text, when

    table = _table(*(h for h, _ in columns), right=right, wrap=("DESCRIPTION", "NODES"))
    for row in rows:
        cells = []
        for _, key in columns:
            value = row.get(key)
            if key.endswith("_ts"):
                value = "-" if value is None else when(value)
            elif isinstance(value, list):
                value = ",".join(map(str, value))
            elif isinstance(value, dict):
                value = ",".join(f"{k}({v})" for k, v in value.items())
            elif isinstance(value, bool):
                value = "yes" if value else ""
            cells.append(_text("-" if value is None else value))
        table.add_row(*cells)
    _print(table)


def _with(server: str | None, token: str | None) -> Client:
    return _client(server, token)


# -- users ------------------------------------------------------------------------------

@user_app.command("add")
def user_add(name: Name,
             role: Annotated[str, typer.Option(help="admin, operator or user.")] = "user",
             default_project: Annotated[str | None, typer.Option(
                 "--default-project", metavar="PROJECT",
                 help="Where jobs without -A go.")] = None,
             server: ServerOption = None, token: TokenOption = None) -> None:
    """Add a user (their name is their Unix login: jobs run as it)."""
    with _with(server, token) as client:
        user = client.create_user(name, role=role, default_project=default_project)
    typer.echo(f"user {user['name']} added ({user['role']})")


@user_app.command("set")
def user_set(name: Name,
             role: Annotated[str | None, typer.Option(help="admin, operator or user.")] = None,
             default_project: Annotated[str | None, typer.Option(
                 "--default-project", metavar="PROJECT")] = None,
             no_default_project: Annotated[bool, typer.Option(
                 "--no-default-project", help="Clear the default project.")] = False,
             server: ServerOption = None, token: TokenOption = None) -> None:
    """Change a user's role or default project."""
    fields: dict[str, Any] = {} if role is None else {"role": role}
    if no_default_project or default_project is not None:
        fields["default_project"] = None if no_default_project else default_project
    with _with(server, token) as client:
        user = client.update_user(name, **fields)
    typer.echo(f"user {user['name']}: {user['role']}, default project "
               f"{user['default_project'] or '-'}")


@user_app.command("list")
def user_list(json_output: JsonOption = False, server: ServerOption = None,
              token: TokenOption = None) -> None:
    """Every user, their role, default project and projects (name(role))."""
    with _with(server, token) as client:
        rows = client.users()
    _show(rows, [("USER", "name"), ("ROLE", "role"), ("DEFAULT", "default_project"),
                 ("PROJECTS", "projects"), ("CREATED", "created_ts")], json_output)


# -- projects and members -----------------------------------------------------------------

@project_app.command("add")
def project_add(name: Name,
                shares: Annotated[float, typer.Option(help="Fair-share weight.")] = 1.0,
                max_gpus: Annotated[int | None, typer.Option(
                    "--max-gpus", help="GPUs its jobs may hold at once.")] = None,
                metered: Annotated[bool, typer.Option(
                    help="Jobs need an active grant with hours left.")] = False,
                sensitive: Annotated[bool, typer.Option(
                    help="Its jobs share nodes with no other project.")] = False,
                description: Annotated[str, typer.Option()] = "",
                server: ServerOption = None, token: TokenOption = None) -> None:
    """Add a project."""
    with _with(server, token) as client:
        client.create_project(name, shares=shares, max_gpus=max_gpus, metered=metered,
                              sensitive=sensitive, description=description)
    typer.echo(f"project {name} added")


@project_app.command("list")
def project_list(json_output: JsonOption = False, server: ServerOption = None,
                 token: TokenOption = None) -> None:
    """Projects (yours; operators and admins: all)."""
    with _with(server, token) as client:
        rows = client.projects()
    _show(rows, [("PROJECT", "name"), ("SHARES", "shares"), ("MAX_GPUS", "max_gpus"),
                 ("METERED", "metered"), ("SENSITIVE", "sensitive"), ("ROLE", "your_role"),
                 ("DESCRIPTION", "description")], json_output, right=("SHARES", "MAX_GPUS"))


@member_app.command("add")
def member_add(project: Name, user: Name,
               role: Annotated[str, typer.Option(help="member or lead.")] = "member",
               server: ServerOption = None, token: TokenOption = None) -> None:
    """Add USER to PROJECT (or change their role). Leads add members; admins, leads."""
    with _with(server, token) as client:
        client.add_member(project, user, role)
    typer.echo(f"{user} is a {role} of {project}")


@member_app.command("remove")
def member_remove(project: Name, user: Name, server: ServerOption = None,
                  token: TokenOption = None) -> None:
    """Remove USER from PROJECT."""
    with _with(server, token) as client:
        client.remove_member(project, user)
    typer.echo(f"{user} removed from {project}")


@member_app.command("list")
def member_list(project: Name, json_output: JsonOption = False,
                server: ServerOption = None, token: TokenOption = None) -> None:
    """PROJECT's members and their roles."""
    with _with(server, token) as client:
        rows = client.members(project)
    _show(rows, [("USER", "user"), ("ROLE", "role"), ("SINCE", "since_ts")], json_output)


# -- tokens -----------------------------------------------------------------------------

@token_app.command("create")
def token_create(user: Name,
                 name: Annotated[str, typer.Option(help="What the token is for.")] = "",
                 expires: Annotated[str, typer.Option(
                     metavar="WHEN", help="A duration (30d, 12h), a time (2026-01-01), or "
                                          "'never'.")] = "90d",
                 server: ServerOption = None, token: TokenOption = None) -> None:
    """Make an API token for USER and print it: the only time it is shown."""
    kw: dict[str, Any] = {}
    if expires.strip().lower() == "never":
        kw["never_expires"] = True
    elif _DURATION.fullmatch(expires.strip()):
        kw["expires_in_s"] = duration_s(expires, field="--expires")
    else:
        kw["expires_ts"] = _time(expires, "--expires")
    with _with(server, token) as client:
        made = client.create_token(user, name=name, **kw)
    from gefion.cli.jobs import when

    typer.echo(made["token"])
    typer.echo(f"token {made['id']} for {made['user']}, expires "
               f"{when(made['expires_ts']) if made['expires_ts'] else 'never'}. It is shown "
               "only now: keep it in ~/.config/gefion/token (gefion login) or GEFION_TOKEN.",
               err=True)


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option(
                   help="This user's (admins; default: all for an admin, else yours).")
               ] = None,
               json_output: JsonOption = False, server: ServerOption = None,
               token: TokenOption = None) -> None:
    """Tokens: id, user, prefix, status, expiry (never the token)."""
    with _with(server, token) as client:
        rows = client.tokens(user)
    _show(rows, [("ID", "id"), ("USER", "user"), ("NAME", "name"), ("PREFIX", "prefix"),
                 ("STATUS", "status"), ("CREATED", "created_ts"),
                 ("EXPIRES", "expires_ts")], json_output)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)],
                 server: ServerOption = None, token: TokenOption = None) -> None:
    """Revoke a token (yours; admins: any). It is refused from the next request on."""
    with _with(server, token) as client:
        client.revoke_token(token_id)
    typer.echo(f"token {token_id} revoked")


# -- QOS and grants -----------------------------------------------------------------------

@qos_app.command("add")
def qos_add(name: Name,
            priority: Annotated[float, typer.Option(help="Raw priority weight.")] = 0.0,
            preemptible: Annotated[bool, typer.Option()] = False,
            preempts: Csv = None,
            max_time: Annotated[str | None, typer.Option(
                "--max-time", metavar="TIME", help="Longest time limit (Slurm format).")
            ] = None,
            max_gpus_per_user: Annotated[int | None, typer.Option(
                "--max-gpus-per-user", metavar="N")] = None,
            grace: Annotated[int, typer.Option(metavar="S", help="Preemption grace (s).")
                             ] = 60,
            usage_factor: Annotated[float, typer.Option(
                "--usage-factor", help="Multiplies the GPU-seconds charged.")] = 1.0,
            requeue: Annotated[bool | None, typer.Option(
                "--requeue/--no-requeue", help="Default: requeue when preemptible.")
            ] = None,
            server: ServerOption = None, token: TokenOption = None) -> None:
    """Define a QOS."""
    limit = None
    if max_time is not None:
        from gefion.slurm.timefmt import parse_time_limit

        limit = parse_time_limit(max_time)
    with _with(server, token) as client:
        client.create_qos(name, priority=priority, preemptible=preemptible,
                          preempts=_csv(preempts), max_time_limit_s=limit,
                          max_gpus_per_user=max_gpus_per_user, grace_s=grace,
                          usage_factor=usage_factor, requeue=requeue)
    typer.echo(f"QOS {name} added")


@qos_app.command("list")
def qos_list(json_output: JsonOption = False, server: ServerOption = None,
             token: TokenOption = None) -> None:
    """Every QOS."""
    with _with(server, token) as client:
        rows = client.qos()
    _show(rows, [("QOS", "name"), ("PRIORITY", "priority"), ("PREEMPTIBLE", "preemptible"),
                 ("PREEMPTS", "preempts"), ("MAX_TIME_S", "max_time_limit_s"),
                 ("MAX_GPUS/USER", "max_gpus_per_user"), ("GRACE_S", "grace_s"),
                 ("USAGE_FACTOR", "usage_factor")], json_output,
          right=("PRIORITY", "MAX_TIME_S", "MAX_GPUS/USER", "GRACE_S", "USAGE_FACTOR"))


@grant_app.command("add")
def grant_add(project: Name,
              gpu_hours: Annotated[float, typer.Option("--gpu-hours", metavar="H",
                                                       show_default=False)],
              funder: Annotated[str, typer.Option()] = "",
              valid_from: Annotated[str | None, typer.Option(
                  "--from", metavar="TIME", help="Default: now.")] = None,
              valid_to: Annotated[str | None, typer.Option(
                  "--to", metavar="TIME", help="Default: open-ended.")] = None,
              grant_id: Annotated[str | None, typer.Option(
                  "--id", help="Default: PROJECT-N.")] = None,
              server: ServerOption = None, token: TokenOption = None) -> None:
    """Grant GPU-hours to a project for a validity window."""
    with _with(server, token) as client:
        made = client.create_grant(project, gpu_hours, funder=funder,
                                   valid_from_ts=_time(valid_from, "--from"),
                                   valid_to_ts=_time(valid_to, "--to"), id=grant_id)
    typer.echo(f"grant {made['id']}: {made['gpu_hours']:g} GPU-hours to {project}")


@grant_app.command("list")
def grant_list(project: Annotated[str | None, typer.Option()] = None,
               json_output: JsonOption = False, server: ServerOption = None,
               token: TokenOption = None) -> None:
    """Grants (of your projects; operators and admins: all)."""
    with _with(server, token) as client:
        rows = client.grants(project)
    _show(rows, [("GRANT", "id"), ("PROJECT", "project"), ("GPU_HOURS", "gpu_hours"),
                 ("FROM", "valid_from_ts"), ("TO", "valid_to_ts"), ("FUNDER", "funder")],
          json_output, right=("GPU_HOURS",))


# -- reservations -------------------------------------------------------------------------

@reservation_app.command("add")
def reservation_add(
        name: Name,
        nodes: Annotated[str, typer.Option(metavar="HOSTLIST", show_default=False,
                                           help="dgx[001-016],dgx020")],
        start: Annotated[str, typer.Option(metavar="TIME", show_default=False)],
        end: Annotated[str | None, typer.Option(metavar="TIME")] = None,
        duration: Annotated[str | None, typer.Option(metavar="D",
                                                     help="Instead of --end: 4h.")] = None,
        daily: Annotated[bool, typer.Option(help="Repeat every day.")] = False,
        every: Annotated[str | None, typer.Option(metavar="D",
                                                  help="Repeat every D (12h, 7d).")] = None,
        until: Annotated[str | None, typer.Option(metavar="TIME",
                                                  help="No window starts after it.")] = None,
        projects: Csv = None, users: Csv = None,
        maintenance: Annotated[bool, typer.Option(help="No job runs on its nodes.")] = False,
        server: ServerOption = None, token: TokenOption = None) -> None:
    """Book nodes for a window, once or recurring (operators and admins)."""
    start_ts = _time(start, "--start")
    assert start_ts is not None
    if (end is None) == (duration is None):
        raise InputError("give --end or --duration", field="--end")
    end_ts = _time(end, "--end") if end is not None else \
        start_ts + duration_s(duration or "", field="--duration")
    if daily and every:
        raise InputError("give --daily or --every, not both", field="--every")
    period = 86_400.0 if daily else duration_s(every, field="--every") if every else None
    with _with(server, token) as client:
        made = client.create_reservation(name, [nodes], start_ts, end_ts or 0.0,
                                         period_s=period, until_ts=_time(until, "--until"),
                                         projects=_csv(projects), users=_csv(users),
                                         maintenance=maintenance)
    typer.echo(f"reservation {made['name']}: {made['nodelist']}")


@reservation_app.command("list")
def reservation_list(json_output: JsonOption = False, server: ServerOption = None,
                     token: TokenOption = None) -> None:
    """Every reservation."""
    with _with(server, token) as client:
        rows = client.reservations()
    _show(rows, [("RESERVATION", "name"), ("NODES", "nodelist"), ("START", "start_ts"),
                 ("END", "end_ts"), ("EVERY_S", "period_s"), ("UNTIL", "until_ts"),
                 ("PROJECTS", "projects"), ("USERS", "users"),
                 ("MAINTENANCE", "maintenance")], json_output, right=("EVERY_S",))


@reservation_app.command("delete")
def reservation_delete(name: Name, server: ServerOption = None,
                       token: TokenOption = None) -> None:
    """Delete a reservation (operators and admins)."""
    with _with(server, token) as client:
        client.delete_reservation(name)
    typer.echo(f"reservation {name} deleted")


# -- the audit trail, and the way back in -------------------------------------------------

@admin_app.command("audit")
def audit(after: Annotated[int, typer.Option(metavar="SEQ", help="Events after this one.")
                           ] = 0,
          kind: Annotated[list[str] | None, typer.Option(
              help="Only these kinds (access.denied, token.revoked...).")] = None,
          limit: Annotated[int, typer.Option()] = 100,
          json_output: JsonOption = False, server: ServerOption = None,
          token: TokenOption = None) -> None:
    """Changes to people and access, and refused requests (admins)."""
    with _with(server, token) as client:
        page = client.audit(after=after, kinds=kind or (), limit=limit)
    if json_output:
        _echo_json(page)
        return
    rows = [{"seq": e["seq"], "ts": e["ts"], "kind": e["kind"],
             "by": e["payload"].get("by") or e["payload"].get("principal"),
             "detail": ", ".join(f"{k}={v}" for k, v in e["payload"].items()
                                 if k not in ("by", "principal") and v not in (None, ""))}
            for e in page["events"]]
    _show(rows, [("SEQ", "seq"), ("TIME", "ts"), ("EVENT", "kind"), ("BY", "by"),
                 ("DETAIL", "detail")], False, right=("SEQ",))


@admin_app.command("bootstrap-token")
def bootstrap_token(
        data_dir: Annotated[str | None, typer.Option(
            "--data-dir", metavar="DIR", help="gefion up's data directory.")] = None,
        db: Annotated[str | None, typer.Option(metavar="URL",
                                               help="The database (default: DIR's).")
                      ] = None,
        user: Annotated[str | None, typer.Option(
            help="An admin to make the token for (default: the first admin).")] = None) -> None:
    """Make an admin token (valid 24 h) straight in the database, when none is left."""
    import time
    from pathlib import Path

    from gefion.controller.config import DEFAULT_DATA_DIR, ControllerConfig
    from gefion.store import Store

    config = ControllerConfig(data_dir=Path(data_dir) if data_dir else DEFAULT_DATA_DIR,
                              db_url=db)
    with Store.open(config.database_url) as store:
        admins = [u.name for u in store.list_users() if u.role == "admin"]
        name = user or (admins[0] if admins else None)
        if name is None or name not in admins:
            raise InputError(f"no admin {'named ' + repr(user) if user else 'at all'} in "
                             f"this database (gefion up makes one on a site's first start)",
                             field="--user")
        now = time.time()
        _, secret = store.create_token(name, name="bootstrap-token", ts=now,
                                       expires_ts=now + 86_400,
                                       by="gefion admin bootstrap-token")
    typer.echo(secret)
    typer.echo(f"a token of {name} for 24 hours: make a lasting one with "
               "'gefion admin token create'", err=True)
