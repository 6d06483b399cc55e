"""The embedded ``synthetic`` benchmark: a procedurally generated zero-shot skeleton
action dataset in the NTU 25-joint layout (pure numpy).

Public API: ``SyntheticConfig``, ``generate`` / ``SyntheticData``, ``load_synthetic``,
``builtin_splits``, ``TEXT_KINDS``. Importing this package is cheap (no torch).
"""
from __future__ import annotations

from .config import SyntheticConfig
from .dataset import cache_folder, cache_root, load_synthetic
from .folds import builtin_splits
from .generate import GENERATOR_VERSION, SyntheticData, generate
from .texts import TEXT_KINDS

__all__ = ["SyntheticConfig", "SyntheticData", "generate", "load_synthetic", "builtin_splits",
           "TEXT_KINDS", "GENERATOR_VERSION", "cache_root", "cache_folder"]
