"""Progress bars (tqdm) that stay quiet when output is not a terminal or when
``ZSBENCH_PROGRESS=0``; ``ZSBENCH_PROGRESS=1`` forces them on."""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable


def progress(iterable: Iterable[Any], desc: str = "", total: int | None = None,
             leave: bool = True, **kwargs: Any) -> Iterable[Any]:
    setting = os.environ.get("ZSBENCH_PROGRESS", "")
    if setting == "0":
        return iterable
    if setting != "1" and not sys.stderr.isatty():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True, **kwargs)
