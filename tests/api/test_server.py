"""The serving process's settings (:mod:`gefion.api.server`)."""

from __future__ import annotations

import subprocess
import sys


def test_a_serving_process_freezes_its_start_up_heap_and_collects_young_objects_less() -> None:
    # In a process of its own: the setting is the whole process's.
    code = ("import gc; from gefion.api.server import SERVING_GC_THRESHOLD, "
            "tune_gc_for_serving; tune_gc_for_serving(); "
            "assert gc.get_threshold()[0] == SERVING_GC_THRESHOLD, gc.get_threshold(); "
            "assert gc.get_freeze_count() > 0")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
