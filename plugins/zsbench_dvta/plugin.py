"""Registers the DVTA method (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import DVTAConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="dvta",
        impl="zsbench_dvta.method:DVTA",
        config=DVTAConfig,
        inputs="features",
        text_kinds=["name", "context"],
        official_test_batch_size=64,  # official test loader (config/code)
        transductive=False,
        default_encoder="stgcn",
        paper="J. Kuang, H. Wang, C. Han, Y. Zhang, J. Gui, \"Zero-Shot Skeleton-based Action "
              "Recognition with Dual Visual-Text Alignment\", Pattern Recognition 171, 2026 "
              "(arXiv 2409.14336); code jidongkuang/DVTA",
        reported="zsbench_dvta:reported.csv",
        description="direct alignment (deep projector + SDE cross-attention) and augmented "
                    "alignment (deep metric network, LeakySigmoid), KL multi-positive loss",
    )]
