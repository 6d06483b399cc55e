"""Registers the SynSE method and its verb/noun text source (no torch at import time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec, TextSourceSpec

from .config import SynSEConfig
from .texts import SynsePosConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="synse", smoke_overrides={'num_cycles': 1, 'cycle_length': 60, 'cross_start': 30, 'classifier_steps': 20, 'seen_classifier_epochs': 2},
        impl="zsbench_synse.method:SynSE",
        config=SynSEConfig,
        inputs="features",
        text_kinds=["verb", "noun"],
        transductive=False,
        default_encoder="shiftgcn",
        paper="P. Gupta, D. Sharma, R. K. Sarvadevabhatla, \"Syntactically Guided Generative "
              "Embeddings for Zero-Shot Skeleton Action Recognition\", ICIP 2021 "
              "(arXiv 2101.11530); code skelemoa/synse-zsl",
        reported="zsbench_synse:reported.csv",
        description="skeleton VAE cross-aligned with separate verb and noun text VAEs "
                    "(part-of-speech split class labels); unseen classifier on generated "
                    "latents; seen/unseen gate for GZSL (gzsl_rule=method)",
    )]


@zsbench.hookimpl
def zsbench_text_sources() -> list[TextSourceSpec]:
    return [TextSourceSpec(
        name="synse_pos", impl="zsbench_synse.texts:pos_texts", config=SynsePosConfig,
        text_kinds=["verb", "noun"], default_for=["verb", "noun"],
        description="verb and noun phrases of the class labels (SynSE/JPoSE part-of-speech "
                    "split: deterministic rules of zsbench_synse.pos, or given as data)")]
