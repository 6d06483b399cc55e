"""Config models of the built-in skeleton encoders (no torch import here).

Defaults are the settings of the papers' code: ST-GCN as in SMIE/PGFA/DVTA (h = 16,
256-d output), Shift-GCN as in the original repository (widths 64..256).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from zsbench.specs import PluginConfig

Stream = Literal["joint", "bone", "joint_motion", "bone_motion"]
ALL_STREAMS: tuple[str, ...] = ("joint", "bone", "joint_motion", "bone_motion")


class STGCNConfig(PluginConfig):
    """ST-GCN with widths h,h,h,h,2h,2h,2h,4h,4h,out_dim (encoders_stgcn.md §2)."""

    in_channels: int = Field(3, ge=1)
    hidden_channels: int = Field(16, ge=1, description="h; PGFA: '16 hidden channels'")
    out_dim: int = Field(256, ge=1, description="feature dimension (hidden_dim in the repos)")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout in blocks 2..10")
    edge_importance: bool = Field(True, description="learnable (3,25,25) mask per block")
    # Speed options (docs/performance.md). They change rounding and, for dropout, which
    # random mask is drawn; never the model, its parameters or the state_dict layout.
    graph_order: Literal["mix_first", "conv_first"] = Field(
        "mix_first", description="graph conv: mix joints with A_k first, then one 1x1 conv over "
        "K*C_in channels (bias folded through the column sums of A_k); 'conv_first' is the "
        "official order (1x1 conv to K*C_out channels, then einsum with A)")
    dropout_impl: Literal["bits", "torch"] = Field(
        "bits", description="dropout masks from 16-bit lanes of 64-bit random words (p rounded "
        "to a multiple of 2^-16; about 3x cheaper on CPU); 'torch' = nn.Dropout")
    fold_bn_eval: bool = Field(False, description="eval mode: fold each batch norm into the "
                               "convolution before it (same output up to rounding; no gain "
                               "measured on CPU, docs/performance.md)")
    memory_format: Literal["contiguous", "channels_last"] = Field(
        "contiguous", description="activation layout (channels_last: for GPU convolutions)")
    autocast: Literal["off", "bf16", "fp16"] = Field(
        "off", description="run the blocks under torch.autocast with this dtype (output float32)")


class ShiftGCNConfig(PluginConfig):
    """Shift-GCN (kchengiva/Shift-GCN): units 1..9 take ``widths``, unit 10 ``out_dim``."""

    in_channels: int = Field(3, ge=1)
    out_dim: int = Field(256, ge=1)
    widths: list[int] = Field(default_factory=lambda: [64, 64, 64, 64, 128, 128, 128, 256, 256],
                              description="output channels of units 1..9")
    strides: list[int] = Field(default_factory=lambda: [1, 1, 1, 1, 2, 1, 1, 2, 1, 1],
                               description="temporal stride of units 1..10")
    num_person: int = Field(2, ge=1, description="M; data_bn spans M*V*C channels")
    stream: Stream = Field("joint", description="input stream computed from joint data")
    shift_grad: Literal["official", "exact"] = Field(
        "official", description="temporal-shift gradient: the CUDA op's 0.01*sign(g) rule, or "
        "the exact gradient")

    @field_validator("widths")
    @classmethod
    def _positive_widths(cls, v: list[int]) -> list[int]:
        if not v or any(w < 1 for w in v):
            raise ValueError("widths must be a non-empty list of positive integers")
        return v

    @model_validator(mode="after")
    def _strides_match(self) -> "ShiftGCNConfig":
        if len(self.strides) != len(self.widths) + 1:
            raise ValueError(f"strides needs {len(self.widths) + 1} entries (one per unit, "
                             f"len(widths) + 1), got {len(self.strides)}")
        if any(s < 1 for s in self.strides):
            raise ValueError("strides must be positive")
        return self


class ShiftGCNEnsembleConfig(PluginConfig):
    """Four Shift-GCNs, one per stream, whose pooled features are fused.

    ``fuse="mean"`` gives a ``out_dim`` feature (SynSE/MSF ship 256-d features);
    ``"concat"`` gives ``len(streams) * out_dim``. Which one produced SynSE's files is not
    determinable from the sources (encoders_shiftgcn.md §1).
    """

    in_channels: int = Field(3, ge=1)
    out_dim: int = Field(256, ge=1)
    widths: list[int] = Field(default_factory=lambda: [64, 64, 64, 64, 128, 128, 128, 256, 256])
    strides: list[int] = Field(default_factory=lambda: [1, 1, 1, 1, 2, 1, 1, 2, 1, 1])
    num_person: int = Field(2, ge=1)
    streams: list[Stream] = Field(default_factory=lambda: list(ALL_STREAMS))
    fuse: Literal["mean", "concat"] = "mean"
    shift_grad: Literal["official", "exact"] = "official"

    @model_validator(mode="after")
    def _check(self) -> "ShiftGCNEnsembleConfig":
        if not self.streams:
            raise ValueError("streams must name at least one stream")
        if len(set(self.streams)) != len(self.streams):
            raise ValueError(f"streams has duplicates: {self.streams}")
        self.stream_config("joint")  # validates widths/strides
        return self

    def stream_config(self, stream: str) -> ShiftGCNConfig:
        return ShiftGCNConfig(in_channels=self.in_channels, out_dim=self.out_dim,
                              widths=list(self.widths), strides=list(self.strides),
                              num_person=self.num_person, stream=stream,
                              shift_grad=self.shift_grad)

    @property
    def feature_dim(self) -> int:
        return self.out_dim * (len(self.streams) if self.fuse == "concat" else 1)
