"""STAR: fine-grained side information guided dual prompts on a frozen, seen-class-pretrained
skeleton encoder (Chen et al., ACM MM 2024).

fit(): (1) pretrain the encoder with cross-entropy on the seen training classes (or reuse a
cached one; Neuron's recipe and cache, the same authors' pipeline), freeze it; (2) train the
part prompts, projections and semantic prompts with the global, part and description-label
losses. score(): cosine between the global skeleton embedding and the projected class
names (part descriptions are not used at test time); the core applies the ZSL argmax and
the GZSL calibrated stacking to it, ``gzsl_rule=method`` stacks the softmax with a fixed
factor.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench.nn.selection import BestEpoch
from zsbench_neuron.method import calibrated, label_columns, two_guess_margins
from zsbench_neuron.training import (
    augment,
    permuted_batches,
    seen_class_encoder,
    sgd_step,
    step_lr,
    take,
)

from .config import StarConfig
from .modules import StarNet, match_cube, star_losses, total_loss
from .texts import name_matrix, part_tensor


def per_body_features(encoder: nn.Module, x: Tensor) -> Tensor:
    """(N, M, C, T', V) output of the encoder's last block before the bodies are averaged
    (read through a forward hook on ``encoder.units[-1]``)."""
    units = getattr(encoder, "units", None)
    if not isinstance(units, nn.ModuleList) or len(units) == 0:
        raise ZsbenchError(f"STAR official_feature_reshape needs an encoder whose blocks are "
                           f"a ModuleList `units` (shiftgcn); {type(encoder).__name__} "
                           "has none: use encoder shiftgcn or set "
                           "method.official_feature_reshape=false")
    seen: list[Tensor] = []
    handle = units[-1].register_forward_hook(lambda mod, inp, out: seen.append(out))
    try:
        encoder.feature_map(x)
    finally:
        handle.remove()
    out = seen[-1]
    n = x.shape[0]
    return out.view(n, out.shape[0] // n, *out.shape[1:])


def feature_cube(encoder: nn.Module, x: Tensor, official_reshape: bool) -> Tensor:
    """(N, C, T', V) feature map the prompts read (bodies averaged, or the official layout)."""
    fmap = getattr(encoder, "feature_map", None)
    if fmap is None:
        raise ZsbenchError(f"STAR needs the encoder's (N, C, T', V) feature map, but "
                           f"{type(encoder).__name__} has no feature_map(); use shiftgcn or "
                           "stgcn")
    if official_reshape:
        return match_cube(per_body_features(encoder, x), official=True)
    out = fmap(x)
    if out.dim() != 4:
        raise ZsbenchError(f"{type(encoder).__name__}.feature_map returned shape "
                           f"{tuple(out.shape)}, expected (N, C, T', V)")
    return out


class Star(Method):
    """Chen, Guo, He, Lu, Wang, "Fine-Grained Side Information Guided Dual-Prompts for
    Zero-Shot Skeleton Action Recognition", ACM MM 2024."""

    config: StarConfig

    def __init__(self, config: StarConfig) -> None:
        super().__init__(config)
        self.encoder: nn.Module | None = None
        self.net: StarNet | None = None
        self.history: list[float] = []
        self._device = torch.device("cpu")
        self._cache: tuple[Any, Tensor] | None = None
        self._seen = np.empty(0, dtype=np.int64)

    # ------------------------------------------------------------------ encoder
    def _encoder(self, train: TrainView, target: np.ndarray, seen: np.ndarray,
                 ctx: RunContext) -> nn.Module:
        """Neuron's seen-class encoder stage (same cache key: one pretrained encoder serves
        both methods)."""
        cfg = self.config
        aug = (tuple(cfg.crop_interval), cfg.rotation) if cfg.pretrain_augment else None
        return seen_class_encoder(
            ctx, train.x, train.labels, target, seen, cfg, who="STAR",
            augment=aug, device=self._device)

    @torch.no_grad()
    def _cubes(self, encoder: nn.Module, x: Any, augment_clips: bool) -> Tensor:
        """Eval-mode feature maps of every row (CPU)."""
        cfg = self.config
        encoder.eval()
        gen = torch.Generator().manual_seed(12345)
        out = []
        for start in range(0, len(x), cfg.test_batch_size):
            batch = take(x, np.arange(start, min(start + cfg.test_batch_size, len(x))),
                         self._device)
            if augment_clips:
                batch = augment(batch, tuple(cfg.crop_interval), cfg.rotation, gen)
            out.append(feature_cube(encoder, batch, cfg.official_feature_reshape).cpu())
        return torch.cat(out)

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if train.kind != "sequences":
            raise ZsbenchError("STAR runs its own frozen skeleton encoder and needs raw "
                               f"sequences (N, C, T, V, M); got {train.kind!r}")
        if len(train.x) < 2:
            raise ZsbenchError(f"STAR: need at least 2 training samples, got {len(train.x)}")
        if cfg.official_feature_reshape:
            ctx.note_deviation("official_feature_reshape")
        if not cfg.freeze_encoder_bn:
            ctx.note_deviation("encoder_bn_train_mode")
        self._device = device = torch.device(ctx.device)
        self._cache = None
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)

        labels = np.asarray(train.labels, dtype=np.int64)
        bank = train.texts
        text_ids = np.asarray(bank.class_ids, dtype=np.int64)
        seen = np.unique(labels)
        extra = np.setdiff1d(text_ids, seen)
        if cfg.unseen_text_in_training:
            ctx.note_deviation("unseen_text_in_training")
            if len(extra) == 0:
                raise ZsbenchError(
                    "STAR: unseen_text_in_training=true needs the texts of classes without "
                    "training samples in fit(), but the harness hands fit() the seen-class "
                    "texts only; set method.unseen_text_in_training=false (see "
                    "docs/methods/star.md)")
        elif len(extra):
            bank = bank.subset(seen)
            text_ids = seen
        pos = {int(c): i for i, c in enumerate(text_ids)}
        train_cols = np.array([pos[int(c)] for c in seen], dtype=np.int64)
        self._seen = seen
        target = label_columns(labels, seen)             # position among the seen classes
        names = torch.as_tensor(name_matrix(bank, cfg.name_kind), device=device)
        descs = torch.as_tensor(part_tensor(bank, cfg.part_kind, len(cfg.parts)), device=device)

        encoder = self._encoder(train, target, seen, ctx)
        for p in encoder.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            probe = feature_cube(encoder.eval(), take(train.x, np.arange(1), device),
                                 cfg.official_feature_reshape)
        if probe.shape[3] <= max(max(g) for g in cfg.parts):
            raise ZsbenchError(f"STAR: method.parts names joint {max(max(g) for g in cfg.parts)}"
                               f" but the encoder's feature map has {probe.shape[3]} joints")
        net = StarNet(int(probe.shape[1]), int(names.shape[1]), len(text_ids), cfg.parts,
                      cfg.num_prompts, cfg.attention_dim, cfg.num_heads, cfg.hidden_dim,
                      cfg.use_part_prompts, cfg.use_semantic_prompts).to(device)
        steps, steps_from = cfg.resolve_lr_steps(ctx.dataset.family)
        epochs, epochs_from = cfg.resolve_epochs(ctx.dataset.family)
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                              momentum=cfg.momentum, nesterov=cfg.nesterov,
                              weight_decay=cfg.weight_decay, foreach=True)
        y_all = torch.as_tensor(target, dtype=torch.long)
        cols = torch.as_tensor(train_cols, dtype=torch.long, device=device)
        cached = None
        if cfg.encoder_features == "cached":
            cached = self._cubes(encoder, train.x, augment_clips=False)
        augment_on = cfg.resolve_augment(ctx.dataset.family)
        aug = (tuple(cfg.crop_interval), cfg.rotation) if augment_on else None

        self.history = []
        last: dict[str, float] = {}
        self.encoder, self.net = encoder, net    # scored mid-training by best (quirk Q6,
        best = BestEpoch(ctx, net)               # only under model_selection=best_on_test)
        for epoch in ctx.progress(range(epochs), desc="STAR training", total=epochs):
            for group in opt.param_groups:
                group["lr"] = step_lr(cfg.lr, epoch, steps, cfg.lr_decay)
            net.train()
            total, count = 0.0, 0
            sums = {"global": 0.0, "part": 0.0, "pd": 0.0}
            for idx in permuted_batches(len(train.x), cfg.batch_size, gen):
                if cached is not None:
                    cube = cached[idx].to(device)
                else:
                    x = take(train.x, idx, device)
                    if aug is not None:
                        x = augment(x, aug[0], aug[1], gen)
                    with torch.no_grad():
                        encoder.train(not cfg.freeze_encoder_bn)
                        cube = feature_cube(encoder, x, cfg.official_feature_reshape)
                parts_emb, g = net.embed(cube)
                terms = star_losses(net, parts_emb, g, y_all[idx].to(device), names, descs, cols)
                loss = total_loss(terms, cfg.w_global, cfg.w_part, cfg.w_pd)
                total += sgd_step(opt, loss, f"training, epoch {epoch + 1}", "lr") * len(idx)
                for k in sums:
                    sums[k] += float(terms[k].detach()) * len(idx)
                count += len(idx)
            self.history.append(total / count)
            last = {k: v / count for k, v in sums.items()}
            self._cache = None
            best.after_epoch(epoch)
        best.restore()
        self._cache = None                       # cosines of a later epoch's weights
        encoder.eval()
        net.eval()
        ctx.details.update({
            "star_epochs": epochs, "star_epochs_from": epochs_from,
            "star_lr_steps": steps, "star_lr_steps_from": steps_from,
            "star_augment": augment_on and cached is None,
            "star_text_classes": len(text_ids),
            "star_final_train_loss": self.history[-1], "star_final_loss_terms": last})
        ctx.log(f"STAR: {epochs} epochs ({epochs_from}), lr steps {steps} ({steps_from}), "
                f"final loss {self.history[-1]:.4f}")

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def cosines(self, x: Any, candidates: ClassTexts, ctx: RunContext) -> Tensor:
        """(N, K) cosines ``cos(g(x), phi(t_k))`` (CPU); cached for the last inputs and
        candidates (score() and gzsl_decide() share one pass)."""
        if self.encoder is None or self.net is None:
            raise ZsbenchError("STAR: score() called before fit()")
        cfg = self.config
        key = tuple(int(c) for c in candidates.class_ids)
        if self._cache is not None and self._cache[0][0] is x and self._cache[0][1] == key:
            return self._cache[1]
        if cfg.test_augment:
            ctx.note_deviation("test_augment")
        names = torch.as_tensor(name_matrix(candidates, cfg.name_kind), device=self._device)
        cubes = self._cubes(self.encoder, x, augment_clips=cfg.test_augment)
        out = []
        for start in range(0, len(cubes), cfg.test_batch_size):
            _, g = self.net.embed(cubes[start:start + cfg.test_batch_size].to(self._device))
            out.append(self.net.scores(g, names).cpu())
        result = torch.cat(out) if out else torch.zeros(0, len(key))
        self._cache = ((x, key), result)
        return result

    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        cos = self.cosines(test.x, candidates, ctx)
        if self.config.record_gzsl_margins:
            self._record_margins(test, candidates, cos, ctx)
        return cos.numpy()

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """``gzsl_rule=method``: ``argmax softmax(cos) - gamma * 1[seen]`` with the fixed
        factor ``method.gamma`` (calibrated stacking as STAR++/Neuron implement it)."""
        mask = torch.as_tensor(np.asarray(seen_mask, dtype=bool))
        probs = F.softmax(torch.as_tensor(np.asarray(scores, dtype=np.float32)), dim=1)
        ctx.details["star_gzsl_gamma"] = self.config.gamma
        return calibrated(probs, mask, self.config.gamma).argmax(dim=1).numpy()

    def _record_margins(self, test: TestView, candidates: ClassTexts, cos: Tensor,
                        ctx: RunContext) -> None:
        """Per GZSL test sample: best seen / unseen class and their softmax margin (for the
        official gamma grid chosen on the test set, ``python -m zsbench_star.official``)."""
        ids = np.asarray(candidates.class_ids, dtype=np.int64)
        seen = np.isin(ids, self._seen)
        if seen.all() or not seen.any():
            return
        ctx.note_deviation("record_gzsl_margins")
        cs, cu, margin = two_guess_margins(F.softmax(cos.double(), dim=1), torch.as_tensor(seen))
        index = getattr(test.x, "index", None)
        where = ("dataset_index", [int(i) for i in index]) if index is not None else \
            ("position", list(range(len(cos))))
        ctx.details["star_gzsl_margins"] = {
            where[0]: where[1], "best_seen": [int(ids[i]) for i in cs],
            "best_unseen": [int(ids[i]) for i in cu],
            "margin": [float(f"{m:.10g}") for m in margin.tolist()]}
