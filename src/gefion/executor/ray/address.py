"""Checking a ``--ray-address`` before Ray is loaded (standard library only)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from gefion.core.errors import InputError

#: How long to wait for a TCP connection to ``--ray-address`` before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0


def check_ray_address(text: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """``HOST:PORT`` (a Ray cluster's GCS, for a driver on one of its nodes) or
    ``ray://HOST:PORT`` (Ray Client), checked by opening a TCP connection to it — so an
    unreachable address fails in seconds with ``field 'ray-address'``, before Ray loads."""
    address = text.strip()
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    try:
        parts = urlsplit("//" + rest)
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if scheme not in ("", "ray") or not host or port is None or parts.path:
        raise InputError(f"expected HOST:PORT or ray://HOST:PORT, got {text!r}",
                         field="ray-address")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise InputError(f"cannot reach a Ray cluster at {address}: {reason}",
                         field="ray-address") from None
    return address
