"""CADA-VAE options (no torch here).

Defaults are the skeleton re-implementation in skelemoa/synse-zsl
(``cada_vae/cada_vae_training.py``, ``cada_vae.py``, ``gating_cadavae_model_*.py``,
README); docs/methods/cada_vae.md names the source of each value. :class:`VAEMethodConfig`
holds the options shared with MSF (``zsbench_msf``), which is the same pipeline.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds

# README --latent_size: 100 for NTU-60, 200 for NTU-120 (the embedded benchmark uses NTU-60's)
LATENT_BY_FAMILY = {"ntu60": 100, "ntu120": 200, "synthetic": 100, "pku_mmd": 100}

#: README evaluation values per (family, number of unseen classes): (threshold, temperature)
CADA_README_GATE = {("ntu60", 5): (0.54, 3.0), ("ntu60", 12): (0.5, 2.0),
                    ("ntu120", 10): (0.5, 3.0), ("ntu120", 24): (0.5, 3.0)}


class VAEMethodConfig(MethodConfig):
    """Options of the cross-aligned VAE pipeline (skeleton VAE + one text VAE)."""

    # ---- model ------------------------------------------------------------------
    latent_size: int | None = Field(
        None, ge=1, description="latent dimension; None = 100 for NTU-60 / PKU-MMD / the "
        "embedded benchmark, 200 for NTU-120 (README --latent_size)")
    per_dim_noise: bool = Field(
        False, description="draw one noise value per latent dimension (textbook VAE); false = "
        "one scalar per sample broadcast over dimensions, as the official code")
    classifier_relu: bool = Field(True, description="unseen classifier = Linear + ReLU on the "
                                  "logits (official MLP); false = plain linear logits")
    # ---- VAE training -----------------------------------------------------------
    lr: float = Field(1e-4, gt=0, description="Adam learning rate of the four VAE modules")
    batch_size: int = Field(64, ge=1, description="one random batch of this size per iteration")
    num_cycles: int = Field(10, ge=1, description="training cycles (README: 10)")
    cycle_length: int | None = Field(
        None, ge=1, description="iterations per cycle; None = official preset (see each method)")
    schedule: Literal["skeleton_synse", "original_cadavae"] = Field(
        "skeleton_synse", description="warm-up factors: the skeleton scripts' cyclic schedule, "
        "or the original CADA-VAE ramps (beta 0.25 over epochs 0-93, cross 2.37 over 21-75, "
        "alignment 8.13 over 6-22; epoch = samples seen / training-set size)")
    kl_start: int = Field(1000, ge=0, description="iteration within a cycle where the skeleton "
                          "KL ramp starts (official 1000)")
    cross_start: int | None = Field(
        None, ge=0, description="iteration within a cycle after which cross-reconstruction "
        "switches on; None = official rule (1400 if cycle_length == 1700 else 1500)")
    align_weight: float = Field(0.0, ge=0, description="distribution-alignment (Wasserstein) "
                                "weight in the skeleton schedule (official: computed, weight 0)")
    # ---- unseen classifier ------------------------------------------------------
    n_latents_per_class: int = Field(500, ge=1, description="latents generated per unseen class")
    cls_steps: int = Field(300, ge=1, description="full-batch Adam steps of the unseen classifier")
    cls_lr: float = Field(1e-3, gt=0)
    # ---- GZSL scores (what score() returns over seen + unseen candidates) --------------
    gzsl_scores: Literal["joint_latent", "separate"] = Field(
        "joint_latent", description="joint_latent: one softmax classifier over all candidates "
        "in the latent space, trained on skeleton latents of the seen classes and text latents "
        "of the unseen ones (original CADA-VAE's generalized classifier); separate: seen "
        "columns = seen-classifier softmax, unseen columns = unseen-classifier softmax")
    joint_seen_latents: int = Field(200, ge=1, description="skeleton latents per seen class "
                                    "(original CADA-VAE: 200)")
    joint_unseen_latents: int = Field(400, ge=1, description="text latents per unseen class "
                                      "(original CADA-VAE: 400)")
    joint_cls_epochs: int = Field(23, ge=1, description="epochs of the joint classifier "
                                  "(original CADA-VAE, CUB generalized: 23)")
    joint_cls_lr: float = Field(1e-3, gt=0, description="Adam lr, betas (0.5, 0.999), batch 32")
    # ---- seen classifier (for the gate and GZSL scores) ---------------------------
    seen_cls_epochs: int = Field(30, ge=1, description="epochs of the linear softmax seen "
                                 "classifier trained on the features (stand-in for the "
                                 "encoder's own fc logits that the official gate reads)")
    seen_cls_lr: float = Field(1e-3, gt=0)
    seen_cls_batch_size: int = Field(256, ge=1)
    # ---- GZSL gate ----------------------------------------------------------------
    gate_mode: Literal["search", "official_fixed"] = Field(
        "search", description="search: temperature 1..9 and threshold 0.25..0.74 chosen on the "
        "gate's validation hold-out (gating_*_training.py); official_fixed: the values the "
        "official scripts pass to evaluation (a deviation)")
    gate_temperatures: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(t) for t in range(1, 10)])
    gate_thresholds: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [th / 100 for th in range(25, 75)])
    gate_holdout: float | tuple[int, int] = Field(
        0.2, description="gate hold-out: fraction of each row set (MSF) or (unseen, seen) "
        "counts (SynSE/CADA-VAE scripts: [300, 400], needs that many validation rows)")
    gate_val_holdout: float = Field(0.2, gt=0, lt=1, description="fraction of each "
                                    "validation-seen class's samples held out as gate 'seen' rows")
    gate_threshold_rule: Literal["consistent", "official"] = Field(
        "consistent", description="consistent: unseen iff p_unseen > threshold, as chosen; "
        "official: seen iff 1 - p_unseen > threshold (evaluation scripts; differs off 0.5)")
    gate_rows: Literal["clean", "synse_code"] = Field(
        "clean", description="clean: unseen-classifier outputs of validation-unseen samples; "
        "synse_code: those of held-out seen samples, as the SynSE/CADA-VAE val phase does")
    gate_C: float = Field(1.0, gt=0, description="logistic-regression inverse regularisation")
    gate_seed: int = Field(5, description="numpy seed of the gate hold-out (official 5)")

    @model_validator(mode="after")
    def _check_holdout(self) -> "VAEMethodConfig":
        h = self.gate_holdout
        if isinstance(h, float) and not 0 < h < 1:
            raise ValueError("gate_holdout as a fraction must lie in (0, 1)")
        if isinstance(h, tuple) and min(h) < 1:
            raise ValueError("gate_holdout counts must be >= 1")
        return self

    def resolved(self, dataset) -> "VAEMethodConfig":
        """The latent size the dataset's preset picks, filled in for the record (the cycle
        length also depends on the fold's number of unseen classes: see ``details``)."""
        return self.model_copy(update={"latent_size": self.latent_for(dataset.family)})

    def latent_for(self, family: str) -> int:
        return self.latent_size or LATENT_BY_FAMILY.get(family, 100)

    def cycle_length_for(self, family: str, n_unseen: int) -> int:  # pragma: no cover - per method
        raise NotImplementedError

    def text_kl_variant(self) -> Literal["cada_vae", "synse"]:  # pragma: no cover - per method
        raise NotImplementedError

    def official_gate(self, family: str, n_unseen: int) -> tuple[float, float]:  # pragma: no cover
        """(threshold, temperature) the official scripts evaluate with."""
        raise NotImplementedError


class CadaVAEConfig(VAEMethodConfig):
    """CADA-VAE as re-implemented for skeletons in the SynSE repository."""

    text_kind: str = Field("name", description="class text kind (official: full class label)")
    text_kl: Literal["cada_vae", "synse"] = Field(
        "cada_vae", description="text-KL weight: cada_vae = skeleton ramp once cross-"
        "reconstruction is on (cada_vae_training.py); synse = own ramp from the third cycle")

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind])

    def cycle_length_for(self, family: str, n_unseen: int) -> int:
        """README: 1700 for the NTU-60 5-class split (and the embedded benchmark), 1900 else."""
        if self.cycle_length:
            return self.cycle_length
        if family == "synthetic" or (family == "ntu60" and n_unseen == 5):
            return 1700
        return 1900

    def text_kl_variant(self) -> Literal["cada_vae", "synse"]:
        return self.text_kl

    def official_gate(self, family: str, n_unseen: int) -> tuple[float, float]:
        """README evaluation commands: 55/5 threshold 0.54, T 3; 48/12 0.5, 2; NTU-120 0.5, 3."""
        fam = "ntu60" if family == "synthetic" else family
        return CADA_README_GATE.get((fam, n_unseen), (0.5, 3.0 if fam == "ntu120" else 2.0))
