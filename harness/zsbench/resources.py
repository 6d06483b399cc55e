"""Locate data files the product ships (split definitions, sample rules, class lists).

Works both from a source checkout (``<repo>/splits``) and when installed (the ``splits/``
folder is installed as the data package ``zsbench._splits``).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from .api import ZsbenchError


@lru_cache(maxsize=1)
def splits_dir() -> Path:
    """The folder holding split files, sample rules and class lists."""
    try:
        import zsbench._splits as pkg  # installed (or editable) layout

        return Path(pkg.__file__).resolve().parent
    except ImportError:
        pass
    here = Path(__file__).resolve().parent
    for cand in (here.parent.parent / "splits", here / "_splits"):
        if cand.is_dir():
            return cand
    raise ZsbenchError("cannot find the zsbench split files (splits/); is the package installed?")


def splits_path(name: str) -> Path:
    path = splits_dir() / name
    if not path.exists():
        raise ZsbenchError(f"zsbench data file {name!r} not found in {splits_dir()}")
    return path


def load_json(name: str) -> Any:
    path = splits_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ZsbenchError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
