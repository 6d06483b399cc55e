"""Neuron: evolving spatial/temporal micro-prototypes on a frozen, seen-class-pretrained
skeleton encoder, aligned with phase-wise side information (Chen et al., CVPR 2025).

fit(): (1) pretrain the encoder with cross-entropy on the seen training classes (or reuse
a cached one), freeze it; (2) train the prototype network on the encoder's feature map
with one cross-entropy per phase and stream against the seen classes' phase texts.
score(): final-phase logits of both streams against the candidates' final-phase texts,
combined into one (N, K) matrix as ``decision`` says; the core applies the ZSL argmax and
the GZSL calibrated stacking to it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError

from .config import NeuronConfig
from .modules import NeuronHead, neuron_loss, split_features
from .texts import phase_texts, text_dim
from .training import (
    augment,
    feature_map,
    permuted_batches,
    seen_class_encoder,
    sgd_step,
    step_lr,
    take,
)


def label_columns(labels: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Column of each training label among the seen classes of the text bank."""
    order = np.argsort(class_ids)
    cols = np.searchsorted(class_ids, labels, sorter=order).clip(0, len(class_ids) - 1)
    cols = order[cols]
    if not np.array_equal(class_ids[cols], labels):
        raise ZsbenchError("Neuron: training samples of classes "
                           f"{sorted(set(labels.tolist()) - set(class_ids.tolist()))} have no "
                           "class texts")
    return cols.astype(np.int64)


def combine(spatial: Tensor, temporal: Tensor, decision: str) -> Tensor:
    """One (N, K) score matrix from the two streams' final-phase logits."""
    if decision == "sum_softmax":
        return F.softmax(spatial, dim=1) + F.softmax(temporal, dim=1)
    if decision == "spatial":
        return spatial
    if decision == "temporal":
        return temporal
    raise ZsbenchError(f"Neuron: unknown decision {decision!r}")


def calibrated(probs: Tensor, seen_mask: Tensor, gamma: float) -> Tensor:
    """Calibrated stacking on probabilities: ``p - gamma * 1[seen]`` (paper Eqs. 9-10)."""
    return probs - gamma * seen_mask.to(probs.dtype)[None, :]


def two_guess_margins(probs: Tensor, seen_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per sample: best seen column, best unseen column and ``p(best seen) - p(best
    unseen)``; calibrated stacking with factor gamma predicts the seen column iff the
    margin exceeds gamma. Needs both seen and unseen columns."""
    seen = seen_mask.to(torch.bool)
    ps = probs.masked_fill(~seen[None, :], -1.0)
    pu = probs.masked_fill(seen[None, :], -1.0)
    vs, cs = ps.max(dim=1)
    vu, cu = pu.max(dim=1)
    return cs, cu, vs - vu


class Neuron(Method):
    """Chen, Guo, Guo, Tao, "Neuron: Learning Context-Aware Evolving Representations for
    Zero-Shot Skeleton Action Recognition", CVPR 2025."""

    config: NeuronConfig

    def __init__(self, config: NeuronConfig) -> None:
        super().__init__(config)
        self.encoder: nn.Module | None = None
        self.head: NeuronHead | None = None
        self.seen_ids = np.empty(0, dtype=np.int64)
        self.history: list[float] = []
        self._device = torch.device("cpu")
        self._cache: tuple[Any, tuple[Tensor, Tensor]] | None = None
        self._last: dict[str, Any] = {}

    # ------------------------------------------------------------------ training
    def _encoder(self, train: TrainView, rows: np.ndarray, ctx: RunContext) -> nn.Module:
        cfg = self.config
        aug = (tuple(cfg.crop_interval), cfg.rotation) if cfg.augment else None
        return seen_class_encoder(
            ctx, train.x, train.labels, rows, self.seen_ids, cfg, who="Neuron",
            augment=aug, device=self._device)

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if train.kind != "sequences":
            raise ZsbenchError("Neuron runs its own frozen skeleton encoder and needs raw "
                               f"sequences (N, C, T, V, M); got {train.kind!r}")
        if len(train.x) < 2:
            raise ZsbenchError(f"Neuron: need at least 2 training samples, got {len(train.x)}")
        self._device = device = torch.device(ctx.device)
        self._cache, self._last = None, {}
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        self.seen_ids = np.asarray(train.texts.class_ids, dtype=np.int64)
        rows = label_columns(np.asarray(train.labels, dtype=np.int64), self.seen_ids)
        spatial, temporal = phase_texts(train.texts, cfg, device)
        dim = text_dim(spatial + temporal)

        encoder = self._encoder(train, rows, ctx)
        for p in encoder.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            probe = feature_map(encoder.eval(), take(train.x, np.arange(1), device))
        head = NeuronHead(int(probe.shape[1]), dim, cfg.num_spatial_prototypes,
                          cfg.num_temporal_prototypes, cfg.spatial_keep(),
                          cfg.temporal_segments if cfg.phase_evolving else "full",
                          cfg.temporal_memory, cfg.memory_gate, cfg.share_init).to(device)
        steps, steps_from = cfg.resolve_lr_steps(ctx.dataset.family)
        opt = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              nesterov=cfg.nesterov, weight_decay=cfg.weight_decay,
                              foreach=True)
        labels = torch.as_tensor(rows, dtype=torch.long)
        cached = None
        if cfg.encoder_features == "cached":
            cached = self._features(encoder, train.x, augment_clips=False)
        aug = (tuple(cfg.crop_interval), cfg.rotation) if cfg.augment else None

        self.history = []
        phase_s = phase_t = torch.zeros(3)
        for epoch in ctx.progress(range(cfg.epochs), desc="Neuron training", total=cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = step_lr(cfg.lr, epoch, steps, cfg.lr_decay)
            head.train()
            total, count = 0.0, 0
            sum_s, sum_t = torch.zeros(3), torch.zeros(3)
            for idx in permuted_batches(len(train.x), cfg.batch_size, gen):
                if cached is not None:
                    fs, ft = cached[0][idx].to(device), cached[1][idx].to(device)
                else:
                    x = take(train.x, idx, device)
                    if aug is not None:
                        x = augment(x, aug[0], aug[1], gen)
                    with torch.no_grad():
                        encoder.train(cfg.encoder_bn == "train")
                        fs, ft = split_features(feature_map(encoder, x))
                us, ut = head.embed(fs, ft)
                ls = head.logits(us, spatial, cfg.desc_topk, cfg.logit_scale)
                lt = head.logits(ut, temporal, cfg.desc_topk, cfg.logit_scale)
                y = labels[idx].to(device)
                loss, ps, pt = neuron_loss(ls, lt, y, cfg.loss_reduction)
                total += sgd_step(opt, loss, f"training, epoch {epoch + 1}", "lr") * len(idx)
                sum_s += ps.detach().cpu() * len(idx)
                sum_t += pt.detach().cpu() * len(idx)
                count += len(idx)
            self.history.append(total / count)
            phase_s, phase_t = sum_s / count, sum_t / count
        encoder.eval()
        head.eval()
        self.encoder, self.head = encoder, head
        ctx.details.update({
            "neuron_lr_steps": steps, "neuron_lr_steps_from": steps_from,
            "neuron_spatial_keep": cfg.spatial_keep(),
            "neuron_final_train_loss": self.history[-1],
            "neuron_final_phase_losses": {"spatial": [float(v) for v in phase_s],
                                          "temporal": [float(v) for v in phase_t]}})
        ctx.log(f"Neuron: {cfg.epochs} epochs, lr steps {steps} ({steps_from}), final loss "
                f"{self.history[-1]:.4f}")

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _features(self, encoder: nn.Module, x: Any, augment_clips: bool
                  ) -> tuple[Tensor, Tensor]:
        """Eval-mode (spatial (N, C, V), temporal (N, C, T')) features of every row, CPU."""
        cfg = self.config
        encoder.eval()
        gen = torch.Generator().manual_seed(12345)
        fs, ft = [], []
        for start in range(0, len(x), cfg.test_batch_size):
            batch = take(x, np.arange(start, min(start + cfg.test_batch_size, len(x))),
                         self._device)
            if augment_clips:
                batch = augment(batch, tuple(cfg.crop_interval), cfg.rotation, gen)
            s, t = split_features(feature_map(encoder, batch))
            fs.append(s.cpu())
            ft.append(t.cpu())
        return torch.cat(fs), torch.cat(ft)

    @torch.no_grad()
    def final_logits(self, x: Any, candidates: ClassTexts, ctx: RunContext
                     ) -> tuple[Tensor, Tensor]:
        """Final-phase (spatial, temporal) logits (N, K), CPU; cached for the last inputs
        and candidates (score() and gzsl_decide() share one pass)."""
        if self.encoder is None or self.head is None:
            raise ZsbenchError("Neuron: score() called before fit()")
        cfg = self.config
        key = (x, tuple(int(c) for c in candidates.class_ids))
        if self._cache is not None and self._cache[0][0] is x and self._cache[0][1] == key[1]:
            return self._cache[1]
        if cfg.test_augment:
            ctx.note_deviation("test_augment")
        spatial, temporal = phase_texts(candidates, cfg, self._device)
        fs, ft = self._features(self.encoder, x, augment_clips=cfg.test_augment)
        out_s, out_t = [], []
        for start in range(0, len(fs), cfg.test_batch_size):
            sl = slice(start, start + cfg.test_batch_size)
            us, ut = self.head.embed(fs[sl].to(self._device), ft[sl].to(self._device))
            out_s.append(self.head.logits(us[-1:], spatial[-1:], cfg.desc_topk,
                                          cfg.logit_scale)[0].cpu())
            out_t.append(self.head.logits(ut[-1:], temporal[-1:], cfg.desc_topk,
                                          cfg.logit_scale)[0].cpu())
        k = len(candidates)
        result = (torch.cat(out_s) if out_s else torch.zeros(0, k),
                  torch.cat(out_t) if out_t else torch.zeros(0, k))
        self._cache = (key, result)
        return result

    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        ls, lt = self.final_logits(test.x, candidates, ctx)
        if self.config.official_two_guess_accuracy:
            self._record_two_guess(test, candidates, ls, lt, ctx)
        return combine(ls, lt, self.config.decision).numpy()

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """``gzsl_rule=method``: calibrated stacking with the paper's fixed factors
        (gamma_s, gamma_t) on each stream's softmax, combined as ``decision``."""
        cfg = self.config
        ls, lt = self.final_logits(test.x, candidates, ctx)
        mask = torch.as_tensor(np.asarray(seen_mask, dtype=bool))
        ps = calibrated(F.softmax(ls, dim=1), mask, cfg.gamma_s)
        pt = calibrated(F.softmax(lt, dim=1), mask, cfg.gamma_t)
        pick = {"sum_softmax": ps + pt, "spatial": ps, "temporal": pt}[cfg.decision]
        ctx.details["neuron_gzsl_gammas"] = {"spatial": cfg.gamma_s, "temporal": cfg.gamma_t}
        return pick.argmax(dim=1).numpy()

    # ------------------------------------------------------------------ official metric
    def _record_two_guess(self, test: TestView, candidates: ClassTexts, ls: Tensor, lt: Tensor,
                          ctx: RunContext) -> None:
        """Per-sample data for the either-of-two accuracy (computed with the labels by
        ``python -m zsbench_neuron.official``): ZSL: both streams' argmax class ids; GZSL:
        per stream the best seen and best unseen class ids and their probability margin."""
        ctx.note_deviation("official_two_guess_accuracy")
        ids = np.asarray(candidates.class_ids, dtype=np.int64)
        index = getattr(test.x, "index", None)
        where = ("dataset_index", [int(i) for i in index]) if index is not None else \
            ("position", list(range(len(ls))))
        seen = torch.as_tensor(np.isin(ids, self.seen_ids))
        entry: dict[str, Any] = {where[0]: where[1]}
        if not bool(seen.any()):
            entry["spatial"] = [int(ids[i]) for i in ls.argmax(dim=1)]
            entry["temporal"] = [int(ids[i]) for i in lt.argmax(dim=1)]
            setting = "zsl"
        elif bool(seen.all()):
            return
        else:
            for name, logits in (("spatial", ls), ("temporal", lt)):
                cs, cu, margin = two_guess_margins(F.softmax(logits.double(), dim=1), seen)
                entry[name] = {"best_seen": [int(ids[i]) for i in cs],
                               "best_unseen": [int(ids[i]) for i in cu],
                               "margin": [float(f"{m:.10g}") for m in margin.tolist()]}
            setting = "gzsl"
        ctx.details.setdefault("neuron_two_guess", {})[setting] = entry
