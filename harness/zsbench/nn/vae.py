"""Cross-aligned VAEs (CADA-VAE family): one skeleton VAE and N text VAEs that share a
latent space, as used by CADA-VAE, SynSE (verb + noun text VAEs) and MSF (one text VAE
over fused texts).

Imports torch; nothing else in ``zsbench`` imports this module at import time.

Pieces (all usable on their own):

* :class:`GaussianEncoder` - ``x -> (mu, logvar)``; optional hidden layers (Linear+ReLU),
  then two linear heads. The skeleton versions (SynSE repo, MSF) have no hidden layer.
* :class:`Decoder` - ``z -> x_hat``; hidden Linear+ReLU layers, then a Linear, optionally
  followed by ReLU (the skeleton versions end in ReLU, the original image CADA-VAE not).
* :func:`init_linear_` - Xavier-uniform (gain 0.5) weights, zero biases: the init of all
  these codebases.
* :func:`reparameterize` - ``z = mu + eps * sigma``; by default ONE scalar eps per sample
  broadcast over all latent dimensions (what the official code does); ``per_dim_noise``
  draws a full-size eps (the textbook VAE). ``sigma_rule="std"``: sigma = exp(logvar/2);
  ``"exp_logvar"``: sigma = exp(logvar) (original CADA-VAE quirk).
* :func:`kl_divergence` - KL(q || N(0, I)) = 1/2 sum(-1 - logvar + mu^2 + exp(logvar)),
  summed over dimensions and averaged over the batch (``"batch_mean"``, SynSE/MSF code) or
  summed (``"sum"``, original CADA-VAE). Returned positive (the official code returns the
  negative and subtracts it).
* :func:`wasserstein_distance` - 2-Wasserstein distance between diagonal Gaussians as the
  code computes it: sum over samples of sqrt(||mu1 - mu2||^2 + ||s1 - s2||^2) with
  s = sqrt(exp(logvar)).
* :func:`reconstruction_loss` - ``"mse"`` (mean over all elements; SynSE/MSF),
  ``"l1_sum"`` / ``"l2_sum"`` (sum over all elements; original CADA-VAE 'l1' / 'l2').
* Warm-up factors at a given iteration/epoch: :func:`cycle_warmup` (the skeleton scripts'
  cyclic schedule, variants ``"cada_vae"`` and ``"synse"`` (also MSF)) and
  :func:`cadavae_warmup` (original CADA-VAE linear ramps). Both return
  :class:`WarmupFactors`.
* :class:`CrossAlignedVAE` - the model: skeleton VAE with latent size L = sum of the text
  latent sizes; text VAE m owns the slice of the skeleton latent in declaration order
  (SynSE: noun = first half, verb = second half). :meth:`CrossAlignedVAE.loss_terms`
  computes the terms for a batch (those a given warm-up weights by 0 left out),
  :meth:`VAELossTerms.total` weights them.
* :class:`LatentClassifier` and :func:`train_latent_classifier` - the unseen-class
  classifier trained on latents generated from class texts (Linear [+ ReLU on the logits,
  a quirk of the skeleton code]; Adam, full batch).

Loss as assembled by :meth:`VAELossTerms.total` (R = reconstruction, CR = cross)::

    L = R(s, D_s(z_s)) + sum_m R(t_m, D_m(z_m))
      + beta_skeleton * KL_s + beta_text * sum_m KL_m
      + cross * ( R(s, D_s(concat_m z_m)) + sum_m R(t_m, D_m(z_s[slice_m])) )
      + align * sum_m W(q_s[slice_m], q_m)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GaussianEncoder", "Decoder", "init_linear_", "reparameterize", "kl_divergence",
    "wasserstein_distance", "reconstruction_loss", "WarmupFactors", "linear_ramp",
    "cycle_warmup", "cadavae_warmup", "CrossAlignedVAE", "VAELossTerms", "LatentClassifier",
    "train_latent_classifier", "repeat_class_rows", "built_term",
]

SigmaRule = Literal["std", "exp_logvar"]
ReconKind = Literal["mse", "l1_sum", "l2_sum"]
KLReduction = Literal["batch_mean", "sum"]


# --------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------
def init_linear_(module: nn.Module, gain: float = 0.5) -> nn.Module:
    """Xavier-uniform weights (``gain``) and zero biases for every Linear in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _mlp(sizes: Sequence[int], final_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or final_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """``x (B, in_dim) -> (mu, logvar)``, each (B, latent_dim).

    ``hidden`` sizes add Linear+ReLU layers before the two linear heads (``body``)."""

    def __init__(self, in_dim: int, latent_dim: int, hidden: Sequence[int] = (),
                 init_gain: float = 0.5) -> None:
        super().__init__()
        sizes = [int(in_dim), *[int(h) for h in hidden]]
        self.in_dim, self.latent_dim = int(in_dim), int(latent_dim)
        self.body = _mlp(sizes, final_relu=True) if hidden else nn.Sequential()
        self.mu = nn.Linear(sizes[-1], latent_dim)
        self.logvar = nn.Linear(sizes[-1], latent_dim)
        init_linear_(self, init_gain)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """``z (B, latent_dim) -> (B, out_dim)``: hidden Linear+ReLU layers, a final Linear,
    then ReLU when ``out_relu`` (skeleton-code decoders) - ``net`` is the Sequential."""

    def __init__(self, latent_dim: int, out_dim: int, hidden: Sequence[int] = (),
                 out_relu: bool = True, init_gain: float = 0.5) -> None:
        super().__init__()
        self.latent_dim, self.out_dim = int(latent_dim), int(out_dim)
        self.net = _mlp([int(latent_dim), *[int(h) for h in hidden], int(out_dim)], out_relu)
        init_linear_(self, init_gain)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


# --------------------------------------------------------------------------------------
# Functional pieces
# --------------------------------------------------------------------------------------
def reparameterize(mu: Tensor, logvar: Tensor, *, per_dim_noise: bool = False,
                   sigma_rule: SigmaRule = "std", generator: torch.Generator | None = None,
                   eps: Tensor | None = None) -> Tensor:
    """``z = mu + eps * sigma``.

    Default: one eps ~ N(0, 1) per sample (drawn as a (B, 1) tensor on the CPU, from
    ``generator`` or the global torch RNG, like the official code) broadcast over the
    latent dimensions; ``per_dim_noise=True`` draws (B, L). ``eps`` given = use it
    (broadcastable to ``mu``)."""
    sigma = torch.exp(logvar) if sigma_rule == "exp_logvar" else torch.exp(0.5 * logvar)
    if eps is None:
        shape = tuple(mu.shape) if per_dim_noise else (mu.shape[0], 1)
        eps = torch.randn(shape, generator=generator, dtype=mu.dtype)
    eps = eps.to(device=mu.device, dtype=mu.dtype)
    return mu + eps.expand_as(sigma) * sigma


def kl_divergence(mu: Tensor, logvar: Tensor, reduction: KLReduction = "batch_mean") -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over dimensions; ``batch_mean`` divides
    the batch sum by B, ``sum`` does not. Non-negative."""
    kl = 0.5 * torch.sum(-1.0 - logvar + mu.pow(2) + logvar.exp())
    return kl / mu.shape[0] if reduction == "batch_mean" else kl


def wasserstein_distance(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """Sum over samples of sqrt(||mu1 - mu2||^2 + ||sqrt(e^lv1) - sqrt(e^lv2)||^2)."""
    d_mu = torch.sum((mu1 - mu2) ** 2, dim=1)
    d_sd = torch.sum((torch.sqrt(logvar1.exp()) - torch.sqrt(logvar2.exp())) ** 2, dim=1)
    return torch.sum(torch.sqrt(d_mu + d_sd))


def reconstruction_loss(target: Tensor, recon: Tensor, kind: ReconKind = "mse") -> Tensor:
    """``mse``: mean squared error over all elements; ``l1_sum`` / ``l2_sum``: summed
    absolute / squared errors (original CADA-VAE, ``size_average=False``)."""
    if kind == "mse":
        return F.mse_loss(recon, target)
    if kind == "l1_sum":
        return F.l1_loss(recon, target, reduction="sum")
    if kind == "l2_sum":
        return F.mse_loss(recon, target, reduction="sum")
    raise ValueError(f"unknown reconstruction loss {kind!r} (mse, l1_sum, l2_sum)")


# --------------------------------------------------------------------------------------
# Warm-up schedules
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WarmupFactors:
    """Loss weights at one iteration/epoch."""

    beta_skeleton: float
    beta_text: float
    cross: float
    align: float


def linear_ramp(epoch: float, factor: float, start: float, end: float) -> float:
    """``factor * (epoch - start) / (end - start)`` clipped to [0, factor]."""
    f = factor * (epoch - start) / (end - start)
    return float(min(max(f, 0.0), factor))


def cycle_warmup(epoch: int, cycle_length: int, variant: Literal["cada_vae", "synse"] = "synse",
                 *, cross_start: int | None = None, kl_start: int = 1000,
                 kl_slope: float = 0.1 / 3000, text_kl_from_cycle: int = 2,
                 align_weight: float = 0.0) -> WarmupFactors:
    """The skeleton scripts' cyclic schedule at global iteration ``epoch``.

    Cycle ``k = epoch // cycle_length`` starts at ``s0 = k * cycle_length``; ``E_cr`` =
    ``cross_start`` or (1400 if cycle_length == 1700 else 1500), as the scripts hard-code.

    * ``beta_skeleton = max(0, 0.1 * (epoch - s0 - 1000) / 3000)``
    * ``cross = 1 if epoch > s0 + E_cr else 0``
    * ``beta_text``: variant ``cada_vae`` (SynSE repo's CADA-VAE script):
      ``beta_skeleton * [epoch > s0 + E_cr]``; variant ``synse`` (SynSE and MSF):
      ``max(0, 0.1 * (epoch - s0 - E_cr) / 3000) * [k >= text_kl_from_cycle]``
      (the scripts' ``cycle_num > 1``).
    * ``align = align_weight`` (0 in all three scripts).
    """
    if cycle_length < 1:
        raise ValueError("cycle_length must be >= 1")
    k = epoch // cycle_length
    s0 = k * cycle_length
    e_cr = cross_start if cross_start is not None else (1400 if cycle_length == 1700 else 1500)
    beta_s = max(kl_slope * (epoch - (s0 + kl_start)), 0.0)
    on = 1.0 if epoch > s0 + e_cr else 0.0
    if variant == "cada_vae":
        beta_t = beta_s * on
    elif variant == "synse":
        beta_t = max(kl_slope * (epoch - (s0 + e_cr)), 0.0) * (1.0 if k >= text_kl_from_cycle else 0.0)
    else:
        raise ValueError(f"unknown cycle_warmup variant {variant!r} (cada_vae, synse)")
    return WarmupFactors(beta_skeleton=float(beta_s), beta_text=float(beta_t), cross=on,
                         align=float(align_weight))


def cadavae_warmup(epoch: float, beta: tuple[float, float, float] = (0.25, 0, 93),
                   cross: tuple[float, float, float] = (2.37, 21, 75),
                   align: tuple[float, float, float] = (8.13, 6, 22)) -> WarmupFactors:
    """Original CADA-VAE (``single_experiment.py``) ramps, each ``(factor, start, end)``;
    one beta weights both KL terms."""
    b = linear_ramp(epoch, *beta)
    return WarmupFactors(beta_skeleton=b, beta_text=b, cross=linear_ramp(epoch, *cross),
                         align=linear_ramp(epoch, *align))


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
def built_term(value: Tensor | None, name: str) -> Tensor:
    """A loss term that is about to be weighted; None means the terms were built with a
    zero factor for it (``loss_terms(..., factors)``), which is a caller's error here."""
    if value is None:
        raise ValueError(f"loss term {name} was not built (the terms were built with a zero "
                         "factor for it) but is weighted now")
    return value


@dataclass
class VAELossTerms:
    """The loss terms of one batch (scalars). Dict terms are keyed by text modality.
    A term built with a zero warm-up factor left out is None (skeleton terms) or absent
    (dict terms): see :meth:`CrossAlignedVAE.loss_terms`."""

    recon_skeleton: Tensor
    recon_text: dict[str, Tensor]
    kl_skeleton: Tensor | None
    kl_text: dict[str, Tensor]
    cross_skeleton: Tensor | None    # R(s, D_s(concat z_text))
    cross_text: dict[str, Tensor]    # R(t_m, D_m(z_s[slice_m]))
    align: dict[str, Tensor]         # W(q_s[slice_m], q_m)
    latents: dict[str, Tensor] = field(default_factory=dict)

    def _term(self, name: str) -> Tensor:
        return built_term(getattr(self, name), name)

    def _terms(self, name: str) -> list[Tensor]:
        d = getattr(self, name)
        if set(d) != set(self.recon_text):
            raise ValueError(f"loss terms {name} were not built for every text modality "
                             "(loss_terms() was given a zero factor for them) but are weighted now")
        return list(d.values())

    def total(self, f: WarmupFactors) -> Tensor:
        """The weighted sum (module docstring); a term whose factor is 0 is left out, which
        changes no value or gradient (adding it would add exact zeros; tests/test_vae.py)."""
        loss = self.recon_skeleton + sum(self.recon_text.values())
        if f.beta_skeleton:
            loss = loss + f.beta_skeleton * self._term("kl_skeleton")
        if f.beta_text:
            loss = loss + f.beta_text * sum(self._terms("kl_text"))
        if f.cross:
            loss = loss + f.cross * (self._term("cross_skeleton") + sum(self._terms("cross_text")))
        if f.align:
            loss = loss + f.align * sum(self._terms("align"))
        return loss

    def as_floats(self) -> dict[str, float]:
        out = {name: float(self._term(name).detach())
               for name in ("recon_skeleton", "kl_skeleton", "cross_skeleton")}
        for name, field_name in (("recon", "recon_text"), ("kl", "kl_text"),
                                 ("cross", "cross_text"), ("align", "align")):
            self._terms(field_name)
            out.update({f"{name}_{k}": float(v.detach()) for k, v in getattr(self, field_name).items()})
        return out


class CrossAlignedVAE(nn.Module):
    """Skeleton VAE + one VAE per text modality over a shared latent space.

    ``text_dims`` maps modality name -> input dimension, in latent-slice order.
    ``text_latent_dims`` maps name -> latent size (default: ``latent_dim`` split equally,
    e.g. SynSE's L/2 for noun and verb; with one modality the text latent is L).
    The skeleton latent size is the sum of the text latent sizes.

    Submodules: ``skeleton_encoder``, ``skeleton_decoder``, ``text_encoders[name]``,
    ``text_decoders[name]``.
    """

    def __init__(self, skeleton_dim: int, text_dims: Mapping[str, int], latent_dim: int | None = None,
                 *, text_latent_dims: Mapping[str, int] | None = None,
                 skeleton_hidden: Sequence[int] = (), skeleton_decoder_hidden: Sequence[int] = (),
                 text_hidden: Sequence[int] = (), text_decoder_hidden: Sequence[int] = (),
                 decoder_out_relu: bool = True, per_dim_noise: bool = False,
                 sigma_rule: SigmaRule = "std", reconstruction: ReconKind = "mse",
                 kl_reduction: KLReduction = "batch_mean", init_gain: float = 0.5) -> None:
        super().__init__()
        if not text_dims:
            raise ValueError("CrossAlignedVAE needs at least one text modality")
        names = list(text_dims)
        if text_latent_dims is None:
            if latent_dim is None:
                raise ValueError("give latent_dim or text_latent_dims")
            if latent_dim % len(names):
                raise ValueError(f"latent_dim {latent_dim} is not divisible by the "
                                 f"{len(names)} text modalities")
            text_latent_dims = {n: latent_dim // len(names) for n in names}
        if list(text_latent_dims) != names:
            raise ValueError("text_latent_dims must name the text modalities in text_dims order")
        total = sum(int(v) for v in text_latent_dims.values())
        if latent_dim is not None and latent_dim != total:
            raise ValueError(f"latent_dim {latent_dim} != sum of text latent sizes {total}")
        self.latent_dim = total
        self.text_names = names
        self.text_latent_dims = {n: int(text_latent_dims[n]) for n in names}
        self.slices: dict[str, slice] = {}
        start = 0
        for n in names:
            self.slices[n] = slice(start, start + self.text_latent_dims[n])
            start += self.text_latent_dims[n]
        self.per_dim_noise = per_dim_noise
        self.sigma_rule: SigmaRule = sigma_rule
        self.reconstruction: ReconKind = reconstruction
        self.kl_reduction: KLReduction = kl_reduction
        self.skeleton_encoder = GaussianEncoder(skeleton_dim, total, skeleton_hidden, init_gain)
        self.skeleton_decoder = Decoder(total, skeleton_dim, skeleton_decoder_hidden,
                                        decoder_out_relu, init_gain)
        self.text_encoders = nn.ModuleDict({
            n: GaussianEncoder(text_dims[n], self.text_latent_dims[n], text_hidden, init_gain)
            for n in names})
        self.text_decoders = nn.ModuleDict({
            n: Decoder(self.text_latent_dims[n], text_dims[n], text_decoder_hidden,
                       decoder_out_relu, init_gain) for n in names})

    # ---- pieces ----------------------------------------------------------------------
    def sample(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return reparameterize(mu, logvar, per_dim_noise=self.per_dim_noise,
                              sigma_rule=self.sigma_rule, generator=generator)

    def encode_skeleton(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.skeleton_encoder(x)

    def encode_text(self, name: str, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.text_encoders[name](t)

    def _check_texts(self, texts: Mapping[str, Tensor]) -> None:
        if set(texts) != set(self.text_names):
            raise ValueError(f"texts for {sorted(texts)}, model has {self.text_names}")

    # ---- training --------------------------------------------------------------------
    def loss_terms(self, s: Tensor, texts: Mapping[str, Tensor],
                   generator: torch.Generator | None = None,
                   factors: WarmupFactors | None = None) -> VAELossTerms:
        """The terms for a batch of skeleton features ``s`` (B, D_s) and the class texts
        of each sample per modality (B, D_m). Noise is drawn skeleton first, then the
        text modalities in order (the official scripts' order).

        With ``factors``, the terms whose warm-up factor is 0 are not built (the cyclic
        schedule keeps cross-reconstruction off for most of each cycle and the alignment
        weight at 0): ``total(factors)`` then has the same value and gradients as with
        every term, the noise draws are the same, and the remaining terms are built in the
        same order (autograd then sums each gradient in the same order)."""
        self._check_texts(texts)
        kl_s_on = factors is None or bool(factors.beta_skeleton)
        kl_t_on = factors is None or bool(factors.beta_text)
        cross_on = factors is None or bool(factors.cross)
        align_on = factors is None or bool(factors.align)
        rec = self.reconstruction
        smu, slv = self.skeleton_encoder(s)
        sz = self.sample(smu, slv, generator)
        recon_s = reconstruction_loss(s, self.skeleton_decoder(sz), rec)
        kl_s = kl_divergence(smu, slv, self.kl_reduction) if kl_s_on else None
        recon_t, kl_t, cross_t, align, zs = {}, {}, {}, {}, {}
        for n in self.text_names:
            t = texts[n]
            tmu, tlv = self.text_encoders[n](t)
            tz = self.sample(tmu, tlv, generator)
            zs[n] = tz
            dec = self.text_decoders[n]
            sl = self.slices[n]
            recon_t[n] = reconstruction_loss(t, dec(tz), rec)
            if kl_t_on:
                kl_t[n] = kl_divergence(tmu, tlv, self.kl_reduction)
            if cross_on:
                cross_t[n] = reconstruction_loss(t, dec(sz[:, sl]), rec)
            if align_on:
                align[n] = wasserstein_distance(smu[:, sl], slv[:, sl], tmu, tlv)
        cross_s = None
        if cross_on:
            z_text = torch.cat([zs[n] for n in self.text_names], dim=1)
            cross_s = reconstruction_loss(s, self.skeleton_decoder(z_text), rec)
        return VAELossTerms(recon_skeleton=recon_s, recon_text=recon_t, kl_skeleton=kl_s,
                            kl_text=kl_t, cross_skeleton=cross_s, cross_text=cross_t,
                            align=align, latents={"skeleton": sz, **zs})

    # ---- inference -------------------------------------------------------------------
    @torch.no_grad()
    def text_latents(self, texts: Mapping[str, Tensor], n_per_class: int,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Latents generated from K class texts per modality (K, D_m): each class row is
        repeated ``n_per_class`` times as whole blocks (rows ordered class 0..K-1, then
        again, like ``tensor.repeat([n, 1])``), encoded in eval mode and sampled once per
        modality, concatenated in slice order. Returns (z (n*K, L), labels (n*K,) in 0..K-1)."""
        self._check_texts(texts)
        was = self.training
        self.eval()
        k = next(iter(texts.values())).shape[0]
        parts = []
        for n in self.text_names:
            t = texts[n].repeat(n_per_class, 1)
            mu, lv = self.text_encoders[n](t)
            parts.append(self.sample(mu, lv, generator))
        self.train(was)
        labels = torch.arange(k, device=parts[0].device).repeat(n_per_class)
        return torch.cat(parts, dim=1), labels

    @torch.no_grad()
    def skeleton_mean(self, x: Tensor) -> Tensor:
        """Encoder mean mu_s(x): what the classifiers see at test time."""
        return self.skeleton_encoder(x)[0]


def repeat_class_rows(rows: Tensor, n: int) -> Tensor:
    """(K, D) -> (n*K, D) as whole-block repeats (class order 0..K-1, n times)."""
    return rows.repeat(n, 1)


# --------------------------------------------------------------------------------------
# Latent classifier
# --------------------------------------------------------------------------------------
class LatentClassifier(nn.Module):
    """Linear(L, K), followed by ReLU on the logits when ``relu`` (skeleton code quirk)."""

    def __init__(self, latent_dim: int, num_classes: int, relu: bool = True,
                 init_gain: float = 0.5) -> None:
        super().__init__()
        self.fc = nn.Linear(latent_dim, num_classes)
        self.relu = relu
        init_linear_(self, init_gain)

    def forward(self, z: Tensor) -> Tensor:
        out = self.fc(z)
        return F.relu(out) if self.relu else out


def train_latent_classifier(z: Tensor, y: Tensor, num_classes: int, *, steps: int = 300,
                            lr: float = 1e-3, relu: bool = True,
                            classifier: LatentClassifier | None = None) -> LatentClassifier:
    """Full-batch cross-entropy with Adam for ``steps`` steps (skeleton code: 300, 1e-3);
    ``z`` is treated as fixed data (detached)."""
    z = z.detach()
    cls = classifier or LatentClassifier(z.shape[1], num_classes, relu).to(z.device)
    opt = torch.optim.Adam(cls.parameters(), lr=lr, foreach=True)
    cls.train()
    with torch.enable_grad():  # callable from inside no_grad code
        for _ in range(steps):
            loss = F.cross_entropy(cls(z), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    cls.eval()
    return cls
