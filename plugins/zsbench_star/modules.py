"""STAR's dual prompts and matching losses (official ``model/shiftgcn_match_ntu.py``,
class ``ModelMatch``; ``main_ntu_match.py``, ``train``).

Shapes: ``B`` samples, ``C`` encoder channels, ``T`` encoder time steps, ``V`` joints, ``M``
bodies, ``E`` prompt / attention width, ``P`` prompts per part (= semantic width), ``D``
text width, ``K`` classes, ``R`` body parts.

Skeleton side, per body part ``r`` with joints ``J_r`` (feature map ``F``, (B, C, T, V)):

* part tokens ``X_r = F[:, :, :, J_r]`` flattened time-major to (B, T*|J_r|, C);
* visual-attribute prompts ``Q_r`` (P, E) attend to them,
  ``A_r = MHA_r(Q_r, X_r, X_r)`` (B, P, E); refined ``Z_r = W2 ReLU(W1 A_r)``;
* bilinear read-out ``e_r[b, i] = Q_r[i] U_r Z_r[b, i]`` (B, P); global ``g = sum_r e_r``.

Text side: label projection ``phi(t_name)`` (Linear D->H, ReLU, Linear H->P); per part the
semantic prompts ``R_r`` (K, D) are added to the part descriptions,
``s_{k,r} = psi_r(t_{k,r} + R_r[k])``.

Losses (temperature 1, ``-log(softmax + 1e-12)`` as the code writes it), CE over the
training classes ``S``:

* ``L_g = CE_S(cos(g, phi(t_k)))``;
* ``L_p = mean_r CE_S(cos(e_r, s_{k,r}))``;
* ``L_pd = mean_r mean_c -log softmax_k(s_{c,r} . phi(t_k))[c]`` over every class with texts
  (raw dot products);
* ``L = w_g L_g + w_p L_p + w_pd L_pd`` (code: 0.1, 1, 0.1).

Test score: ``cos(g(x), phi(t_k))``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the code's ``torch.log(softmax + 1e-12)``
LOG_EPS = 1e-12


def match_cube(per_body: Tensor, official: bool = False) -> Tensor:
    """(N, M, C, T, V) last-block output per body -> (N, C, T, V) feature map.

    ``official``: the released ``SHIFTGCNModel.forward`` reinterprets the (N*M, C, T, V)
    memory as (N, C, T, V, M) and averages the last axis (quirk Q1): channels, bodies and
    neighbouring flat positions are mixed. Default: the mean over the bodies."""
    if per_body.dim() != 5:
        raise ValueError(f"expected (N, M, C, T, V), got shape {tuple(per_body.shape)}")
    n, m, c, t, v = per_body.shape
    if official:
        return per_body.reshape(n, c, t, v, m).mean(dim=4)
    return per_body.mean(dim=1)


def part_tokens(cube: Tensor, joints: Tensor) -> Tensor:
    """(B, C, T, V) -> (B, T*|J|, C) tokens of the joints ``joints`` (time-major)."""
    b, c = cube.shape[:2]
    return cube[:, :, :, joints].reshape(b, c, -1).permute(0, 2, 1)


class PartPrompts(nn.Module):
    """Visual-attribute prompts of one body part: cross-attention of ``P`` learnable prompts
    over the part tokens, a two-layer refinement and the bilinear read-out to ``P`` scores.

    ``use_prompts=False`` (ablation; the paper's exact variant is unknown): the mean part
    token is mapped to ``E`` by a linear layer, refined by the same MLP and read out by a
    linear layer ``E -> P``."""

    def __init__(self, channels: int, width: int, num_prompts: int, num_heads: int,
                 use_prompts: bool = True) -> None:
        super().__init__()
        self.use_prompts = use_prompts
        self.prompts = nn.Parameter(torch.randn(num_prompts, width))       # N(0, 1) as the code
        if use_prompts:
            self.attention = nn.MultiheadAttention(width, num_heads, kdim=channels,
                                                   vdim=channels, batch_first=True)
            self.bilinear = nn.Parameter(torch.randn(width, width))         # N(0, 1) as the code
        else:
            self.pool = nn.Linear(channels, width)
            self.readout = nn.Linear(width, num_prompts)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, L, C) part tokens -> (B, P) part embedding."""
        if not self.use_prompts:
            z = self.fc2(F.relu(self.fc1(self.pool(tokens.mean(dim=1)))))
            return self.readout(z)
        b = tokens.shape[0]
        queries = self.prompts.unsqueeze(0).expand(b, -1, -1)
        attended, _ = self.attention(queries, tokens, tokens)
        z = self.fc2(F.relu(self.fc1(attended)))
        return torch.einsum("iv, vf, bif->bi", self.prompts, self.bilinear, z)


def projection(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """``Linear(d_in, hidden) -> ReLU -> Linear(hidden, d_out)``."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class StarNet(nn.Module):
    """Everything STAR trains on top of the frozen skeleton encoder."""

    def __init__(self, channels: int, text_dim: int, num_text_classes: int,
                 parts: Sequence[Sequence[int]], num_prompts: int = 100, width: int = 768,
                 num_heads: int = 4, hidden: int = 256, use_part_prompts: bool = True,
                 use_semantic_prompts: bool = True) -> None:
        super().__init__()
        self.num_parts = len(parts)
        for r, joints in enumerate(parts):
            self.register_buffer(f"joints_{r}", torch.as_tensor(list(joints), dtype=torch.long),
                                 persistent=False)
        self.visual = nn.ModuleList([PartPrompts(channels, width, num_prompts, num_heads,
                                                 use_part_prompts) for _ in parts])
        self.part_proj = nn.ModuleList([projection(text_dim, hidden, num_prompts)
                                        for _ in parts])
        self.label_proj = projection(text_dim, hidden, num_prompts)
        self.use_semantic_prompts = use_semantic_prompts
        self.semantic_prompts = nn.ParameterList([
            nn.Parameter(torch.randn(num_text_classes, text_dim),
                         requires_grad=use_semantic_prompts) for _ in parts])
        if not use_semantic_prompts:
            for p in self.semantic_prompts:
                nn.init.zeros_(p)

    def joints(self, r: int) -> Tensor:
        return getattr(self, f"joints_{r}")

    # ---------------------------------------------------------------- skeleton side
    def embed(self, cube: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, T, V) feature map -> part embeddings (B, R, P) and global ``g`` (B, P)."""
        parts = torch.stack([self.visual[r](part_tokens(cube, self.joints(r)))
                             for r in range(self.num_parts)], dim=1)
        return parts, parts.sum(dim=1)

    # ---------------------------------------------------------------- text side
    def labels(self, names: Tensor) -> Tensor:
        """(K, D) class-name embeddings -> (K, P)."""
        return self.label_proj(names)

    def descriptions(self, parts: Tensor, rows: Tensor | None = None) -> Tensor:
        """(K, R, D) part descriptions -> (K, R, P) ``psi_r(t_{k,r} + R_r[k])``; ``rows``
        picks the prompt rows of the K classes (default: all, in order)."""
        out = []
        for r in range(self.num_parts):
            prompt = self.semantic_prompts[r] if rows is None else self.semantic_prompts[r][rows]
            out.append(self.part_proj[r](parts[:, r] + prompt))
        return torch.stack(out, dim=1)

    def scores(self, g: Tensor, names: Tensor) -> Tensor:
        """(B, K) cosines between global embeddings and projected class names."""
        return F.normalize(g, dim=1) @ F.normalize(self.labels(names), dim=1).t()


def _nll(logits: Tensor, target: Tensor) -> Tensor:
    """Mean ``-log(softmax(logits) + 1e-12)`` at ``target`` (the code's cross-entropy)."""
    p = F.softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return -torch.log(p + LOG_EPS).mean()


def star_losses(net: StarNet, parts_emb: Tensor, g: Tensor, target: Tensor, names: Tensor,
                descriptions: Tensor, train_cols: Tensor) -> dict[str, Tensor]:
    """The three loss terms of ``ModelMatch.loss_cal`` that enter the objective.

    ``names`` (K, D) and ``descriptions`` (K, R, D) are the texts of every class with texts
    (row k uses semantic-prompt row k); ``train_cols`` (S,) are the columns of the classes
    the cross-entropies run over, and ``target`` (B,) indexes into ``train_cols``."""
    lab = net.labels(names)                                          # (K, P)
    desc = net.descriptions(descriptions)                            # (K, R, P)
    cos_g = F.normalize(g, dim=1) @ F.normalize(lab, dim=1).t()      # (B, K)
    loss_g = _nll(cos_g[:, train_cols], target)
    part_terms, pd_terms = [], []
    classes = torch.arange(len(lab), device=lab.device)
    for r in range(net.num_parts):
        s = desc[:, r]
        cos_p = F.normalize(parts_emb[:, r], dim=1) @ F.normalize(s, dim=1).t()
        part_terms.append(_nll(cos_p[:, train_cols], target))
        pd_terms.append(_nll(s @ lab.t(), classes))
    loss_p = torch.stack(part_terms).mean()
    loss_pd = torch.stack(pd_terms).mean()
    return {"global": loss_g, "part": loss_p, "pd": loss_pd}


def total_loss(terms: dict[str, Tensor], w_global: float, w_part: float, w_pd: float) -> Tensor:
    return w_global * terms["global"] + w_part * terms["part"] + w_pd * terms["pd"]
