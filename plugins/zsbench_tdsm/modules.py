"""TDSM building blocks: the DDPM noise schedule, the text-conditioned two-stream
denoising transformer and the losses / matching error (official model/dit.py, train.py).

Shapes: skeleton feature ``x0`` (B, M_x, F) with M_x = 1 token of width F (256 for the
SynSE Shift-GCN features); global text ``z_g`` (B, C); local text tokens ``z_l``
(B, M_l, C) with C = (number of text kinds) x (text width).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Prediction = Literal["epsilon", "sample", "v_prediction"]


# ------------------------------------------------------------------------------- schedule
def make_betas(num_steps: int, beta_start: float = 0.00085, beta_end: float = 0.012,
               schedule: Literal["scaled_linear", "linear"] = "scaled_linear") -> Tensor:
    """beta_t, t = 0..T-1, float32. ``scaled_linear`` (Stable Diffusion's, used by TDSM):
    (linspace(sqrt(b0), sqrt(b1), T))^2; ``linear``: linspace(b0, b1, T)."""
    if schedule == "scaled_linear":
        return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps,
                              dtype=torch.float32) ** 2
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float32)


class NoiseSchedule:
    """DDPM forward process: alpha-bar_t = prod_{s<=t} (1 - beta_s);
    q(x_t | x_0): x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps."""

    def __init__(self, num_steps: int = 50, beta_start: float = 0.00085,
                 beta_end: float = 0.012,
                 schedule: Literal["scaled_linear", "linear"] = "scaled_linear") -> None:
        self.num_steps = num_steps
        self.betas = make_betas(num_steps, beta_start, beta_end, schedule)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)

    def _coefs(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        ab = self.alphas_cumprod.to(device=like.device, dtype=like.dtype)[t.long().to(like.device)]
        shape = (-1,) + (1,) * (like.ndim - 1)
        return ab.sqrt().reshape(shape), (1.0 - ab).sqrt().reshape(shape)

    def add_noise(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        a, s = self._coefs(t, x0)
        return a * x0 + s * eps

    def velocity(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """v = sqrt(alpha-bar_t) eps - sqrt(1 - alpha-bar_t) x_0."""
        a, s = self._coefs(t, x0)
        return a * eps - s * x0

    def target(self, kind: Prediction, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """What the denoiser is trained to output (and compared with at test time)."""
        if kind == "epsilon":
            return eps
        if kind == "sample":
            return x0
        return self.velocity(x0, eps, t)


# ------------------------------------------------------------------------------- denoiser
def timestep_embedding(t: Tensor, dim: int = 256, max_period: float = 10000.0) -> Tensor:
    """DiT sinusoidal embedding: [cos(t f_k), sin(t f_k)], f_k = max_period^(-k/(dim/2))."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(max_period) * k / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def _shift_scale(h: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation h (1 + scale) + shift, per sample over all tokens."""
    return h * (1.0 + scale[:, None]) + shift[:, None]


def _norm(h: Tensor) -> Tensor:
    return F.layer_norm(h, h.shape[-1:], eps=1e-6)


def _mlp(width: int, ratio: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"),
                         nn.Linear(hidden, width))


class JointAttention(nn.Module):
    """Multi-head self-attention over the skeleton tokens and the text tokens together,
    with separate qkv and output projections per stream."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv_x = nn.Linear(width, 3 * width)
        self.qkv_l = nn.Linear(width, 3 * width)
        self.out_x = nn.Linear(width, width)
        self.out_l = nn.Linear(width, width)

    def _split(self, h: Tensor, proj: nn.Linear) -> Tensor:
        b, n, w = h.shape
        return proj(h).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)

    def forward(self, x: Tensor, l: Tensor) -> tuple[Tensor, Tensor]:
        b, n_x, w = x.shape
        q, k, v = torch.cat([self._split(x, self.qkv_x), self._split(l, self.qkv_l)], dim=3)
        weights = ((q * (w // self.heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, -1, w)
        return self.out_x(out[:, :n_x]), self.out_l(out[:, n_x:])


class DenoiserBlock(nn.Module):
    """One block: per stream adaLN-Zero (shift, scale, gate for attention and for MLP) from
    the conditioning vector c, joint attention, separate MLPs; both streams updated."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.attn = JointAttention(width, heads)
        self.mlp_x, self.mlp_l = _mlp(width, mlp_ratio), _mlp(width, mlp_ratio)
        self.mod_x = nn.Linear(width, 6 * width)
        self.mod_l = nn.Linear(width, 6 * width)

    def forward(self, x: Tensor, l: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        act = F.silu(c)
        mx = self.mod_x(act).chunk(6, dim=1)
        ml = self.mod_l(act).chunk(6, dim=1)
        ax, al = self.attn(_shift_scale(_norm(x), mx[0], mx[1]), _shift_scale(_norm(l), ml[0], ml[1]))
        x = x + mx[2][:, None] * ax
        l = l + ml[2][:, None] * al
        x = x + mx[5][:, None] * self.mlp_x(_shift_scale(_norm(x), mx[3], mx[4]))
        l = l + ml[5][:, None] * self.mlp_l(_shift_scale(_norm(l), ml[3], ml[4]))
        return x, l


class TDSMDenoiser(nn.Module):
    """Noise predictor eps(x_t, t, z_g, z_l): skeleton token(s) and local text tokens in a
    two-stream transformer, modulated by c = time embedding + global-text embedding.
    Defaults: the official configuration (256 -> 768, 12 blocks, 12 heads, cond 2048,
    35 local tokens)."""

    def __init__(self, in_dim: int = 256, cond_dim: int = 2048, width: int = 768,
                 depth: int = 12, heads: int = 12, mlp_ratio: float = 4.0,
                 num_local: int = 35, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.skel_in = nn.Linear(in_dim, width)
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.global_mlp = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.local_in = nn.Linear(cond_dim, width)
        self.local_pos = nn.Parameter(torch.zeros(1, num_local, width))
        self.blocks = nn.ModuleList(DenoiserBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.final_mod = nn.Linear(width, 2 * width)
        self.final_out = nn.Linear(width, in_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform linears with zero bias; positional table and time-MLP weights
        N(0, 0.02^2); all adaLN outputs and the output layer zero (adaLN-Zero)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.local_pos, std=0.02)
        nn.init.normal_(self.time_mlp[0].weight, std=0.02)
        nn.init.normal_(self.time_mlp[2].weight, std=0.02)
        zero = [self.final_mod, self.final_out]
        for blk in self.blocks:
            zero += [blk.mod_x, blk.mod_l]
        for m in zero:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def embed_text(self, z_g: Tensor, z_l: Tensor) -> tuple[Tensor, Tensor]:
        """(global-text embedding (B, W), local text tokens + positions (B, M_l, W)): the
        only parts that depend on the class text alone (cached per class at test time)."""
        return self.global_mlp(z_g), self.local_in(z_l) + self.local_pos

    def forward(self, x_t: Tensor, t: Tensor, z_g: Tensor, z_l: Tensor) -> Tensor:
        return self.forward_embedded(x_t, t, *self.embed_text(z_g, z_l))

    def forward_embedded(self, x_t: Tensor, t: Tensor, g: Tensor, l: Tensor) -> Tensor:
        """The denoiser given the outputs of ``embed_text``."""
        x = self.skel_in(x_t)
        c = self.time_mlp(timestep_embedding(t, self.freq_dim)) + g
        for blk in self.blocks:
            x, l = blk(x, l, c)
        shift, scale = self.final_mod(F.silu(c)).chunk(2, dim=1)
        return self.final_out(_shift_scale(_norm(x), shift, scale))


# Official parameter names (KAIST-VICLab/TDSM model/dit.py) -> ours, for loading their
# weights in the fidelity tests. Block-level names are matched after "blocks.<i>.".
_OFFICIAL_TOP = {"x_embedder": "skel_in", "t_embedder.mlp": "time_mlp",
                 "fc_embedder": "global_mlp", "fl_embedder": "local_in",
                 "fl_pos_embed": "local_pos", "final_layer.adaLN_modulation.1": "final_mod",
                 "final_layer.linear": "final_out"}
_OFFICIAL_BLOCK = {"attn.qkv_c": "attn.qkv_l", "attn.qkv": "attn.qkv_x",
                   "attn.proj_c": "attn.out_l", "attn.proj": "attn.out_x",
                   "mlp_c.fc1": "mlp_l.0", "mlp_c.fc2": "mlp_l.2",
                   "mlp.fc1": "mlp_x.0", "mlp.fc2": "mlp_x.2",
                   "adaLN_modulation_c.1": "mod_l", "adaLN_modulation.1": "mod_x"}


def from_official_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename an official ``DiT`` state dict to this module's parameter names."""
    out = {}
    for key, value in state.items():
        new = None
        if key.startswith("blocks."):
            _, idx, rest = key.split(".", 2)
            for old, ours in _OFFICIAL_BLOCK.items():
                if rest.startswith(old + "."):
                    new = f"blocks.{idx}.{ours}{rest[len(old):]}"
                    break
        else:
            for old, ours in _OFFICIAL_TOP.items():
                if key == old or key.startswith(old + "."):
                    new = ours + key[len(old):]
                    break
        if new is None:
            raise KeyError(f"unknown official TDSM parameter {key!r}")
        out[new] = value
    return out


# ------------------------------------------------------------------------------- losses
def per_sample_error(pred: Tensor, target: Tensor,
                     form: Literal["mse", "l2"] = "mse") -> Tensor:
    """e_i = mean_d (pred - target)^2 (code) or ||pred - target||_2 (paper figure)."""
    diff = (pred - target).flatten(1)
    return diff.pow(2).mean(dim=1) if form == "mse" else diff.norm(dim=1)


def tdsm_loss(pred_pos: Tensor, pred_neg: Tensor, target: Tensor, valid_neg: Tensor,
              margin: float = 1.0, d_weight: float = 1.0, t_weight: float = 1.0,
              form: Literal["mse", "l2"] = "mse") -> tuple[Tensor, Tensor, Tensor]:
    """(total, L_diff, L_TD): L_diff = w_d mean_i e_p,i;
    L_TD = w_t (1/B) sum_i 1[y_n,i != y_i] max(e_p,i - e_n,i + margin, 0)."""
    e_p = per_sample_error(pred_pos, target, form)
    e_n = per_sample_error(pred_neg, target, form)
    l_diff = e_p.mean() * d_weight
    l_td = (torch.clamp(e_p - e_n + margin, min=0.0) * valid_neg.to(e_p.dtype)).mean() * t_weight
    return l_diff + l_td, l_diff, l_td


def cosine_warmup_factor(step: int, warmup: int, total: int, cycles: float = 0.5) -> float:
    """lr multiplier of the cosine schedule with linear warm-up (diffusers 'cosine'):
    step/warmup during warm-up, then 0.5 (1 + cos(2 pi cycles progress)), floored at 0."""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))
