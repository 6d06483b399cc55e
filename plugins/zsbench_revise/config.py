"""ReViSE options, and the option groups the JPoSE and RelationNet plugins share (model
selection, the seen/unseen gate). No torch here: the registry imports configs when listing.

Defaults are the SynSE repository's (``skelemoa/synse-zsl@90f39a11``, ``revise/``); the
docs (docs/methods/revise.md) name the file behind each.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from zsbench.specs import MethodConfig, MethodNeeds

PositiveInt = Annotated[int, Field(ge=1)]


class SelectionOptions(MethodConfig):
    """How the trained model is chosen (see ``zsbench_revise.shared``)."""

    selection: Literal["final", "validation"] = Field(
        "final", description="final: last epoch, constant lr; validation: plateau scheduler, "
        "best epoch and early stop on the ZSL accuracy of validation classes carved from the "
        "seen classes (the repositories use the unseen TEST set for this; not offered)")
    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="share of seen classes held out when selection=validation "
        "and the split names no validation classes")


class PlateauOptions(SelectionOptions):
    """The repositories' ReduceLROnPlateau (active only with selection=validation)."""

    plateau_factor: float = Field(0.1, gt=0, lt=1, description="ReduceLROnPlateau factor")
    plateau_patience: int = Field(25, ge=0, description="ReduceLROnPlateau patience (epochs)")
    plateau_cooldown: int = Field(3, ge=0, description="ReduceLROnPlateau cooldown (epochs)")


class GateOptions(PlateauOptions):
    """The seen/unseen gate used by ``--set gzsl_rule=method`` (gating_*_model_training.py)."""

    gate_temperatures: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(t) for t in range(2, 10)],
        description="seen-classifier softmax temperatures searched (scripts: 2..9)")
    gate_thresholds: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [t / 100 for t in range(25, 75)],
        description="thresholds searched (scripts: 0.25..0.74)")
    gate_holdout_unseen: int = Field(300, ge=1, description="'unseen' gate rows held out to "
                                     "choose temperature and threshold (scripts: 300)")
    gate_holdout_seen: int = Field(400, ge=1, description="'seen' gate rows held out "
                                   "(scripts: 400)")
    gate_small_holdout: float = Field(
        0.2, gt=0, lt=1, description="hold-out fraction used instead when a row set is not "
        "larger than its count (small datasets; recorded in the fold details)")
    gate_seen_holdout_fraction: float = Field(
        0.2, gt=0, lt=1, description="fraction of each validation-seen class's training "
        "samples held out as the gate's seen rows (the scripts' val.npy)")
    gate_multinomial: bool = Field(False, description="logistic regression: multinomial "
                                   "(JPoSE script) or one-vs-rest (ReViSE script)")
    gate_threshold_rule: Literal["consistent", "official"] = Field(
        "consistent", description="consistent: seen unless p_unseen > threshold, the rule the "
        "threshold was searched with; official: seen when 1 - p_unseen > threshold (the eval "
        "scripts' flip; noted deviation gate_threshold_rule_official)")
    gate_seed: int = Field(5, description="seed of the gate's hold-out draw (scripts: 5)")
    seen_classifier_epochs: int = Field(
        30, ge=1, description="the gate's seen classifier: linear softmax on the training "
        "features (the scripts read the Shift-GCN's own fc logits, which the harness does "
        "not hand to methods)")
    seen_classifier_batch_size: int = Field(256, ge=1)
    seen_classifier_lr: float = Field(1e-3, gt=0)

    @field_validator("gate_temperatures", "gate_thresholds")
    @classmethod
    def _not_empty(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("give at least one value")
        return v


class ReViSEConfig(GateOptions):
    """Options of ReViSE on skeleton features (SynSE repository, revise/)."""

    text_kind: str = Field("name", description="class text kind (the repository: Sentence-BERT "
                           "of the full label)")
    visual_hidden: list[PositiveInt] | None = Field(
        None, description="hidden widths of the skeleton autoencoder; None = the repository's "
        "rule: none for features up to 512-d (Shift-GCN 256), [512] above (VA-CNN 2048)")
    text_hidden: list[PositiveInt] | None = Field(
        None, description="hidden widths of the text autoencoder; None = the repository's "
        "rule: [512] for texts wider than 300 (Sentence-BERT 1024), none for word2vec (300)")
    code_dim: int = Field(100, ge=1, description="autoencoder code width (MMD compares codes)")
    embed_dim: int = Field(50, ge=1, description="transformation (common space) width")
    log_input: bool | Literal["auto"] = Field(
        "auto", description="feed log(1 + x) to the skeleton autoencoder, as the repository "
        "does with its non-negative Shift-GCN features; auto = when every training feature is "
        ">= 0 (recorded in the fold details)")
    contractive_gamma: float = Field(1e-4, ge=0, description="weight of the contractive term")
    contractive_differentiable: bool = Field(
        False, description="false as the code: the term is a constant (read from a separate "
        "backward pass); true: it is differentiated (double backward)")
    mmd_k: float = Field(32.0, gt=0, description="Gaussian kernel exp(-k |a - b|^2)")
    hinge_margin: float = Field(0.3, ge=0)
    epochs: int = Field(300, ge=1)
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(1e-4, gt=0, description="Adam lr of both autoencoders")
    visual_weight_decay: float = Field(0.0, ge=0)
    text_weight_decay: float = Field(1e-3, ge=0)
    test_batch_size: int = Field(4096, ge=1)

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind])
