"""Registers the TDSM method (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import TDSMConfig

# a seconds-long run (check_plugin, conformance tests): tiny denoiser, few steps, the
# run's own text embeddings (the official SD-2.1 CLIP text tower is not needed)
SMOKE = {"text_features": "pooled", "hidden_size": 16, "depth": 1, "num_heads": 2,
         "iters": 20, "whole_epochs": False, "batch_size": 32, "warmup": 2}


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="tdsm",
        impl="zsbench_tdsm.method:TDSM",
        config=TDSMConfig,
        inputs="features",
        text_kinds=["motion", "description"],
        official_test_batch_size=512,  # config/*.yaml test_batch_size
        transductive=False,
        default_encoder="shiftgcn",
        paper="J. Do, M. Kim, \"TDSM: Triplet Diffusion for Skeleton-Text Matching in "
              "Zero-Shot Action Recognition\", arXiv 2411.10745 (v4 / ICCV 2025: \"Bridging "
              "the Skeleton-Text Modality Gap: Diffusion-Powered Modality Alignment for "
              "Zero-shot Skeleton-based Action Recognition\"); code KAIST-VICLab/TDSM",
        reported="zsbench_tdsm:reported.csv",
        smoke_overrides=SMOKE,
        description="text-conditioned diffusion denoiser over frozen skeleton features, "
                    "epsilon loss + triplet diffusion loss; class = smallest noise-prediction "
                    "error at a fixed timestep with fixed noises",
    )]
