"""Registers the DeViSE baseline (no torch import here: the implementation is lazy)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import DeViSEConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="devise", impl="zsbench_devise.method:DeViSE", config=DeViSEConfig,
        inputs="features", text_kinds=["name"], default_encoder="stgcn",
        paper="Frome et al., DeViSE, NeurIPS 2013; skeleton baseline as quoted by SynSE/SMIE",
        reported="zsbench_devise:reported.csv",
        description="Linear projection of skeleton features into the text space, hinge rank loss")]
