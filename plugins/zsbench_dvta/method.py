"""DVTA: Direct Alignment + Semantic Description Enhancement + Augmented Alignment on
frozen, seen-class-pretrained skeleton features (paper §III, official train.py)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench.nn.losses import diagonal_nce_from_log_probs, kl_multi_positive_from_log_probs, log_softmax_both
from zsbench.nn.selection import BestEpoch

from .config import DVTAConfig
from .modules import DVTANet


def warmup_cosine_lr(base: float, epoch: int, warmup: int, epochs: int) -> float:
    """Official schedule per epoch (0-based): ``base*epoch/warmup`` during warm-up (epoch 0
    at lr 0), then ``base*(1 + cos(pi*(epoch-warmup)/(epochs-warmup)))/2``."""
    if epoch < warmup:
        return base * epoch / warmup
    return base * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / max(epochs - warmup, 1)))


def mixture_log_probs(logits: list[Tensor], dim: int) -> Tensor:
    """log of the average of softmax(l, dim) over the given logit tensors (paper Eq. 9)."""
    stacked = torch.stack([F.log_softmax(l, dim=dim) for l in logits])
    return torch.logsumexp(stacked, dim=0) - math.log(len(logits))


class DVTA(Method):
    """Kuang et al., "Zero-Shot Skeleton-based Action Recognition with Dual Visual-Text
    Alignment", Pattern Recognition 171, 2026."""

    config: DVTAConfig

    def __init__(self, config: DVTAConfig) -> None:
        super().__init__(config)
        self.net: DVTANet | None = None
        self.history: list[float] = []
        self._device = torch.device("cpu")

    # ------------------------------------------------------------------ helpers
    def _texts(self, texts: ClassTexts) -> tuple[Tensor, Tensor | None]:
        label = torch.as_tensor(texts.matrix(self.config.text_kind), dtype=torch.float32)
        context = None
        if self.config.use_sde:
            assert self.config.context_kind is not None  # guaranteed by the config validator
            context = torch.as_tensor(texts.matrix(self.config.context_kind), dtype=torch.float32)
            if context.shape != label.shape:
                raise ZsbenchError(f"DVTA: label texts {tuple(label.shape)} and context texts "
                                   f"{tuple(context.shape)} must come from one text encoder")
        return label.to(self._device), None if context is None else context.to(self._device)

    def _logit_terms(self, da: Tensor, aa: Tensor | None) -> list[Tensor]:
        assert self.net is not None
        terms = []
        if self.config.use_da_logits:
            terms.append(self.net.tau_da(da))
        if aa is not None and self.net.tau_aa is not None:
            terms.append(self.net.tau_aa(aa))
        return terms

    def _loss(self, terms: list[Tensor], labels: Tensor) -> Tensor:
        cfg = self.config
        if cfg.fusion == "sum_logits" or len(terms) == 1:
            x2t, t2x = log_softmax_both(sum(terms[1:], terms[0]))
        else:
            x2t = mixture_log_probs(terms, dim=1)
            t2x = mixture_log_probs([t.T for t in terms], dim=1)
        if cfg.loss == "kl":
            return kl_multi_positive_from_log_probs(x2t, t2x, labels, cfg.target_sharpness)
        if cfg.loss == "infonce":
            return diagonal_nce_from_log_probs(x2t, t2x)
        return diagonal_nce_from_log_probs(x2t)

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if train.kind != "features":
            raise ZsbenchError("DVTA works on frozen pretrained skeleton features "
                               f"(inputs='features'); got {train.kind!r}")
        x = torch.as_tensor(np.asarray(train.x, dtype=np.float32))
        if x.ndim != 2 or len(x) == 0:
            raise ZsbenchError(f"DVTA: training features must be a non-empty (N, D) array, got "
                               f"{tuple(x.shape)}")
        self._device = device = torch.device(ctx.device)
        lr, lr_from = cfg.resolve_lr(ctx.dataset.family)
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        label_t, context_t = self._texts(train.texts)
        pos = {int(c): i for i, c in enumerate(train.texts.class_ids)}
        missing = sorted({int(c) for c in train.labels} - set(pos))
        if missing:
            raise ZsbenchError(f"DVTA: training labels {missing} have no class texts")
        rows = torch.as_tensor([pos[int(c)] for c in train.labels], dtype=torch.long)
        labels = torch.as_tensor(train.labels, dtype=torch.long)

        self.net = net = DVTANet(
            x.shape[1], label_t.shape[1], visual=cfg.visual_projector,
            widths=tuple(cfg.projector_widths), text=cfg.text_projector, use_sde=cfg.use_sde,
            sde_variant=cfg.sde_variant, use_aa=cfg.use_aa, aa_activation=cfg.aa_activation,
            gamma=cfg.gamma, tau=cfg.tau, learn_tau=cfg.learn_tau).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=cfg.weight_decay, foreach=True)
        self.history = []
        best = BestEpoch(ctx, net)        # active only under model_selection=best_on_test
        for epoch in ctx.progress(range(cfg.epochs), desc="DVTA training", total=cfg.epochs):
            for group in opt.param_groups:
                group["lr"] = warmup_cosine_lr(lr, epoch, cfg.warmup_epochs, cfg.epochs)
            net.train()
            total = 0.0
            for idx in torch.randperm(len(x), generator=gen).split(cfg.batch_size):
                r = rows[idx].to(device)
                v_e = net.embed_skeleton(x[idx].to(device))
                t_e = net.embed_text(v_e, label_t[r], None if context_t is None else context_t[r])
                da, aa = net.pair_scores(v_e, t_e, detach_aa=cfg.detach_aa_inputs)
                loss = self._loss(self._logit_terms(da, aa), labels[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            self.history.append(total / len(x))
            best.after_epoch(epoch)
        best.restore()
        net.eval()
        ctx.details.update({"dvta_lr": lr, "dvta_lr_source": lr_from,
                            "dvta_tau_da": net.tau_da.tau,
                            "dvta_tau_aa": net.tau_aa.tau if net.tau_aa is not None else None,
                            "dvta_final_train_loss": self.history[-1]})
        ctx.log(f"DVTA: {cfg.epochs} epochs, lr {lr} ({lr_from}), SDE {cfg.use_sde}, "
                f"AA {cfg.use_aa}, final loss {self.history[-1]:.4f}")

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """Per test sample b and candidate u: DA/tau_DA + AA/tau_AA with the class text
        augmented by SDE using sample b's own projected feature (``mean_probs`` fusion:
        the average of the two softmax distributions over the candidates)."""
        if self.net is None:
            raise ZsbenchError("DVTA: score() called before fit()")
        if test.kind != "features":
            raise ZsbenchError(f"DVTA scores features, got {test.kind!r}")
        net = self.net.eval()
        label_t, context_t = self._texts(candidates)
        out = []
        x = np.asarray(test.x, dtype=np.float32)
        for i in range(0, len(x), self.config.test_batch_size):
            v_e = net.embed_skeleton(torch.from_numpy(x[i:i + self.config.test_batch_size]).to(self._device))
            if self.config.use_sde:
                t_e = net.embed_text(v_e.unsqueeze(1), label_t.unsqueeze(0), context_t.unsqueeze(0))
            else:
                t_e = net.embed_text(v_e, label_t, None)
            terms = self._logit_terms(*net.pair_scores(v_e, t_e))
            if self.config.fusion == "mean_probs" and len(terms) > 1:
                scores = torch.stack([torch.softmax(t, dim=1) for t in terms]).mean(0)
            else:
                scores = sum(terms[1:], terms[0])
            out.append(scores.cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(candidates)), np.float32)

    @torch.no_grad()
    def embed(self, test: TestView, ctx: RunContext) -> np.ndarray:
        """The projected skeleton embeddings v_e of the test samples (the space where DA
        compares them with the class texts): "after alignment" for the feature diagnostics."""
        if self.net is None:
            raise ZsbenchError("DVTA: embed() called before fit()")
        net, size = self.net.eval(), self.config.test_batch_size
        x = np.asarray(test.x, dtype=np.float32)
        out = [net.embed_skeleton(torch.from_numpy(x[i:i + size]).to(self._device)).cpu()
               for i in range(0, len(x), size)]
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
