"""DVTA building blocks: visual projector, SDE cross-attention, deep metric network with
LeakySigmoid, and the network that ties them together (paper §III; official model.py).

Shapes: skeleton features (B, D); text features (K, h) shared by every query, or
(B, K, h) per query (SDE makes each class text depend on the query skeleton).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zsbench.nn.losses import Temperature, cosine_similarity_matrix


def leaky_sigmoid(x: Tensor, gamma: float = 0.01) -> Tensor:
    """Paper Eq. 7: ``sigmoid(x)`` for x > 0, ``gamma * exp(gamma * x)`` for x <= 0.

    Negative inputs keep a small gradient ``gamma**2 * exp(gamma * x)`` instead of the
    vanishing sigmoid tail. The exponential branch is evaluated on ``min(x, 0)`` so large
    positive inputs cannot overflow into a NaN gradient.
    """
    return torch.where(x > 0, torch.sigmoid(x), gamma * torch.exp(gamma * x.clamp(max=0.0)))


class LeakySigmoid(nn.Module):
    def __init__(self, gamma: float = 0.01) -> None:
        super().__init__()
        if not gamma > 0:
            raise ValueError(f"LeakySigmoid gamma must be positive, got {gamma}")
        self.gamma = gamma

    def forward(self, x: Tensor) -> Tensor:
        return leaky_sigmoid(x, self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"


def squashing(kind: Literal["leaky_sigmoid", "sigmoid", "none"], gamma: float) -> nn.Module:
    """The AA output transform of paper Table V."""
    if kind == "leaky_sigmoid":
        return LeakySigmoid(gamma)
    if kind == "sigmoid":
        return nn.Sigmoid()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown AA activation {kind!r}")


def cross_attention(query: Tensor, keys: Tensor, scale: float) -> Tensor:
    """Single-head attention with ``values = keys``: ``softmax(scale * k_n . q) @ k``.

    ``query`` (..., d), ``keys`` (..., n, d) (leading dims broadcast) -> (..., d).
    DVTA's SDE stacks n = 2 tokens [label text, context text].
    """
    weights = torch.softmax((keys * query.unsqueeze(-2)).sum(-1) * scale, dim=-1)
    return (weights.unsqueeze(-1) * keys).sum(-2)


class VisualProjector(nn.Module):
    """Deep nonlinear projector F_v: residual ``ReLU(L0(v) + v)`` then
    ReLU-separated linear layers of the given widths, ending in ``out_dim`` (no final
    activation)."""

    def __init__(self, in_dim: int, out_dim: int, widths: tuple[int, ...] = (384, 512)) -> None:
        super().__init__()
        self.residual = nn.Linear(in_dim, in_dim)
        layers: list[nn.Module] = []
        prev = in_dim
        for w in widths:
            layers += [nn.Linear(prev, w), nn.ReLU()]
            prev = w
        layers.append(nn.Linear(prev, out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, v: Tensor) -> Tensor:
        return self.mlp(F.relu(self.residual(v) + v))


class DeepMetricNetwork(nn.Module):
    """AA's metric E: [skeleton ; text] (2h) -> 2h -> h -> 1, ReLU between, then the
    squashing function."""

    def __init__(self, dim: int, activation: nn.Module) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim),
                                 nn.ReLU(), nn.Linear(dim, 1))
        self.activation = activation

    def forward(self, skeleton: Tensor, text: Tensor) -> Tensor:
        """``skeleton`` (..., h), ``text`` (..., h), broadcast against each other -> (...)
        similarity of every broadcast pair.

        The first layer on the concatenation ``W [s; t] + b`` is computed as
        ``W_s s + (W_t t + b)`` with the two column blocks of the same weight, each on the
        unbroadcast operand: for B skeletons against K shared texts that is B + K products
        instead of B x K (the pairs meet at the broadcast add). Same function; float32
        rounding differs from the concatenation by ~1e-7 (test against it)."""
        first = self.mlp[0]
        h = skeleton.shape[-1]
        hidden = (F.linear(skeleton, first.weight[:, :h])
                  + F.linear(text, first.weight[:, h:], first.bias))
        return self.activation(self.mlp[1:](hidden).squeeze(-1))


class DVTANet(nn.Module):
    """All trainable parts of DVTA for skeleton width ``skel_dim`` and text width ``dim``
    (the common space has the text width, as in the official code)."""

    def __init__(self, skel_dim: int, dim: int, *, visual: str = "deep",
                 widths: tuple[int, ...] = (384, 512), text: str = "linear",
                 use_sde: bool = True, sde_variant: str = "code", use_aa: bool = True,
                 aa_activation: Literal["leaky_sigmoid", "sigmoid", "none"] = "leaky_sigmoid",
                 gamma: float = 0.01, tau: float = 0.1, learn_tau: bool = True) -> None:
        super().__init__()
        self.visual = (VisualProjector(skel_dim, dim, widths) if visual == "deep"
                       else nn.Linear(skel_dim, dim))
        self.text = nn.Linear(dim, dim) if text == "linear" else nn.Identity()
        self.use_sde, self.sde_variant = use_sde, sde_variant
        self.metric = DeepMetricNetwork(dim, squashing(aa_activation, gamma)) if use_aa else None
        self.tau_da = Temperature(tau, learn_tau, "divisor")
        self.tau_aa = Temperature(tau, learn_tau, "divisor") if use_aa else None

    def embed_skeleton(self, x: Tensor) -> Tensor:
        """v_e = F_v(x / |x|) (paper Eq. 1 normalises the input feature)."""
        return self.visual(F.normalize(x, dim=-1))

    def embed_text(self, v_e: Tensor, label: Tensor, context: Tensor | None) -> Tensor:
        """Class text features in the common space, conditioned on the query skeleton by SDE.

        Code variant: attend with ``v_e`` over the normalised [label, context] texts (no
        scaling), then project. Paper variant (Eq. 3): keys = [F_t(label), context],
        scale 1/sqrt(h), no projection afterwards. ``v_e`` (..., h) must broadcast against
        ``label``/``context`` (..., h).
        """
        label = F.normalize(label, dim=-1)
        if not self.use_sde:
            return self.text(label)
        if context is None:
            raise ValueError("SDE needs context text features")
        context = F.normalize(context, dim=-1)
        if self.sde_variant == "code":
            mixed = cross_attention(v_e, torch.stack(torch.broadcast_tensors(label, context), -2), 1.0)
            return self.text(mixed)
        keys = torch.stack(torch.broadcast_tensors(self.text(label), context), -2)
        return cross_attention(v_e, keys, 1.0 / math.sqrt(v_e.shape[-1]))

    def pair_scores(self, v_e: Tensor, t_e: Tensor, detach_aa: bool = False) -> tuple[Tensor, Tensor | None]:
        """Raw (untempered) DA cosine and AA metric scores of every (skeleton i, text k) pair.

        ``t_e`` (K, h) is shared by all rows, (B, K, h) is per row. Returns two (B, K)
        tensors (AA is None without the AA module). ``detach_aa`` stops AA gradients from
        reaching the projectors (official code)."""
        if t_e.ndim == 2:
            da = cosine_similarity_matrix(v_e, t_e)
            t_rows = t_e.unsqueeze(0)                       # (1, K, h): shared by every row
        else:
            da = (F.normalize(v_e, dim=-1).unsqueeze(1) * F.normalize(t_e, dim=-1)).sum(-1)
            t_rows = t_e
        if self.metric is None:
            return da, None
        v_rows = v_e.unsqueeze(1)                           # (B, 1, h): the metric broadcasts
        if detach_aa:
            v_rows, t_rows = v_rows.detach(), t_rows.detach()
        return da, self.metric(v_rows, t_rows)
