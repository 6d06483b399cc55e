"""Advisory file locks for caches and stores shared by several processes (sweep workers,
Ray tasks, SLURM array jobs on a shared file system).

``file_lock(path)`` holds an exclusive ``flock`` on ``path`` (created if missing, never
deleted: deleting a lock file while another process waits on it would let a third process
lock a new file of the same name). The lock is released when the block ends or the process
dies, so a killed writer never leaves a cache locked. On platforms without ``fcntl`` the
lock is a no-op (the atomic renames still keep every file whole).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class LockBusy(Exception):
    """``file_lock(..., blocking=False)`` found the lock held by another process."""


@contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[None]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockBusy(str(path)) from None
        yield
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True when another process holds ``file_lock(path)`` right now."""
    if not Path(path).exists():
        return False
    try:
        with file_lock(path, blocking=False):
            return False
    except LockBusy:
        return True
    except OSError:
        return False
