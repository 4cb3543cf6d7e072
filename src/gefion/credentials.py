"""Where the ``gefion`` command and :class:`gefion.client.Client` find an API token.

In order, the first that gives one:

1. the token given explicitly (``--token``, ``Client(token=...)``);
2. ``$GEFION_TOKEN``;
3. ``~/.config/gefion/token`` (``$XDG_CONFIG_HOME/gefion/token``), written by
   ``gefion login``;
4. ``admin.token`` in the data directory of ``gefion up`` (``$GEFION_HOME``, else
   ``~/.local/share/gefion``), written on a site's first start: so the account that
   started the site uses it from the same machine without a login. It is 0600: no other
   account can read it.

Standard library only (``os``): the fast ``gefion queue`` imports this module.
"""

from __future__ import annotations

import os

TOKEN_ENV = "GEFION_TOKEN"


def user_token_path() -> str:
    """``~/.config/gefion/token`` (or under ``$XDG_CONFIG_HOME``)."""
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                               ".config")
    return os.path.join(config, "gefion", "token")


def admin_token_path() -> str:
    """``admin.token`` in the default data directory of ``gefion up``."""
    home = os.environ.get("GEFION_HOME") or os.path.join("~", ".local", "share", "gefion")
    return os.path.join(os.path.expanduser(home), "admin.token")


def read_token_file(path: str) -> str | None:
    """The token in ``path`` (its first line), or None if it is missing or unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            token = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def find_token(explicit: str | None = None) -> str | None:
    """The token to send (see the module), or None: the server will answer 401."""
    if explicit:
        return explicit.strip()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    return read_token_file(user_token_path()) or read_token_file(admin_token_path())


def save_token(token: str) -> str:
    """Keep ``token`` in :func:`user_token_path` (0600, its directory 0700); the path."""
    path = user_token_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token.strip() + "\n").encode())
    finally:
        os.close(fd)
    return path
