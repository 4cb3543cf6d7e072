"""API tokens: made here, shown once, kept only as a hash.

A token is ``gfn_`` and 32 random bytes in URL-safe base64 (43 characters): 256 bits from
the operating system's CSPRNG (:mod:`secrets`). The store keeps its SHA-256 (hex) and a
short prefix (``gfn_`` and 8 characters) that listings show so people can tell their
tokens apart; the token itself is handed to its owner once and kept nowhere.

Why a plain SHA-256 and not bcrypt/scrypt/Argon2: slow, salted hashes protect *passwords*,
whose few bits of entropy a stolen hash lets an attacker guess offline. A 256-bit random
token cannot be guessed however fast the hash is (2^256 tries), so slowness buys nothing,
and would cost every request ~50-250 ms of CPU on the API's hot path. An unsalted hash is
also what makes the lookup one indexed equality (``tokens.hash = ?``); a salted one would
need the token to carry its row id. (GitHub and PyPI keep their API tokens the same way.)

The prefix is not a secret: 8 characters of 43 leave 210 unknown bits.
"""

from __future__ import annotations

import hashlib
import re
import secrets

TOKEN_PREFIX = "gfn_"
#: Random bytes in a token (256 bits).
TOKEN_BYTES = 32
#: Characters of a token shown in listings: ``gfn_`` and 8 more.
DISPLAY_CHARS = len(TOKEN_PREFIX) + 8
#: What a token looks like (43 URL-safe base64 characters after the prefix).
TOKEN_PATTERN = re.compile(r"gfn_[A-Za-z0-9_-]{43}")


def new_token() -> str:
    """A fresh token: ``gfn_`` + 43 URL-safe characters."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 of ``token`` as 64 hex digits: what the store keeps and looks up by."""
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """The part of ``token`` listings show (not a secret)."""
    return token[:DISPLAY_CHARS]


def looks_like_token(text: str) -> bool:
    """Whether ``text`` holds something shaped like a Gefion token."""
    # The prefix first: a substring test is a fraction of the pattern's search, and it is
    # asked of every variable of every submitted environment.
    return TOKEN_PREFIX in text and TOKEN_PATTERN.search(text) is not None


def new_token_id() -> str:
    """A token's public id (for listing and revoking): 12 hex digits."""
    return secrets.token_hex(6)
