"""Registers the 'precomputed' skeleton-feature source (lazy; no numpy-heavy imports)."""
from __future__ import annotations

import zsbench
from zsbench.specs import SkeletonEncoderSpec

from .config import PrecomputedConfig


@zsbench.hookimpl
def zsbench_skeleton_encoders() -> list[SkeletonEncoderSpec]:
    return [SkeletonEncoderSpec(
        name="precomputed", impl="zsbench_precomputed.features:fold_features",
        config=PrecomputedConfig, feature_dim=0, precomputed=True,
        description="pre-extracted features: an (N, D) array aligned with the dataset, or "
                    "SynSE/MSF, SMIE/DVTA, Flora feature files")]
