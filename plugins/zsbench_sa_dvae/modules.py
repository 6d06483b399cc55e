"""SA-DVAE model pieces on top of :mod:`zsbench.nn.vae` (official ``model.py``/``train.py``
of pha123661/SA-DVAE).

* :class:`DisentangledVAE` - skeleton encoder whose Gaussian latent is split into a
  semantic-related part (first ``semantic_dim`` dims, aligned with the text latent) and a
  semantic-irrelevant part (last ``irrelevant_dim`` dims); skeleton decoder from both parts;
  text VAE on the semantic size. Encoders/decoders are ``zsbench.nn.vae`` layers.
* :class:`TCDiscriminator` - ``Linear(D, D//4) + ReLU + Linear(D//4, 1) + Sigmoid`` over a
  (semantic, irrelevant) pair, D = semantic_dim + irrelevant_dim.
* :func:`permute_blocks` - the "shuffled" pairs: the batch rows of each block permuted with
  two independent random permutations.
* :func:`pair_discriminator_loss`, :func:`discriminator_loss`, :func:`tc_penalty` - the
  adversarial total-correlation terms.
* :func:`schedule_factors` - loss weights at iteration i of an epoch of L batches.
* :func:`train_epoch` - one pass over the batches (the official ``train_one_cycle``).

Loss of one batch (x skeleton features, t class-text rows; MSE = mean over elements)::

    R   = MSE(x, D_x([z_r, z_v])) + MSE(t, D_y(z_y))
    CA  = MSE(x, D_x([z_y, z_v])) + MSE(t, D_y(z_r))
    L   = R + b_s (KL_r + KL_v) + b_t KL_y + c CA + b_t TC,   TC = mean_i Dis([z_r, z_v]_i)

Discriminator (every ``dis_step``-th iteration, fresh samples)::

    L_pair(a, b) = (BCE(Dis([a, b]), 1) + BCE(Dis(permute(a, b)), 0)) / 2
    L_Dis = (L_pair(z_r, z_v) + L_pair(z_y, z_v')) / 2,   minimised as b_t * L_Dis
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zsbench.nn.vae import (Decoder, GaussianEncoder, WarmupFactors, built_term,
                            cycle_warmup, kl_divergence, reconstruction_loss, reparameterize)

TCForm = Literal["prob", "log_ratio"]
Schedule = Literal["synse_rescaled", "beta_xy"]

#: train.py: the schedule constants are written for 1700-iteration cycles (SynSE) and
#: rescaled to one epoch of L batches: KL ramp from L*1000/1700 with slope 0.1/(L*3000/1700)
CYCLE_CONSTANT = 1700


class TCDiscriminator(Decoder):
    """Probability that a (semantic, irrelevant) latent pair is a joint sample;
    ``net`` = Linear(D, D//4), ReLU, Linear(D//4, 1) (Xavier gain 0.5, zero bias)."""

    def __init__(self, latent_dim: int, init_gain: float = 0.5) -> None:
        if latent_dim < 4:
            raise ValueError(f"the discriminator's hidden width is (latent sizes)//4; "
                             f"{latent_dim} total latent dims leave none")
        super().__init__(latent_dim, 1, hidden=[latent_dim // 4], out_relu=False,
                         init_gain=init_gain)

    def logits(self, z: Tensor) -> Tensor:
        return self.net(z)

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.net(z))


def permute_blocks(a: Tensor, b: Tensor, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
    """``(a[p1], b[p2])`` with two independent permutations of the batch rows (drawn in
    that order): whole blocks move, the dimensions of a row stay together."""
    n = a.shape[0]
    p1 = torch.randperm(n, generator=generator).to(a.device)
    p2 = torch.randperm(n, generator=generator).to(b.device)
    return a[p1], b[p2]


def pair_discriminator_loss(disc: TCDiscriminator, a: Tensor, b: Tensor,
                            generator: torch.Generator | None = None) -> Tensor:
    """``(BCE(Dis([a, b]), 1) + BCE(Dis([a[p1], b[p2]]), 0)) / 2`` (BCE = batch mean)."""
    joint = disc(torch.cat([a, b], dim=1))
    pa, pb = permute_blocks(a, b, generator)
    shuffled = disc(torch.cat([pa, pb], dim=1))
    return 0.5 * (F.binary_cross_entropy(joint, torch.ones_like(joint))
                  + F.binary_cross_entropy(shuffled, torch.zeros_like(shuffled)))


def tc_penalty(disc: TCDiscriminator, z_r: Tensor, z_v: Tensor, form: TCForm = "prob") -> Tensor:
    """Generator-side total-correlation term over joint pairs: ``prob`` = mean Dis(z) (the
    code); ``log_ratio`` = mean log(Dis / (1 - Dis)) (FactorVAE's density-ratio estimate)."""
    z = torch.cat([z_r, z_v], dim=1)
    if form == "prob":
        return disc(z).mean()
    if form == "log_ratio":
        return disc.logits(z).mean()
    raise ValueError(f"unknown tc_form {form!r} (prob, log_ratio)")


@dataclass
class Posteriors:
    """Encoder outputs of a batch: semantic (r), irrelevant (v) and text (y) Gaussians."""

    mu_r: Tensor
    logvar_r: Tensor
    mu_v: Tensor
    logvar_v: Tensor
    mu_y: Tensor
    logvar_y: Tensor

    def detached(self) -> "Posteriors":
        return Posteriors(*(t.detach() for t in (self.mu_r, self.logvar_r, self.mu_v,
                                                   self.logvar_v, self.mu_y, self.logvar_y)))


@dataclass
class DVAETerms:
    """The terms of one batch (scalars) and the samples they used."""

    recon_skeleton: Tensor
    recon_text: Tensor
    kl_semantic: Tensor | None       # None: not built (its warm-up factor was 0)
    kl_irrelevant: Tensor | None
    kl_text: Tensor | None
    cross_skeleton: Tensor | None    # MSE(x, D_x([z_y, z_v]))
    cross_text: Tensor | None        # MSE(t, D_y(z_r))
    z_r: Tensor
    z_v: Tensor
    z_y: Tensor
    post: Posteriors

    def _term(self, name: str) -> Tensor:
        return built_term(getattr(self, name), name)

    def total(self, f: WarmupFactors, tc: Tensor | None = None) -> Tensor:
        """``R_x + R_y + b_s (KL_r + KL_v) + b_t KL_y + c (CR_x + CR_y) + b_t TC``; a term
        whose factor is 0 is left out, which adds exact zeros to nothing: same value and
        gradients as adding it (tests/test_sa_dvae.py)."""
        loss = self.recon_skeleton + self.recon_text
        if f.beta_skeleton:
            loss = loss + f.beta_skeleton * (self._term("kl_semantic") + self._term("kl_irrelevant"))
        if f.beta_text:
            loss = loss + f.beta_text * self._term("kl_text")
        if f.cross:
            loss = loss + f.cross * (self._term("cross_skeleton") + self._term("cross_text"))
        if tc is not None and f.beta_text:
            loss = loss + f.beta_text * tc
        return loss

    def as_floats(self) -> dict[str, float]:
        names = ("recon_skeleton", "recon_text", "kl_semantic", "kl_irrelevant", "kl_text",
                 "cross_skeleton", "cross_text")
        return {n: float(self._term(n).detach()) for n in names}


class DisentangledVAE(nn.Module):
    """Skeleton VAE with a semantic/irrelevant latent split and a text VAE on the semantic
    size. Submodules: ``skeleton_encoder`` (D_x -> L_r + L_v), ``skeleton_decoder``
    (L_r + L_v -> D_x), ``text_encoder`` (D_y -> L_r), ``text_decoder`` (L_r -> D_y)."""

    def __init__(self, skeleton_dim: int, text_dim: int, semantic_dim: int, irrelevant_dim: int,
                 *, per_dim_noise: bool = False, decoder_out_relu: bool = True,
                 init_gain: float = 0.5) -> None:
        super().__init__()
        if semantic_dim < 1 or irrelevant_dim < 0:
            raise ValueError("semantic_dim must be >= 1 and irrelevant_dim >= 0")
        self.semantic_dim, self.irrelevant_dim = int(semantic_dim), int(irrelevant_dim)
        self.latent_dim = self.semantic_dim + self.irrelevant_dim
        self.per_dim_noise = per_dim_noise
        self.skeleton_encoder = GaussianEncoder(skeleton_dim, self.latent_dim, init_gain=init_gain)
        self.skeleton_decoder = Decoder(self.latent_dim, skeleton_dim, out_relu=decoder_out_relu,
                                        init_gain=init_gain)
        self.text_encoder = GaussianEncoder(text_dim, self.semantic_dim, init_gain=init_gain)
        self.text_decoder = Decoder(self.semantic_dim, text_dim, out_relu=decoder_out_relu,
                                    init_gain=init_gain)

    def sample(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return reparameterize(mu, logvar, per_dim_noise=self.per_dim_noise, generator=generator)

    def encode_skeleton_parts(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(mu_r, logvar_r, mu_v, logvar_v): the first L_r dims and the last L_v dims."""
        mu, lv = self.skeleton_encoder(x)
        r = self.semantic_dim
        return mu[:, :r], lv[:, :r], mu[:, r:], lv[:, r:]

    def encode_skeleton(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The semantic part only (what the classifiers read)."""
        return self.encode_skeleton_parts(x)[:2]

    @torch.no_grad()
    def skeleton_mean(self, x: Tensor) -> Tensor:
        return self.encode_skeleton_parts(x)[0]

    def terms(self, x: Tensor, t: Tensor, generator: torch.Generator | None = None,
              factors: WarmupFactors | None = None) -> DVAETerms:
        """The VAE terms of a batch; noise drawn z_r, z_v, z_y in that order (train.py).
        With ``factors``, the terms whose factor is 0 are not built (None): the training
        loop weights them by 0, so skipping them changes no value or gradient."""
        cross = factors is None or bool(factors.cross)
        kl_s = factors is None or bool(factors.beta_skeleton)
        kl_t = factors is None or bool(factors.beta_text)
        mu_r, lv_r, mu_v, lv_v = self.encode_skeleton_parts(x)
        z_r = self.sample(mu_r, lv_r, generator)
        z_v = self.sample(mu_v, lv_v, generator)
        recon_s = reconstruction_loss(x, self.skeleton_decoder(torch.cat([z_r, z_v], dim=1)))
        mu_y, lv_y = self.text_encoder(t)
        z_y = self.sample(mu_y, lv_y, generator)
        recon_t = reconstruction_loss(t, self.text_decoder(z_y))
        # built in this order either way (autograd then sums each gradient in one order)
        cross_s = (reconstruction_loss(x, self.skeleton_decoder(torch.cat([z_y, z_v], dim=1)))
                   if cross else None)
        cross_t = reconstruction_loss(t, self.text_decoder(z_r)) if cross else None
        return DVAETerms(recon_skeleton=recon_s, recon_text=recon_t,
                         kl_semantic=kl_divergence(mu_r, lv_r) if kl_s else None,
                         kl_irrelevant=kl_divergence(mu_v, lv_v) if kl_s else None,
                         kl_text=kl_divergence(mu_y, lv_y) if kl_t else None,
                         cross_skeleton=cross_s, cross_text=cross_t, z_r=z_r, z_v=z_v, z_y=z_y,
                         post=Posteriors(mu_r, lv_r, mu_v, lv_v, mu_y, lv_y))

    def discriminator_loss(self, disc: TCDiscriminator, post: Posteriors, text_pairs: bool = True,
                           generator: torch.Generator | None = None) -> Tensor:
        """Fresh samples of the posteriors (z_r, z_v, then z_y, z_v' - the code's order) and
        the mean of the pair losses: skeleton pair, and (text latent, own irrelevant latent)
        pair when ``text_pairs``."""
        z_r = self.sample(post.mu_r, post.logvar_r, generator)
        z_v = self.sample(post.mu_v, post.logvar_v, generator)
        loss = pair_discriminator_loss(disc, z_r, z_v, generator)
        if not text_pairs:
            return loss
        z_y = self.sample(post.mu_y, post.logvar_y, generator)
        z_v2 = self.sample(post.mu_v, post.logvar_v, generator)
        return 0.5 * (loss + pair_discriminator_loss(disc, z_y, z_v2, generator))

    @torch.no_grad()
    def text_latents(self, texts: Mapping[str, Tensor], n_per_class: int,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n_per_class`` latents per class text (rows repeated as whole blocks, encoded in
        eval mode, sampled once); ``texts`` holds one (K, D_y) matrix. Returns (z, labels)."""
        if len(texts) != 1:
            raise ValueError("DisentangledVAE has one text modality")
        rows = next(iter(texts.values()))
        was = self.training
        self.eval()
        mu, lv = self.text_encoder(rows.repeat(n_per_class, 1))
        z = self.sample(mu, lv, generator)
        self.train(was)
        return z, torch.arange(rows.shape[0], device=rows.device).repeat(n_per_class)


# --------------------------------------------------------------------------------------
# Schedule and training
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleParams:
    """``synse_rescaled`` (default, train.py): SynSE's cyclic factors rescaled to an epoch;
    ``beta_xy`` (``--beta_x/--beta_y``): linear from a third of the epoch."""

    kind: Schedule = "synse_rescaled"
    text_kl_from_epoch: int = 2
    cross_start: float = 0.8
    beta_x: float = 0.0
    beta_y: float = 0.0


def schedule_factors(i: int, n_batches: int, epoch: int, p: ScheduleParams = ScheduleParams()
                     ) -> WarmupFactors:
    """Weights at iteration ``i`` (0-based) of epoch ``epoch`` with ``n_batches`` = L batches.

    ``synse_rescaled``: ``b_s = max(0, 0.1 (i - L*1000/1700) / (L*3000/1700))``,
    ``b_t = max(0, 0.1 (i - floor(0.8 L)) / (L*3000/1700)) [epoch >= 2]``,
    ``c = [i > floor(0.8 L)]``. ``beta_xy``: ``b_s = b_t = 0`` for ``i <= floor(L/3)``, then
    ``1.5 (i/L - 1/3) beta_x`` and ``... beta_y``; ``c`` as above."""
    L = int(n_batches)
    cross_at = int(p.cross_start * L)
    if p.kind == "beta_xy":
        ramp = 0.0 if i <= int(L / 3) else 1.5 * (float(i) / L - 1.0 / 3.0)
        return WarmupFactors(beta_skeleton=ramp * p.beta_x, beta_text=ramp * p.beta_y,
                             cross=1.0 if i > cross_at else 0.0, align=0.0)
    scale = L / CYCLE_CONSTANT
    return cycle_warmup(epoch * L + i, L, "synse", cross_start=cross_at, kl_start=scale * 1000,
                        kl_slope=0.1 / (scale * 3000), text_kl_from_cycle=p.text_kl_from_epoch)


def train_epoch(model: DisentangledVAE, disc: TCDiscriminator | None, opt: torch.optim.Optimizer,
                dis_opt: torch.optim.Optimizer | None, x: Tensor, t: Tensor,
                batches: Sequence[Tensor], epoch: int, *, schedule: ScheduleParams = ScheduleParams(),
                dis_step: int = 10, tc_form: TCForm = "prob", dis_text_pairs: bool = True,
                generator: torch.Generator | None = None,
                on_step: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """One epoch (``train_one_cycle``): for each batch ``idx`` of ``batches`` (x[idx],
    t[idx]), the VAE terms; every ``dis_step``-th iteration (counter restarting each epoch)
    one discriminator update on ``b_t * L_Dis`` (Adam step taken even when ``b_t = 0``);
    then the VAE update on ``L`` with the TC term (``disc`` None = no discriminator and no
    TC term). Returns the last iteration's terms."""
    model.train()
    n_batches = len(batches)
    last: dict[str, float] = {}
    for i, idx in enumerate(batches):
        f = schedule_factors(i, n_batches, epoch, schedule)
        final = i == n_batches - 1            # every term, for the record
        terms = model.terms(x[idx], t[idx], generator, None if final else f)
        tc = None
        if disc is not None:
            if (i + 1) % dis_step == 0:
                assert dis_opt is not None
                disc.train()
                l_dis = model.discriminator_loss(disc, terms.post.detached(), dis_text_pairs, generator)
                dis_opt.zero_grad()
                (f.beta_text * l_dis).backward()
                dis_opt.step()
                last["dis_loss"] = float(l_dis.detach())
            disc.eval()
            if f.beta_text or final:          # weighted by b_t: not built when it is 0
                tc = tc_penalty(disc, terms.z_r, terms.z_v, tc_form)
        loss = terms.total(f, tc)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if on_step is not None:
            on_step(i, float(loss.detach()))
        if final:
            last.update({"loss": float(loss.detach()), **terms.as_floats()})
            if tc is not None:
                last["tc"] = float(tc.detach())
    return last


def epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A shuffled loader's batches: one permutation, cut into ``batch_size`` chunks (the last
    partial batch kept)."""
    order = torch.randperm(n, generator=generator)
    return [order[s:s + batch_size] for s in range(0, n, batch_size)]
