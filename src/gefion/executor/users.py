"""Who a job runs as: the submitting user's account on this host."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from gefion.executor.errors import ExecutorError


@dataclass(frozen=True, slots=True)
class Account:
    """A user account; ``switch`` is True when the job must drop from root to it."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    switch: bool


def resolve_account(user: str, *, node: str = "this host") -> Account:
    """The account ``user`` has here. Raises :class:`ExecutorError` for a user with no account,
    or one the executor cannot become (it runs as someone else and is not root)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ExecutorError(f"user {user!r} has no account on {node}; the job cannot run "
                            "as that user") from None
    me = os.geteuid()
    if me != 0 and entry.pw_uid != me:
        raise ExecutorError(f"cannot run a job as {user!r}: the executor runs as uid {me}, "
                            "not root")
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir,
                   switch=me == 0 and entry.pw_uid != 0)


def unreachable_dir(path: Path, account: Account) -> Path | None:
    """The first directory on the way to ``path`` that ``account`` may not enter, or ``None``.

    Permission bits only (ACLs are not read): enough to catch the usual mistake of a run
    directory under a private home or a 0700 temporary directory.
    """
    for directory in (path, *path.parents):
        info = os.stat(directory)
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid in account.groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return directory
    return None
