"""Registers the PGFA method (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import PGFAConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="pgfa",
        impl="zsbench_pgfa.method:PGFA",
        config=PGFAConfig,
        inputs="sequences",
        text_kinds=["description", "name", "parts", "skeleton_focused"],
        official_test_batch_size=64,  # official test loader (config/code)
        transductive=True,
        default_encoder="stgcn",
        paper="K. Zhou, S. Zhang, Z. You, J. Hu, M. Tan, F. Liu, \"Zero-Shot Skeleton-Based "
              "Action Recognition With Prototype-Guided Feature Alignment\", IEEE TIP 34, 2025 "
              "(arXiv 2507.00566); code kaai520/PGFA",
        reported="zsbench_pgfa:reported.csv",
        description="end-to-end skeleton-text KL contrastive training + transductive "
                    "prototype-guided text feature alignment",
    )]
