"""Registration of the built-in skeleton encoders (no torch import here)."""
from __future__ import annotations

import zsbench
from zsbench.specs import SkeletonEncoderSpec

from .configs import ShiftGCNConfig, ShiftGCNEnsembleConfig, STGCNConfig


@zsbench.hookimpl
def zsbench_skeleton_encoders() -> list[SkeletonEncoderSpec]:
    return [
        SkeletonEncoderSpec(
            name="stgcn", impl="zsbench_encoders.stgcn:build_stgcn", config=STGCNConfig,
            feature_dim=STGCNConfig().out_dim,
            description="ST-GCN as in SMIE/PGFA/DVTA (h=16, 256-d pooled feature, "
                        "data_bn shared by both bodies, edge importance)"),
        SkeletonEncoderSpec(
            name="shiftgcn", impl="zsbench_encoders.shiftgcn:build_shiftgcn",
            config=ShiftGCNConfig, feature_dim=ShiftGCNConfig().out_dim,
            description="Shift-GCN, one stream (joint by default), pure PyTorch shift ops"),
        SkeletonEncoderSpec(
            name="shiftgcn_4s", impl="zsbench_encoders.ensemble:build_shiftgcn_4s",
            config=ShiftGCNEnsembleConfig, feature_dim=ShiftGCNEnsembleConfig().feature_dim,
            description="four-stream Shift-GCN (joint, bone, joint/bone motion); stream "
                        "features fused by mean (default) or concatenation"),
    ]
