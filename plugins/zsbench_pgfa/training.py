"""Training helpers for PGFA: lr schedule, mini-batches, batched encoding, CE pretraining."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zsbench.api import ZsbenchError


def step_lr(base: float, epoch: int, warmup: int, steps: Iterable[int], decay: float) -> float:
    """Official PGFA schedule, per epoch (0-based): ``base*epoch/warmup`` during warm-up
    (epoch 0 runs at lr 0), then ``base * decay**(number of steps <= epoch)``."""
    if epoch < warmup:
        return base * epoch / warmup
    return base * decay ** sum(epoch >= s for s in steps)


class TemporalResize(nn.Module):
    """Linearly resample (N, C, T, V, M) sequences to ``frames`` frames (PGFA Setting II:
    50 -> 64, trilinear interpolation with V and M unchanged, align_corners=False)."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5:
            raise ZsbenchError(f"expected (N, C, T, V, M) sequences, got shape {tuple(x.shape)}")
        size = (self.frames, x.shape[3], x.shape[4])
        return F.interpolate(x, size=size, mode="trilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"frames={self.frames}"


def permuted_batches(n: int, batch_size: int, generator: torch.Generator,
                     drop_last: bool) -> list[Tensor]:
    """Shuffled index batches. ``drop_last`` drops the trailing partial batch (the official
    loader); a set smaller than one batch still gives one batch. Batches of one sample are
    always dropped (BatchNorm cannot train on them)."""
    if n < 2:
        raise ZsbenchError(f"need at least 2 training samples, got {n}")
    perm = torch.randperm(n, generator=generator)
    if drop_last and n >= batch_size:
        perm = perm[: n - n % batch_size]
    return [b for b in perm.split(batch_size) if b.numel() > 1]


def take(x: np.ndarray, idx: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Rows ``idx`` of a (possibly memory-mapped) array as a float32 tensor on device."""
    idx = idx.numpy() if isinstance(idx, Tensor) else np.asarray(idx)
    return torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)).to(device)


@torch.no_grad()
def encode(module: nn.Module, x: np.ndarray, batch_size: int, device: torch.device) -> Tensor:
    """Eval-mode outputs of ``module`` for every row of ``x``, in order, on the CPU."""
    module.eval()
    out = [module(take(x, np.arange(i, min(i + batch_size, len(x))), device)).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


@torch.no_grad()
def probe_feature_dim(encoder: nn.Module, x: np.ndarray, device: torch.device) -> int:
    """Output width of ``encoder`` (one eval-mode forward on one sample)."""
    was_training = encoder.training
    encoder.eval()
    out = encoder(take(x, np.arange(1), device))
    encoder.train(was_training)
    if out.ndim != 2:
        raise ZsbenchError("the skeleton encoder must map (N, C, T, V, M) to (N, D); it returned "
                           f"shape {tuple(out.shape)}")
    return int(out.shape[1])


def pretrain_ce(encoder: nn.Module, x: np.ndarray, targets: np.ndarray, n_classes: int,
                feat_dim: int, epochs: int, lr: float, batch_size: int, device: torch.device,
                generator: torch.Generator, progress: Callable[..., Iterable[Any]]) -> float:
    """Seen-class cross-entropy pretraining (SMIE_Generate_Feature recipe: linear head with
    Xavier-normal weights, Adam, cosine annealing over ``epochs``, shuffled batches).
    Takes the last epoch (no test-set selection). Returns the last epoch's mean loss."""
    head = nn.Linear(feat_dim, n_classes).to(device)
    nn.init.xavier_normal_(head.weight)
    nn.init.zeros_(head.bias)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=lr, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    y = torch.as_tensor(targets, dtype=torch.long)
    last = float("nan")
    for _ in progress(range(epochs), desc="PGFA CE pretraining", total=epochs):
        encoder.train()
        total, count = 0.0, 0
        for idx in permuted_batches(len(x), batch_size, generator, drop_last=False):
            loss = F.cross_entropy(head(encoder(take(x, idx, device))), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        sched.step()
        last = total / max(count, 1)
    return last
