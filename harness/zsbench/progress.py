"""Progress for long loops.

On a terminal: tqdm bars. Without one (a batch job, a log file, CI): one plain line every
``ZSBENCH_PROGRESS_INTERVAL`` seconds (default 30) and one when the loop ends, so a long
run is never silent. ``ZSBENCH_PROGRESS=0`` turns all progress output off (including the
bars of sentence-transformers / huggingface_hub, through ``quiet_third_party_bars``),
``ZSBENCH_PROGRESS=1`` forces bars on.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("ZSBENCH_PROGRESS_INTERVAL", "30")))
    except ValueError:
        return 30.0


def progress(iterable: Iterable[Any], desc: str = "", total: int | None = None,
             leave: bool = True, **kwargs: Any) -> Iterable[Any]:
    setting = os.environ.get("ZSBENCH_PROGRESS", "")
    if setting == "0":
        return iterable
    if setting != "1" and not sys.stderr.isatty():
        return log_lines(iterable, desc=desc, total=total)
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True, **kwargs)


def log_lines(iterable: Iterable[Any], desc: str = "", total: int | None = None,
              interval: float | None = None, stream: Any = None) -> Iterator[Any]:
    """Yield from ``iterable``, writing ``desc: i/total (p%), elapsed, eta`` at most every
    ``interval`` seconds, and a closing line if any line was written or the loop was long."""
    interval = _interval() if interval is None else interval
    out = stream or sys.stderr
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    start = last = time.monotonic()
    done = 0
    wrote = False
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= interval:
            out.write(_line(desc, done, total, now - start) + "\n")
            out.flush()
            last, wrote = now, True
    elapsed = time.monotonic() - start
    if wrote or (interval and elapsed >= interval):
        out.write(_line(desc, done, total, elapsed, final=True) + "\n")
        out.flush()


def _line(desc: str, done: int, total: int | None, elapsed: float, final: bool = False) -> str:
    what = f"{desc or 'progress'}: {done}"
    if total:
        what += f"/{total} ({100.0 * done / total:.0f}%)"
    what += f", {elapsed:.0f} s elapsed"
    if final:
        return what + ", done"
    if total and done:
        what += f", about {elapsed * (total - done) / done:.0f} s left"
    return what


def quiet_third_party_bars() -> None:
    """With ``ZSBENCH_PROGRESS=0``, silence the bars other libraries draw themselves."""
    if os.environ.get("ZSBENCH_PROGRESS", "") == "0":
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
