"""Registers the STAR method and its part-description text source (no torch at import
time)."""
from __future__ import annotations

import zsbench
from zsbench.specs import MethodSpec, TextSourceSpec

from .config import StarConfig, StarPartsConfig


@zsbench.hookimpl
def zsbench_methods() -> list[MethodSpec]:
    return [MethodSpec(
        name="star",
        smoke_overrides={"epochs": 2, "pretrain_epochs": 2, "num_prompts": 8,
                         "attention_dim": 16, "hidden_dim": 16, "encoder_features": "cached",
                         "encoder_overrides": {"widths": [8] * 9, "out_dim": 16}},
        impl="zsbench_star.method:Star",
        config=StarConfig,
        inputs="sequences",
        text_kinds=["name", "star_parts"],
        official_test_batch_size=64,  # official test loaders (configs)
        transductive=False,
        default_encoder="shiftgcn",
        paper="Y. Chen, J. Guo, T. He, X. Lu, L. Wang, \"Fine-Grained Side Information Guided "
              "Dual-Prompts for Zero-Shot Skeleton Action Recognition\", ACM MM 2024 "
              "(arXiv 2404.07487); code cseeyangchen/STAR",
        reported="zsbench_star:reported.csv",
        description="per body part, learnable visual-attribute prompts attend to a frozen "
                    "seen-class Shift-GCN's feature map; learnable semantic prompts refine "
                    "LLM part descriptions; global, part and description-label matching "
                    "losses; test: cosine to the projected class names",
    )]


@zsbench.hookimpl
def zsbench_text_sources() -> list[TextSourceSpec]:
    return [TextSourceSpec(
        name="star_parts", impl="zsbench_star.texts:star_parts", config=StarPartsConfig,
        text_kinds=["star_parts"], default_for=["star_parts"],
        description="STAR side information: '<class name>,<part sentence>' for head, hand, "
                    "arm, hip, leg, foot (a STAR *_part_descriptions.txt file, or the "
                    "dataset's 'parts' texts)")]
