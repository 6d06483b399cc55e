"""Registers MSF (no torch at import time: the implementation is lazy)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from zsbench_cada_vae.plugin import SMOKE  # the same pipeline, the same smoke configuration

from .config import MSFConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="msf", impl="zsbench_msf.method:MSF", config=MSFConfig, inputs="features",
        text_kinds=["name", "description", "motion"], default_encoder="shiftgcn",
        smoke_overrides=SMOKE,
        paper="M. Li, Z. Jia, Z. Zhang, Z. Ma, L. Wang, \"Multi-semantic fusion model for "
              "generalized zero-shot skeleton-based action recognition\", ICIG 2023; code "
              "EHZ9NIWI7/MSF-GZSSAR",
        reported="zsbench_msf:reported.csv",
        description="cross-aligned skeleton/text VAEs over fused label + action + motion "
                    "descriptions, unseen classifier on generated latents, seen/unseen gate")]
