"""SynSE training pieces on top of :mod:`zsbench.nn.vae` (official ``synse_training.py``).

* :func:`build_vae` - skeleton VAE + noun VAE + verb VAE; the noun latent is tied to the
  first half of the skeleton latent, the verb latent to the second half.
* :func:`train_cycle` - one cycle of the cyclic schedule: one random batch per iteration,
  ``loss = R_s + R_n + R_v + k_s KL_s + k_t (KL_n + KL_v) + c (CR_n + CR_v + CR_s)`` with
  the warm-up factors of :func:`zsbench.nn.vae.cycle_warmup` (variant ``synse``).
* :func:`unseen_latents` - ``n`` latents per class from the noun and verb encoders (eval
  mode, sampled once, verb noise drawn first as ``train_classifier`` does), concatenated
  ``[noun, verb]``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from zsbench.nn.vae import CrossAlignedVAE, cycle_warmup, reparameterize

NOUN, VERB = "noun", "verb"


def build_vae(skeleton_dim: int, text_dim: int, latent_size: int,
              per_dim_noise: bool = False) -> CrossAlignedVAE:
    """The six SynSE modules: linear Gaussian encoders, Linear+ReLU decoders, Xavier(0.5)."""
    return CrossAlignedVAE(skeleton_dim, {NOUN: text_dim, VERB: text_dim}, latent_size,
                           per_dim_noise=per_dim_noise, decoder_out_relu=True,
                           reconstruction="mse", kl_reduction="batch_mean", init_gain=0.5)


def normalise_rows(t: Tensor) -> Tensor:
    """Each row divided by its L2 norm (the script's normalisation of the embeddings)."""
    return t / torch.norm(t, dim=1, keepdim=True)


def random_batch(n: int, batch_size: int, generator: torch.Generator) -> Tensor:
    """``next(iter(shuffled loader))``: the first ``batch_size`` of a fresh permutation."""
    return torch.randperm(n, generator=generator)[:batch_size]


def train_cycle(vae: CrossAlignedVAE, optimizer: torch.optim.Optimizer, x: Tensor,
                nouns: Tensor, verbs: Tensor, rows: Tensor, cycle: int, cycle_length: int,
                next_batch: Callable[[], Tensor], generator: torch.Generator | None = None,
                cross_start: int | None = None, text_kl_from_cycle: int = 2,
                on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Iterations ``cycle*P .. (cycle+1)*P - 1``; returns the loss of each iteration.

    ``x`` (N, D) skeleton features, ``nouns``/``verbs`` (K, D_t) class texts, ``rows`` (N,)
    the text row of each sample; ``next_batch()`` gives the sample indices of a batch;
    ``generator`` draws the reparameterisation noise (skeleton, noun, verb);
    ``on_step(iteration, loss)`` is called after every step."""
    losses = []
    vae.train()
    for epoch in range(cycle * cycle_length, (cycle + 1) * cycle_length):
        idx = next_batch()
        r = rows[idx]
        factors = cycle_warmup(epoch, cycle_length, "synse", cross_start=cross_start,
                               text_kl_from_cycle=text_kl_from_cycle)
        # zero-weighted terms are not built: same loss and gradients as with every term
        loss = vae.loss_terms(x[idx], {NOUN: nouns[r], VERB: verbs[r]}, generator,
                              factors).total(factors)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(epoch, losses[-1])
    return losses


@torch.no_grad()
def unseen_latents(vae: CrossAlignedVAE, nouns: Tensor, verbs: Tensor, n_per_class: int,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(n*K, L) latents ``[z_noun, z_verb]`` and labels 0..K-1 (class blocks repeated
    ``n`` times, like ``tensor.repeat([n, 1])``)."""
    was = vae.training
    vae.eval()
    k = nouns.shape[0]
    n_mu, n_lv = vae.text_encoders[NOUN](nouns.repeat(n_per_class, 1))
    v_mu, v_lv = vae.text_encoders[VERB](verbs.repeat(n_per_class, 1))
    kw = dict(per_dim_noise=vae.per_dim_noise, sigma_rule=vae.sigma_rule, generator=generator)
    z_verb = reparameterize(v_mu, v_lv, **kw)
    z_noun = reparameterize(n_mu, n_lv, **kw)
    vae.train(was)
    return torch.cat([z_noun, z_verb], dim=1), torch.arange(k, device=nouns.device).repeat(n_per_class)
