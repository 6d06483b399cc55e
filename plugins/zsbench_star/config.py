"""STAR configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (cseeyangchen/STAR@917ca67: ``main_ntu_match.py``,
``main_pku_match.py``, ``model/shiftgcn_match_ntu.py`` class ``ModelMatch``,
``config/*/joint_shiftgcn_ViTL14@336px_match.yaml``); docs/methods/star.md gives the source of
every default. The paper body could not be read, so no paper value differs from these.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodNeeds, PluginConfig
from zsbench_neuron.config import SeenEncoderStage

#: body parts in the official order and their 0-based NTU / Kinect v2 joints
#: (``ModelMatch.body_part_index_list``)
PART_NAMES = ("head", "hand", "arm", "hip", "leg", "foot")
PART_JOINTS = ((2, 3, 20), (7, 11, 21, 22, 23, 24), (4, 5, 6, 8, 9, 10), (0, 1),
               (12, 13, 16, 17), (14, 15, 18, 19))

#: lr decay epochs and epoch counts of the official configs (NTU-120 has epochs 30)
LR_STEPS = {"ntu60": [10, 20], "ntu120": [10, 20], "pku_mmd": [15, 20]}
EPOCHS = {"ntu60": 40, "ntu120": 30, "pku_mmd": 40}

#: calibration factors the official main_*_match.py passes to its (missing) GZSL routine
OFFICIAL_GAMMA_GRID = tuple([0.0, 0.001, 0.005] + [i / 10000 for i in range(100, 160, 10)]
                            + [i / 1000 for i in range(20, 100, 5)] + [0.25, 0.5, 0.75])

Fraction = Annotated[float, Field(gt=0, le=1)]
Joint = Annotated[int, Field(ge=0)]


class StarConfig(SeenEncoderStage):
    """Options of STAR (Chen et al., ACM MM 2024)."""

    dataset: Literal["auto", "ntu60", "ntu120", "pku_mmd"] = Field(
        "auto", description="preset for epochs and lr_steps; 'auto' = the run's dataset family "
        "(other datasets, the embedded benchmark included, use the NTU-60 preset)")
    # ---- side information ----
    name_kind: str = Field("name", description="text kind of the class names (label text)")
    part_kind: str = Field("star_parts", description="text kind with one description per "
                           "body part and class, in the order of `parts` (star_parts: "
                           "'<name>,<part sentence>' as Text_Prompt.py composes them)")
    parts: list[list[Joint]] = Field(
        default_factory=lambda: [list(j) for j in PART_JOINTS], min_length=1,
        description="joint groups of the body parts (head, hand, arm, hip, leg, foot)")
    # ---- dual prompts ----
    num_prompts: int = Field(100, ge=1, description="visual-attribute prompts per part = "
                             "width of the semantic space (code: 100)")
    attention_dim: int = Field(768, ge=4, description="width of the prompts and of the "
                               "cross-attention (code: 768, the CLIP ViT-L/14 text width)")
    num_heads: int = Field(4, ge=1)
    hidden_dim: int = Field(256, ge=1, description="hidden width of the label and "
                            "description projections (code: 256)")
    use_part_prompts: bool = Field(True, description="visual-attribute prompts Q_p attend "
                                   "to the part tokens; false: mean-pooled part tokens "
                                   "through a linear map and the MLP (ablation, form assumed)")
    use_semantic_prompts: bool = Field(True, description="learnable per-class prompts R_p "
                                       "added to the part descriptions; false: R_p = 0")
    # ---- losses (main_*_match.py: 0.1 * global + part + 0.1 * description-label) ----
    w_global: float = Field(0.1, ge=0)
    w_part: float = Field(1.0, ge=0)
    w_pd: float = Field(0.1, ge=0)
    unseen_text_in_training: bool = Field(
        False, description="official: the description-label loss and the semantic prompts "
        "cover every class of the dataset, unseen ones included (a deviation: fit() then "
        "reads unseen-class texts through the dataset's text bank)")
    # ---- encoder: SeenEncoderStage (frozen Shift-GCN pretrained on the seen classes) ----
    official_feature_reshape: bool = Field(
        False, description="official SHIFTGCNModel.forward: view(N, C, T', V, M).mean(-1) of "
        "the (N*M, C, T', V) map, which scrambles channels, bodies and joints (quirk Q1); "
        "default: the bodies averaged correctly")
    freeze_encoder_bn: bool = Field(
        True, description="eval-mode BatchNorm in the frozen encoder; official (false): the "
        "model is in train mode, so the encoder's BN statistics drift (quirk Q4)")
    encoder_features: Literal["online", "cached"] = Field(
        "online", description="online (code): the frozen encoder runs on every batch, with "
        "augmentation; cached: eval-mode feature maps of the unaugmented clips computed once "
        "(much faster, no augmentation, needs freeze_encoder_bn)")
    augment: bool | None = Field(None, description="training clips: random crop (share "
                                 "drawn from crop_interval, resized back) + random rotation; "
                                 "None = dataset preset (NTU: true, code p_interval [0.5, 1] + "
                                 "random_rot; PKU-MMD: false, its feeder "
                                 "Feeder_Shiftgcn_Feature_Store ignores both)")
    pretrain_augment: bool = Field(True, description="crop + rotation in the encoder's "
                                   "seen-class pretraining (Neuron's Pretrain_Shift_GCN, NTU "
                                   "and PKU configs)")
    crop_interval: list[Fraction] = Field(default_factory=lambda: [0.5, 1.0], min_length=2,
                                          max_length=2)
    rotation: float = Field(0.3, ge=0, description="max rotation angle per axis (rad)")
    test_augment: bool = Field(False, description="official: the same random crop and "
                               "rotation at test time (stochastic evaluation, quirk Q5; "
                               "recorded as a deviation)")
    # ---- training ----
    epochs: int | None = Field(None, ge=1, description="None = dataset preset (40 NTU-60, "
                               "30 NTU-120, 40 PKU-MMD)")
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    lr_steps: list[Annotated[int, Field(ge=0)]] | None = Field(
        None, description="None = dataset preset ([10, 20] NTU, [15, 20] PKU)")
    lr_decay: float = Field(0.1, gt=0)
    batch_size: int = Field(64, ge=2, description="shuffled, last partial batch dropped")
    test_batch_size: int = Field(64, ge=1)
    # ---- GZSL (gzsl_rule=method) ----
    gamma: float = Field(0.0, ge=0, description="gzsl_rule=method: calibrated stacking "
                         "softmax(cos) - gamma * 1[seen] with this fixed factor (the official "
                         "code's grid value is chosen on the test set and not published)")
    record_gzsl_margins: bool = Field(
        False, description="record per GZSL test sample the best seen / unseen class and their "
        "softmax margin so that `python -m zsbench_star.official` can pick gamma from the "
        "official grid on the test set, as the code does (a deviation)")

    @model_validator(mode="after")
    def _check(self) -> "StarConfig":
        lo, hi = self.crop_interval
        if lo > hi:
            raise ValueError(f"crop_interval must be [low, high] with low <= high, got "
                             f"{self.crop_interval}")
        if self.attention_dim % self.num_heads:
            raise ValueError(f"attention_dim ({self.attention_dim}) must be divisible by "
                             f"num_heads ({self.num_heads})")
        for i, group in enumerate(self.parts):
            if not group:
                raise ValueError(f"parts[{i}] is empty: every body part needs joints")
        if self.encoder_features == "cached" and not self.freeze_encoder_bn:
            raise ValueError("encoder_features='cached' computes eval-mode features once; "
                             "set freeze_encoder_bn=true (or encoder_features='online')")
        return self

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=list(dict.fromkeys([self.name_kind, self.part_kind])),
                           encoder=self.encoder)

    def _family(self, family: str | None) -> str:
        key = self.dataset if self.dataset != "auto" else family
        return key if key in LR_STEPS else "ntu60"

    def resolve_lr_steps(self, family: str | None) -> tuple[list[int], str]:
        if self.lr_steps is not None:
            return list(self.lr_steps), "config"
        key = self._family(family)
        return list(LR_STEPS[key]), f"code preset {key}"

    def resolve_augment(self, family: str | None) -> bool:
        if self.augment is not None:
            return self.augment
        return self._family(family) != "pku_mmd"

    def resolve_epochs(self, family: str | None) -> tuple[int, str]:
        if self.epochs is not None:
            return self.epochs, "config"
        key = self._family(family)
        return EPOCHS[key], f"code preset {key}"


class StarPartsConfig(PluginConfig):
    """The ``star_parts`` text source: per class one string per body part,
    ``'<class name>,<part sentence>'`` (STAR ``Text_Prompt.py``)."""

    path: Path | None = Field(None, description="STAR part-description file "
                              "(text/ntu120_part_descriptions.txt, text/pkuv1_part_"
                              "descriptions.txt: 'name; Head: ...; Hand: ...; ...' per line); "
                              "default: the dataset's own 'parts' texts and class names")
    kind: str = Field("star_parts", min_length=1)
    template: str = Field("{name},{part}", description="how a class name and one part "
                          "sentence are joined (code: name + ',' + part)")
    allow_prefix: bool = Field(True, description="a file with more rows than the dataset has "
                               "classes serves it with its first rows (NTU-120 file for "
                               "NTU-60, as the code does)")
