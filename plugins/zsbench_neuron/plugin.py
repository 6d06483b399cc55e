"""Registers the Neuron method (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec

from .config import SPATIAL_KINDS, TEMPORAL_KINDS, NeuronConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="neuron", smoke_overrides={'epochs': 2, 'pretrain_epochs': 2},
        impl="zsbench_neuron.method:Neuron",
        config=NeuronConfig,
        inputs="sequences",
        text_kinds=SPATIAL_KINDS + TEMPORAL_KINDS,
        transductive=False,
        default_encoder="shiftgcn",
        paper="Y. Chen, J. Guo, S. Guo, D. Tao, \"Neuron: Learning Context-Aware Evolving "
              "Representations for Zero-Shot Skeleton Action Recognition\", CVPR 2025; code "
              "cseeyangchen/Neuron",
        reported="zsbench_neuron:reported.csv",
        description="spatial/temporal micro-prototypes evolving over three phases (spatial "
                    "compression, temporal memory) on a frozen seen-class-pretrained encoder, "
                    "aligned with phase-wise LLM side information",
    )]
