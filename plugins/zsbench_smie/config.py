"""SMIE configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (YujieOuO/SMIE ``config.py``, ``procedure.py``,
``model.py``) and, for the encoder's seen-class pretraining, SMIE_Generate_Feature
(``gen_config.py``). docs/methods/smie.md gives the source of each default.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds

#: the sequence length the official mask size (15 frames) was set for
OFFICIAL_FRAMES = 50


class SMIEBaseConfig(MethodConfig):
    """Options shared by ``smie`` and ``smie_features``: the critic, its MI loss, training."""

    variant: str | None = Field(None, description="row 'variant' of the reported numbers to "
                                "compare with; None = 'complete_description' when text_kind is "
                                "'description' (SMIE† of PGFA Table I), else 'default'. A "
                                "label only")
    test_selection_from_epoch: int = Field(
        16, ge=0, description="under the run option model_selection=best_on_test only: "
        "first (0-based) epoch eligible, as the official loop takes the maximum over epochs "
        "> 15 on its SMIE splits (its SynSE-split track uses every epoch: 0)")
    text_kind: str = Field("name", description="class text kind: name (official default) | "
                           "description (one complete description per class, SMIE†)")
    # ---- the MI estimator (model.py) ----
    negative_sampling: Literal["roll", "all_other_samples", "other_classes_only"] = Field(
        "roll", description="roll: text i against the feature of sample i+1 (official, ignores "
        "labels); all_other_samples / other_classes_only: every off-diagonal pair of the batch "
        "(only pairs of different classes), averaged")
    critic_hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [1024, 512], description="the critic's two hidden widths")
    test_layernorm: bool = Field(False, description="LayerNorm the features at test time too; "
                                 "official: training only (the critic sees raw features at test)")
    # ---- critic training (config.py, procedure.py) ----
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(100, ge=1)
    warmup_epochs: int = Field(15, ge=0, description="lr*e/warmup (epoch 0 at lr 0), then "
                               "cosine to 0 at the last epoch")
    batch_size: int = Field(128, ge=2, description="shuffled, last partial batch kept")
    test_batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "SMIEBaseConfig":
        if len(self.critic_hidden) != 2:
            raise ValueError("critic_hidden needs exactly two widths (official: [1024, 512])")
        return self

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind])

    def reported_variant(self) -> str:
        if self.variant is not None:
            return self.variant
        return "complete_description" if self.text_kind == "description" else "default"


class SMIEConfig(SMIEBaseConfig):
    """Options of SMIE (Zhou et al., ACM MM 2023): official main track, end to end from
    sequences (frozen seen-class-pretrained encoder, MI + temporal constraint)."""

    # ---- temporal constraint (procedure.py, model.py) ----
    use_temporal_constraint: bool = Field(True, description="add the temporal-constraint hinge "
                                          "(main track); false = MI term only (Setting II track)")
    margin: float = Field(0.1, ge=0, description="beta of max(0, beta - (I_full - I_reduced))")
    tc_weight: float = Field(0.5, ge=0, description="weight of the temporal term (hard-coded 0.5)")
    mask_frames: int = Field(15, ge=0, description="m: the motion step keeps T-m frames, the "
                             "random step T-2m of those (official: 15 of 50 frames)")
    mask_reference_frames: int | None = Field(
        OFFICIAL_FRAMES, ge=1, description="scale m to round(m * T / this) for T-frame inputs "
        "(the official 15 assumes 50 frames; equal at T=50); None = use mask_frames as is")
    mask_mode: Literal["motion_attention_2sided", "motion_attention_1sided", "random"] = Field(
        "motion_attention_2sided", description="official motion_att_temp_mask2 | the one-sided "
        "motion_att_temp_mask | temp_mask (random T-m frames); the last two are unused upstream")
    # ---- seen-class CE pretraining of the frozen encoder (SMIE_Generate_Feature) ----
    pretrain_epochs: int = Field(150, ge=0, description="0 = use the encoder untrained")
    pretrain_lr: float = Field(5e-3, gt=0)
    pretrain_batch_size: int = Field(128, ge=2)
    pretrain_weight_decay: float = Field(0.0, ge=0)
    pretrain_head: Literal["dataset_classes", "seen_classes"] = Field(
        "dataset_classes", description="width of the CE head: every class of the dataset "
        "(official; unseen logits are never targets) or the seen classes only")
    pretrain_cache: bool = Field(
        True, description="keep the pretrained encoder (and the random-generator states after "
        "it) in the run's cache and load it when encoder, recipe, seed and training data are the "
        "same: the run continues exactly as if it had trained")

    def frames_to_mask(self, frames: int) -> int:
        """m for ``frames``-frame inputs (scaled from the official 15 of 50)."""
        if self.mask_reference_frames is None:
            return self.mask_frames
        return int(round(self.mask_frames * frames / self.mask_reference_frames))


class SMIEFeaturesConfig(SMIEBaseConfig):
    """Options of ``smie_features``: the critic trained with the MI term only on the run's
    pooled features (official Setting II / ``sota`` track; no temporal constraint, which
    needs sequences)."""
