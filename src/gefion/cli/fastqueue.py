"""The ``gefion`` console entry point, and ``gefion queue`` on the standard library alone.

``squeue`` answers in about 0.16 s, and people run it in loops; importing Typer, Rich and
httpx alone takes longer than that. So the entry point (``[project.scripts] gefion =
"gefion.cli.fastqueue:main"``) looks at the command line first: ``gefion queue`` with the
options below is answered here, with one HTTP/1.1 request over a plain socket to
``GET /v1/queue``, whose answer (the server renders the aligned table, or the JSON) is
copied to stdout. Everything else — other commands, ``--help``, an option this parser
does not know, a server URL that is not ``http://`` — goes to the Typer app
(:mod:`gefion.cli.main`), whose ``queue`` command takes the same options and prints the
same bytes (it asks for the same rendering, through the typed client). An error answer
or an unreachable server is reported as the Typer commands report one: ``error: ...`` on
stderr, exit status 2.

Options: ``-u/--user``, ``-t/--states``, ``-A/--project`` (``--account``), ``-j/--jobs``
(each repeatable, comma lists allowed), ``--start``, ``--json``, ``--server URL`` (else
``$GEFION_SERVER``, else http://127.0.0.1:8642), ``--token TOKEN`` (else what
:mod:`gefion.credentials` finds: ``$GEFION_TOKEN``, ``~/.config/gefion/token``, the site's
``admin.token``), sent as ``Authorization: Bearer``.

Keep this module's imports to what the interpreter has already loaded (``os``, ``sys``)
plus ``socket``, ``time`` and :mod:`gefion.credentials` (``os`` only): every import here is
paid by every ``gefion queue``.
"""

from __future__ import annotations

import os
import sys

DEFAULT_SERVER = "http://127.0.0.1:8642"
_LISTS = {"-u": "user", "--user": "user", "-t": "state", "--states": "state",
          "-A": "project", "--project": "project", "--account": "project",
          "-j": "job", "--jobs": "job"}
_FLAGS = {"--start": "start", "--json": "json"}
_SINGLE = {"--server": "server", "--token": "token"}
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~,")


def parse(args: list[str]) -> dict[str, list[str]] | None:
    """The options of ``gefion queue``, or None for anything this parser leaves to Typer."""
    opts: dict[str, list[str]] = {"user": [], "state": [], "project": [], "job": [],
                                  "server": [], "token": [], "start": [], "json": []}
    i = 0
    while i < len(args):
        word = args[i]
        name, eq, value = word.partition("=")
        if word in _FLAGS:
            opts[_FLAGS[word]].append("true")
        elif word.startswith("--") and eq and (name in _LISTS or name in _SINGLE):
            opts[_LISTS.get(name) or _SINGLE[name]].append(value)
        elif word in _LISTS or word in _SINGLE:
            if i + 1 >= len(args):
                return None
            i += 1
            opts[_LISTS.get(word) or _SINGLE[word]].append(args[i])
        elif len(word) > 2 and word[:2] in _LISTS and not word.startswith("--"):
            opts[_LISTS[word[:2]]].append(word[2:])
        else:
            return None
        i += 1
    return opts


def _quote(text: str) -> str:
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in text.encode())


def request_path(opts: dict[str, list[str]], utc_offset_s: int) -> str:
    fmt = "json" if opts["json"] else "text"
    query = [f"format={fmt}", f"tz={utc_offset_s}"]
    if opts["start"]:
        query.append("start=true")
    for key in ("user", "state", "project", "job"):
        query.extend(f"{key}={_quote(v)}" for v in opts[key])
    return "/v1/queue?" + "&".join(query)


def fetch(server: str, path: str, token: str | None = None) -> tuple[int, bytes] | None:
    """(status, body) of ``GET path`` at ``server`` (with ``token`` as a bearer token);
    None if the URL is not plain http. Raises OSError when nothing answers."""
    import socket

    scheme, sep, rest = server.partition("://")
    if scheme != "http" or not sep:
        return None
    hostport, _, prefix = rest.partition("/")
    host, port = hostport, 80
    if hostport.rpartition(":")[2].isdigit():
        host, _, port_text = hostport.rpartition(":")
        port = int(port_text)
    host = host.strip("[]")
    if prefix:
        path = "/" + prefix.strip("/") + path
    with socket.create_connection((host, port), timeout=60) as conn:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: gefion-queue\r\n"
                     f"{auth}Accept-Encoding: identity\r\nConnection: close\r\n\r\n"
                     .encode())
        chunks = []
        while data := conn.recv(1 << 20):
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    if any(h.lower().startswith(b"transfer-encoding:") and b"chunked" in h.lower()
           for h in lines[1:]):
        body = _dechunk(body)
    return status, body


def _dechunk(body: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2:end + 2 + size])
        pos = end + 2 + size + 2


def run(opts: dict[str, list[str]]) -> int | None:
    """Print the queue; the exit status, or None to leave the command to Typer."""
    import time

    from gefion.credentials import find_token

    server = (opts["server"][-1] if opts["server"] else
              os.environ.get("GEFION_SERVER") or DEFAULT_SERVER).rstrip("/")
    token = find_token(opts["token"][-1] if opts["token"] else None)
    if token is not None and not token.isprintable():
        return None  # not a token a header can carry: Typer's client reports it
    try:
        answer = fetch(server, request_path(opts, time.localtime().tm_gmtoff), token)
    except OSError as exc:
        from gefion.client.errors import unreachable_message

        reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else \
            (exc.strerror or str(exc) or type(exc).__name__)
        return _fail(unreachable_message(server, reason))
    if answer is None:
        return None
    status, body = answer
    if status != 200:
        return _fail(_problem_message(status, body))
    try:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    except BrokenPipeError:  # `gefion queue | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _problem_message(status: int, body: bytes) -> str:
    import json

    from gefion.client.errors import ApiError

    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"detail": body.decode(errors="replace")[:500] or f"HTTP {status}"}
    return str(ApiError(status, problem))


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


def one_blas_thread(args: list[str]) -> None:
    """For ``gefion twin ...``: numpy's BLAS on one thread, unless the caller chose. The
    twin's numpy work is element-wise and single-threaded; a pool of BLAS threads only
    costs CPU at start-up (about 0.1 CPU-s on 2 cores). Other commands leave the
    environment alone: the controller's jobs inherit it."""
    if args[:1] == ["twin"]:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    """The ``gefion`` command: the fast ``queue`` and ``twin run`` (:mod:`gefion.cli.fasttwin`),
    else the Typer app."""
    args = sys.argv[1:]
    one_blas_thread(args)
    if args[:1] == ["queue"]:
        opts = parse(args[1:])
        if opts is not None:
            code = run(opts)
            if code is not None:
                sys.exit(code)
    elif args[:2] == ["twin", "run"]:
        from gefion.cli.fasttwin import main as twin_run

        code = twin_run(args[2:])
        if code is not None:
            sys.exit(code)
    from gefion.cli.main import app

    app(prog_name="gefion")


if __name__ == "__main__":
    main()
