"""CPU-side tuning that changes speed, never results.

``tune_allocator()``: PyTorch's CPU training allocates and frees tens of megabytes per
layer and step. With glibc's defaults, blocks that large are mmap-ed and unmapped every
time, and each new mapping is paid again in page faults (measured: about a quarter of the
CPU time of an ST-GCN training step on 2 cores, benchmarks/bench_speed.py). Raising the
mmap and trim thresholds keeps freed blocks in the heap for reuse. Set
``ZSBENCH_TUNE_MALLOC=0`` to keep the allocator's defaults; other C libraries are left alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30        # blocks below 1 GiB come from the (reused) heap
TRIM_THRESHOLD = 1 << 32        # keep up to 4 GiB of freed heap instead of returning it
_done: bool | None = None


def tune_allocator() -> bool:
    """Apply the thresholds once per process (glibc on Linux only). Returns whether they
    are in force."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("ZSBENCH_TUNE_MALLOC", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    ok = bool(mallopt(_M_TRIM_THRESHOLD, min(TRIM_THRESHOLD, 2**31 - 1))) and ok
    _done = ok
    return ok
