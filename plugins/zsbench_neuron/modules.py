"""Neuron's evolving micro-prototypes (paper §3.3-3.5, Eqs. 1-8; official
``model/shiftgcn_match.py``, class ``ModelMatch``).

Shapes: ``B`` samples, ``C`` skeleton channels, ``V`` joints, ``T`` temporal steps of the
encoder's feature map, ``P`` prototypes, ``D`` text dimension, ``K`` candidate classes.

* spatial feature ``F_s = mean_T(F)`` (B, C, V); temporal feature ``F_t = mean_V(F)`` (B, C, T);
* **spatial compression** (Eqs. 1-2), per phase ``e``: joint-prototype similarity
  ``S = F_s^T P`` (B, V, P); per joint, the prototypes ranked lowest by ``softmax_P(S)`` are
  dropped (their weight multiplied by ``1e-12``, as the code does) and only ``keep_e`` are
  kept; the aggregation weights are ``softmax_V(S)`` (normalised over **joints**); each
  prototype becomes the weighted sum of joint features, refined by an MLP ``phi_s^e``;
* **temporal memory** (Eqs. 3-5), per phase: frames of segment ``e`` are attention-pooled
  per prototype (``softmax_T``), and the prototypes are updated by
  ``P <- sigmoid(rho_r(Q)) * P + sigmoid(rho_m(Q)) * phi_t(Q)`` (recall + remember);
* per phase, the prototypes are averaged into ``x^e`` (B, C), projected
  (``Linear(C, D) -> ReLU``) and L2-normalised (``u^e``);
* class scores ``logit_scale * mean_top-k_a cos(u^e, z_{k,a}^e)`` over the ``a`` descriptions
  of each class (code: top-10 of 10 descriptions = the mean, ``logit_scale`` 0.1).
"""
from __future__ import annotations

import copy
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the factor the official code multiplies dropped aggregation weights by (not exactly 0)
DROPPED_WEIGHT = 1e-12


class MLP2(nn.Sequential):
    """``Linear(C, C) -> ReLU -> Linear(C, C) -> ReLU`` applied to the last axis (the
    official refinement / gate networks)."""

    def __init__(self, channels: int) -> None:
        super().__init__(nn.Linear(channels, channels), nn.ReLU(),
                         nn.Linear(channels, channels), nn.ReLU())


def _copies(template: nn.Module, n: int, share_init: bool) -> nn.ModuleList:
    """``n`` modules: deep copies of ``template`` (identical initial weights, as the
    official ``copy.deepcopy``) or freshly initialised ones."""
    if share_init:
        return nn.ModuleList([copy.deepcopy(template) for _ in range(n)])
    return nn.ModuleList([type(template)(template[0].in_features) for _ in range(n)])


# ------------------------------------------------------------------------------ pieces
def split_features(cube: Tensor) -> tuple[Tensor, Tensor]:
    """(B, C, T, V) feature map -> spatial ``mean_T`` (B, C, V), temporal ``mean_V`` (B, C, T)."""
    if cube.dim() != 4:
        raise ValueError(f"expected a (B, C, T, V) feature map, got shape {tuple(cube.shape)}")
    return cube.mean(dim=2), cube.mean(dim=3)


def keep_mask(similarity: Tensor, keep: int, dropped: float = DROPPED_WEIGHT) -> Tensor:
    """Top-alpha selection of spatial compression.

    ``similarity`` (B, V, P). For every row (joint), the ``keep`` prototypes ranked highest
    by ``softmax`` over the prototypes stay at 1; the other ``P - keep`` get ``dropped``.
    The ranking uses ``topk`` on the softmax values like the official code (ties, which
    only occur when the softmax saturates, are broken the same way).
    """
    p = similarity.shape[-1]
    if not 0 < keep <= p:
        raise ValueError(f"keep must be in 1..{p}, got {keep}")
    mask = torch.ones_like(similarity)
    if keep == p:
        return mask
    order = F.softmax(similarity, dim=-1).topk(p, dim=-1).indices
    return mask.scatter(-1, order[..., keep:], dropped)


def compress_spatial(fs: Tensor, protos: Tensor, keep: int | None,
                     dropped: float = DROPPED_WEIGHT) -> Tensor:
    """One spatial-compression aggregation before refinement.

    ``fs`` (B, C, V), ``protos`` (B, C, P) -> aggregated prototypes (B, P, C): prototype
    ``k`` = ``sum_j W[j, k] * fs[:, j]`` with ``W = softmax_V(fs^T protos) * mask``;
    ``keep=None`` = no compression (every weight kept).
    """
    sim = torch.einsum("bcv,bcp->bvp", fs, protos)
    weights = F.softmax(sim, dim=1)
    if keep is not None:
        weights = weights * keep_mask(sim, keep, dropped)
    return torch.einsum("bcv,bvp->bpc", fs, weights)


def attend_frames(ft: Tensor, protos: Tensor) -> Tensor:
    """Eqs. 3-4: ``ft`` (B, C, L) frames of one segment, ``protos`` (B, C, P) -> (B, P, C),
    each prototype the ``softmax_L(ft^T protos)``-weighted sum of the frames."""
    attn = F.softmax(torch.einsum("bcl,bcp->blp", ft, protos), dim=1)
    return torch.einsum("bcl,blp->bpc", ft, attn)


def memory_update(previous: Tensor, recall_logits: Tensor, remember_logits: Tensor,
                  refined: Tensor, gate: Literal["independent", "convex"] = "independent"
                  ) -> Tensor:
    """Eq. 5 (all tensors (B, C, P)).

    ``independent`` (paper and code): ``sigmoid(r) * previous + sigmoid(m) * refined``;
    ``convex``: ``g * previous + (1 - g) * refined`` with ``g = sigmoid(r)`` (the remember
    logits are unused), a convex combination of the old and the new prototypes.
    """
    g = torch.sigmoid(recall_logits)
    if gate == "convex":
        return g * previous + (1.0 - g) * refined
    if gate != "independent":
        raise ValueError(f"unknown memory gate {gate!r}")
    return g * previous + torch.sigmoid(remember_logits) * refined


def segment_bounds(steps: int, mode: Literal["cumulative", "disjoint", "full"]
                   ) -> list[tuple[int, int]]:
    """(start, end) of the three temporal phases over ``steps`` encoder steps.

    ``cumulative`` (code): prefixes ending at ``floor(e * T / 3)`` for e = 1, 2 and ``T``
    (5, 10, 16 for T = 16); ``disjoint`` (paper §3.3): three consecutive T/3 segments;
    ``full``: the whole sequence in every phase (ablation without phase evolving).
    """
    if steps < 3 and mode != "full":
        raise ValueError(f"{mode} temporal phases need at least 3 encoder steps, got {steps}")
    cut = [max(1, (e * steps) // 3) for e in (1, 2)] + [steps]
    if mode == "cumulative":
        return [(0, c) for c in cut]
    if mode == "disjoint":
        return [(0, cut[0]), (cut[0], cut[1]), (cut[1], steps)]
    if mode == "full":
        return [(0, steps)] * 3
    raise ValueError(f"unknown temporal segment mode {mode!r}")


def class_logits(u: Tensor, texts: Tensor | Sequence[Tensor], topk: int, scale: float) -> Tensor:
    """``u`` (B, D) normalised skeleton embeddings; ``texts`` the descriptions of each class,
    a (K, n, D) tensor or a sequence of (n_k, D) (normalised here). Score = ``scale * mean of
    the top-min(topk, n_k) cosines``. Returns (B, K)."""
    if isinstance(texts, Tensor):
        cos = torch.einsum("bd,knd->bkn", u, F.normalize(texts, p=2, dim=-1))
        k = min(topk, cos.shape[2])
        pooled = cos.topk(k, dim=2).values.mean(dim=2) if k < cos.shape[2] else cos.mean(dim=2)
        return pooled * scale
    cols = [class_logits(u, z[None], topk, 1.0)[:, 0] for z in texts]
    return torch.stack(cols, dim=1) * scale


def phase_losses(logits: Sequence[Tensor], target: Tensor) -> Tensor:
    """Eqs. 6-7: one cross-entropy per phase, (n_phases,)."""
    return torch.stack([F.cross_entropy(lg, target) for lg in logits])


def neuron_loss(spatial: Sequence[Tensor], temporal: Sequence[Tensor], target: Tensor,
                reduction: Literal["mean", "sum"] = "mean") -> tuple[Tensor, Tensor, Tensor]:
    """Eq. 8. ``mean`` (code): ``(mean_e L_s^e + mean_e L_t^e) / 2``; ``sum`` (paper):
    ``sum_e (L_s^e + L_t^e)``. Returns (loss, spatial per-phase, temporal per-phase)."""
    ls, lt = phase_losses(spatial, target), phase_losses(temporal, target)
    if reduction == "mean":
        return (ls.mean() + lt.mean()) / 2, ls, lt
    if reduction == "sum":
        return ls.sum() + lt.sum(), ls, lt
    raise ValueError(f"unknown loss reduction {reduction!r}")


# ------------------------------------------------------------------------------ network
class NeuronHead(nn.Module):
    """Spatial and temporal micro-prototype streams on an encoder feature map.

    ``forward(cube)`` returns the normalised per-phase embeddings ``(spatial, temporal)``,
    two lists of three (B, D) tensors; ``logits(...)`` turns them into class scores.
    """

    def __init__(self, channels: int, text_dim: int, num_spatial: int = 80,
                 num_temporal: int = 80, spatial_keep: Sequence[int] | None = (60, 40, 20),
                 temporal_segments: Literal["cumulative", "disjoint", "full"] = "cumulative",
                 temporal_memory: bool = True,
                 memory_gate: Literal["independent", "convex"] = "independent",
                 share_init: bool = True, dropped_weight: float = DROPPED_WEIGHT) -> None:
        super().__init__()
        if spatial_keep is not None:
            if len(spatial_keep) != 3 or not all(0 < k <= num_spatial for k in spatial_keep):
                raise ValueError(f"spatial_keep needs three counts in 1..{num_spatial}, "
                                 f"got {list(spatial_keep)}")
        self.spatial_keep = None if spatial_keep is None else [int(k) for k in spatial_keep]
        self.temporal_segments = temporal_segments
        self.temporal_memory = temporal_memory
        self.memory_gate = memory_gate
        self.dropped_weight = dropped_weight
        # nn.Embedding init: N(0, 1)
        self.spatial_prototypes = nn.Parameter(torch.randn(num_spatial, channels))
        self.temporal_prototypes = nn.Parameter(torch.randn(num_temporal, channels))
        spatial_template, temporal_template = MLP2(channels), MLP2(channels)
        self.spatial_project = nn.Sequential(nn.Linear(channels, text_dim), nn.ReLU())
        self.spatial_refine = _copies(spatial_template, 3, share_init)
        self.temporal_project = nn.Sequential(nn.Linear(channels, text_dim), nn.ReLU())
        self.temporal_refine = _copies(temporal_template, 3, share_init)
        # code: the gate networks are copies of the *spatial* template
        self.temporal_remember = _copies(spatial_template, 3, share_init)
        self.temporal_recall = _copies(spatial_template, 3, share_init)

    # ---- streams
    def spatial_stream(self, fs: Tensor) -> list[Tensor]:
        """(B, C, V) -> three pooled spatial representations x_s^e (B, C)."""
        protos = self.spatial_prototypes.T.unsqueeze(0).expand(fs.shape[0], -1, -1)
        out = []
        for e, refine in enumerate(self.spatial_refine):
            keep = None if self.spatial_keep is None else self.spatial_keep[e]
            agg = compress_spatial(fs, protos, keep, self.dropped_weight)
            protos = refine(agg).permute(0, 2, 1)
            out.append(protos.mean(dim=2))
        return out

    def temporal_stream(self, ft: Tensor) -> list[Tensor]:
        """(B, C, T) -> three pooled temporal representations x_t^e (B, C)."""
        protos = self.temporal_prototypes.T.unsqueeze(0).expand(ft.shape[0], -1, -1)
        out = []
        for e, (a, b) in enumerate(segment_bounds(ft.shape[2], self.temporal_segments)):
            q = attend_frames(ft[:, :, a:b], protos)
            refined = self.temporal_refine[e](q).permute(0, 2, 1)
            if self.temporal_memory:
                protos = memory_update(protos, self.temporal_recall[e](q).permute(0, 2, 1),
                                       self.temporal_remember[e](q).permute(0, 2, 1),
                                       refined, self.memory_gate)
            else:
                protos = refined
            out.append(protos.mean(dim=2))
        return out

    def forward(self, cube: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        fs, ft = split_features(cube)
        return self.embed(fs, ft)

    def embed(self, fs: Tensor, ft: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Per-phase L2-normalised projections u_s^e, u_t^e from the pooled features."""
        us = [F.normalize(self.spatial_project(x), p=2, dim=1) for x in self.spatial_stream(fs)]
        ut = [F.normalize(self.temporal_project(x), p=2, dim=1) for x in self.temporal_stream(ft)]
        return us, ut

    @staticmethod
    def logits(embeddings: Sequence[Tensor], texts: Sequence[Tensor | Sequence[Tensor]], topk: int,
               scale: float) -> list[Tensor]:
        """Per-phase class logits: ``embeddings[e]`` (B, D) against ``texts[e][k]``."""
        return [class_logits(u, t, topk, scale) for u, t in zip(embeddings, texts)]
