"""PURLS building blocks (torch): feature tokens, description-queried adaptive pooling,
the skeleton-to-text projector and the per-representation contrastive loss.

Notation (docs/methods/purls.md): B samples, L = S x V feature tokens (S temporal
segments x V joints) of width D, R representations (default 8: head, hands, torso, legs,
start, middle, end, global), text width E.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zsbench.nn.losses import diagonal_nce_from_log_probs, log_softmax_both

#: body-part joint groups (0-based NTU joints) of the official ``data/utils.py splits['ntu']``
#: (overlapping); used only by ``partitioning='static'``
NTU_PART_GROUPS: dict[str, tuple[int, ...]] = {
    "head": (2, 3, 4, 8, 20),
    "hands": (4, 5, 6, 7, 8, 9, 10, 11, 21, 22, 23, 24),
    "torso": (0, 1, 4, 8, 12, 16, 20),
    "legs": (0, 12, 13, 14, 15, 16, 17, 18, 19),
}


# ------------------------------------------------------------------------------ tokens
def segment_tokens(fmap: Tensor, segments: int = 3, eps: float = 1e-12) -> Tensor:
    """(N, C, T', V) feature map -> (N, S, V, C) tokens: the time axis averaged over
    ``segments`` windows (``adaptive_avg_pool``: equal thirds when T' is divisible), then
    every C-vector L2-normalised on its own (the official loader; ``eps`` guards all-zero
    positions, which give NaN there)."""
    n, c, t, v = fmap.shape
    pooled = F.adaptive_avg_pool2d(fmap, (segments, v)) if t != segments else fmap
    tokens = pooled.permute(0, 2, 3, 1)
    return tokens / tokens.norm(dim=-1, keepdim=True).clamp_min(eps)


def static_pool(tokens: Tensor, groups: Sequence[Sequence[int]], num_intervals: int,
                with_global: bool = True) -> Tensor:
    """Static partitioning (supp Table 5): (N, S, V, C) tokens -> (N, R, C): per body-part
    group the mean of its joints (averaged over time), per temporal segment the mean over
    joints, then the global mean. ``num_intervals`` must equal S."""
    if tokens.shape[1] != num_intervals:
        raise ValueError(f"static partitioning: {tokens.shape[1]} segments for "
                         f"{num_intervals} intervals")
    over_time = tokens.mean(dim=1)                                  # (N, V, C)
    parts = [over_time[:, list(g)].mean(dim=1) for g in groups]
    phases = list(tokens.mean(dim=2).unbind(1))                     # S x (N, C)
    out = parts + phases + ([tokens.mean(dim=(1, 2))] if with_global else [])
    return torch.stack(out, dim=1)


# ------------------------------------------------------------------------------ attention
class DescriptionAttention(nn.Module):
    """Adaptive partitioning: description features query the skeleton tokens.

    ``q = W_q t`` (E -> H*k, no bias), ``k = W_k x`` (D -> H*k, no bias); per head the
    scaled dot product ``q_h . k_h / sqrt(k)``; the H heads' scores are **averaged before**
    the softmax over the L tokens; the pooled vector is ``softmax(score) @ X`` (values are
    the raw tokens: no value or output projection).
    """

    def __init__(self, dim_in: int, dim_text: int, k_dim: int = 150, n_heads: int = 2) -> None:
        super().__init__()
        self.k_dim, self.n_heads = k_dim, n_heads
        self.query = nn.Linear(dim_text, k_dim * n_heads, bias=False)
        self.key = nn.Linear(dim_in, k_dim * n_heads, bias=False)

    def weights(self, tokens: Tensor, queries: Tensor) -> Tensor:
        """(B, L, D) tokens, (B, R, E) queries -> (B, R, L) attention weights.

        The head-averaged score ``1/H sum_h q_h . (K_h x)`` is computed as
        ``(1/H sum_h K_h^T q_h) . x``: the key projection is applied to the R queries instead
        of the L tokens (R = 8 against L = 150 or more; the projection of every token was
        most of the head's time). Same function (associativity; float64 test against the
        keys-first order); float32 rounding differs by ~1e-7."""
        b, r = queries.shape[0], queries.shape[1]
        q = self.query(queries).view(b, r, self.n_heads, self.k_dim)
        w_key = self.key.weight.view(self.n_heads, self.k_dim, -1)          # (H, k, D)
        u = torch.einsum("brhk,hkd->brd", q, w_key) / self.n_heads
        score = (u @ tokens.transpose(1, 2)) / math.sqrt(self.k_dim)
        return score.softmax(dim=-1)

    def forward(self, tokens: Tensor, queries: Tensor) -> tuple[Tensor, Tensor]:
        """-> pooled (B, R, D), weights (B, R, L)."""
        w = self.weights(tokens, queries)
        return w @ tokens, w


# ------------------------------------------------------------------------------ projector
def _block(width_in: int, width_out: int, dropout: float) -> list[nn.Module]:
    return [nn.BatchNorm1d(width_in), nn.Dropout(dropout), nn.Linear(width_in, width_out)]


def projector(dim_in: int, n_repr: int, dim_text: int, hidden: int = 1024,
              n_hidden_layers: int = 0, dropout: float = 0.5) -> nn.Sequential:
    """``flatten(P) (R*D) -> BN -> Dropout -> Linear(R*D, hidden) -> SiLU -> [n_hidden_layers
    x (BN -> Dropout -> Linear(hidden, hidden) -> SiLU)] -> BN -> Dropout ->
    Linear(hidden, R*E) -> Tanh``."""
    extra: list[nn.Module] = []
    for _ in range(n_hidden_layers):
        extra += _block(hidden, hidden, dropout) + [nn.SiLU()]
    # the hidden blocks sit in one (possibly empty) Sequential at index 4, where the
    # official model has its HiddenLayer: the state-dict names then agree
    layers: list[nn.Module] = _block(dim_in * n_repr, hidden, dropout) + [nn.SiLU()]
    layers += [nn.Sequential(*extra)]
    layers += _block(hidden, dim_text * n_repr, dropout) + [nn.Tanh()]
    return nn.Sequential(*layers)


class PurlsHead(nn.Module):
    """Attention pooling (or a fixed pooling) + the joint projector + per-representation
    logit scales ``tau`` (and loss weights ``d`` when ``learnable_weights``)."""

    def __init__(self, dim_in: int, dim_text: int, n_repr: int = 8, hidden: int = 1024,
                 n_hidden_layers: int = 0, k_dim: int = 150, n_heads: int = 2,
                 dropout: float = 0.5, tau_init: float = math.log(1 / 0.07),
                 learnable_weights: bool = False, adaptive: bool = True) -> None:
        super().__init__()
        self.n_repr, self.dim_text = n_repr, dim_text
        self.attention = DescriptionAttention(dim_in, dim_text, k_dim, n_heads) if adaptive else None
        self.project = projector(dim_in, n_repr, dim_text, hidden, n_hidden_layers, dropout)
        self.tau = nn.Parameter(torch.full((n_repr,), float(tau_init)))
        self.weight = nn.Parameter(torch.ones(n_repr)) if learnable_weights else None
        for m in self.modules():        # official init_weights: Kaiming-uniform Linear weights
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight)

    def pool(self, tokens: Tensor, queries: Tensor | None) -> Tensor:
        """(B, L, D) tokens (adaptive) or (B, R, D) pre-pooled vectors (static) -> (B, R, D)."""
        if self.attention is None:
            return tokens
        return self.attention(tokens, queries)[0]

    def forward(self, tokens: Tensor, queries: Tensor | None) -> Tensor:
        """-> projected representations O (B, R, E) (tanh outputs, not normalised)."""
        pooled = self.pool(tokens, queries)
        b = pooled.shape[0]
        return self.project(pooled.reshape(b, -1)).view(b, self.n_repr, self.dim_text)

    def output(self, tokens: Tensor, queries: Tensor | None, index: int) -> Tensor:
        """Representation ``index`` of ``forward`` alone (B, E): only its E rows of the last
        Linear are computed (test-time scoring needs the global output only)."""
        pooled = self.pool(tokens, queries)
        hidden = self.project[:-2](pooled.reshape(pooled.shape[0], -1))
        last = self.project[-2]
        rows = slice(index * self.dim_text, (index + 1) * self.dim_text)
        return torch.tanh(F.linear(hidden, last.weight[rows], last.bias[rows]))


# ------------------------------------------------------------------------------ loss
def representation_loss(out: Tensor, text: Tensor, tau: Tensor, tau_exp: bool = False) -> Tensor:
    """CLIP-style loss of one representation: ``l = tau * O T^T`` (B, B),
    ``CE(l, diag) + CE(l^T, diag)`` -- the two directions **summed** (official
    ``contrastive_loss``); ``tau_exp`` uses ``exp(tau)`` as the scale (CLIP) instead."""
    scale = tau.exp() if tau_exp else tau
    x2t, t2x = log_softmax_both(scale * (out @ text.t()))
    return 2.0 * diagonal_nce_from_log_probs(x2t, t2x)


def purls_loss(out: Tensor, text: Tensor, tau: Tensor, weight: Tensor | None = None,
               tau_exp: bool = False) -> tuple[Tensor, Tensor]:
    """``L = sum_i w_i L_i`` over the R representations (``w = 1`` without learnable
    weights). ``out`` (B, R, E), ``text`` (B, R, E) = the texts of each sample's own class.
    Returns (total, per-representation losses (R,))."""
    parts = torch.stack([representation_loss(out[:, i], text[:, i], tau[i], tau_exp)
                         for i in range(out.shape[1])])
    total = (parts * weight).sum() if weight is not None else parts.sum()
    return total, parts


# ------------------------------------------------------------------------------ scores
@torch.no_grad()
def candidate_scores(head: PurlsHead, tokens: Tensor, class_texts: Tensor, global_index: int,
                     score_parts: bool = False, chunk: int = 4096) -> Tensor:
    """Class-conditional scores: for each candidate k the sample's tokens are pooled with
    k's descriptions as queries and projected; ``s_k = o^(k)_global . T_k[global]`` (with
    ``score_parts`` the sum over all R representations). ``tokens`` (N, L, D) (or (N, R, D)
    pre-pooled), ``class_texts`` (K, R, E) -> (N, K)."""
    n, k = tokens.shape[0], class_texts.shape[0]
    flat_scores = []
    pairs = torch.cartesian_prod(torch.arange(n), torch.arange(k)) if n and k else \
        torch.zeros(0, 2, dtype=torch.long)
    for start in range(0, len(pairs), chunk):
        ii, kk = pairs[start:start + chunk].unbind(1)
        q = class_texts[kk.to(class_texts.device)]
        x = tokens[ii.to(tokens.device)]
        if score_parts:
            flat_scores.append((head(x, q) * q).sum(dim=(1, 2)))
        else:
            o = head.output(x, q, global_index)
            flat_scores.append((o * q[:, global_index]).sum(dim=-1))
    if not flat_scores:
        return tokens.new_zeros(n, k)
    return torch.cat(flat_scores).view(n, k)


@torch.no_grad()
def fixed_query_predictions(head: PurlsHead, tokens: Tensor, class_texts: Tensor,
                            global_index: int, chunk: int = 4096) -> Tensor:
    """Official test path (quirk Q1), for every possible query class q: the sample pooled
    with q's descriptions, then ``argmax_k o^(q)_global . T_k[global]`` -> (N, K) column
    indices (the official prediction is the entry of the sample's true class)."""
    n, k = tokens.shape[0], class_texts.shape[0]
    glob = class_texts[:, global_index]                  # (K, E)
    preds = []
    pairs = torch.cartesian_prod(torch.arange(n), torch.arange(k)) if n and k else \
        torch.zeros(0, 2, dtype=torch.long)
    for start in range(0, len(pairs), chunk):
        ii, qq = pairs[start:start + chunk].unbind(1)
        o = head.output(tokens[ii.to(tokens.device)], class_texts[qq.to(class_texts.device)],
                        global_index)
        preds.append((o @ glob.t()).argmax(dim=1))
    if not preds:
        return torch.zeros(n, k, dtype=torch.long)
    return torch.cat(preds).view(n, k)
