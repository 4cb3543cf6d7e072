"""Pausing Python's cyclic garbage collector around work that makes many small objects.

Loading a trace and replaying it make millions of short-lived records (jobs, runs, events),
none of them in reference cycles: reference counting frees them, and the cyclic collector
only rescans the growing heap again and again — a third of a trace's load time, and about
a tenth of a replay's. :func:`paused_gc` turns it off for the duration and back on after
(if it was on); the few cycles made meanwhile are collected then.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic collector off inside the block, as it was after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
