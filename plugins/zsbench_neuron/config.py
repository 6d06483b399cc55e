"""Neuron configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (cseeyangchen/Neuron@7939873: ``main_match.py``,
``model/shiftgcn_match.py``, ``config/*/joint_shiftgcn_ViTL14@336px_match.yaml``,
``Pretrain_Shift_GCN/config/*.yaml``); docs/methods/neuron.md gives the source of every
default and the paper value where it differs.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds

SPATIAL_KINDS = ["neuron_spatial_cg", "neuron_spatial_mg", "neuron_spatial_fg"]
TEMPORAL_KINDS = ["neuron_temporal_fp", "neuron_temporal_sp", "neuron_temporal_tp"]

#: lr decay epochs of the official match configs: NTU-60 [4, 20], PKU-MMD [8, 20] (NTU-120
#: has no published config; it uses the NTU-60 one); the paper (§4.3) says 10 and 20.
LR_STEPS = {"ntu60": [4, 20], "ntu120": [4, 20], "pku_mmd": [8, 20]}
PAPER_LR_STEPS = [10, 20]
#: GZSL calibration factors of the paper (§4.3, "lambda_s, lambda_t")
PAPER_GAMMAS = (0.0003, 0.0002)

Fraction = Annotated[float, Field(gt=0, le=1)]


class SeenEncoderStage(MethodConfig):
    """The frozen-encoder stage Neuron, STAR and PURLS share
    (``zsbench_neuron.training.seen_class_encoder``): the run's skeleton encoder, pretrained
    with cross-entropy on the fold's seen training classes (Neuron's ``Pretrain_Shift_GCN``
    recipe by default) and cached under one key, so the three methods reuse one encoder."""

    encoder: str | None = Field(None, description="skeleton encoder; None = the run's encoder "
                                "(default shiftgcn); it must expose feature_map()")
    encoder_overrides: dict[str, Any] = Field(
        default_factory=dict, description="encoder options replaced for this method (the "
        "embedded benchmark narrows Shift-GCN to keep CPU runs short)")
    pretrain_epochs: int = Field(110, ge=0, description="seen-class CE pretraining of the "
                                 "encoder (Neuron's Pretrain_Shift_GCN: 110; STAR ships "
                                 "epoch-81 checkpoints); 0 = use it untrained")
    pretrain_lr: float = Field(0.1, gt=0)
    pretrain_weight_decay: float = Field(1e-4, ge=0)
    pretrain_lr_steps: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [60, 80, 100])
    pretrain_batch_size: int = Field(64, ge=2)
    pretrain_cache: bool = Field(True, description="reuse a pretrained encoder from the cache "
                                 "folder when the same training samples, encoder and recipe "
                                 "recur (ablation runs of one fold, and the three methods, "
                                 "share it)")


class NeuronConfig(SeenEncoderStage):
    """Options of Neuron (Chen et al., CVPR 2025)."""

    variant: str = Field("default", description="row 'variant' of the reported numbers to "
                         "compare with; 'default' = derived from the four ablation switches "
                         "(Table 6 names: gu, gu_pe, gu_sc_pe, no_gu_no_sc_no_pe_no_tm)")
    dataset: Literal["auto", "ntu60", "ntu120", "pku_mmd"] = Field(
        "auto", description="preset for lr_steps; 'auto' = the run's dataset family (other "
        "datasets, the embedded benchmark included, use the NTU-60 preset)")
    # ---- texts ----
    spatial_kinds: list[str] = Field(
        default_factory=lambda: list(SPATIAL_KINDS), min_length=3, max_length=3,
        description="text kinds of the coarse, medium and fine spatial phases")
    temporal_kinds: list[str] = Field(
        default_factory=lambda: list(TEMPORAL_KINDS), min_length=3, max_length=3,
        description="text kinds of the first, second and third temporal phase")
    temporal_text_context: Literal["cumulative", "phase"] = Field(
        "cumulative", description="cumulative: phase e is matched with the descriptions of "
        "phases 1..e (description a of each phase, normalised and summed; the code's "
        "fp/fsp/fstp embeddings, whose composition is not published); phase: only phase e")
    desc_topk: int = Field(10, ge=1, description="class score = mean of the top-k cosines "
                           "over the class's descriptions (code: top-10 of 10 = the mean)")
    logit_scale: float = Field(0.1, gt=0, description="code: logits = 0.1 * cosine")
    # ---- components (Table 6) ----
    granularity_update: bool = Field(True, description="coarse/medium/fine texts per spatial "
                                     "phase; false: the fine texts in every phase")
    phase_evolving: bool = Field(True, description="temporal phases over segments with their "
                                 "own texts; false: the whole sequence and the last phase's "
                                 "texts in every phase")
    spatial_compression: bool = Field(True, description="keep only the top prototypes of each "
                                      "joint (Eqs. 1-2); false: aggregate over all")
    temporal_memory: bool = Field(True, description="recall/remember gates (Eq. 5); false: "
                                  "P <- phi_t(aggregated prototypes)")
    num_spatial_prototypes: int = Field(80, ge=1)
    num_temporal_prototypes: int = Field(80, ge=1)
    keep_fractions: list[Fraction] = Field(
        default_factory=lambda: [0.75, 0.5, 0.25], min_length=3, max_length=3,
        description="share of prototypes kept per joint in phases 1-3 (code: drop 20/40/60 of "
        "80); the paper's 'alpha increased each phase' reads as e.g. [0.25, 0.5, 0.75]")
    temporal_segments: Literal["cumulative", "disjoint"] = Field(
        "cumulative", description="code: prefixes of floor(T/3), floor(2T/3), T steps (5, 10, "
        "16 of 16); paper §3.3: three disjoint T/3 segments")
    memory_gate: Literal["independent", "convex"] = Field(
        "independent", description="Eq. 5 with two independent sigmoid gates (paper, code), "
        "or g*P + (1-g)*phi(Q) with one gate")
    share_init: bool = Field(True, description="code: the three MLPs of a kind start as copies "
                             "of one template (the gate MLPs as copies of the spatial one)")
    encoder_features: Literal["online", "cached"] = Field(
        "online", description="online (code): the frozen encoder runs on every batch, with "
        "augmentation, its BatchNorm as encoder_bn says; cached: eval-mode features of the "
        "unaugmented clips computed once (much faster, no augmentation)")
    encoder_bn: Literal["train", "eval"] = Field(
        "train", description="online features: code keeps the frozen encoder in train mode, "
        "so BatchNorm uses batch statistics and its running statistics keep moving")
    augment: bool = Field(True, description="random crop (share of the frames drawn from "
                          "crop_interval, resized back) + random rotation, for pretraining "
                          "and online training (code: p_interval [0.5, 1], random_rot)")
    crop_interval: list[Fraction] = Field(default_factory=lambda: [0.5, 1.0], min_length=2,
                                          max_length=2)
    rotation: float = Field(0.3, ge=0, description="max rotation angle per axis (rad)")
    test_augment: bool = Field(False, description="official: the same random crop and "
                               "rotation at test time (stochastic evaluation; recorded as a "
                               "deviation)")
    # ---- training (main_match.py, match configs) ----
    epochs: int = Field(30, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    lr_steps: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="None = dataset preset ([4, 20] NTU, [8, 20] PKU); paper [10, 20]")
    lr_decay: float = Field(0.1, gt=0)
    batch_size: int = Field(64, ge=2, description="shuffled, last partial batch dropped")
    test_batch_size: int = Field(64, ge=1)
    loss_reduction: Literal["mean", "sum"] = Field(
        "mean", description="code: (mean of 3 spatial CE + mean of 3 temporal CE) / 2; paper "
        "Eq. 8: the sum of the six")
    # ---- prediction ----
    decision: Literal["sum_softmax", "spatial", "temporal"] = Field(
        "sum_softmax", description="the single score handed to the core (final phase): "
        "softmax of the spatial plus softmax of the temporal logits, or one stream")
    official_two_guess_accuracy: bool = Field(
        False, description="also record, per test sample, the two streams' predictions (and "
        "their calibrated-stacking margins in GZSL) so the paper's 'correct if either stream "
        "is' accuracy can be computed (python -m zsbench_neuron.official); a deviation")
    gamma_s: float = Field(PAPER_GAMMAS[0], ge=0, description="gzsl_rule=method: calibration "
                           "factor of the spatial stream (paper lambda_s)")
    gamma_t: float = Field(PAPER_GAMMAS[1], ge=0, description="gzsl_rule=method: calibration "
                           "factor of the temporal stream (paper lambda_t)")

    @model_validator(mode="after")
    def _check(self) -> "NeuronConfig":
        lo, hi = self.crop_interval
        if lo > hi:
            raise ValueError(f"crop_interval must be [low, high] with low <= high, got "
                             f"{self.crop_interval}")
        return self

    def needs(self) -> MethodNeeds:
        spatial = self.spatial_kinds if self.granularity_update else self.spatial_kinds[-1:]
        temporal = (self.temporal_kinds if (self.phase_evolving or
                                            self.temporal_text_context == "cumulative")
                    else self.temporal_kinds[-1:])
        return MethodNeeds(text_kinds=list(dict.fromkeys(spatial + temporal)),
                           encoder=self.encoder)

    def spatial_keep(self) -> list[int] | None:
        """Prototypes kept per joint in each phase (None = no compression)."""
        if not self.spatial_compression:
            return None
        p = self.num_spatial_prototypes
        return [min(p, max(1, round(f * p))) for f in self.keep_fractions]

    def resolve_lr_steps(self, family: str | None) -> tuple[list[int], str]:
        if self.lr_steps is not None:
            return list(self.lr_steps), "config"
        key = self.dataset if self.dataset != "auto" else family
        key = key if key in LR_STEPS else "ntu60"
        return list(LR_STEPS[key]), f"code preset {key}"

    def reported_variant(self) -> str:
        if self.variant != "default":
            return self.variant
        on = [self.granularity_update, self.spatial_compression, self.phase_evolving,
              self.temporal_memory]
        if all(on):
            return "default"
        if not any(on):
            return "no_gu_no_sc_no_pe_no_tm"
        return "_".join(n for n, o in zip(("gu", "sc", "pe", "tm"), on) if o)
