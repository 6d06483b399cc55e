"""PURLS configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (azzh1/PURLS@7198fe7: ``model/purls.py``,
``model/utils/{attention,losses}.py``, ``configs/*.yaml``, ``main.py``); the paper's
supplement values are options where they differ. docs/methods/purls.md gives the source
of every default.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodNeeds
from zsbench_neuron.config import SeenEncoderStage

#: the representations of the full model, in the official order
REPRESENTATIONS = ("head", "hands", "torso", "legs", "start", "middle", "end", "global")
#: which representations each ``local_type`` keeps (the commented-out slicing of
#: ``model/purls.py``: body parts + global, intervals + global, global only)
LOCAL_TYPES = {"full": (0, 1, 2, 3, 4, 5, 6, 7), "bp": (0, 1, 2, 3, 7), "tp": (4, 5, 6, 7),
               "g": (7,)}
#: description source per representation on the embedded benchmark: its ``parts`` kind
#: lists head, hands, arms, hips, legs, feet (hips stand for the torso), ``phases`` start,
#: middle, end, and ``description`` is the whole-action sentence
DEFAULT_DESCRIPTIONS = ["parts:0", "parts:1", "parts:3", "parts:4",
                        "phases:0", "phases:1", "phases:2", "description"]


def parse_source(entry: str) -> tuple[str, int | None]:
    """``"kind"`` (mean of the class's strings of that kind) or ``"kind:i"`` (string i)."""
    kind, sep, index = entry.partition(":")
    if not kind or (sep and not index.isdigit()):
        raise ValueError(f"description source {entry!r}: expected 'kind' or 'kind:index'")
    return kind, (int(index) if sep else None)


class PurlsConfig(SeenEncoderStage):
    """Options of PURLS (Zhu, Ke, Gong, Bailey, CVPR 2024)."""

    variant: str = Field("default", description="row 'variant' of the reported numbers to "
                         "compare with; a label only, it changes no behaviour")
    # ---- texts ----
    descriptions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DESCRIPTIONS), min_length=8, max_length=8,
        description="text source of head, hands, torso, legs, start, middle, end, global: "
        "'kind' (mean of the class's strings) or 'kind:i' (its i-th string); real data: a "
        "kind with the 8 GPT-3 descriptions per class, e.g. purls:0 ... purls:7")
    # ---- representations (supp Tables 4-6) ----
    local_type: Literal["full", "bp", "tp", "g"] = Field(
        "full", description="full: 4 body parts + 3 intervals + global; bp: parts + global; "
        "tp: intervals + global; g: global only")
    partitioning: Literal["adaptive", "static"] = Field(
        "adaptive", description="adaptive: description-queried attention over the 75 "
        "tokens; static: fixed joint groups / segment means / global mean (supp Table 5)")
    loss_weights: Literal["average", "learnable"] = Field(
        "average", description="average (code: use_d=False, plain sum); learnable: one "
        "weight per representation trained with the model (use_d; the paper's full model)")
    # ---- architecture (model/purls.py, attention.py) ----
    segments: int = Field(3, ge=1, description="temporal segments of the token grid")
    n_heads: int = Field(2, ge=1)
    k_dim: int = Field(150, ge=1)
    proj_hidden: int = Field(1024, ge=1)
    n_hidden_layers: int = Field(0, ge=0, description="extra BN-Dropout-Linear-SiLU blocks "
                                 "(configs: 0; the code's blocks for >= 1 do not run)")
    dropout: float = Field(0.5, ge=0, lt=1)
    tau_init: float = Field(math.log(1 / 0.07), description="initial logit scales")
    tau_exp: bool = Field(False, description="False (code): logits = tau * sim; True: "
                          "exp(tau) * sim as in CLIP")
    # ---- prediction ----
    score_parts: bool = Field(False, description="False (code): score = global output . "
                              "global text; True: sum over all representations")
    official_true_label_queries: bool = Field(
        False, description="record the official test path (quirk Q1: the true class's "
        "descriptions query the skeleton, then the global output is scored against every "
        "candidate); its accuracy needs the labels: python -m zsbench_purls.official "
        "RESULT.json. A deviation: not a zero-shot evaluation")
    score_chunk: int = Field(4096, ge=1, description="(sample, candidate) pairs per forward "
                             "pass at test time")
    # ---- skeleton encoder: SeenEncoderStage (frozen, seen-class pretrained; feature map
    # -> tokens) ----
    pretrain_augment: bool = Field(False, description="random crop + rotation during "
                                   "encoder pretraining")
    # ---- training (configs/*.yaml, main.py, configure_optimizers) ----
    epochs: int = Field(100, ge=1)
    lr: float = Field(1e-4, gt=0, description="configs: 1e-4 (class default 1e-3)")
    batch_size: int = Field(256, ge=2)
    test_batch_size: int = Field(256, ge=1)
    plateau_patience: int = Field(25, ge=0)
    plateau_factor: float = Field(0.1, gt=0, lt=1)
    plateau_cooldown: int = Field(3, ge=0)
    selection: Literal["val_loss", "last"] = Field(
        "val_loss", description="val_loss (code: best seen-class validation loss, which "
        "also drives the plateau schedule): the harness holds out val_fraction of the seen "
        "training samples per class; last: the last epoch, plateau on the training loss")
    val_fraction: float = Field(0.1, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> "PurlsConfig":
        for entry in self.descriptions:
            parse_source(entry)
        if self.partitioning == "static" and self.segments != 3:
            raise ValueError("partitioning='static' pools one vector per temporal interval: "
                             "it needs segments=3 (start, middle, end)")
        return self

    def representation_ids(self) -> tuple[int, ...]:
        return LOCAL_TYPES[self.local_type]

    def sources(self) -> list[tuple[str, int | None]]:
        """(kind, index) of each kept representation."""
        return [parse_source(self.descriptions[i]) for i in self.representation_ids()]

    def needs(self) -> MethodNeeds:
        kinds: list[str] = []
        for kind, _ in self.sources():
            if kind not in kinds:
                kinds.append(kind)
        return MethodNeeds(text_kinds=kinds)

    def reported_variant(self) -> str:
        return self.variant or "default"
