"""Scheduling policies by name (``fifo``, ``fifo-backfill``, ``las``, ``gefion``).

A new policy is a new module with a class satisfying :class:`Policy`, added to ``POLICIES``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from gefion.core.errors import InputError, PolicyError
from gefion.core.policies.base import PLACEMENTS, Policy
from gefion.core.policies.fifo import Fifo
from gefion.core.policies.fifo_backfill import FifoBackfill
from gefion.core.policies.gefion import GefionPolicy
from gefion.core.policies.las import Las
from gefion.core.priority import Weights

POLICIES: dict[str, Callable[..., Policy]] = {
    "fifo": Fifo,
    "fifo-backfill": FifoBackfill,
    "las": Las,
    "gefion": GefionPolicy,
}

__all__ = ["POLICIES", "UNLIMITED", "Policy", "get_policy", "parse_depth"]

#: ``depth`` for conservative backfill (every waiting job planned), as options spell it.
UNLIMITED = -1


def parse_depth(text: str | None) -> int | None:
    """A ``--depth`` option: None (the policy's default), a whole number >= 0, or
    :data:`UNLIMITED` for ``unlimited`` / ``conservative``."""
    if text is None:
        return None
    if text.lower() in ("unlimited", "conservative"):
        return UNLIMITED
    if not text.isdigit():
        raise InputError(f"must be a whole number >= 0 or 'unlimited', got {text!r}",
                         field="--depth")
    return int(text)


def get_policy(name: str, **params: Any) -> Policy:
    """The policy called ``name`` with ``params`` (e.g. ``depth=4``; ``depth=None`` or
    ``"unlimited"`` for conservative backfill). Unknown names or parameters raise
    :class:`PolicyError`."""
    factory = POLICIES.get(name)
    if factory is None:
        raise PolicyError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    if params.get("depth") in ("unlimited", "conservative", -1):
        params["depth"] = None
    if "weights" in params and isinstance(params["weights"], dict):
        try:
            params["weights"] = Weights(**params["weights"])
        except TypeError as e:
            raise PolicyError(f"{name}: bad weights: {e}") from None
    allowed = {f.name for f in dataclasses.fields(factory)} - {"name"}  # type: ignore[arg-type]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise PolicyError(f"policy {name!r} has no parameter {', '.join(unknown)}; "
                          f"it has {', '.join(sorted(allowed))}")
    depth = params.get("depth")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise PolicyError(f"depth must be a whole number >= 0 or 'unlimited', got {depth!r}")
    if params.get("placement", "best-fit") not in PLACEMENTS:
        raise PolicyError(f"placement must be one of {', '.join(PLACEMENTS)}, "
                          f"got {params['placement']!r}")
    if "thresholds_gpu_s" in params:
        params["thresholds_gpu_s"] = tuple(params["thresholds_gpu_s"])
    return factory(**params)
