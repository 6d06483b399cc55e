"""SynSE configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (skelemoa/synse-zsl@90f39a1, ``synse/synse_training.py``,
``synse/gating_synse_model_training.py``, ``synse/README.md``); docs/methods/synse.md says
where each value comes from and which official behaviours are options.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds

#: README ``--latent_size``: 100 for NTU-60, 200 for NTU-120 (other families: NTU-60's).
LATENT_SIZE = {"ntu60": 100, "ntu120": 200}
#: README ``--num_epoch_per_cycle``: 1700 for the NTU-60 5-unseen split, 1900 for the others.
CYCLE_SHORT, CYCLE_LONG = 1700, 1900


class SynSEConfig(MethodConfig):
    """Options of SynSE (Gupta, Sharma, Sarvadevabhatla, ICIP 2021)."""

    variant: str = Field("default", description="row 'variant' of the reported numbers to "
                         "compare with; a label only")
    verb_kind: str = Field("verb", min_length=1, description="text kind of the verb phrases")
    noun_kind: str = Field("noun", min_length=1, description="text kind of the noun phrases")
    # ---- model (synse_training.py) ----
    latent_size: int | None = Field(None, ge=2, description="skeleton latent size L (even; the "
                                    "noun and verb latents get L/2 each); None = 100, or 200 "
                                    "on NTU-120 (README)")
    per_dim_noise: bool = Field(False, description="false as the code: one eps per sample "
                                "broadcast over the latent dimensions")
    normalize_text: bool = Field(True, description="L2-normalise the verb/noun embeddings "
                                 "(the code does)")
    # ---- training (synse_training.py, README) ----
    cycle_length: int | None = Field(None, ge=1, description="iterations per cycle; None = "
                                     "1700 for 5 unseen classes on NTU-60 (and the embedded "
                                     "benchmark), else 1900 (README)")
    num_cycles: int = Field(10, ge=1)
    cross_start: int | None = Field(None, ge=0, description="iteration within a cycle after "
                                    "which the cross-reconstruction terms are on; None = 1400 "
                                    "if cycle_length is 1700 else 1500 (as the code)")
    text_kl_from_cycle: int = Field(2, ge=0, description="text KL terms only from this cycle "
                                    "(0-based) on; the code's 'cycle_num > 1'")
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(64, ge=1)
    # ---- unseen classifier ----
    latents_per_class: int = Field(500, ge=1)
    classifier_steps: int = Field(300, ge=1)
    classifier_lr: float = Field(1e-3, gt=0)
    classifier_relu: bool = Field(True, description="ReLU on the classifier logits (code)")
    # ---- GZSL gate (gating_synse_model_training.py / _eval.py), used with
    # ---- --set gzsl_rule=method; the core's calibrated stacking needs none of it ----
    gate_unseen_rows: Literal["validation_unseen", "held_out_seen"] = Field(
        "validation_unseen", description="validation_unseen: the gate's 'unseen' rows pair "
        "ZSL and seen-classifier outputs of validation-unseen samples; held_out_seen: as the "
        "official script, whose 'unseen' ZSL outputs are those of held-out SEEN samples "
        "(noted deviation gate_rows_synse_code)")
    gate_temperatures: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(t) for t in range(1, 10)])
    gate_thresholds: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: [t / 100 for t in range(25, 75)])
    gate_holdout_unseen: int = Field(300, ge=1, description="'unseen' gate rows held out to "
                                     "choose temperature and threshold (code: 300)")
    gate_holdout_seen: int = Field(400, ge=1, description="'seen' gate rows held out (code: 400)")
    gate_small_holdout: float = Field(
        0.2, gt=0, lt=1, description="hold-out fraction used instead when a row set is not "
        "larger than its count (small datasets)")
    gate_seed: int = Field(5, description="numpy seed of the hold-out draws (code: 5)")
    gate_threshold_rule: Literal["consistent", "official"] = Field(
        "consistent", description="consistent: seen unless p_unseen > threshold, the rule the "
        "threshold was searched with; official: seen when 1 - p_unseen > threshold (the eval "
        "script's flip; noted deviation gate_threshold_rule_official)")
    gate_seen_holdout_fraction: float = Field(
        0.2, gt=0, lt=1, description="fraction of each validation-seen class's training "
        "samples held out as the gate's seen rows (the code's val.npy)")
    seen_classifier_epochs: int = Field(
        30, ge=1, description="the gate's seen classifier: linear softmax on the training "
        "features (the code reads the Shift-GCN's own fc logits, which the harness does not "
        "hand to methods)")
    seen_classifier_batch_size: int = Field(256, ge=1)
    seen_classifier_lr: float = Field(1e-3, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "SynSEConfig":
        if self.latent_size is not None and self.latent_size % 2:
            raise ValueError(f"latent_size must be even (noun and verb halves), got "
                             f"{self.latent_size}")
        if self.verb_kind == self.noun_kind:
            raise ValueError("verb_kind and noun_kind must differ")
        if not self.gate_temperatures or not self.gate_thresholds:
            raise ValueError("gate_temperatures and gate_thresholds must not be empty")
        return self

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.verb_kind, self.noun_kind])

    def reported_variant(self) -> str:
        return self.variant

    def resolve_latent_size(self, family: str) -> tuple[int, str]:
        if self.latent_size is not None:
            return self.latent_size, "config"
        key = family if family in LATENT_SIZE else "ntu60"
        return LATENT_SIZE[key], f"README preset {key}"

    def resolve_cycle_length(self, family: str, num_unseen: int) -> tuple[int, str]:
        if self.cycle_length is not None:
            return self.cycle_length, "config"
        if family in ("ntu60", "synthetic") and num_unseen == 5:
            return CYCLE_SHORT, "README preset (NTU-60 55/5)"
        return CYCLE_LONG, "README preset (other splits)"
