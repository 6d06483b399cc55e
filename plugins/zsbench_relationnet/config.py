"""RelationNet options (no torch here).

No skeleton implementation of RelationNet exists (the SynSE repository has none; the
skeleton numbers come from Jasani & Mazagonwalla, arXiv 1911.11344, code not available).
Defaults are the original authors' zero-shot code for AwA1/AwA2
(``lzrobots/LearningToCompare_ZSL@ff01fa3f``, ``AwA1_RN.py``); its CUB script's values are
given in the descriptions. docs/methods/relationnet.md discusses the adaptation.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from zsbench.specs import MethodNeeds
from zsbench_revise.config import SelectionOptions


class RelationNetConfig(SelectionOptions):
    """Options of RelationNet (Sung et al., CVPR 2018, zero-shot part) on skeleton features."""

    text_kind: str = Field("name", description="class text kind")
    normalize_text: bool = Field(True, description="L2-normalise class texts (the original "
                                 "feeds raw attribute vectors; sentence embeddings are "
                                 "normalised as in the other skeleton baselines)")
    semantic_hidden: int = Field(1024, ge=1, description="hidden width of the semantic "
                                 "embedding network (AwA 1024, CUB 1200)")
    relation_hidden: int = Field(400, ge=1, description="hidden width of the relation module "
                                 "(AwA 400, CUB 1200)")
    pair_classes: Literal["batch", "seen"] = Field(
        "batch", description="classes each sample is compared with in training: the distinct "
        "classes of its batch (the code) or every seen class")
    batch_size: int = Field(32, ge=1, description="samples per episode")
    episodes: int = Field(500_000, ge=1, description="training episodes, one random batch "
                          "each (AwA 500000, CUB 200000)")
    epochs: int | None = Field(None, ge=1, description="when set, replaces episodes by "
                               "epochs x ceil(N / batch_size)")
    lr: float = Field(1e-5, gt=0, description="Adam lr of both networks")
    semantic_weight_decay: float = Field(1e-5, ge=0)
    relation_weight_decay: float = Field(0.0, ge=0)
    lr_step: int = Field(200_000, ge=1, description="StepLR step in episodes (AwA 200000, "
                         "CUB 30000)")
    lr_gamma: float = Field(0.5, gt=0, le=1, description="StepLR factor")
    eval_every: int = Field(2000, ge=1, description="with selection=validation: episodes "
                            "between validation evaluations (the original tests every 2000)")
    test_batch_size: int = Field(256, ge=1)

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind])
