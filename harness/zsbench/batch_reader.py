"""Batches read from a (memory-mapped) sample array one step ahead of the model.

``prefetched(data, batches, device)`` yields ``(indices, tensor)`` for each index array in
``batches``, in order. A single reader thread copies batch k+1 out of ``data`` (numpy fancy
indexing of the memory map: page faults and the float32 copy) while the caller trains on
batch k; on a CUDA device the copy goes to pinned memory and moves with
``non_blocking=True``. The batches and their order are the caller's, so results are the
same as reading in the main thread (test); only the waiting overlaps. Measured on a cold
page cache: one reader thread 1.5x the main thread's read rate (docs/performance.md).

``ZSBENCH_PREFETCH=0`` reads in the caller's thread instead (for debugging).
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


def read_batch(data: Any, idx: np.ndarray, pin: bool = False) -> "torch.Tensor":
    """Rows ``idx`` of ``data`` as a contiguous float32 CPU tensor (pinned on request)."""
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(data[idx], dtype=np.float32))
    return batch.pin_memory() if pin else batch


def prefetched(data: Any, batches: Iterable[np.ndarray], device: str,
               enabled: bool | None = None) -> Iterator[tuple[np.ndarray, "torch.Tensor"]]:
    """``(idx, rows of data on device)`` for each ``idx`` of ``batches``, read one ahead."""
    cuda = str(device).startswith("cuda")
    if enabled is None:
        enabled = os.environ.get("ZSBENCH_PREFETCH", "1") != "0"
    it = iter(batches)
    if not enabled:
        for idx in it:
            yield idx, read_batch(data, idx).to(device)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zsbench-reader") as pool:
        def submit() -> tuple[np.ndarray, Future] | None:
            idx = next(it, None)
            return None if idx is None else (idx, pool.submit(read_batch, data, idx, cuda))

        ahead = submit()
        while ahead is not None:
            idx, future = ahead
            ahead = submit()
            yield idx, future.result().to(device, non_blocking=cuda)
