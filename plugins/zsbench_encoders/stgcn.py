"""ST-GCN as used by SMIE, PGFA and DVTA (encoders_stgcn.md).

Input (N, C, T, V=25, M); output (N, out_dim) = mean over (T', V) of the last block, then
mean over the M body slots (zero-padded second bodies included, as in the official code).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zsbench.api import ZsbenchError
from zsbench.nn.graph import NUM_JOINTS, Graph

from .configs import STGCNConfig

TEMPORAL_KERNEL = 9


class GraphConv(nn.Module):
    """1x1 conv to K·out channels, then ``y[n,c,t,w] = Σ_k Σ_v z[n,k,c,t,v] A[k,v,w]``."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int) -> None:
        super().__init__()
        self.num_subsets = num_subsets
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        z = self.conv(x)
        n, kc, t, v = z.shape
        z = z.view(n, self.num_subsets, kc // self.num_subsets, t, v)
        return torch.einsum("nkctv,kvw->nctw", z, adj).contiguous()


class STGCNBlock(nn.Module):
    """Graph conv -> BN, ReLU, temporal conv (9x1, stride s), BN, dropout -> + residual, ReLU.

    ``residual``: ``"none"``, ``"identity"`` or ``"conv"`` (1x1 conv with stride + BN).
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, stride: int = 1,
                 dropout: float = 0.0, residual: str = "auto") -> None:
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        pad = (TEMPORAL_KERNEL - 1) // 2
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (TEMPORAL_KERNEL, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        if residual == "auto":
            residual = "identity" if (in_channels == out_channels and stride == 1) else "conv"
        if residual == "identity" and (in_channels != out_channels or stride != 1):
            raise ZsbenchError("identity residual needs equal channels and stride 1")
        self.residual_kind = residual
        if residual == "conv":
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels))
        elif residual in ("none", "identity"):
            self.residual = None
        else:
            raise ZsbenchError(f"unknown residual kind {residual!r}")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        if self.residual_kind == "none":
            res: Any = 0
        elif self.residual_kind == "identity":
            res = x
        else:
            res = self.residual(x)
        y = self.tcn(self.gcn(x, adj))
        return self.relu(y + res)


class STGCN(nn.Module):
    """The ST-GCN encoder (10 blocks, widths h,h,h,h,2h,2h,2h,4h,4h,out_dim)."""

    def __init__(self, config: STGCNConfig | None = None) -> None:
        super().__init__()
        cfg = config or STGCNConfig()
        self.config = cfg
        self.feature_dim = cfg.out_dim
        adj = torch.tensor(Graph().A, dtype=torch.float32)
        self.register_buffer("A", adj)
        k = adj.shape[0]
        h = cfg.hidden_channels
        self.data_bn = nn.BatchNorm1d(cfg.in_channels * NUM_JOINTS)
        widths = [h, h, h, h, 2 * h, 2 * h, 2 * h, 4 * h, 4 * h, cfg.out_dim]
        strides = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
        blocks = []
        c_in = cfg.in_channels
        for i, (c_out, s) in enumerate(zip(widths, strides)):
            if i == 0:  # first block: no residual, no dropout (official code)
                blocks.append(STGCNBlock(c_in, c_out, k, s, dropout=0.0, residual="none"))
            else:
                blocks.append(STGCNBlock(c_in, c_out, k, s, dropout=cfg.dropout))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        if cfg.edge_importance:
            self.edge_importance = nn.ParameterList(
                [nn.Parameter(torch.ones_like(adj)) for _ in blocks])
        else:
            self.edge_importance = None

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> last block output averaged over bodies, (N, out_dim, T', V).

        In eval mode every body slot is computed independently (batch norm uses its running
        statistics), so all-zero slots (the absent second body of single-actor samples) all
        give the same map: it is computed once and the other slots are batched without them.
        Same result as the plain pass up to float rounding; training mode is unchanged."""
        if x.dim() != 5:
            raise ZsbenchError(f"ST-GCN expects (N, C, T, V, M), got shape {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        if c != self.config.in_channels or v != NUM_JOINTS:
            raise ZsbenchError(f"ST-GCN built for C={self.config.in_channels}, V={NUM_JOINTS}; "
                               f"got C={c}, V={v}")
        slots = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        if not self.training and m > 1:
            empty = slots.flatten(1).abs().amax(dim=1) == 0
            if bool(empty.any()):
                out = self._empty_aware(slots, empty)
                return out.view(n, m, *out.shape[1:]).mean(dim=1)
        out = self._slots_forward(slots)
        return out.view(n, m, *out.shape[1:]).mean(dim=1)

    def _empty_aware(self, slots: torch.Tensor, empty: torch.Tensor) -> torch.Tensor:
        busy = (~empty).nonzero().squeeze(1)
        const = self._slots_forward(slots[empty.nonzero()[0]])          # one empty slot
        out = const.new_empty((len(slots),) + tuple(const.shape[1:]))
        out[empty] = const
        if busy.numel():
            out[busy] = self._slots_forward(slots[busy])
        return out

    def _slots_forward(self, slots: torch.Tensor) -> torch.Tensor:
        """(S, C, T, V) body slots -> (S, out_dim, T', V)."""
        s, c, t, v = slots.shape
        # (S, V, C, T) -> (S, V*C, T): data_bn normalises each (joint, channel) pair
        y = self.data_bn(slots.permute(0, 3, 1, 2).reshape(s, v * c, t))
        y = y.view(s, v, c, t).permute(0, 2, 3, 1).contiguous()
        for i, block in enumerate(self.blocks):
            adj = self.A * self.edge_importance[i] if self.edge_importance is not None else self.A
            y = block(y, adj)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


def build_stgcn(config: STGCNConfig) -> STGCN:
    """Factory for the registry (``zsbench.impls.EncoderFactory``): no classifier head."""
    return STGCN(config)
