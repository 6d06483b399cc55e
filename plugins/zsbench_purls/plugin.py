"""Registers the PURLS method (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import PurlsConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="purls", smoke_overrides={"epochs": 2, "pretrain_epochs": 1},
        impl="zsbench_purls.method:Purls",
        config=PurlsConfig,
        inputs="sequences",
        text_kinds=["parts", "phases", "description"],
        transductive=False,
        default_encoder="shiftgcn",
        paper="A. Zhu, Q. Ke, M. Gong, J. Bailey, \"Part-aware Unified Representation of "
              "Language and Skeleton for Zero-shot Action Recognition\", CVPR 2024 (arXiv "
              "2406.13327); code azzh1/PURLS",
        reported="zsbench_purls:reported.csv",
        description="body-part / temporal-interval / global descriptions query the frozen "
                    "encoder's spatio-temporal tokens (adaptive partitioning); one CLIP-style "
                    "loss per representation",
    )]
