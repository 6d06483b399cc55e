"""JPoSE options (no torch here). Defaults are the SynSE repository's
(``skelemoa/synse-zsl@90f39a11``, ``jpose/zsl_fgar.py``, ``jpose/alignment_module.py``,
``jpose/gating_fgar_model_training.py``); docs/methods/jpose.md names the source of each."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodNeeds
from zsbench_revise.config import GateOptions


class JPoSEConfig(GateOptions):
    """Options of JPoSE on skeleton features (SynSE repository, jpose/)."""

    verb_kind: str = Field("verb", description="text kind of the verb phrase of each label "
                           "(the synse_pos text source)")
    noun_kind: str = Field("noun", description="text kind of the noun phrase of each label")
    embed_dim: int = Field(50, ge=1, description="width of each part-of-speech space")
    joint_dim: int = Field(50, ge=1, description="width of the joint space")
    text_hidden: int | Literal["auto"] | None = Field(
        "auto", description="hidden width of the text branches; auto = the repository's rule: "
        "512 for texts wider than 300 (Sentence-BERT 1024), none (Linear + Tanh) for word2vec")
    margin: float = Field(0.3, ge=0, description="margin of every hinge and triplet term")
    triplet_weight: float = Field(0.01, ge=0, description="weight of the within-modality "
                                  "triplet terms")
    triplet_all_pairs: bool = Field(True, description="true as the code: sum over every "
                                    "(anchor, mined pair); false: each anchor with its own pair")
    triplet_negatives: Literal["any", "other_group"] = Field(
        "any", description="any = what the code executes (its set difference removes nothing, "
        "so the hardest 'negative' is the sample itself); other_group = what it intends")
    epochs: int = Field(2000, ge=1, description="maximum epochs (max_epochs)")
    early_stop: int | None = Field(40, ge=0, description="with selection=validation: stop "
                                   "after more than this many epochs without improvement")
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(1e-4, gt=0, description="Adam lr of the three modules")
    joint_weight_decay: float = Field(1e-3, ge=0, description="weight decay of the joint module "
                                      "(the part-of-speech modules have none)")
    plateau_patience: int = Field(14, ge=0)
    plateau_cooldown: int = Field(6, ge=0)
    gate_multinomial: bool = Field(True, description="the JPoSE gate script fits a multinomial "
                                   "logistic regression")
    test_batch_size: int = Field(4096, ge=1)

    @model_validator(mode="after")
    def _kinds(self) -> "JPoSEConfig":
        if self.verb_kind == self.noun_kind:
            raise ValueError("verb_kind and noun_kind must name two different text kinds")
        return self

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.verb_kind, self.noun_kind])
