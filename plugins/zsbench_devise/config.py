"""DeViSE options. No public implementation exists behind the papers' DeViSE numbers
(../methods/devise.md): defaults are the canonical DeViSE loss (Frome et al. 2013,
margin 0.1) with harness-chosen optimisation settings, all exposed."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from zsbench.specs import MethodConfig, MethodNeeds


class DeViSEConfig(MethodConfig):
    text_kind: str = Field("name", description="text kind embedded per class (papers: class names)")
    margin: float = Field(0.1, gt=0, description="hinge rank loss margin m (DeViSE: 0.1)")
    negatives: Literal["all", "hardest"] = Field(
        "all", description="sum the hinge over all other seen classes, or only the hardest one")
    normalize_projection: bool = Field(
        False, description="L2-normalise M v before the dot product (cosine variant)")
    epochs: int = Field(100, ge=1)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(128, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    feature_norm: Literal["none", "standardize"] = Field(
        "standardize", description="standardise skeleton features with training-set statistics")

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind])
