"""Registers the ReViSE baseline (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import ReViSEConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="revise", smoke_overrides={'epochs': 3, 'seen_classifier_epochs': 2},
        impl="zsbench_revise.method:ReViSE",
        config=ReViSEConfig,
        inputs="features",
        text_kinds=["name"],
        transductive=False,
        default_encoder="shiftgcn",
        paper="Y.-H. Hubert Tsai, L.-K. Huang, R. Salakhutdinov, \"Learning Robust "
              "Visual-Semantic Embeddings\", ICCV 2017; skeleton version: SynSE repository "
              "skelemoa/synse-zsl (Gupta et al., ICIP 2021), revise/",
        reported="zsbench_revise:reported.csv",
        description="skeleton and text autoencoders aligned by a Gaussian-kernel MMD between "
                    "their codes, multi-class hinge loss in a 50-d common space; GZSL by "
                    "calibrated stacking or the repository's seen/unseen gate",
    )]
