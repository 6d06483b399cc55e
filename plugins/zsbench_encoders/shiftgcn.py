"""Shift-GCN (Cheng et al., CVPR 2020) in pure PyTorch (encoders_shiftgcn.md §2).

The official code uses a CUDA op for the learnable temporal shift; here it is a two-tap
linear blend of frames ``floor``/``floor + 1`` (as a depthwise conv), with the op's semantics:

* output frame ``t`` of channel ``c`` samples the input at ``t·s + shift[c] (+ 0.5 when
  s > 1)``, zero outside the sequence; ``shift`` is initialised uniform in [-1, 1];
* the op's joint-axis shift is initialised at ±1e-8 and its gradient is forced to 0, so it
  never moves: it is left out here (parameter count is 2·C lower per unit than the
  official one, output differs by at most 1e-8 relative);
* ``shift_grad="official"`` reproduces the op's gradient rule for the shift, ``0.01 ·
  sign(g)`` (``1e-4`` when ``g == 0``); ``"exact"`` keeps the true gradient;
* the output length is ``ceil(T / s)`` (the op uses ``floor``; equal for even T, and the
  official model fails for odd lengths at a strided unit because its residual uses ceil).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from zsbench.api import ZsbenchError
from zsbench.nn.graph import NUM_JOINTS

from .configs import ShiftGCNConfig
from .streams import to_stream


def spatial_shift_index(channels: int, direction: str, num_joints: int = NUM_JOINTS) -> np.ndarray:
    """Index into a flattened (V·C) vector: channel ``j`` of joint ``i`` is read from joint
    ``(i + j) mod V`` (``"in"``) or ``(i - j) mod V`` (``"out"``)."""
    sign = {"in": 1, "out": -1}.get(direction)
    if sign is None:
        raise ZsbenchError(f"shift direction must be 'in' or 'out', got {direction!r}")
    i = np.arange(num_joints)[:, None]
    j = np.arange(channels)[None, :]
    return (((i + sign * j) % num_joints) * channels + j).reshape(-1).astype(np.int64)


class _Permute(torch.autograd.Function):
    """``x.index_select(1, index)`` for a permutation; backward gathers with the inverse
    (much cheaper on CPU than index_select's scatter-add backward)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, index: torch.Tensor, inverse: torch.Tensor
                ) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(1, index)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (inverse,) = ctx.saved_tensors
        return grad.index_select(1, inverse), None, None


class SpatialShift(nn.Module):
    """Fixed channel-wise joint shift of a (..., V, C) tensor, as an index gather."""

    def __init__(self, channels: int, direction: str, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.channels, self.num_joints = channels, num_joints
        idx = spatial_shift_index(channels, direction, num_joints)
        self.register_buffer("index", torch.from_numpy(idx), persistent=False)
        self.register_buffer("inverse", torch.from_numpy(np.argsort(idx)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        flat = x.reshape(-1, self.num_joints * self.channels)
        out = _Permute.apply(flat, self.index, self.inverse)
        return out.view(*lead, self.num_joints, self.channels)


class _OfficialShiftGrad(torch.autograd.Function):
    """Identity whose backward replaces g by 0.01·sign(g) (1e-4 where g == 0)."""

    @staticmethod
    def forward(ctx: Any, shift: torch.Tensor) -> torch.Tensor:
        return shift.view_as(shift)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.where(grad == 0, torch.full_like(grad, 1e-4), 0.01 * torch.sign(grad))


class TemporalShift(nn.Module):
    """Learnable per-channel fractional temporal shift with stride on (N, C, T, V).

    Since ``t·s`` is an integer, channel ``c`` reads frames ``t·s + k_c`` and ``+1`` with
    ``k_c = floor(shift_c + offset)`` and blend weight ``a_c = shift_c + offset - k_c`` (the
    op computes them from the shift alone too). The two taps are applied as one depthwise
    (K x 1) convolution over the zero-padded sequence, K = max k - min k + 2.
    """

    def __init__(self, channels: int, stride: int = 1, init_scale: float = 1.0,
                 shift_grad: str = "official") -> None:
        super().__init__()
        if shift_grad not in ("official", "exact"):
            raise ZsbenchError(f"shift_grad must be 'official' or 'exact', got {shift_grad!r}")
        self.channels, self.stride, self.shift_grad = channels, stride, shift_grad
        self.shift = nn.Parameter(torch.empty(channels).uniform_(-init_scale, init_scale))

    def taps(self) -> tuple[torch.Tensor, int]:
        """(C, K) blend weights and the offset ``k_min`` of tap 0."""
        shift = _OfficialShiftGrad.apply(self.shift) if self.shift_grad == "official" else self.shift
        p = shift + (0.5 if self.stride > 1 else 0.0)
        k = torch.floor(p.detach())
        frac = p - k  # carries the gradient to the shift
        k = k.long()
        k_min = int(k.min())
        rel = (k - k_min)[:, None]
        j = torch.arange(int(k.max()) - k_min + 2, device=k.device)[None, :]
        w = (1 - frac)[:, None] * (j == rel) + frac[:, None] * (j == rel + 1)
        return w, k_min

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        if c != self.channels:
            raise ZsbenchError(f"TemporalShift built for {self.channels} channels, got {c}")
        w, k_min = self.taps()
        taps = w.shape[1]
        t_out = (t - 1) // self.stride + 1
        span = self.stride * (t_out - 1) + taps  # input frames k_min .. k_min + span - 1
        left, right = max(0, -k_min), max(0, k_min + span - t)
        xp = nn.functional.pad(x, (0, 0, left, right)) if left or right else x
        start = k_min + left
        xp = xp[:, :, start:start + span]
        return nn.functional.conv2d(xp, w.to(x.dtype).view(c, 1, taps, 1),
                                    stride=(self.stride, 1), groups=c)


def _conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def _bn_init(bn: nn.Module, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, kernel_size=1, stride=(stride, 1))
    bn = nn.BatchNorm2d(c_out)
    _conv_init(conv)
    _bn_init(bn, 1.0)
    return nn.Sequential(conv, bn)


class ShiftGCNLayer(nn.Module):
    """Shift-in, mask ``tanh(M)+1``, linear, shift-out, BN over V·C_out, + down(x), ReLU."""

    def __init__(self, c_in: int, c_out: int, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.c_in, self.c_out, self.num_joints = c_in, c_out, num_joints
        self.down = _conv_bn(c_in, c_out) if c_in != c_out else None
        self.weight = nn.Parameter(torch.randn(c_in, c_out) * math.sqrt(1.0 / c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.mask = nn.Parameter(torch.zeros(num_joints, c_in))
        self.bn = nn.BatchNorm1d(num_joints * c_out)
        self.shift_in = SpatialShift(c_in, "in", num_joints)
        self.shift_out = SpatialShift(c_out, "out", num_joints)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x0.shape
        x = x0.permute(0, 2, 3, 1).contiguous()            # (n, t, v, c)
        x = self.shift_in(x) * (torch.tanh(self.mask) + 1)
        x = torch.matmul(x, self.weight) + self.bias       # (n, t, v, c_out)
        x = self.shift_out(x).reshape(n * t, v * self.c_out)
        x = self.bn(x).view(n, t, v, self.c_out).permute(0, 3, 1, 2)
        down = x0 if self.down is None else self.down(x0)
        return torch.relu(x + down)


class ShiftTCN(nn.Module):
    """BN -> temporal shift -> 1x1 conv -> ReLU -> temporal shift (stride) -> BN."""

    def __init__(self, channels: int, stride: int = 1, shift_grad: str = "official") -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.shift_in = TemporalShift(channels, 1, 1.0, shift_grad)
        self.linear = nn.Conv2d(channels, channels, kernel_size=1)
        nn.init.kaiming_normal_(self.linear.weight, mode="fan_out")  # bias: PyTorch default
        self.shift_out = TemporalShift(channels, stride, 1.0, shift_grad)
        self.bn2 = nn.BatchNorm2d(channels)
        _bn_init(self.bn2, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.shift_in(self.bn(x))
        x = torch.relu(self.linear(x))
        return self.bn2(self.shift_out(x))


class ShiftGCNUnit(nn.Module):
    """``ReLU(ShiftTCN(ShiftGCNLayer(x)) + residual(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, residual: bool = True,
                 shift_grad: str = "official") -> None:
        super().__init__()
        self.gcn = ShiftGCNLayer(c_in, c_out)
        self.tcn = ShiftTCN(c_out, stride, shift_grad)
        self.residual_kind = ("none" if not residual else
                              "identity" if (c_in == c_out and stride == 1) else "conv")
        self.residual = _conv_bn(c_in, c_out, stride) if self.residual_kind == "conv" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual_kind == "identity":
            y = y + x
        elif self.residual_kind == "conv":
            y = y + self.residual(x)
        return torch.relu(y)


class ShiftGCN(nn.Module):
    """Shift-GCN encoder: (N, C, T, 25, M) joint data -> (N, out_dim) pooled features.

    The configured ``stream`` (bone, motion...) is computed from the joint input inside
    ``forward``, so every stream's encoder is a function of the same joint data.
    """

    def __init__(self, config: ShiftGCNConfig | None = None) -> None:
        super().__init__()
        cfg = config or ShiftGCNConfig()
        self.config = cfg
        self.feature_dim = cfg.out_dim
        self.data_bn = nn.BatchNorm1d(cfg.num_person * NUM_JOINTS * cfg.in_channels)
        _bn_init(self.data_bn, 1.0)
        widths = list(cfg.widths) + [cfg.out_dim]
        units = []
        c_in = cfg.in_channels
        for i, (c_out, s) in enumerate(zip(widths, cfg.strides)):
            units.append(ShiftGCNUnit(c_in, c_out, s, residual=i > 0, shift_grad=cfg.shift_grad))
            c_in = c_out
        self.units = nn.ModuleList(units)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> last unit output averaged over bodies, (N, out_dim, T', V)."""
        if x.dim() != 5:
            raise ZsbenchError(f"Shift-GCN expects (N, C, T, V, M), got shape {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        cfg = self.config
        if c != cfg.in_channels or v != NUM_JOINTS or m != cfg.num_person:
            raise ZsbenchError(f"Shift-GCN built for C={cfg.in_channels}, V={NUM_JOINTS}, "
                               f"M={cfg.num_person}; got C={c}, V={v}, M={m}")
        x = to_stream(x, cfg.stream)
        x = x.permute(0, 4, 3, 1, 2).contiguous().view(n, m * v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
        for unit in self.units:
            x = unit(x)
        _, c2, t2, v2 = x.shape
        return x.view(n, m, c2, t2, v2).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))


def build_shiftgcn(config: ShiftGCNConfig) -> ShiftGCN:
    """Factory for the registry (``zsbench.impls.EncoderFactory``): no classifier head."""
    return ShiftGCN(config)
