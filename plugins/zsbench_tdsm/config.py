"""TDSM configuration (no torch here: the registry imports this when listing plugins).

Defaults = the official code (KAIST-VICLab/TDSM@7469361, main.py argparse + config/*.yaml
+ train.py); docs/methods/tdsm.md gives the source of each default and the paper values.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from zsbench.specs import MethodConfig, MethodNeeds


class TDSMConfig(MethodConfig):
    """Options of TDSM (Do & Kim, arXiv 2411.10745 / ICCV 2025)."""

    variant: str = Field("default", description="row 'variant' of the reported numbers to "
                         "compare with (e.g. diff_only, steps_100); a label only")
    # ---- text conditioning ----
    text_kinds: list[str] = Field(
        default_factory=lambda: ["motion", "description"],
        min_length=1, description="text kinds concatenated channel-wise (official: SA-DVAE "
        "motion descriptions ntu120.csv 'label' column + LLM descriptions ntu120_llm.txt)")
    text_features: Literal["tokens", "pooled"] = Field(
        "tokens", description="tokens (official): the method encodes each class string with "
        "the HF CLIPTextModel `text_model` itself: 35 token states = local tokens, pooled "
        "state = global text; pooled: the run's text-encoder embeddings (one vector per "
        "kind) form the global text and the single local token (no token states)")
    text_model: str = Field("stabilityai/stable-diffusion-2-1-base", description="HF model "
                            "id or local folder of the CLIP text tower (tokens mode)")
    text_subfolder: str | None = Field("text_encoder", description="subfolder of text_model "
                                       "holding the text encoder (tokenizer: 'tokenizer')")
    max_tokens: int = Field(35, ge=2, description="tokenizer max_length (tokens mode)")
    # ---- denoiser ----
    hidden_size: int = Field(768, ge=1)
    depth: int = Field(12, ge=1)
    num_heads: int = Field(12, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    # ---- diffusion ----
    num_steps: int = Field(50, ge=1, description="T (official 50; ablation 1/10/100/500)")
    beta_schedule: Literal["scaled_linear", "linear"] = "scaled_linear"
    beta_start: float = Field(0.00085, gt=0, lt=1)
    beta_end: float = Field(0.012, gt=0, lt=1)
    prediction_type: Literal["epsilon", "sample", "v_prediction"] = "epsilon"
    # ---- loss ----
    use_diff_loss: bool = Field(True, description="L_diff (ablation: L_TD only when false)")
    use_triplet_loss: bool = Field(True, description="L_TD (ablation: L_diff only when false)")
    d_weight: float = Field(1.0, ge=0)
    t_weight: float = Field(1.0, ge=0)
    margin: float = Field(1.0, ge=0, description="triplet margin tau (main.py default)")
    loss_form: Literal["mse", "l2"] = Field(
        "mse", description="mse: per-sample mean squared error (code); l2: L2 norm of the "
        "error (paper figure); used for the losses and for the test-time matching error")
    # ---- optimisation ----
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    iters: int = Field(50_000, ge=1, description="num_iter: cosine schedule length")
    warmup: int = Field(100, ge=0, description="linear warm-up steps")
    whole_epochs: bool = Field(True, description="code: run floor(iters/steps_per_epoch)+1 "
                               "full epochs (slightly more than iters steps); false: stop "
                               "after exactly iters steps")
    batch_size: int = Field(256, ge=1, description="drop_last batches of this size")
    # ---- inference ----
    t_test: int = Field(25, ge=0, description="fixed test timestep (idx_inference_step)")
    num_noise: int = Field(3, ge=1, description="fixed test noises J, errors summed")
    noise_seed: int | None = Field(None, description="seed of the fixed test noises; None = "
                                   "the fold's seed")
    noise_draws: int = Field(1, ge=1, description="average the scores over this many draws "
                             "of the J noises (code: 1)")
    chunk_size: int = Field(4096, ge=1, description="denoiser rows per forward at test time")
    test_batch_size: int = Field(512, ge=1, description="test samples per scoring batch")

    @model_validator(mode="after")
    def _check(self) -> "TDSMConfig":
        if not (self.use_diff_loss or self.use_triplet_loss):
            raise ValueError("use_diff_loss and use_triplet_loss are both false: no loss left")
        if self.t_test >= self.num_steps:
            raise ValueError(f"t_test={self.t_test} must be below num_steps={self.num_steps}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by "
                             f"num_heads={self.num_heads}")
        if len(set(self.text_kinds)) != len(self.text_kinds):
            raise ValueError(f"text_kinds {self.text_kinds} repeat a kind")
        return self

    def reported_variant(self) -> str:
        return self.variant or "default"

    def needs(self) -> MethodNeeds:
        return MethodNeeds(text_kinds=list(self.text_kinds))
