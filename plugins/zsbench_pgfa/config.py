"""PGFA configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (kaai520/PGFA) that produced the paper's Table I
numbers; see docs/methods/pgfa.md for the table each default comes from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from zsbench.specs import MethodConfig, MethodNeeds


@dataclass(frozen=True)
class Preset:
    lr: float
    alpha: float


# Paper §IV-C / official config.py: lr 5e-2 (NTU-60, PKU-MMD), 5e-3 (NTU-120);
# tolerance margin alpha 0.9 / 0.4 / 1.0.
PRESETS: dict[str, Preset] = {
    "ntu60": Preset(lr=0.05, alpha=0.9),
    "ntu120": Preset(lr=0.005, alpha=0.4),
    "pku_mmd": Preset(lr=0.05, alpha=1.0),
}
FALLBACK_PRESET = "ntu60"


class PGFAConfig(MethodConfig):
    """Options of PGFA (Zhou et al., IEEE TIP 2025)."""

    variant: str = Field("default", description="row 'variant' of the reported numbers to compare "
                         "with (e.g. cd_no_align); a label only, it changes no behaviour")
    dataset: Literal["auto", "ntu60", "ntu120", "pku_mmd"] = Field(
        "auto", description="preset for lr and alpha; 'auto' = from the run's dataset name "
        "(other datasets use the NTU-60 preset)")
    text_kind: str = Field("description", description="class text kind: name | description "
                           "(complete description, paper default) | parts | skeleton_focused")
    encoder: str | None = Field(None, description="skeleton encoder name; None = the run's "
                                "encoder (stgcn for Setting I, shiftgcn for Setting II)")
    resize_frames: int | None = Field(None, ge=1, description="resample sequences to this "
                                      "many frames before the encoder (Setting II: 64)")
    framework: Literal["end_to_end", "pretrained_fixed", "pretrained_finetune"] = Field(
        "end_to_end", description="Table V: train the encoder from scratch, or pretrain it with "
        "CE on the seen classes first and then freeze or fine-tune it")
    # ---- training (paper §IV-C, official config.py) ----
    epochs: int = Field(50, ge=1)
    lr: float | None = Field(None, gt=0, description="None = dataset preset (0.05 / 0.005 / 0.05)")
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: int = Field(5, ge=0, description="linear warm-up lr*e/warmup (epoch 0 at lr 0)")
    lr_steps: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [50, 80])
    lr_decay: float = Field(0.1, gt=0)
    batch_size: int = Field(128, ge=2, description="shuffled, last partial batch dropped")
    test_batch_size: int = Field(64, ge=1)
    tau: float = Field(0.07, gt=0)
    learn_temperature: bool = Field(False, description="paper: learnable; official code: fixed "
                                    "(the scale never reaches the optimiser)")
    target_sharpness: float | None = Field(10.0, gt=0, description="target softmax(s*G) of the "
                                           "code; None = exact 1/k multi-hot of the paper")
    # ---- prototype-guided text feature alignment (test time, transductive) ----
    prototype_alignment: bool = True
    alpha: float | None = Field(None, ge=0, le=1, description="tolerance margin; None = dataset "
                                "preset (0.9 / 0.4 / 1.0); 0 disables the replacement")
    pseudo_label: Literal["argmax", "weighted"] = Field(
        "argmax", description="Table VI: argmax support sets with entropy filter, or "
        "probability-weighted means over all test samples")
    prototype_classes: Literal["all", "unseen"] = Field(
        "all", description="candidate classes whose vector may be replaced by a prototype "
        "(matters only when seen classes are candidates, i.e. GZSL)")
    # ---- one-shot (paper §IV-F1) ----
    one_shot: bool = Field(False, description="class vectors = projected exemplar skeletons "
                           "(needs a one-shot protocol providing support samples)")
    # ---- CE pretraining for the pretrained_* frameworks (SMIE_Generate_Feature recipe) ----
    pretrain_epochs: int = Field(150, ge=1)
    pretrain_lr: float = Field(5e-3, gt=0)
    pretrain_batch_size: int = Field(128, ge=2)

    def resolved(self, dataset) -> "PGFAConfig":
        """lr and alpha as the dataset's preset sets them, filled in for the record."""
        _, preset = self.preset(dataset.family)
        return self.model_copy(update={"lr": self.lr if self.lr is not None else preset.lr,
                                       "alpha": self.alpha if self.alpha is not None
                                       else preset.alpha})

    def reported_variant(self) -> str:
        return self.variant or "default"

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind], encoder=self.encoder)

    def preset(self, family: str | None) -> tuple[str, Preset]:
        """The per-dataset preset (``family``: ctx.dataset.family); other families use
        the NTU-60 one."""
        key = self.dataset if self.dataset != "auto" else family
        key = key if key in PRESETS else FALLBACK_PRESET
        return key, PRESETS[key]
