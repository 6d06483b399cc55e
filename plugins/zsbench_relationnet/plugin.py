"""Registers the RelationNet baseline (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import RelationNetConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="relationnet", smoke_overrides={'episodes': 200},
        impl="zsbench_relationnet.method:RelationNetMethod",
        config=RelationNetConfig,
        inputs="features",
        text_kinds=["name"],
        transductive=False,
        default_encoder="shiftgcn",
        paper="F. Sung, Y. Yang, L. Zhang, T. Xiang, P. H. S. Torr, T. M. Hospedales, "
              "\"Learning to Compare: Relation Network for Few-Shot Learning\", CVPR 2018 "
              "(zero-shot part; code lzrobots/LearningToCompare_ZSL). Skeleton baseline of "
              "Jasani & Mazagonwalla (arXiv 1911.11344), re-implemented from the original "
              "method: no skeleton code exists",
        reported="zsbench_relationnet:reported.csv",
        description="semantic network maps class texts into the feature space, a learned "
                    "relation module scores (sample, class) pairs in (0, 1), MSE to one-hot; "
                    "GZSL by calibrated stacking",
    )]
