"""PGFA's prototype-guided text feature alignment (paper §III-C, Eqs. 6-11, Alg. 2).

Given the L2-normalised test features ``z`` (N, D), their standard zero-shot scores
``s`` (N, K, cosine to the class vectors) and the class vectors ``w`` (K, D):

1. pseudo-label ``yhat_i = argmax_k s_ik``; entropy ``H_i`` of ``softmax_k(s_ik)``
   (temperature 1, natural log);
2. support set ``S_k = {i : yhat_i = k}`` over the whole test set (transductive);
3. keep the ``n_k = floor(alpha * |S_k|)`` members of lowest entropy;
4. prototype ``c_k`` = their mean; ``c_k = w_k`` when ``n_k < 1``;
5. re-score ``cos(z_i, c_k)``.

The "weighted" variant (paper Table VI) uses ``c_k = sum_i P_ik z_i / sum_i P_ik`` over all
test samples with ``P = softmax_k(s)``, no filter.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def softmax_entropy(scores: Tensor) -> Tensor:
    """(N, K) scores -> (N,) entropy (nats) of softmax over K."""
    logp = F.log_softmax(scores, dim=1)
    return -(logp.exp() * logp).sum(dim=1)


def _check(z: Tensor, scores: Tensor, fallback: Tensor, replace: Tensor | None) -> Tensor:
    n, k = scores.shape
    if z.shape[0] != n:
        raise ValueError(f"{z.shape[0]} features for {n} score rows")
    if fallback.shape != (k, z.shape[1]):
        raise ValueError(f"class vectors must be ({k}, {z.shape[1]}), got {tuple(fallback.shape)}")
    if replace is None:
        return torch.ones(k, dtype=torch.bool, device=scores.device)
    if replace.shape != (k,):
        raise ValueError(f"replace mask must have {k} entries, got {tuple(replace.shape)}")
    return replace.to(torch.bool)


def argmax_prototypes(z: Tensor, scores: Tensor, fallback: Tensor, alpha: float,
                      replace: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Entropy-filtered argmax prototypes.

    Returns ``(prototypes (K, D), kept (K,) number of members averaged, 0 = fallback)``.
    ``replace[k] = False`` keeps class k's vector unchanged.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    mask = _check(z, scores, fallback, replace)
    yhat = scores.argmax(dim=1)
    entropy = softmax_entropy(scores)
    protos = fallback.clone().to(z.dtype)
    kept = torch.zeros(scores.shape[1], dtype=torch.long)
    for k in range(scores.shape[1]):
        if not bool(mask[k]):
            continue
        members = torch.nonzero(yhat == k, as_tuple=False).reshape(-1)
        n_keep = math.floor(alpha * members.numel())
        if n_keep < 1:
            continue
        order = torch.argsort(entropy[members], stable=True)[:n_keep]
        protos[k] = z[members[order]].mean(dim=0)
        kept[k] = n_keep
    return protos, kept


def weighted_prototypes(z: Tensor, scores: Tensor, fallback: Tensor,
                        replace: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Probability-weighted prototypes over all samples. Returns ``(prototypes, kept)``
    with ``kept[k]`` = N for replaced classes, 0 otherwise."""
    mask = _check(z, scores, fallback, replace)
    p = torch.softmax(scores, dim=1)
    weighted = (p.T @ z) / p.sum(dim=0).clamp_min(1e-12)[:, None]
    protos = torch.where(mask[:, None], weighted, fallback.to(z.dtype))
    kept = mask.long().cpu() * z.shape[0]
    return protos, kept

