"""The first start of a site: an admin and their token, so that someone can sign in.

``gefion up`` calls :func:`bootstrap_admin` on every start; it does something only while
the store has no admin. Then it creates the site's default project and an admin named
after the Unix account running ``gefion up`` (``root`` on most sites; jobs run as their
submitter's account when the controller is root, so the local admin's jobs run as that
account, as they did before there were tokens), and a token for them that never expires.
``gefion up`` prints the token once and keeps it in ``DATA/admin.token`` (mode 0600), where
the ``gefion`` command of the same account finds it (:mod:`gefion.credentials`).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from gefion.store import Store
from gefion.store.tenancy import NAME

#: Who the bootstrap events are recorded ``by``.
SYSTEM = "gefion"
#: Where ``gefion up`` keeps the bootstrap token, in its data directory.
ADMIN_TOKEN_FILE = "admin.token"


def local_admin_name() -> str:
    """The Unix login running this process, if it is a valid Gefion name; else ``admin``."""
    try:
        name = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "admin"
    return name if NAME.fullmatch(name) else "admin"


def bootstrap_admin(store: Store, *, admin: str, default_project: str,
                    ts: float) -> str | None:
    """If no admin exists: create ``default_project`` and the admin ``admin`` (or make
    that user an admin), and return a new token of theirs (the only time it is seen).
    None when the site has an admin already."""
    if any(u.role == "admin" for u in store.list_users()):
        return None
    if store.get_project(default_project) is None:
        store.create_project(default_project, ts=ts, by=SYSTEM,
                             description="the site's default project")
    if store.get_user(admin) is None:
        store.create_user(admin, role="admin", default_project=default_project, ts=ts,
                          by=SYSTEM)
    else:
        store.update_user(admin, role="admin", ts=ts, by=SYSTEM)
    _, token = store.create_token(admin, name="bootstrap", ts=ts, by=SYSTEM)
    return token


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by this account only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
