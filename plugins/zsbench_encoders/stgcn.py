"""ST-GCN as used by SMIE, PGFA and DVTA (encoders_stgcn.md).

Input (N, C, T, V=25, M); output (N, out_dim) = mean over (T', V) of the last block, then
mean over the M body slots (zero-padded second bodies included, as in the official code).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from zsbench.api import ZsbenchError
from zsbench.nn.graph import NUM_JOINTS, Graph

from .configs import STGCNConfig

TEMPORAL_KERNEL = 9


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode batch norm as ``y = x * scale + shift`` per channel."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def bits_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout (training), in place: each element kept with probability ``1 - p``
    (``p`` rounded to a multiple of 2^-16) and scaled by ``1 / (1 - p)``.

    The keep decisions come from 16-bit lanes of 64-bit random words drawn from torch's
    generator (one draw per four elements instead of one per element, as ``bernoulli_``
    does), so seeding stays reproducible; the masks differ from ``nn.Dropout``'s."""
    if p <= 0.0:
        return x
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
    lanes = words.random_(-2 ** 63, 2 ** 63 - 1).view(torch.int16)[:n]
    threshold = int(round((1.0 - p) * 65536)) - 32768       # P(lane < threshold) = 1 - p
    mask = (lanes < threshold).to(x.dtype).mul_(1.0 / (1.0 - p))
    # the mask's memory order is irrelevant (i.i.d.); lay it out like x (channels-last too)
    return x.mul_(mask.as_strided(x.shape, x.stride()) if _dense(x) else mask.view(x.shape))


def _dense(x: torch.Tensor) -> bool:
    return x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)


class GraphConv(nn.Module):
    """``y[n,c,t,w] = Σ_k Σ_v z[n,k,c,t,v] A[k,v,w]`` with ``z`` the 1x1 conv of ``x`` to
    K·out channels.

    ``order="conv_first"`` computes it so (the official code). ``"mix_first"`` (default)
    mixes the joints of the input first, ``m[n,k,i,t,w] = Σ_v x[n,i,t,v] A[k,v,w]``, then
    applies one 1x1 conv over the K·in channels with the same weights rearranged, plus the
    conv bias carried through the graph, ``b[k,c] · Σ_v A[k,v,w]``: the same function, with
    (K·in)/(K·out) of the mixing work and no einsum copies. The parameters (``conv``) are
    the same in both orders."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int,
                 order: str = "mix_first") -> None:
        super().__init__()
        self.num_subsets = num_subsets
        self.order = order
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, scale: torch.Tensor | None = None,
                shift: torch.Tensor | None = None) -> torch.Tensor:
        """``scale``/``shift`` (per output channel): an affine map applied to the result,
        folded into the weights (eval-mode batch norm); only with ``order="mix_first"``."""
        if self.order == "conv_first":
            z = self.conv(x)
            n, kc, t, v = z.shape
            z = z.view(n, self.num_subsets, kc // self.num_subsets, t, v)
            y = torch.einsum("nkctv,kvw->nctw", z, adj).contiguous()
            if scale is not None:
                y = y * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
            return y
        return self._mix_first(x, adj, scale, shift)

    def _mix_first(self, x: torch.Tensor, adj: torch.Tensor, scale: torch.Tensor | None,
                   shift: torch.Tensor | None) -> torch.Tensor:
        n, c, t, v = x.shape
        k = self.num_subsets
        cout = self.conv.out_channels // k
        w = adj.shape[-1]
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        if channels_last:      # rows (n, t), each a (V, C) matrix: batched A_k^T @ x
            m = torch.matmul(adj.transpose(1, 2).reshape(k * w, v),
                             x.permute(0, 2, 3, 1).reshape(n * t, v, c))      # (n*t, k*w, c)
            m = m.view(n, t, k, w, c).transpose(2, 3).reshape(n, t, w, k * c).permute(0, 3, 1, 2)
        else:                  # one GEMM over (n, c, t) rows, then (k, c) into the channels
            m = torch.matmul(x.contiguous().view(n * c * t, v),
                             adj.permute(1, 0, 2).reshape(v, k * w))          # (n*c*t, k*w)
            m = m.view(n, c, t, k, w).permute(0, 3, 1, 2, 4).reshape(n, k * c, t, w)
        weight = self.conv.weight.view(k, cout, c).transpose(0, 1)             # (cout, k, c)
        bias = (self.conv.bias.view(k, cout, 1) * adj.sum(1).view(k, 1, w)).sum(0)  # (cout, w)
        if scale is not None:
            weight = weight * scale.view(-1, 1, 1)
            bias = bias * scale.view(-1, 1) + shift.view(-1, 1)
        weight = weight.reshape(cout, k * c, 1, 1)
        if channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        return F.conv2d(m, weight).add_(bias.view(1, cout, 1, w))


class STGCNBlock(nn.Module):
    """Graph conv -> BN, ReLU, temporal conv (9x1, stride s), BN, dropout -> + residual, ReLU.

    ``residual``: ``"none"``, ``"identity"`` or ``"conv"`` (1x1 conv with stride + BN).
    ``graph_order``, ``dropout_impl``, ``fold_bn_eval``: see ``STGCNConfig`` (same module
    and parameters whatever they are).
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, stride: int = 1,
                 dropout: float = 0.0, residual: str = "auto", graph_order: str = "mix_first",
                 dropout_impl: str = "bits", fold_bn_eval: bool = False) -> None:
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, num_subsets, graph_order)
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
        self.dropout_impl = dropout_impl
        self.fold_bn_eval = fold_bn_eval

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        if not self.training and self.fold_bn_eval and self.gcn.order == "mix_first":
            return self._folded_forward(x, adj)
        if self.residual_kind == "none":
            res: Any = None
        elif self.residual_kind == "identity":
            res = x
        else:
            res = self.residual(x)
        bn1, relu, conv, bn2, drop = self.tcn
        y = bn2(conv(relu(bn1(self.gcn(x, adj)))))
        if self.dropout_impl == "bits" and self.training:
            y = bits_dropout(y, drop.p)
        else:
            y = drop(y)
        if res is not None:
            y = y.add_(res)
        return self.relu(y)

    def _folded_forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        """Eval mode: each batch norm folded into the convolution before it."""
        bn1, _, conv, bn2, _ = self.tcn
        y = self.gcn(x, adj, *_bn_affine(bn1)).relu_()
        y = _conv_bn(conv, bn2, y)
        if self.residual_kind == "identity":
            y = y.add_(x)
        elif self.residual_kind == "conv":
            y = y.add_(_conv_bn(self.residual[0], self.residual[1], x))
        return y.relu_()


def _conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` in eval mode as one convolution."""
    scale, shift = _bn_affine(bn)
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        weight = weight.contiguous(memory_format=torch.channels_last)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    return F.conv2d(x, weight, bias, conv.stride, conv.padding)


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
        speed = dict(graph_order=cfg.graph_order, dropout_impl=cfg.dropout_impl,
                     fold_bn_eval=cfg.fold_bn_eval)
        for i, (c_out, s) in enumerate(zip(widths, strides)):
            if i == 0:  # first block: no residual, no dropout (official code)
                blocks.append(STGCNBlock(c_in, c_out, k, s, dropout=0.0, residual="none", **speed))
            else:
                blocks.append(STGCNBlock(c_in, c_out, k, s, dropout=cfg.dropout, **speed))
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
        """(S, C, T, V) body slots -> (S, out_dim, T', V) (float32, contiguous)."""
        s, c, t, v = slots.shape
        # (S, V, C, T) -> (S, V*C, T): data_bn normalises each (joint, channel) pair
        y = self.data_bn(slots.permute(0, 3, 1, 2).reshape(s, v * c, t))
        y = y.view(s, v, c, t).permute(0, 2, 3, 1)
        cl = self.config.memory_format == "channels_last"
        y = y.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)
        if self.config.autocast == "off":
            return self._blocks(y).contiguous()
        dtype = torch.bfloat16 if self.config.autocast == "bf16" else torch.float16
        with torch.autocast(device_type=y.device.type, dtype=dtype):
            y = self._blocks(y)
        return y.float().contiguous()

    def _blocks(self, y: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            adj = self.A * self.edge_importance[i] if self.edge_importance is not None else self.A
            y = block(y, adj)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


def build_stgcn(config: STGCNConfig) -> STGCN:
    """Factory for the registry (``zsbench.impls.EncoderFactory``): no classifier head."""
    return STGCN(config)
