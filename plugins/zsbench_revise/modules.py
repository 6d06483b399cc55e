"""ReViSE building blocks for skeleton features (SynSE repository, ``revise/ReViSE.py``).

Two autoencoders, one per modality. Each has an encoder (a chain of ``Linear + ReLU``), a
decoder (the mirror chain, also ending in ``ReLU``) and a *transformation*
``Linear(code, 50) + Tanh`` into the common space where classes are compared:

* skeleton: 256 -> 100 (no hidden layer; the repository's ``AttAE(256, 100)``),
* text: 1024 -> 512 -> 100 for Sentence-BERT (``VisAE(1024, 512, 100)``), 300 -> 100 for
  word2vec (``AttAE(300, 100)``).

Loss of one batch (all weights 1 in the repository)::

    L = hinge + rec_v + rec_t + MMD
    rec_v = MSE(D_v(h_v), x') + gamma * || d(sum h_v) / dx' ||_2       (contractive term)
    rec_t = MSE(D_t(h_t), t)
    MMD   = mean_ij [K(hv_i, hv_j) + K(ht_i, ht_j) - K(hv_i, ht_j) - K(ht_i, hv_j)],
            K(a, b) = exp(-k ||a - b||^2), k = 32
    hinge = 1/B sum_i sum_c max(0, m + <ev_i, E_c> - <ev_i, et_i>),  m = 0.3

with ``x' = log(1 + x)``, ``h`` the codes, ``e`` the transformation outputs and ``E_c`` the
transformed texts of every seen class, computed without gradient.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


def _relu_chain(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class ReviseAutoencoder(nn.Module):
    """``sizes = [input, *hidden, code]``; returns ``(code, reconstruction, embedding)``.

    The submodule names (``encoder``, ``decoder``, ``transformation``) and layer positions
    match the repository's autoencoders, so their state dicts load unchanged."""

    def __init__(self, sizes: Sequence[int], embed_dim: int = 50) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"autoencoder sizes must be >= 2 positive widths, got {sizes}")
        self.sizes = sizes
        self.encoder = _relu_chain(sizes)
        self.decoder = _relu_chain(sizes[::-1])
        self.transformation = nn.Sequential(nn.Linear(sizes[-1], embed_dim), nn.Tanh())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h = self.encoder(x)
        return h, self.decoder(h), self.transformation(h)

    def embed(self, x: Tensor) -> Tensor:
        return self.transformation(self.encoder(x))


def gaussian_mmd(a: Tensor, b: Tensor, k: float = 32.0) -> Tensor:
    """Biased MMD estimate between two equally sized batches with the kernel
    ``exp(-k ||u - v||^2)``: ``mean(K_aa) + mean(K_bb) - mean(K_ab) - mean(K_ba)``.

    The squared distances are ``|u|^2 + |v|^2 - 2 u.v`` evaluated in float64 (one matrix
    product) and rounded back to the input dtype: the official code's broadcast
    differences (a (2B, 2B, D) tensor: 1.7 GB at its batch of 1024) give the same
    function, and float64 keeps the cancellation of the product form far below float32
    rounding (tests/test_revise.py: closer to the exact value than float32 differences)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"MMD needs two (B, D) batches of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    z = torch.cat([a, b]).double()
    norms = (z * z).sum(dim=1)
    sq = (norms[:, None] + norms[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0).to(a.dtype)
    kern = torch.exp(-k * sq)
    n = a.shape[0]
    return (kern[:n, :n] + kern[n:, n:] - kern[:n, n:] - kern[n:, :n]).mean()


def contractive_term(code: Tensor, x: Tensor, differentiable: bool = False) -> Tensor:
    """``|| d(sum code) / dx ||_2`` over the whole batch (the norm of the gradient of the
    summed code with respect to the input, as the repository computes it; not the
    Frobenius norm of the per-sample Jacobian of the original contractive autoencoder).

    The repository reads the gradient from a separate ``backward()`` without a graph, so
    the term adds to the loss value but never to its gradient: ``differentiable=False``.
    ``x`` must require grad and ``code`` must depend on it."""
    (grad,) = torch.autograd.grad(code.sum(), x, create_graph=differentiable, retain_graph=True)
    value = grad.pow(2).sum().sqrt()
    return value if differentiable else value.detach()


def multiclass_hinge(anchor: Tensor, positive: Tensor, class_emb: Tensor,
                     margin: float = 0.3) -> Tensor:
    """``1/B sum_i sum_c max(0, m + <a_i, E_c> - <a_i, p_i>)``: each anchor's own text
    ``p_i`` must beat every class embedding ``E_c`` by the margin. The sum runs over all
    classes including the true one, which adds the constant ``m`` per sample."""
    scores = anchor @ class_emb.T
    own = (anchor * positive).sum(dim=1, keepdim=True)
    return (margin + scores - own).clamp(min=0).sum() / anchor.shape[0]


class ReviseNet(nn.Module):
    """Both autoencoders. ``visual`` / ``text`` are :class:`ReviseAutoencoder`."""

    def __init__(self, visual_sizes: Sequence[int], text_sizes: Sequence[int],
                 embed_dim: int = 50) -> None:
        super().__init__()
        if visual_sizes[-1] != text_sizes[-1]:
            raise ValueError("the two autoencoders need one code width (MMD compares codes): "
                             f"{visual_sizes[-1]} vs {text_sizes[-1]}")
        self.visual = ReviseAutoencoder(visual_sizes, embed_dim)
        self.text = ReviseAutoencoder(text_sizes, embed_dim)

    def losses(self, x: Tensor, text: Tensor, class_text: Tensor, *, log_input: bool = True,
               gamma: float = 1e-4, contractive_differentiable: bool = False,
               mmd_k: float = 32.0, margin: float = 0.3) -> dict[str, Tensor]:
        """All loss terms of one batch: ``x`` (B, D) raw skeleton features, ``text`` (B, T)
        the texts of the samples' classes, ``class_text`` (C, T) every seen class's text.
        Keys: ``hinge``, ``rec_v`` (with the contractive term), ``contractive``, ``rec_t``,
        ``mmd``, ``total``."""
        mse = nn.functional.mse_loss
        with torch.no_grad():
            class_emb = self.text.embed(class_text)
            xin = torch.log1p(x) if log_input else x
        xin = xin.detach().requires_grad_(gamma != 0)
        h_v, rec_v, e_v = self.visual(xin)
        contr = (contractive_term(h_v, xin, contractive_differentiable) if gamma != 0
                 else h_v.new_zeros(()))
        h_t, rec_t, e_t = self.text(text)
        out = {"hinge": multiclass_hinge(e_v, e_t, class_emb, margin),
               "rec_v": mse(rec_v, xin) + gamma * contr, "contractive": contr,
               "rec_t": mse(rec_t, text), "mmd": gaussian_mmd(h_v, h_t, mmd_k)}
        out["total"] = out["hinge"] + out["rec_v"] + out["rec_t"] + out["mmd"]
        return out

    def visual_embedding(self, x: Tensor, log_input: bool = True) -> Tensor:
        return self.visual.embed(torch.log1p(x) if log_input else x)
