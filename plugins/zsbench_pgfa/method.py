"""PGFA: end-to-end skeleton-text contrastive training + prototype-guided alignment.

Training (paper §III-B, Alg. 1): skeleton encoder (from the run's encoder registry) and a
linear projection into the text space are trained with the two-direction KL
multi-positive loss against frozen, pre-extracted class text features. Test (§III-C):
cosine scores against the candidate class vectors; the transductive step replaces each
class vector by a prototype of confidently pseudo-labelled test features and re-scores.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench.nn.losses import KLMultiPositiveLoss, cosine_similarity_matrix
from zsbench.nn.selection import BestEpoch

from .config import PGFAConfig
from .prototypes import argmax_prototypes, weighted_prototypes
from .training import TemporalResize, encode, permuted_batches, pretrain_ce, probe_feature_dim, step_lr, take


def class_rows(labels: np.ndarray, class_ids: np.ndarray, what: str) -> np.ndarray:
    """Row of each label in ``class_ids`` (error naming the labels that have none)."""
    pos = {int(c): i for i, c in enumerate(class_ids)}
    missing = sorted({int(c) for c in labels} - set(pos))
    if missing:
        raise ZsbenchError(f"PGFA: {what} of classes {missing} have no class vector")
    return np.asarray([pos[int(c)] for c in labels], dtype=np.int64)


def make_projection(in_dim: int, out_dim: int) -> nn.Linear:
    """psi: Linear(in -> text dim), Kaiming-normal (fan_out) weight, zero bias."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.kaiming_normal_(layer.weight, mode="fan_out")
    nn.init.zeros_(layer.bias)
    return layer


class PGFA(Method):
    """Zhou et al., "Zero-Shot Skeleton-Based Action Recognition With Prototype-Guided
    Feature Alignment", IEEE TIP 34, 2025."""

    config: PGFAConfig

    def __init__(self, config: PGFAConfig) -> None:
        super().__init__(config)
        self.encoder: nn.Module | None = None
        self.projection: nn.Linear | None = None
        self.alpha: float = 0.0
        self.seen_ids = np.empty(0, dtype=np.int64)
        self.history: list[float] = []
        self._device = torch.device("cpu")
        self._cache: tuple[Any, Tensor] | None = None

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if train.kind != "sequences":
            raise ZsbenchError("PGFA trains its skeleton encoder end to end and needs raw "
                               f"sequences (N, C, T, V, M); got {train.kind!r}")
        if len(train.x) < 2:
            raise ZsbenchError(f"PGFA: need at least 2 training samples, got {len(train.x)}")
        preset_name, preset = cfg.preset(ctx.dataset.family)
        lr = cfg.lr if cfg.lr is not None else preset.lr
        self.alpha = cfg.alpha if cfg.alpha is not None else preset.alpha
        self._device = device = torch.device(ctx.device)
        self._cache = None
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)

        text = torch.as_tensor(train.texts.matrix(cfg.text_kind), dtype=torch.float32).to(device)
        rows = torch.as_tensor(class_rows(train.labels, train.texts.class_ids, "training samples"))
        labels = torch.as_tensor(train.labels, dtype=torch.long)
        self.seen_ids = np.asarray(train.texts.class_ids, dtype=np.int64)

        encoder = ctx.build_encoder(cfg.encoder)
        if cfg.resize_frames is not None:
            encoder = nn.Sequential(TemporalResize(cfg.resize_frames), encoder)
        encoder = encoder.to(device)
        feat_dim = probe_feature_dim(encoder, train.x, device)
        if cfg.framework != "end_to_end":
            ce = pretrain_ce(encoder, train.x, rows.numpy(), len(self.seen_ids), feat_dim,
                             cfg.pretrain_epochs, cfg.pretrain_lr, cfg.pretrain_batch_size,
                             device, gen, ctx.progress)
            ctx.details["pgfa_pretrain_ce_loss"] = ce
        fixed = cfg.framework == "pretrained_fixed"
        cached = encode(encoder, train.x, cfg.test_batch_size, device) if fixed else None

        projection = make_projection(feat_dim, text.shape[1]).to(device)
        criterion = KLMultiPositiveLoss(cfg.tau, cfg.learn_temperature, cfg.target_sharpness,
                                        "log_scale").to(device)
        trained = list(projection.parameters()) + ([] if fixed else list(encoder.parameters()))
        groups = [{"params": trained, "weight_decay": cfg.weight_decay}]
        if cfg.learn_temperature:
            groups.append({"params": list(criterion.parameters()), "weight_decay": 0.0})
        opt = torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, foreach=True)

        self.history = []
        self.encoder, self.projection = encoder, projection   # scored mid-training by best
        best = BestEpoch(ctx, encoder, projection)            # (model_selection=best_on_test)
        for epoch in ctx.progress(range(cfg.epochs), desc="PGFA training", total=cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = step_lr(lr, epoch, cfg.warmup_epochs, cfg.lr_steps, cfg.lr_decay)
            encoder.train(not fixed)
            projection.train()
            total, count = 0.0, 0
            for idx in permuted_batches(len(train.x), cfg.batch_size, gen, drop_last=True):
                feats = cached[idx].to(device) if cached is not None else encoder(take(train.x, idx, device))
                loss = criterion(projection(feats), text[rows[idx].to(device)], labels[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            self.history.append(total / count)
            self._cache = None
            best.after_epoch(epoch)
        best.restore()
        self._cache = None                # features encoded by a later epoch's weights

        encoder.eval()
        projection.eval()
        ctx.details.update({"pgfa_preset": preset_name, "pgfa_lr": lr, "pgfa_alpha": self.alpha,
                            "pgfa_tau": criterion.temperature.tau,
                            "pgfa_final_train_loss": self.history[-1]})
        ctx.log(f"PGFA: {cfg.framework}, {cfg.epochs} epochs, lr {lr} ({preset_name} preset), "
                f"text {cfg.text_kind!r}, final loss {self.history[-1]:.4f}")

    # ------------------------------------------------------------------ inference
    def _model(self) -> nn.Sequential:
        if self.encoder is None or self.projection is None:
            raise ZsbenchError("PGFA: score() called before fit()")
        return nn.Sequential(self.encoder, self.projection)

    def embed(self, x: np.ndarray) -> Tensor:
        """L2-normalised projected features (N, text dim), eval mode, cached for the last
        array seen (score() and transductive_step() share one encoding pass)."""
        if self._cache is not None and self._cache[0] is x:
            return self._cache[1]
        z = nn.functional.normalize(encode(self._model(), x, self.config.test_batch_size,
                                           self._device), dim=1)
        self._cache = (x, z)
        return z

    def class_vectors(self, test: TestView, candidates: ClassTexts) -> Tensor:
        """(K, D) vectors of the candidate classes: their text features, or (one-shot) the
        mean projected feature of their exemplar skeletons."""
        if not self.config.one_shot:
            return torch.as_tensor(candidates.matrix(self.config.text_kind), dtype=torch.float32)
        if test.support_x is None or test.support_labels is None:
            raise ZsbenchError("PGFA one_shot=true needs support exemplars (TestView.support_x / "
                               "support_labels); run it with a one-shot protocol")
        feats = encode(self._model(), test.support_x, self.config.test_batch_size, self._device)
        rows = class_rows(np.asarray(test.support_labels), candidates.class_ids, "support exemplars")
        counts = np.bincount(rows, minlength=len(candidates))
        if (counts == 0).any():
            absent = [int(c) for c in np.asarray(candidates.class_ids)[counts == 0]]
            raise ZsbenchError(f"PGFA one-shot: no exemplar for candidate classes {absent}")
        sums = torch.zeros(len(candidates), feats.shape[1]).index_add_(0, torch.as_tensor(rows), feats)
        return sums / torch.as_tensor(counts, dtype=torch.float32)[:, None]

    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        z = self.embed(test.x)
        return cosine_similarity_matrix(z, self.class_vectors(test, candidates)).numpy()

    def transductive_step(self, scores: np.ndarray, test: TestView, candidates: ClassTexts,
                          ctx: RunContext) -> np.ndarray | None:
        """Prototype-guided text feature alignment (Eqs. 8-11) on the whole test set."""
        cfg = self.config
        if not cfg.prototype_alignment:
            return None
        z = self.embed(test.x)
        w = self.class_vectors(test, candidates)
        s = torch.as_tensor(np.asarray(scores), dtype=torch.float32)
        replace = None
        if cfg.prototype_classes == "unseen":
            replace = torch.as_tensor(~np.isin(candidates.class_ids, self.seen_ids))
        if cfg.pseudo_label == "argmax":
            protos, kept = argmax_prototypes(z, s, w, self.alpha, replace)
        else:
            protos, kept = weighted_prototypes(z, s, w, replace)
        ctx.details["pgfa_prototype_members"] = [int(k) for k in kept]
        return cosine_similarity_matrix(z, protos).numpy()
