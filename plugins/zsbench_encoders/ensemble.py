"""Four-stream Shift-GCN: one Shift-GCN per stream, pooled features fused by mean (default,
``out_dim`` wide like SynSE's 256-d features) or concatenation (``streams · out_dim``).

The official four-stream Shift-GCN trains each stream separately and fuses class *scores*
(weights 0.6, 0.6, 0.4, 0.4); how SynSE turned four streams into one 256-d feature is not
determinable (encoders_shiftgcn.md §1). Training this module end to end with one head on the
fused feature is therefore a choice, recorded by its identity (streams + fuse).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .configs import ShiftGCNEnsembleConfig
from .shiftgcn import ShiftGCN

# Score-ensemble weights of Shift-GCN's ensemble.py, for methods that fuse logits.
SCORE_WEIGHTS: dict[str, float] = {"joint": 0.6, "bone": 0.6, "joint_motion": 0.4,
                                   "bone_motion": 0.4}


class ShiftGCNEnsemble(nn.Module):
    """(N, C, T, 25, M) joint data -> (N, feature_dim) fused stream features."""

    def __init__(self, config: ShiftGCNEnsembleConfig | None = None) -> None:
        super().__init__()
        cfg = config or ShiftGCNEnsembleConfig()
        self.config = cfg
        self.feature_dim = cfg.feature_dim
        self.stream_names = list(cfg.streams)
        self.streams = nn.ModuleDict(
            {s: ShiftGCN(cfg.stream_config(s)) for s in cfg.streams})

    def stream_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-stream pooled features, in ``config.streams`` order."""
        return [self.streams[s](x) for s in self.stream_names]

    def fuse(self, feats: list[torch.Tensor]) -> torch.Tensor:
        if self.config.fuse == "concat":
            return torch.cat(feats, dim=1)
        return torch.stack(feats, dim=0).mean(dim=0)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Per-stream (N, out_dim, T', V) maps fused like the pooled features."""
        maps = [self.streams[s].feature_map(x) for s in self.stream_names]
        return self.fuse(maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(self.stream_features(x))


def build_shiftgcn_4s(config: ShiftGCNEnsembleConfig) -> ShiftGCNEnsemble:
    """Factory for the registry (``zsbench.impls.EncoderFactory``)."""
    return ShiftGCNEnsemble(config)
