"""Neuron's encoder stage and training helpers: clip augmentation, lr schedule, batches,
seen-class pretraining of the skeleton encoder (``Pretrain_Shift_GCN``), cached with
``zsbench.module_cache``."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zsbench.api import ZsbenchError
from zsbench.module_cache import ModuleCache, data_digest, module_identity

from .config import SeenEncoderStage

Progress = Callable[..., Iterable[Any]]


# ------------------------------------------------------------------------------ schedule
def step_lr(base: float, epoch: int, steps: Iterable[int], decay: float) -> float:
    """Official schedule (no warm-up): ``base * decay ** #(steps <= epoch)``, epoch 0-based."""
    return base * decay ** sum(epoch >= s for s in steps)


def permuted_batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """Shuffled index batches, the trailing partial batch dropped (``drop_last=True``) unless
    the set is smaller than one batch; batches of one sample are dropped (BatchNorm)."""
    if n < 2:
        raise ZsbenchError(f"Neuron: need at least 2 training samples, got {n}")
    perm = torch.randperm(n, generator=generator)
    if n >= batch_size:
        perm = perm[: n - n % batch_size]
    return [b for b in perm.split(batch_size) if b.numel() > 1]


def take(x: Any, idx: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Rows ``idx`` of an array or lazy ``Sequences`` view as float32 on ``device``."""
    idx = idx.numpy() if isinstance(idx, Tensor) else np.asarray(idx)
    return torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)).to(device)


def sgd_step(opt: torch.optim.Optimizer, loss: Tensor, where: str, lr_field: str) -> float:
    """One optimiser step on ``loss``; a non-finite loss is an error naming the lr option."""
    value = float(loss.detach())
    if not math.isfinite(value):
        raise ZsbenchError(f"Neuron diverged ({where}: loss {value}); lower method.{lr_field}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return value


# ------------------------------------------------------------------------------ augmentation
def rotation_matrices(angles: Tensor) -> Tensor:
    """(N, 3) angles (alpha, beta, gamma) -> (N, 3, 3) ``Rz(gamma) @ Ry(beta) @ Rx(alpha)``
    with the official feeder's conventions (DATA_FORMATS §3.5)."""
    a, b, g = angles.unbind(1)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rx = torch.stack([one, zero, zero, zero, a.cos(), a.sin(), zero, -a.sin(), a.cos()], 1)
    ry = torch.stack([b.cos(), zero, -b.sin(), zero, one, zero, b.sin(), zero, b.cos()], 1)
    rz = torch.stack([g.cos(), g.sin(), zero, -g.sin(), g.cos(), zero, zero, zero, one], 1)
    return rz.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rx.view(-1, 3, 3)


def rotate(x: Tensor, rot: Tensor) -> Tensor:
    """Apply (N, 3, 3) rotations to the xyz channels of (N, 3, T, V, M) sequences."""
    return torch.einsum("nij,njtvm->nitvm", rot, x)


def valid_frames(x: Tensor) -> Tensor:
    """(N,) number of frames whose values are not all zero (the feeder's count)."""
    return (x.abs().sum(dim=(1, 3, 4)) != 0).sum(dim=1)


def crop_resize(x: Tensor, fractions: Tensor, offsets: Tensor) -> Tensor:
    """Crop ``floor(n * fraction)`` valid frames (n counted per sample; at least 1) starting
    at ``offsets`` (a share of the room left, in [0, 1]), then resize to the full length T
    (linear, half-pixel centres, ``align_corners=False``). Samples without a valid frame
    are returned unchanged."""
    n_, c, t, v, m = x.shape
    out = x.clone()
    n_valid = valid_frames(x)
    for i in range(n_):
        n = int(n_valid[i])
        if n == 0:
            continue
        length = min(n, max(1, math.floor(n * float(fractions[i]))))
        start = int(math.floor(float(offsets[i]) * (n - length + 1)))
        start = min(start, n - length)
        clip = x[i, :, start:start + length].reshape(1, c, length, v * m)
        out[i] = F.interpolate(clip, size=(t, v * m), mode="bilinear",
                               align_corners=False).view(c, t, v, m)
    return out


def augment(x: Tensor, interval: tuple[float, float], max_angle: float,
            generator: torch.Generator) -> Tensor:
    """Random temporal crop + resize, then a random rotation per sample."""
    n = x.shape[0]
    lo, hi = interval
    frac = lo + (hi - lo) * torch.rand(n, generator=generator)
    offs = torch.rand(n, generator=generator)
    angles = (torch.rand(n, 3, generator=generator) * 2 - 1) * max_angle
    out = crop_resize(x, frac, offs) if lo < 1.0 else x
    if max_angle > 0:
        out = rotate(out, rotation_matrices(angles).to(out.dtype).to(out.device))
    return out


# ------------------------------------------------------------------------------ encoder
def feature_map(encoder: nn.Module, x: Tensor) -> Tensor:
    fmap = getattr(encoder, "feature_map", None)
    if fmap is None:
        raise ZsbenchError(f"Neuron needs the encoder's (N, C, T', V) feature map, but "
                           f"{type(encoder).__name__} has no feature_map(); use shiftgcn or "
                           "stgcn")
    out = fmap(x)
    if out.dim() != 4:
        raise ZsbenchError(f"{type(encoder).__name__}.feature_map returned shape "
                           f"{tuple(out.shape)}, expected (N, C, T', V)")
    return out


def pretrain_encoder(encoder: nn.Module, x: Any, targets: np.ndarray, n_classes: int,
                     epochs: int, lr: float, weight_decay: float, steps: list[int],
                     batch_size: int, aug: tuple[tuple[float, float], float] | None,
                     device: torch.device, generator: torch.Generator,
                     progress: Progress) -> list[float]:
    """Seen-class cross-entropy pretraining as ``Pretrain_Shift_GCN/main.py``: pooled
    feature -> ``Linear(C, n_seen)`` (weight N(0, sqrt(2 / n_seen))), SGD with Nesterov
    momentum 0.9, lr steps x0.1, shuffled batches (last partial one kept), last epoch
    kept (no selection on test data). Returns the mean loss per epoch."""
    probe = feature_map(encoder.eval(), take(x, np.arange(1), device))
    head = nn.Linear(probe.shape[1], n_classes).to(device)
    nn.init.normal_(head.weight, 0.0, math.sqrt(2.0 / n_classes))
    opt = torch.optim.SGD(list(encoder.parameters()) + list(head.parameters()), lr=lr,
                          momentum=0.9, nesterov=True, weight_decay=weight_decay, foreach=True)
    y = torch.as_tensor(targets, dtype=torch.long)
    history: list[float] = []
    for epoch in progress(range(epochs), desc="Neuron encoder pretraining", total=epochs):
        for group in opt.param_groups:
            group["lr"] = step_lr(lr, epoch, steps, 0.1)
        encoder.train()
        total, count = 0.0, 0
        perm = torch.randperm(len(x), generator=generator)
        for idx in (b for b in perm.split(batch_size) if b.numel() > 1):
            batch = take(x, idx, device)
            if aug is not None:
                batch = augment(batch, aug[0], aug[1], generator)
            loss = F.cross_entropy(head(feature_map(encoder, batch).mean(dim=(2, 3))),
                                   y[idx].to(device))
            total += sgd_step(opt, loss, f"encoder pretraining, epoch {epoch + 1}",
                              "pretrain_lr") * len(idx)
            count += len(idx)
        history.append(total / max(count, 1))
    return history


def seen_class_encoder(ctx: Any, x: Any, labels: np.ndarray, targets: np.ndarray,
                       classes: np.ndarray, stage: SeenEncoderStage, *, who: str,
                       augment: tuple[tuple[float, float], float] | None,
                       device: torch.device) -> nn.Module:
    """The frozen-encoder stage of Neuron, STAR and PURLS (options: ``SeenEncoderStage``):
    build the run's encoder (with the method's ``encoder_overrides``), pretrain it with
    cross-entropy on the seen training classes (``targets`` = class rows
    0..len(classes)-1) or load it from the shared cache (one key for all three methods:
    same encoder, recipe, seed and data = same weights). Records ``<who>_encoder`` (and the
    final pretraining loss) in ``ctx.details``."""
    key = who.lower()
    name, overrides, epochs = stage.encoder, stage.encoder_overrides, stage.pretrain_epochs
    lr, weight_decay, steps = stage.pretrain_lr, stage.pretrain_weight_decay, stage.pretrain_lr_steps
    batch_size, use_cache = stage.pretrain_batch_size, stage.pretrain_cache
    try:
        encoder = ctx.build_encoder(name, **overrides).to(device)
    except ZsbenchError as exc:
        if not overrides:
            raise
        raise ZsbenchError(f"{exc}\n({who} applies method.encoder_overrides={overrides} to "
                           "the encoder (the embedded benchmark suggests them for shiftgcn); "
                           "with another encoder set method.encoder_overrides={})") from exc
    if epochs == 0:
        ctx.details[f"{key}_encoder"] = "untrained (pretrain_epochs=0)"
        return encoder
    recipe = {"epochs": epochs, "lr": lr, "weight_decay": weight_decay, "steps": steps,
              "batch_size": batch_size, "augment": augment}
    cache = ModuleCache(ctx.cache_dir if use_cache else None, "neuron/encoders", {
        "encoder": module_identity(encoder), "recipe": recipe, "seed": ctx.seed,
        "dataset": ctx.dataset.name, "data": data_digest(x, labels)})
    if cache.load(encoder, classes) is not None:
        ctx.details[f"{key}_encoder"] = f"pretrained, from cache {cache.folder}"
        ctx.log(f"{who}: pretrained encoder from cache {cache.folder}")
        return encoder
    gen = torch.Generator().manual_seed(ctx.seed + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ctx.seed + 1)
        history = pretrain_encoder(encoder, x, targets, len(classes), epochs, lr, weight_decay,
                                   steps, batch_size, augment, device, gen, ctx.progress)
    cache.save(encoder, classes, {"train_loss": history})
    ctx.details[f"{key}_encoder"] = "pretrained on the seen training classes"
    ctx.details[f"{key}_pretrain_final_loss"] = history[-1]
    return encoder
