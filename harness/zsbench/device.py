"""The one device resolver: every component turns a requested device into a torch device
string here, so ``auto``, ``cpu``, ``cuda`` and ``cuda:N`` mean the same everywhere."""
from __future__ import annotations

import contextlib
from typing import Iterator

from .api import ZsbenchError


def resolve_device(requested: str | None, who: str = "--device") -> str:
    """``auto``/``""``/None -> ``cuda`` when available, else ``cpu``; ``cpu`` as is;
    ``cuda``/``cuda:N`` checked against what is present (a clear error otherwise)."""
    import torch

    req = (requested or "auto").strip()
    if req == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if req == "cpu":
        return "cpu"
    if req == "cuda" or req.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ZsbenchError(f"{who} {req!r} requested but CUDA is not available "
                               "(use auto or cpu)")
        if ":" in req:
            idx = req.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise ZsbenchError(f"{who} {req!r}: this machine has "
                                   f"{torch.cuda.device_count()} CUDA device(s)")
        return req
    raise ZsbenchError(f"{who} {req!r} is not a device; use auto, cpu, cuda or cuda:N")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads = ``n`` inside the block, restored afterwards. The count changes
    results, not only speed: CPU reductions split their sums by thread, so runs that must
    give the same numbers (sweep cells, golden runs) pin it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
