"""Skeleton-text contrastive losses shared by several methods (PGFA, DVTA).

The central piece is the *KL multi-positive* loss: for a batch of B skeleton samples and
the B text features of their classes, the (B, B) similarity matrix is turned into a
distribution per row (skeleton -> text) and per column (text -> skeleton); each is pulled
towards a target distribution that spreads its mass over every batch entry of the same
class (several samples of one class are all positives of each other). The loss averages
the two directions:

    L = 1/2 [ 1/B sum_i KL(q_i || p^{x2t}_i) + 1/B sum_i KL(q_i || p^{t2x}_i) ]

with ``G_ij = 1[y_i = y_j]`` and ``q_i = softmax_j(sharpness * G_ij)`` (the official
PGFA/DVTA code use sharpness 10, a softened multi-hot), or the exact ``G_i / sum_j G_ij``
when ``sharpness`` is None (the papers' 1/0 target). ``G`` is symmetric, so one target
serves both directions.

Functions take *logits* (already divided by a temperature) or log-probabilities (for
methods that fuse several distributions before the loss); :class:`Temperature` is the
learnable or fixed scale, :class:`KLMultiPositiveLoss` puts both together.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Temperature", "KLMultiPositiveLoss", "multi_positive_targets", "kl_to_targets",
    "kl_multi_positive", "kl_multi_positive_from_log_probs", "log_softmax_both",
    "diagonal_nce_from_log_probs", "cosine_similarity_matrix",
]


def cosine_similarity_matrix(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """(Na, D) x (Nb, D) -> (Na, Nb) cosine similarities."""
    return F.normalize(a, dim=-1, eps=eps) @ F.normalize(b, dim=-1, eps=eps).T


def multi_positive_targets(labels: Tensor, sharpness: float | None = 10.0,
                           dtype: torch.dtype = torch.float32) -> Tensor:
    """(B,) labels -> (B, B) target rows q_i over the batch.

    ``sharpness=None``: q_ij = G_ij / sum_j G_ij (hard multi-hot, paper). Otherwise
    q_i = softmax_j(sharpness * G_ij) (the official code's smoothed target).
    """
    labels = labels.reshape(-1)
    same = (labels[:, None] == labels[None, :]).to(dtype)
    if sharpness is None:
        return same / same.sum(dim=1, keepdim=True)
    return torch.softmax(sharpness * same, dim=1)


def kl_to_targets(log_probs: Tensor, targets: Tensor) -> Tensor:
    """Mean over rows of KL(targets_i || exp(log_probs_i)); zero targets contribute 0."""
    if log_probs.shape != targets.shape:
        raise ValueError(f"log_probs {tuple(log_probs.shape)} and targets "
                         f"{tuple(targets.shape)} differ in shape")
    return F.kl_div(log_probs, targets.to(log_probs.dtype), reduction="batchmean")


def log_softmax_both(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(B, B) skeleton-by-text logits -> (x2t, t2x) log-probabilities, both laid out with
    one row per *query*: x2t[i, j] = log p(text j | skeleton i), t2x[i, j] =
    log p(skeleton j | text i)."""
    return F.log_softmax(logits, dim=1), F.log_softmax(logits.T, dim=1)


def kl_multi_positive_from_log_probs(x2t_log_probs: Tensor, t2x_log_probs: Tensor,
                                     labels: Tensor, sharpness: float | None = 10.0) -> Tensor:
    """The two-direction KL multi-positive loss from per-direction log-probabilities
    (row i of each = the distribution of query i, see :func:`log_softmax_both`)."""
    b = x2t_log_probs.shape[0]
    if x2t_log_probs.shape != (b, b) or t2x_log_probs.shape != (b, b):
        raise ValueError("KL multi-positive loss needs square (B, B) log-probabilities, got "
                         f"{tuple(x2t_log_probs.shape)} and {tuple(t2x_log_probs.shape)}")
    if labels.reshape(-1).shape[0] != b:
        raise ValueError(f"{labels.numel()} labels for a batch of {b}")
    q = multi_positive_targets(labels.to(x2t_log_probs.device), sharpness, x2t_log_probs.dtype)
    return 0.5 * (kl_to_targets(x2t_log_probs, q) + kl_to_targets(t2x_log_probs, q))


def kl_multi_positive(logits: Tensor, labels: Tensor, sharpness: float | None = 10.0) -> Tensor:
    """KL multi-positive loss of a (B, B) logit matrix (row i = skeleton i, column j =
    text of sample j's class), averaged over both directions."""
    x2t, t2x = log_softmax_both(logits)
    return kl_multi_positive_from_log_probs(x2t, t2x, labels, sharpness)


def diagonal_nce_from_log_probs(x2t_log_probs: Tensor, t2x_log_probs: Tensor | None = None) -> Tensor:
    """Cross-entropy with the diagonal as the only positive (sample i <-> text i).

    With both directions this is the symmetric InfoNCE loss (CLIP-style mean of the two);
    with ``t2x_log_probs=None`` it is the one-directional skeleton->text softmax CE.
    """
    loss = -torch.diagonal(x2t_log_probs).mean()
    if t2x_log_probs is None:
        return loss
    return 0.5 * (loss - torch.diagonal(t2x_log_probs).mean())


class Temperature(nn.Module):
    """Scales similarities into logits: ``logits = sim / tau``.

    ``parametrization="log_scale"`` stores ``s = log(1/tau)`` and multiplies by ``exp(s)``
    (CLIP / PGFA); ``"divisor"`` stores ``tau`` itself and divides (DVTA). With
    ``learnable=False`` the value is a buffer (moves with ``.to()``, never trained).
    """

    def __init__(self, tau: float = 0.07, learnable: bool = True,
                 parametrization: Literal["log_scale", "divisor"] = "log_scale") -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"temperature must be positive, got {tau}")
        if parametrization not in ("log_scale", "divisor"):
            raise ValueError(f"unknown temperature parametrization {parametrization!r}")
        self.parametrization = parametrization
        init = math.log(1.0 / tau) if parametrization == "log_scale" else tau
        value = torch.tensor(float(init))
        if learnable:
            self.value = nn.Parameter(value)
        else:
            self.register_buffer("value", value)

    @property
    def learnable(self) -> bool:
        return isinstance(self.value, nn.Parameter)

    @property
    def tau(self) -> float:
        v = float(self.value.detach())
        return math.exp(-v) if self.parametrization == "log_scale" else v

    def forward(self, similarity: Tensor) -> Tensor:
        if self.parametrization == "log_scale":
            return similarity * self.value.exp()
        return similarity / self.value

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, learnable={self.learnable}, {self.parametrization}"


class KLMultiPositiveLoss(nn.Module):
    """Cosine similarity -> temperature -> two-direction KL multi-positive loss.

    ``forward(skeleton (B, D), text (B, D), labels (B,))``: ``text[j]`` is the text
    feature of sample j's class (repeated when classes repeat).
    """

    def __init__(self, tau: float = 0.07, learnable: bool = True,
                 sharpness: float | None = 10.0,
                 parametrization: Literal["log_scale", "divisor"] = "log_scale") -> None:
        super().__init__()
        self.temperature = Temperature(tau, learnable, parametrization)
        self.sharpness = sharpness

    def forward(self, skeleton: Tensor, text: Tensor, labels: Tensor) -> Tensor:
        logits = self.temperature(cosine_similarity_matrix(skeleton, text))
        return kl_multi_positive(logits, labels, self.sharpness)
