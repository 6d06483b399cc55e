"""SA-DVAE options (no torch here).

Defaults are the official code, pha123661/SA-DVAE@90d99b83 (``train.py``, ``model.py``,
``gating_train.py``, ``gating_eval.py``, ``scripts/train_eval_*.sh``); the paper's body was
not available, so no paper-only values exist as options. docs/methods/sa_dvae.md names
the source of each value.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds


class Preset(BaseModel):
    """One setting of the run scripts."""

    model_config = ConfigDict(frozen=True)
    semantic: int
    irrelevant: int
    lr: float
    batch_size: int
    dis_step: int
    gate: tuple[float, float] | None = None  # fixed (threshold, temperature); None = search


#: scripts/train_eval_synse_split.sh (Shift-GCN features, SBERT labels),
#: scripts/train_eval_average_random_split.sh (ST-GCN features, CLIP labels),
#: scripts/train_eval_llm_descriptions.sh (ST-GCN features, CLIP LLM descriptions)
PRESETS: dict[str, Preset] = {
    "synse_ntu60": Preset(semantic=160, irrelevant=8, lr=3.389022400898623e-05, batch_size=32, dis_step=5),
    "synse_ntu120": Preset(semantic=256, irrelevant=32, lr=3.4779964302664534e-05, batch_size=32,
                           dis_step=4, gate=(0.50, 2.0)),
    "random_ntu60": Preset(semantic=224, irrelevant=16, lr=3.596163218514557e-05, batch_size=32, dis_step=7),
    "random_ntu120": Preset(semantic=176, irrelevant=20, lr=7.360616069743272e-05, batch_size=32,
                            dis_step=12),
    "random_pku": Preset(semantic=128, irrelevant=16, lr=3.074099555160793e-05, batch_size=64, dis_step=2),
    "llm_ntu60": Preset(semantic=96, irrelevant=8, lr=4.9372938499672305e-05, batch_size=32, dis_step=4),
    "llm_ntu120": Preset(semantic=304, irrelevant=12, lr=2.133571484619993e-05, batch_size=24,
                         dis_step=16),
}
PresetName = Literal["auto", "synse_ntu60", "synse_ntu120", "random_ntu60", "random_ntu120",
                     "random_pku", "llm_ntu60", "llm_ntu120"]


def auto_preset(family: str, protocol: str) -> str:
    """``synse`` protocol -> the SynSE-split script's values (NTU-60's for every family but
    NTU-120); any other protocol -> the random-split script's (PKU-MMD: its own row)."""
    if family == "pku_mmd":
        return "random_pku"
    size = "ntu120" if family == "ntu120" else "ntu60"
    return f"synse_{size}" if protocol == "synse" else f"random_{size}"


class SADVAEConfig(MethodConfig):
    """SA-DVAE (Li et al., ECCV 2024): disentangled skeleton VAE + text VAE, adversarial
    total-correlation penalty, unseen classifier on text latents, seen/unseen gate."""

    preset: PresetName = Field(
        "auto", description="run-script setting giving the latent sizes, lr, batch size, "
        "dis_step (and NTU-120 SynSE's fixed gate); auto = synse_<ntu60|ntu120> under "
        "--protocol synse, random_<ntu60|ntu120|pku> otherwise (embedded benchmark: NTU-60)")
    text_kinds: list[str] = Field(
        default_factory=lambda: ["name"], min_length=1,
        description="class text kinds, concatenated in order then L2-normalised (--tm, modes "
        "joined by '_'; official lb = class label)")
    # ---- model (model.py) ----
    latent_size: int | None = Field(None, ge=1, description="semantic latent size L_r "
                                    "(--latent_size); None = preset")
    irrelevant_latent_size: int | None = Field(
        None, ge=0, description="semantic-irrelevant latent size L_v (--i_latent_size); None = "
        "preset; 0 = no disentanglement (CADA-VAE-like, needs use_tc=false)")
    per_dim_noise: bool = Field(False, description="one noise value per latent dimension; "
                                "false = one scalar per sample broadcast (code)")
    decoder_out_relu: bool = Field(True, description="ReLU on both decoders' outputs (code)")
    # ---- adversarial total correlation ----
    use_tc: bool = Field(True, description="discriminator + TC penalty (code); false = ablation")
    tc_form: Literal["prob", "log_ratio"] = Field(
        "prob", description="prob: mean discriminator probability of joint pairs (code); "
        "log_ratio: mean log(D/(1-D)) (FactorVAE density-ratio estimate)")
    dis_step: int | None = Field(None, ge=1, description="discriminator update every dis_step-th "
                                 "iteration of an epoch (--dis_step); None = preset")
    dis_text_pairs: bool = Field(True, description="the discriminator also sees (text latent, "
                                 "irrelevant latent) pairs as joint samples (code)")
    # ---- training (train.py) ----
    lr: float | None = Field(None, gt=0, description="Adam lr of the VAE and of the "
                             "discriminator; None = preset")
    batch_size: int | None = Field(None, ge=1, description="None = preset (32; PKU 64)")
    num_cycles: int = Field(10, ge=1, description="epochs over the training features "
                            "(--num_cycles 10)")
    schedule: Literal["synse_rescaled", "beta_xy"] = Field(
        "synse_rescaled", description="synse_rescaled: SynSE's cyclic KL / cross-alignment "
        "weights rescaled to one epoch (code default); beta_xy: linear from a third of the "
        "epoch, scaled by beta_x / beta_y (--beta_x/--beta_y)")
    beta_x: float = Field(0.0, ge=0, description="beta_xy schedule: skeleton KL scale")
    beta_y: float = Field(0.0, ge=0, description="beta_xy schedule: text KL and TC scale")
    text_kl_from_cycle: int = Field(2, ge=0, description="synse_rescaled: text KL, TC and "
                                    "discriminator weights only from this epoch (code: cycle_num > 1)")
    cross_alignment_start: float = Field(0.8, ge=0, le=1, description="cross-alignment on for "
                                         "iterations i > floor(start * L) of every epoch (code 0.8)")
    seed: int | None = Field(None, description="torch seed of initialisation, batches and "
                             "noise; None = the run's seed (--seed; the code uses 5)")
    # ---- unseen classifier (train_classifier) ----
    n_latents_per_class: int = Field(500, ge=1)
    cls_steps: int = Field(300, ge=1)
    cls_lr: float = Field(1e-3, gt=0)
    classifier_relu: bool = Field(True, description="ReLU on the classifier's logits (code MLP)")
    # ---- GZSL scores for the core's rules ----
    gzsl_scores: Literal["separate", "joint_latent"] = Field(
        "separate", description="separate: seen columns = seen-classifier softmax, unseen "
        "columns = ZSL-classifier softmax (the gate's two inputs); joint_latent: CADA-VAE's "
        "generalized latent classifier over all candidates")
    joint_seen_latents: int = Field(200, ge=1)
    joint_unseen_latents: int = Field(400, ge=1)
    joint_cls_epochs: int = Field(23, ge=1)
    joint_cls_lr: float = Field(1e-3, gt=0)
    seen_cls_epochs: int = Field(30, ge=1, description="linear softmax seen classifier on the "
                                 "features (stand-in for the encoder's own logits gtest_out)")
    seen_cls_lr: float = Field(1e-3, gt=0)
    seen_cls_batch_size: int = Field(256, ge=1)
    # ---- GZSL gate (gzsl_rule=method; gating_train.py / gating_eval.py) ----
    gate_mode: Literal["search", "official_fixed"] = Field(
        "search", description="search T in gate_temperatures and threshold in gate_thresholds "
        "on the gate hold-out (scripts' th=0 t=0); official_fixed: the preset's fixed values "
        "(NTU-120 SynSE: 0.50, T=2; deviation gate_official_fixed)")
    gate_temperatures: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [float(t) for t in range(1, 10)])
    gate_thresholds: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [th / 100 for th in range(25, 75)])
    gate_balance_seen: bool = Field(True, description="subsample the seen gate rows to the "
                                    "number of unseen rows (code)")
    gate_holdout_max: int = Field(300, ge=1, description="gate hold-out per row group: "
                                  "min(gate_holdout_max, n // gate_holdout_div) (code 300, 6)")
    gate_holdout_div: int = Field(6, ge=2)
    gate_val_holdout: float = Field(0.2, gt=0, lt=1, description="fraction of each validation-"
                                    "seen class held out as gate 'seen' rows (code: val.npy)")
    gate_val_selection: Literal["best_epoch", "last"] = Field(
        "best_epoch", description="validation run: outputs of the epoch with the best ZSL "
        "accuracy on the validation-unseen samples (code; clean) or of the last epoch")
    gate_threshold_rule: Literal["consistent", "official"] = Field(
        "consistent", description="consistent: unseen iff p_unseen > th (the searched rule); "
        "official: seen iff 1 - p_unseen > th (gating_eval.py; deviation "
        "gate_threshold_rule_official)")
    gate_C: float = Field(1.0, gt=0)
    gate_seed: int = Field(5, description="numpy seed of the gate's draws (code 5)")

    @model_validator(mode="after")
    def _check(self) -> "SADVAEConfig":
        if self.irrelevant_latent_size == 0 and self.use_tc:
            raise ValueError("irrelevant_latent_size=0 leaves nothing for the total-correlation "
                             "discriminator: set use_tc=false as well")
        if not self.gate_temperatures or not self.gate_thresholds:
            raise ValueError("gate_temperatures and gate_thresholds must not be empty")
        if self.schedule == "beta_xy" and self.beta_x == 0 and self.beta_y == 0:
            raise ValueError("schedule=beta_xy needs beta_x and/or beta_y > 0 (both 0 switch "
                             "every KL and TC weight off)")
        return self

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=list(self.text_kinds))

    def preset_for(self, family: str, protocol: str) -> tuple[str, Preset]:
        name = self.preset if self.preset != "auto" else auto_preset(family, protocol)
        return name, PRESETS[name]

    def resolve(self, family: str, protocol: str) -> dict:
        """The effective values (config fields override the preset)."""
        name, p = self.preset_for(family, protocol)
        return {"preset": name,
                "latent_size": self.latent_size or p.semantic,
                "irrelevant_latent_size": (p.irrelevant if self.irrelevant_latent_size is None
                                           else self.irrelevant_latent_size),
                "lr": self.lr or p.lr, "batch_size": self.batch_size or p.batch_size,
                "dis_step": self.dis_step or p.dis_step, "fixed_gate": p.gate}
