"""A job's output: the last lines of its stdout or stderr file, or a live follow of it.

Files are read as bytes and sent as they are (UTF-8 expected; a client decodes with
replacement). An answer holds at most :data:`MAX_LOG_BYTES`: a larger file is cut at a line
start and the answer says so in ``Gefion-Log-Truncated``.

The server reads a log with its own rights, but a job's ``--output`` may name any path
(``/etc/shadow``, a FIFO, a symlink the job made). So only a regular file owned by the job's
user is read — checked on the opened file, not on the name — else :class:`LogAccessError`
(403), and nothing is ever opened in a way that blocks.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from starlette.concurrency import run_in_threadpool

from gefion.controller.service import Controller
from gefion.core.errors import GefionError

#: The most bytes one answer (or the start of a follow) carries.
MAX_LOG_BYTES = 8 * 1024 * 1024
#: The most lines ``tail`` may ask for.
MAX_TAIL_LINES = 1_000_000
#: How often a follow looks for new output, and for the job's end (seconds).
POLL_S = 0.1
_BLOCK = 64 * 1024


class LogAccessError(GefionError):
    """The job's log path is not a regular file of the job's user: it is not shown."""


def owner_uid(user: str) -> int:
    """The uid whose files a job of ``user`` writes."""
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise LogAccessError(f"user {user!r} has no account here; logs are not shown") \
            from None


def open_log(path: Path, uid: int | None) -> BinaryIO | None:
    """``path`` opened for reading if it is a regular file owned by ``uid`` (None: any
    owner); None if it does not exist yet. Non-blocking open: a FIFO cannot hang us."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogAccessError(f"{path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid):
        os.close(fd)
        raise LogAccessError(f"{path} is not a file written by the job's user; not shown")
    return os.fdopen(fd, "rb")


def read_tail(path: Path, lines: int | None,
              uid: int | None = None) -> tuple[bytes, int, bool]:
    """(the last ``lines`` lines of ``path`` — all when None — at most MAX_LOG_BYTES, the
    file offset just past them, whether something asked for was cut). A missing file reads
    as empty: the job has not written yet. ``uid``: see :func:`open_log`."""
    f = open_log(path, uid)
    if f is None:
        return b"", 0, False
    with f:
        size = os.fstat(f.fileno()).st_size
        floor = max(0, size - MAX_LOG_BYTES)
        start, truncated = (floor, floor > 0) if lines is None else \
            _line_start(f, size, floor, lines)
        f.seek(start)
        data = f.read(size - start)
    if truncated:  # cut by the byte cap, maybe mid-line: begin at the next whole line
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else b""
    return data, size, truncated


def _line_start(f: BinaryIO, size: int, floor: int, lines: int) -> tuple[int, bool]:
    """Where the last ``lines`` lines begin, searching back no further than ``floor``."""
    if lines == 0 or size == 0:
        return size, False
    f.seek(size - 1)
    # A final newline ends the last line: the start is after newline number lines + 1.
    wanted = lines + (f.read(1) == b"\n")
    pos, seen = size, 0
    while pos > floor:
        step = min(_BLOCK, pos - floor)
        pos -= step
        f.seek(pos)
        block = f.read(step)
        count = block.count(b"\n")
        if seen + count >= wanted:
            cut = len(block)
            for _ in range(wanted - seen):
                cut = block.rindex(b"\n", 0, cut)
            return pos + cut + 1, False
        seen += count
    return floor, floor > 0


def read_from(path: Path, offset: int, uid: int | None = None) -> tuple[bytes, int]:
    """New bytes of ``path`` after ``offset`` (at most one block) and the new offset. A file
    that shrank (rewritten by a requeued run) is read again from its start."""
    f = open_log(path, uid)
    if f is None:
        return b"", offset
    with f:
        size = os.fstat(f.fileno()).st_size
        if size < offset:
            offset = 0
        f.seek(offset)
        data = f.read(min(_BLOCK * 16, size - offset))
    return data, offset + len(data)


async def follow(controller: Controller, job_id: int, stream: str, first: bytes,
                 offset: int, uid: int | None = None) -> AsyncIterator[bytes]:
    """``first``, then whatever the job writes after ``offset``, until the job has ended and
    its file is drained. The path is asked again at each look: a pending job's pattern may
    name the node it will run on (``%N``). A file that stops being the job user's ends it."""
    if first:
        yield first
    ended = False
    path = await run_in_threadpool(controller.log_path, job_id, stream)
    while True:
        try:
            data, offset = read_from(path, offset, uid)
        except LogAccessError:
            return
        if data:
            yield data
            continue
        if ended:
            return
        row = await run_in_threadpool(controller.get_job, job_id)
        ended = row.state.terminal  # one more read after this drains what is left
        if not ended:
            await asyncio.sleep(POLL_S)
            moved = await run_in_threadpool(controller.log_path, job_id, stream)
            if moved != path:
                path, offset = moved, 0
