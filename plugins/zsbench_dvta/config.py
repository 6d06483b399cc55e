"""DVTA configuration (no torch here: the registry imports this when listing plugins).

Defaults reproduce the official code (jidongkuang/DVTA); docs/methods/dvta.md gives the
paper table behind each default and the switches for every ablation row.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds

# Official config.py: Adam lr per dataset; the paper (§IV-B) states 1e-5 for all.
CODE_LR = {"ntu60": 1e-6, "ntu120": 5e-6, "pku_mmd": 1e-5}
PAPER_LR = 1e-5


class DVTAConfig(MethodConfig):
    """Options of DVTA (Kuang et al., Pattern Recognition 2026)."""

    variant: str = Field("default", description="row 'variant' of the reported numbers to compare "
                         "with (e.g. no_sde); a label only, it changes no behaviour")
    dataset: Literal["auto", "ntu60", "ntu120", "pku_mmd"] = Field(
        "auto", description="lr preset; 'auto' = from the run's dataset name")
    text_kind: str = Field("name", description="label text kind")
    context_kind: str | None = Field("context", description="SDE context text kind (set to "
                                     "None automatically when use_sde is false)")
    # ---- modules (Tables III-VI) ----
    use_sde: bool = Field(True, description="Semantic Description Enhancement")
    sde_variant: Literal["code", "paper"] = Field(
        "code", description="code: attend over normalised [label, context], no scaling, then "
        "project; paper Eq. 3: keys [F_t(label), context], 1/sqrt(h) scaling")
    visual_projector: Literal["deep", "linear"] = "deep"
    projector_widths: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [384, 512])
    text_projector: Literal["linear", "identity"] = "linear"
    use_da_logits: bool = Field(True, description="include the DA cosine term in the logits")
    use_aa: bool = Field(True, description="Augmented Alignment (deep metric network)")
    aa_activation: Literal["leaky_sigmoid", "sigmoid", "none"] = "leaky_sigmoid"
    gamma: float = Field(0.01, gt=0, description="LeakySigmoid gamma (Table V)")
    fusion: Literal["sum_logits", "mean_probs"] = Field(
        "sum_logits", description="code: DA and AA logits summed before one softmax; paper "
        "Eq. 9: the two softmax distributions averaged")
    detach_aa_inputs: bool = Field(True, description="code: AA trains only the metric network")
    # ---- loss (Table VII) ----
    loss: Literal["kl", "infonce", "softmax_ce"] = Field(
        "kl", description="kl: multi-positive KL (Eq. 10); infonce: symmetric CE with the "
        "diagonal as only positive; softmax_ce: skeleton->text CE, diagonal positive")
    tau: float = Field(0.1, gt=0, description="initial DA and AA temperatures")
    learn_tau: bool = True
    target_sharpness: float | None = Field(10.0, gt=0, description="KL target softmax(s*G) of "
                                           "the code; None = exact 1/k multi-hot")
    # ---- optimisation (§IV-B, official config.py) ----
    lr: float | None = Field(None, gt=0, description="None = preset chosen by lr_source")
    lr_source: Literal["code", "paper"] = Field(
        "code", description="code: 1e-6 NTU-60, 5e-6 NTU-120, 1e-5 PKU-MMD; paper: 1e-5")
    weight_decay: float = Field(0.0, ge=0)
    epochs: int = Field(100, ge=1)
    warmup_epochs: int = Field(15, ge=0, description="linear warm-up lr*e/warmup (epoch 0 at "
                               "lr 0), then cosine annealing to 0 at the last epoch")
    batch_size: int = Field(128, ge=1)
    test_batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "DVTAConfig":
        if not (self.use_da_logits or self.use_aa):
            raise ValueError("use_da_logits and use_aa are both false: no score left")
        if not self.use_da_logits and self.detach_aa_inputs:
            raise ValueError("use_da_logits=false with detach_aa_inputs=true leaves the "
                             "projectors untrained; set detach_aa_inputs=false")
        if not self.use_sde:
            self.context_kind = None
        elif not self.context_kind:
            raise ValueError("use_sde=true needs a context_kind (the SDE context texts)")
        return self

    def resolved(self, dataset) -> "DVTAConfig":
        """The learning rate the run uses, filled in for the record."""
        return self.model_copy(update={"lr": self.resolve_lr(dataset.family)[0]})

    def reported_variant(self) -> str:
        return self.variant or "default"

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=[self.text_kind] + ([self.context_kind]
                                                          if self.context_kind else []))

    def resolve_lr(self, family: str | None) -> tuple[float, str]:
        """The learning rate and where it came from (``family``: ctx.dataset.family)."""
        if self.lr is not None:
            return self.lr, "config"
        key = self.dataset if self.dataset != "auto" else family
        if self.lr_source == "code" and key in CODE_LR:
            return CODE_LR[key], f"code preset {key}"
        return PAPER_LR, "paper"
