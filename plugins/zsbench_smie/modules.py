"""SMIE building blocks: the critic, the Jensen-Shannon mutual-information estimator with
its negative pairs, the temporal constraint and the motion-attention temporal mask
(smie.md §2-3; official ``model.py`` / ``procedure.py``).

Notation: ``v`` skeleton features (B, Dv), ``t`` the L2-normalised text feature of each
sample's class (B, Dt), ``D(v, t)`` the critic, ``sp`` softplus.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NegativeSampling = Literal["roll", "all_other_samples", "other_classes_only"]
MaskMode = Literal["motion_attention_2sided", "motion_attention_1sided", "random"]


class Critic(nn.Module):
    """``D(v, t)``: ``[v ; t]`` -> Linear -> ReLU -> Linear -> ReLU -> Linear(., 1).

    Official widths (``GlobalDiscriminator``): 1024 and 512, PyTorch default init.
    Inputs broadcast over leading dimensions; returns the score without the last axis.
    """

    def __init__(self, visual_dim: int, text_dim: int, hidden: Sequence[int] = (1024, 512)) -> None:
        super().__init__()
        if len(hidden) != 2:
            raise ValueError(f"the critic has two hidden layers, got widths {list(hidden)}")
        self.fc1 = nn.Linear(visual_dim + text_dim, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.out = nn.Linear(hidden[1], 1)

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        h = F.relu(self.fc1(_pairs(v, t)))
        h = F.relu(self.fc2(h))
        return self.out(h).squeeze(-1)


def _pairs(v: Tensor, t: Tensor) -> Tensor:
    """``[v ; t]`` on the last axis after broadcasting the leading dimensions."""
    lead = torch.broadcast_shapes(v.shape[:-1], t.shape[:-1])
    return torch.cat([v.expand(*lead, v.shape[-1]), t.expand(*lead, t.shape[-1])], dim=-1)


# ---------------------------------------------------------------- the MI estimator
def jsd_mi(pos: Tensor, neg: Tensor, neg_weight: Tensor | None = None) -> Tensor:
    """Jensen-Shannon MI lower bound (DIM style) from critic scores:
    ``mean(-sp(-pos)) - mean(sp(neg))`` (``neg_weight``: weights of a weighted mean over
    the negative scores, e.g. a 0/1 mask).

    With the optimal critic ``T = log p(v,t)/(p(v)p(t))`` its expectation is
    ``2 JSD(P_vt || P_v P_t) - 2 log 2``; it is ``-2 log 2`` for ``T = 0``."""
    joint = -F.softplus(-pos).mean()
    if neg_weight is None:
        marginal = F.softplus(neg).mean()
    else:
        w = neg_weight.to(neg.dtype)
        total = w.sum()
        if not bool(total > 0):
            raise ValueError("no negative pair left (every pair in the batch shares a class)")
        marginal = (F.softplus(neg) * w).sum() / total
    return joint - marginal


def roll_by_one(v: Tensor) -> Tensor:
    """Row i -> row (i + 1) mod B: the official negatives (``cat(v[1:], v[:1])``)."""
    return torch.roll(v, shifts=-1, dims=0)


def negative_scores(critic: nn.Module, v: Tensor, t: Tensor, mode: NegativeSampling,
                    labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Critic scores of the negative pairs and their weights (None = plain mean).

    ``roll``: text i with ``v[(i+1) mod B]`` (official; ignores labels). ``all_other_samples``:
    every (v_j, t_i), j != i. ``other_classes_only``: only pairs whose labels differ."""
    if mode == "roll":
        return critic(roll_by_one(v), t), None
    b = v.shape[0]
    scores = critic(v.unsqueeze(0), t.unsqueeze(1))           # [i, j] = D(v_j, t_i)
    weight = ~torch.eye(b, dtype=torch.bool, device=v.device)
    if mode == "other_classes_only":
        if labels is None:
            raise ValueError("negative_sampling='other_classes_only' needs the labels")
        weight = weight & (labels.view(1, -1) != labels.view(-1, 1))
    elif mode != "all_other_samples":
        raise ValueError(f"unknown negative sampling {mode!r}")
    return scores, weight


class SMIEHead(nn.Module):
    """The critic plus the affine-free LayerNorm applied to skeleton features in training."""

    def __init__(self, visual_dim: int, text_dim: int, hidden: Sequence[int] = (1024, 512),
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.critic = Critic(visual_dim, text_dim, hidden)
        self.visual_dim, self.eps = visual_dim, eps

    def layernorm(self, v: Tensor) -> Tensor:
        return F.layer_norm(v, (self.visual_dim,), eps=self.eps)

    def mi(self, v_pos: Tensor, t: Tensor, v_neg: Tensor | None = None,
           negatives: NegativeSampling = "roll", labels: Tensor | None = None) -> Tensor:
        """JSD MI estimate with positives ``(LN(v_pos_i), t_i)`` and negatives drawn from
        ``LN(v_neg)`` (default ``v_pos``). The official global term is ``mi(v, t)``; the
        temporal term ``mi(v_reduced, t, v_neg=v_full)`` (smie.md §3)."""
        pos_v = self.layernorm(v_pos)
        neg_v = pos_v if v_neg is None else self.layernorm(v_neg)
        neg, weight = negative_scores(self.critic, neg_v, t, negatives, labels)
        return jsd_mi(self.critic(pos_v, t), neg, weight)

    def scores(self, v: Tensor, t: Tensor, layernorm: bool = False) -> Tensor:
        """(N, K) test scores ``log sigmoid D(v_n, t_k) = -sp(-D)``; the official code
        feeds raw features here (``layernorm=False``)."""
        if layernorm:
            v = self.layernorm(v)
        return -F.softplus(-self.critic(v.unsqueeze(1), t.unsqueeze(0)))


def temporal_constraint(mi_full: Tensor, mi_reduced: Tensor, margin: float) -> Tensor:
    """``max(0, margin - (I_full - I_reduced))``: the MI of the full sequence must exceed
    the MI of the frame-reduced one by at least the margin."""
    return torch.clamp(margin - (mi_full - mi_reduced), min=0.0)


def smie_loss(mi_full: Tensor, mi_reduced: Tensor | None, margin: float = 0.1,
              tc_weight: float = 0.5) -> Tensor:
    """``-I_full + tc_weight * max(0, margin - (I_full - I_reduced))`` (``procedure.py``:
    weight 0.5, margin 0.1); ``-I_full`` alone when there is no temporal branch."""
    loss = -mi_full
    if mi_reduced is not None:
        loss = loss + tc_weight * temporal_constraint(mi_full, mi_reduced, margin)
    return loss


# ---------------------------------------------------------------- temporal mask
def motion_energy(x: Tensor, two_sided: bool = True) -> Tensor:
    """Per-frame motion energy (N, T) of sequences (N, C, T, V, M): mean over (C, V, M) of
    ``(x[t+1]-x[t])^2`` (0 at the last frame) plus, two-sided, ``(x[t-1]-x[t])^2`` (0 at
    the first frame)."""
    step = x[:, :, 1:] - x[:, :, :-1]                       # (N, C, T-1, V, M)
    fwd = F.pad(step.pow(2), (0, 0, 0, 0, 0, 1))             # frame t: (x[t+1]-x[t])^2
    energy = fwd
    if two_sided:
        energy = energy + F.pad(step.pow(2), (0, 0, 0, 0, 1, 0))  # frame t: (x[t]-x[t-1])^2
    return energy.mean(dim=(1, 3, 4))


def lowest_motion_frames(x: Tensor, keep: int, two_sided: bool = True) -> Tensor:
    """Indices (N, keep) of each sample's ``keep`` frames of least motion, in temporal order
    (top-k of the negated energy, as the official code)."""
    _, idx = torch.topk(-motion_energy(x, two_sided), keep, dim=1)
    return idx.sort(dim=1).values


def mask_sizes(frames: int, mask_frames: int, mode: MaskMode) -> tuple[int, int]:
    """(pool, out) for T-frame inputs: the output keeps ``out`` positions drawn from a pool
    of ``pool`` frames. Motion modes: pool = the ``T - m`` least-moving frames, out =
    ``T - 2m``; ``random``: pool = all ``T`` frames, out = ``T - m``."""
    pool = frames if mode == "random" else frames - mask_frames
    out = pool - mask_frames
    if mask_frames < 0 or out < 1:
        times = "once" if mode == "random" else "twice"
        raise ValueError(f"cannot remove {mask_frames} frames {times} from {frames}-frame "
                         "sequences; lower mask_frames")
    return pool, out


def draw_positions(n: int, k: int, generator: torch.Generator | None = None) -> Tensor:
    """``k`` sorted positions drawn uniformly without replacement from ``range(n)``."""
    return torch.randperm(n, generator=generator)[:k].sort().values


def temporal_mask(x: Tensor, mask_frames: int, mode: MaskMode = "motion_attention_2sided",
                  positions: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """Frame-reduced copy of ``x`` (N, C, T, V, M) (official ``motion_att_temp_mask2`` with
    ``m = mask_frames``): keep each sample's ``T - m`` least-moving frames in temporal
    order, then the same ``T - 2m`` of those positions for every sample (``positions``, or
    drawn once per call). ``motion_attention_1sided`` uses forward differences only;
    ``random`` keeps ``T - m`` frames drawn uniformly (same for the batch)."""
    n, c, t, v, m = x.shape
    pool, out = mask_sizes(t, mask_frames, mode)
    if positions is None:
        positions = draw_positions(pool, out, generator)
    positions = torch.as_tensor(positions, dtype=torch.long, device=x.device)
    if positions.shape != (out,) or positions.min() < 0 or positions.max() >= pool:
        raise ValueError(f"positions must be {out} indices into 0..{pool - 1}")
    if mode == "random":
        return x[:, :, positions]
    if mode not in ("motion_attention_2sided", "motion_attention_1sided"):
        raise ValueError(f"unknown mask mode {mode!r}")
    kept = lowest_motion_frames(x, pool, two_sided=mode == "motion_attention_2sided")
    index = kept[:, positions].view(n, 1, out, 1, 1).expand(n, c, out, v, m)
    return x.gather(2, index)
