"""SMIE: a critic trained to maximise the Jensen-Shannon MI between frozen skeleton features
and class texts, with a temporal constraint (official ``procedure.py`` ``Processor``).

``smie`` (sequences): the run's encoder is pretrained with cross-entropy on the fold's seen
classes (SMIE_Generate_Feature recipe), frozen in eval mode, and every training batch is
encoded twice: full sequences and a motion-masked, frame-reduced copy.
``smie_features`` (features): the critic alone on the run's pooled features, MI term only
(the official Setting II track on pre-extracted features).
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from zsbench.api import ClassTexts, Method, RunContext, Sequences, TestView, TrainView, ZsbenchError
from zsbench.module_cache import ModuleCache, data_digest, module_identity
from zsbench.nn.selection import BestEpoch
from zsbench.pretrain import extract_features

from .config import SMIEBaseConfig, SMIEConfig
from .modules import SMIEHead, mask_sizes, smie_loss, temporal_mask


def warmup_cosine(base: float, epoch: int, warmup: int, epochs: int) -> float:
    """Official per-epoch lr (``adjust_learning_rate``, 0-based epochs): ``base*e/warmup``
    while ``e < warmup`` (epoch 0 at lr 0), then ``base*(1+cos(pi*(e-warmup)/(epochs-warmup)))/2``
    (the code fixes ``epochs`` at 100, equal to its epoch count)."""
    if epoch < warmup:
        return base * epoch / warmup
    span = max(epochs - warmup, 1)
    return base * (1.0 + math.cos(math.pi * (epoch - warmup) / span)) / 2.0


def load_batch(x: Any, idx: np.ndarray, device: torch.device) -> Tensor:
    """Rows ``idx`` of an array or ``Sequences`` view as float32 on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)).to(device)


def encode_all(encoder: nn.Module, x: Any, device: torch.device, batch_size: int) -> Tensor:
    """Eval-mode features of every row of ``x`` (core's batched extraction), on the CPU."""
    if isinstance(x, Sequences):
        source, idx = SimpleNamespace(data=x.data), x.index
    else:
        source, idx = SimpleNamespace(data=np.asarray(x)), np.arange(len(x))
    return torch.from_numpy(extract_features(encoder, source, idx, str(device), batch_size))  # type: ignore[arg-type]


def pretrain_encoder(encoder: nn.Module, x: Any, targets: np.ndarray, num_outputs: int,
                     feat_dim: int, cfg: SMIEConfig, device: torch.device,
                     gen: torch.Generator, ctx: RunContext) -> list[float]:
    """Seen-class CE pretraining (SMIE_Generate_Feature): head ``Linear(D, num_outputs)``
    (Xavier-normal weight, zero bias), Adam, cosine annealing over the epochs stepped per
    epoch, shuffled batches, last epoch kept. Returns the mean loss per epoch."""
    head = nn.Linear(feat_dim, num_outputs).to(device)
    nn.init.xavier_normal_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(head.parameters()),
                           lr=cfg.pretrain_lr, weight_decay=cfg.pretrain_weight_decay, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.pretrain_epochs)
    y = torch.as_tensor(targets, dtype=torch.long)
    history: list[float] = []
    for _ in ctx.progress(range(cfg.pretrain_epochs), desc="SMIE encoder pretraining",
                          total=cfg.pretrain_epochs):
        encoder.train()
        total = 0.0
        for idx in torch.randperm(len(y), generator=gen).split(cfg.pretrain_batch_size):
            idx = idx.sort().values
            loss = F.cross_entropy(head(encoder(load_batch(x, idx.numpy(), device))),
                                   y[idx].to(device))
            if not torch.isfinite(loss):
                raise ZsbenchError(f"SMIE encoder pretraining diverged (loss {float(loss)}); "
                                   "lower method.pretrain_lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append(total / len(y))
    return history


class SMIE(Method):
    """Zhou, Qiang, Rao, Lin, Su, Wang, "Zero-shot Skeleton-based Action Recognition via
    Mutual Information Estimation and Maximization", ACM MM 2023."""

    config: SMIEBaseConfig

    def __init__(self, config: SMIEBaseConfig) -> None:
        super().__init__(config)
        self.encoder: nn.Module | None = None
        self.head: SMIEHead | None = None
        self.history: list[dict[str, float]] = []
        self._device = torch.device("cpu")

    # ------------------------------------------------------------------ helpers
    def _texts(self, texts: ClassTexts) -> Tensor:
        """L2-normalised (K, D) class texts (normalised once, as ``load_data``)."""
        t = torch.as_tensor(texts.matrix(self.config.text_kind), dtype=torch.float32)
        return F.normalize(t, dim=-1).to(self._device)

    def _features(self, x: Any, kind: str) -> Tensor:
        if kind == "sequences":
            if self.encoder is None:
                raise ZsbenchError("SMIE: no encoder; fit() on sequences first")
            return encode_all(self.encoder, x, self._device, self.config.test_batch_size)
        feats = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if feats.ndim != 2:
            raise ZsbenchError(f"SMIE: features must be (N, D), got {tuple(feats.shape)}")
        return feats

    def _check_kind(self, kind: str) -> None:
        want = "sequences" if isinstance(self.config, SMIEConfig) else "features"
        if kind != want:
            raise ZsbenchError(f"SMIE ({type(self.config).__name__}) takes {want}, got {kind!r}")

    def _prepare_encoder(self, train: TrainView, ctx: RunContext, gen: torch.Generator) -> Tensor:
        """Build, pretrain and freeze the encoder; return the features of ``train.x``."""
        cfg = self.config
        assert isinstance(cfg, SMIEConfig)
        if len(train.x) < 2:
            raise ZsbenchError(f"SMIE: need at least 2 training samples, got {len(train.x)}")
        encoder = ctx.build_encoder().to(self._device)
        with torch.no_grad():
            encoder.eval()
            feat_dim = int(encoder(load_batch(train.x, np.arange(1), self._device)).shape[1])
        labels = np.asarray(train.labels, dtype=np.int64)
        if cfg.pretrain_head == "dataset_classes":
            outputs = max(int(ctx.dataset.num_classes), int(labels.max()) + 1)
            targets = labels
        else:
            outputs = len(train.texts.class_ids)
            targets = self._rows(train)
        if cfg.pretrain_epochs > 0:
            self._pretrained(encoder, train, labels, targets, outputs, feat_dim, ctx, gen)
        encoder.eval()
        for p in encoder.parameters():
            p.requires_grad_(False)
        self.encoder = encoder
        return encode_all(encoder, train.x, self._device, cfg.test_batch_size)

    def _pretrained(self, encoder: nn.Module, train: TrainView, labels: np.ndarray,
                    targets: np.ndarray, outputs: int, feat_dim: int, ctx: RunContext,
                    gen: torch.Generator) -> None:
        """Pretrain ``encoder`` in place, or load it from the run's cache together with the
        generator states that training left (global CPU, ``gen``, CUDA on a CUDA device):
        what the fit draws afterwards is then what it would have drawn after training."""
        cfg = self.config
        assert isinstance(cfg, SMIEConfig)
        gens = {"smie": gen}
        if self._device.type == "cuda":
            gens["cuda"] = torch.cuda.default_generators[self._device.index or 0]
        recipe = {"epochs": cfg.pretrain_epochs, "lr": cfg.pretrain_lr,
                  "batch_size": cfg.pretrain_batch_size, "weight_decay": cfg.pretrain_weight_decay,
                  "head": cfg.pretrain_head, "outputs": outputs}
        cache = ModuleCache(ctx.cache_dir if cfg.pretrain_cache else None, "smie/encoders", {
            "encoder": module_identity(encoder), "recipe": recipe, "seed": ctx.seed,
            "device": self._device.type, "dataset": ctx.dataset.name,
            "data": data_digest(train.x, labels)})
        classes = np.unique(labels)
        info = cache.load(encoder, classes, gens)
        if info is not None and "final_ce" in info:
            ctx.details["smie_pretrain_final_ce"] = info["final_ce"]
            ctx.details["smie_encoder"] = f"pretrained, from cache {cache.folder}"
            ctx.log(f"SMIE: pretrained encoder from cache {cache.folder}")
            return
        ce = pretrain_encoder(encoder, train.x, targets, outputs, feat_dim, cfg, self._device,
                              gen, ctx)
        cache.save(encoder, classes, {"final_ce": ce[-1], "train_loss": ce}, gens)
        ctx.details["smie_pretrain_final_ce"] = ce[-1]
        ctx.details["smie_encoder"] = "pretrained on the seen training classes"

    @staticmethod
    def _rows(train: TrainView) -> np.ndarray:
        pos = {int(c): i for i, c in enumerate(train.texts.class_ids)}
        missing = sorted({int(c) for c in train.labels} - set(pos))
        if missing:
            raise ZsbenchError(f"SMIE: training labels {missing} have no class texts")
        return np.asarray([pos[int(c)] for c in train.labels], dtype=np.int64)

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        self._check_kind(train.kind)
        self._device = device = torch.device(ctx.device)
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        text = self._texts(train.texts)
        rows = torch.as_tensor(self._rows(train))
        labels = torch.as_tensor(np.asarray(train.labels, dtype=np.int64))
        use_tc = isinstance(cfg, SMIEConfig) and cfg.use_temporal_constraint
        m = 0
        if use_tc:
            assert isinstance(cfg, SMIEConfig)
            frames = int(train.x.shape[2])
            m = cfg.frames_to_mask(frames)
            try:
                mask_sizes(frames, m, cfg.mask_mode)
            except ValueError as exc:
                raise ZsbenchError(f"SMIE temporal mask: {exc} (method.mask_frames / "
                                   "method.mask_reference_frames)") from None
        feats = (self._prepare_encoder(train, ctx, gen) if train.kind == "sequences"
                 else self._features(train.x, train.kind))
        if len(feats) < 2:
            raise ZsbenchError(f"SMIE: need at least 2 training samples, got {len(feats)}")

        self.head = head = SMIEHead(feats.shape[1], text.shape[1], cfg.critic_hidden).to(device)
        opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
        self.history, skipped = [], 0
        best = BestEpoch(ctx, head,       # active only under model_selection=best_on_test
                         start=min(cfg.test_selection_from_epoch, cfg.epochs - 1))
        for epoch in ctx.progress(range(cfg.epochs), desc="SMIE training", total=cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = warmup_cosine(cfg.lr, epoch, cfg.warmup_epochs, cfg.epochs)
            head.train()
            sums = np.zeros(3)
            batches = 0
            for idx in torch.randperm(len(feats), generator=gen).split(cfg.batch_size):
                y = labels[idx].to(device)
                if cfg.negative_sampling != "roll" and not _has_negative(y, cfg.negative_sampling):
                    skipped += 1
                    continue
                v0, t = feats[idx].to(device), text[rows[idx].to(device)]
                mi_full = head.mi(v0, t, negatives=cfg.negative_sampling, labels=y)
                mi_red = None
                if use_tc:
                    assert isinstance(cfg, SMIEConfig) and self.encoder is not None
                    x = load_batch(train.x, idx.numpy(), device)
                    with torch.no_grad():
                        v1 = self.encoder(temporal_mask(x, m, cfg.mask_mode, generator=gen))
                    mi_red = head.mi(v1, t, v_neg=v0, negatives=cfg.negative_sampling, labels=y)
                    loss = smie_loss(mi_full, mi_red, cfg.margin, cfg.tc_weight)
                else:
                    loss = smie_loss(mi_full, None)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums += [float(loss.detach()), float(mi_full.detach()),
                         float(mi_red.detach()) if mi_red is not None else float("nan")]
                batches += 1
            if batches:
                loss_m, mi_m, red_m = (float(v) for v in sums / batches)
                self.history.append({"loss": loss_m, "mi": mi_m, "mi_reduced": red_m})
            best.after_epoch(epoch)
        best.restore()
        head.eval()
        if not self.history:
            raise ZsbenchError("SMIE: no training batch had a negative pair; use "
                               "negative_sampling=roll or a larger batch_size")
        last = self.history[-1]
        ctx.details.update({
            "smie_final_loss": last["loss"], "smie_final_mi": last["mi"],
            "smie_final_mi_reduced": None if math.isnan(last["mi_reduced"]) else last["mi_reduced"],
            "smie_mask_frames": m if use_tc else None, "smie_skipped_batches": skipped})
        ctx.log(f"SMIE: {cfg.epochs} epochs, lr {cfg.lr}, temporal constraint {use_tc}, "
                f"final loss {last['loss']:.4f}, MI {last['mi']:.4f}")

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """(N, K) ``log sigmoid D(v_n, t_k)`` (official ``get_acc``; argmax = its prediction)."""
        if self.head is None:
            raise ZsbenchError("SMIE: score() called before fit()")
        self._check_kind(test.kind)
        head = self.head.eval()
        feats = self._features(test.x, test.kind)
        text = self._texts(candidates)
        out = [head.scores(feats[i:i + self.config.test_batch_size].to(self._device), text,
                           layernorm=self.config.test_layernorm).cpu()
               for i in range(0, len(feats), self.config.test_batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, len(candidates)), np.float32)

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """The official test rule over seen + unseen candidates: argmax of the critic's
        scores, no calibration (SMIE itself reports no GZSL)."""
        return np.asarray(scores).argmax(axis=1)


def _has_negative(labels: Tensor, mode: str) -> bool:
    if len(labels) < 2:
        return False
    return mode != "other_classes_only" or bool((labels != labels[0]).any())
