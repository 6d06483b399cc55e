"""Runtime stand-ins shared by ``pgfa_reference.py`` and ``dvta_reference.py``: both official
repositories keep their training loop in methods of a class configured through a sacred
``Experiment`` (``config.py``), which is not installed here.
"""
from __future__ import annotations

import sys
import types
from typing import Any, Callable

import torch


def install_sacred_config(**attrs: Any) -> None:
    """``config`` module whose ``ex.capture`` / ``ex.automain`` / ``ex.config`` return the
    function unchanged (captured arguments are then passed explicitly by the caller); extra
    module attributes (names that ``from config import *`` is expected to bring) as given."""
    cfg = types.ModuleType("config")

    class Ex:
        @staticmethod
        def capture(fn):
            return fn

        automain = config = capture

    cfg.ex = Ex()  # type: ignore[attr-defined]
    for k, v in attrs.items():
        setattr(cfg, k, v)
    sys.modules["config"] = cfg


def empty_modules(names: dict[str, str]) -> None:
    """Modules ``name`` whose one attribute ``names[name]`` is None (imported, never used)."""
    for name, attr in names.items():
        mod = types.ModuleType(name)
        setattr(mod, attr, None)
        sys.modules[name] = mod


class RecordingLoss:
    """Calls ``loss`` and keeps every value (``.values``)."""

    def __init__(self, loss: Callable[..., torch.Tensor]) -> None:
        self.loss, self.values = loss, []

    def __call__(self, *args: Any) -> torch.Tensor:
        value = self.loss(*args)
        self.values.append(value.item())
        return value


def label_batches(x: torch.Tensor, label_lists: list[list[int]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive rows of ``x`` as (data, labels) batches, one per label list."""
    batches, start = [], 0
    for labels in label_lists:
        batches.append((x[start:start + len(labels)], torch.tensor(labels)))
        start += len(labels)
    return batches
