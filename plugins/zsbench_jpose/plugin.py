"""Registers the JPoSE baseline (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import JPoSEConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="jpose", smoke_overrides={'epochs': 3},
        impl="zsbench_jpose.method:JPoSE",
        config=JPoSEConfig,
        inputs="features",
        text_kinds=["verb", "noun"],
        transductive=False,
        default_encoder="shiftgcn",
        paper="M. Wray, D. Larlus, G. Csurka, D. Damen, \"Fine-Grained Action Retrieval "
              "Through Multiple Parts-of-Speech Embeddings\", ICCV 2019; skeleton version: "
              "SynSE repository skelemoa/synse-zsl (Gupta et al., ICIP 2021), jpose/",
        reported="zsbench_jpose:reported.csv",
        description="verb and noun embedding spaces (cross-modal hinge, batch-hard triplets) "
                    "and a joint space over both; GZSL by calibrated stacking or the "
                    "repository's seen/unseen gate",
    )]
