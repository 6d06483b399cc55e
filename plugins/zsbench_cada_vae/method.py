"""CADA-VAE on frozen skeleton features (skeleton version of the SynSE repository) and the
pipeline it shares with MSF.

Training (``cada_vae_training.py``): a skeleton VAE and a text VAE over one latent space,
``num_cycles`` cycles of ``cycle_length`` iterations, one random batch per iteration, loss
weights from the cyclic warm-up (``zsbench.nn.vae.cycle_warmup``). After training, latents
generated from the unseen classes' texts train the unseen classifier (Linear + ReLU);
a test sample's ZSL scores are that classifier's logits on the skeleton encoder mean.

GZSL:
* ``score()`` over seen + unseen candidates (for the core's calibrated stacking) returns,
  by default (``gzsl_scores=joint_latent``), the log-probabilities of the original
  CADA-VAE's generalized classifier: one softmax classifier in the latent space trained on
  skeleton latents of the seen candidates (200 per class) and text latents of the unseen
  ones (400 per class), applied to the skeleton encoder mean. ``gzsl_scores=separate``:
  seen columns = softmax of a linear seen classifier on the features, unseen columns =
  softmax of the unseen classifier.
* ``gzsl_decide()`` (``--set gzsl_rule=method``) is the official gate: fitted lazily on a
  validation problem carved from the seen classes (a second VAE, seen and unseen
  classifiers trained without the validation-unseen classes), then each test sample is
  routed to the seen classifier or the unseen classifier (``zsbench.nn.gate``).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench.nn.gate import (LinearScorer, SeenUnseenGate, fit_gate, gate_validation_split,
                             route, softmax, synse_code_unseen_rows, train_seen_classifier)
from zsbench.nn.vae import (CrossAlignedVAE, LatentClassifier, WarmupFactors, cadavae_warmup,
                            cycle_warmup, train_latent_classifier)

from .config import CadaVAEConfig, VAEMethodConfig

TEXT = "text"


def unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


class CrossAlignedVAEMethod(Method):
    """Skeleton VAE + one text VAE, unseen classifier on generated latents, seen/unseen gate.
    Subclasses define :meth:`text_rows` (the text VAE's input per class)."""

    config: VAEMethodConfig
    name = "vae"

    def __init__(self, config: VAEMethodConfig) -> None:
        super().__init__(config)
        self.vae: CrossAlignedVAE | None = None
        self.seen_ids: np.ndarray | None = None
        self.seen_cls: LinearScorer | None = None
        self._train: TrainView | None = None
        self._family = "synthetic"
        self._seed = 0
        self._device = torch.device("cpu")
        self._unseen_cls: dict[tuple[int, ...], LatentClassifier] = {}
        self._joint_cls: dict[tuple[int, ...], LatentClassifier] = {}
        self._x: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self._gates: dict[int, SeenUnseenGate] = {}

    # ------------------------------------------------------------------ per method
    def text_rows(self, texts: ClassTexts) -> np.ndarray:  # pragma: no cover - abstract
        """(K, D) text-VAE inputs of the classes in ``texts`` (in class_ids order)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _features(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ZsbenchError(f"{self.name} expects (N, D) skeleton features, got shape {x.shape} "
                               "(use a skeleton encoder with the pretraining stage, or precomputed "
                               "features)")
        return x

    def _factors(self, it: int, cycle_length: int, n: int) -> WarmupFactors:
        cfg = self.config
        if cfg.schedule == "original_cadavae":
            return cadavae_warmup(it * cfg.batch_size // max(n, 1))
        return cycle_warmup(it, cycle_length, cfg.text_kl_variant(), cross_start=cfg.cross_start,
                            kl_start=cfg.kl_start, align_weight=cfg.align_weight)

    @staticmethod
    def _n_unseen(ctx: RunContext, n_seen: int) -> int:
        n = ctx.dataset.num_classes - n_seen
        return n if n > 0 else 0

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        x = self._features(train.x)
        self._train = train
        self._gates.clear()
        info = self._fit_core(x, np.asarray(train.labels), train.texts, ctx,
                              self._n_unseen(ctx, len(train.texts)), ctx.seed)
        ctx.details.update(info)

    def _fit_core(self, x: np.ndarray, labels: np.ndarray, texts: ClassTexts, ctx: RunContext,
                  n_unseen: int, seed: int) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        self._family, self._seed = ctx.dataset.family, seed
        self._device = torch.device(ctx.device)
        dev = self._device
        rows = torch.as_tensor(self.text_rows(texts), dtype=torch.float32, device=dev)
        pos = {int(c): i for i, c in enumerate(texts.class_ids)}
        try:
            col = torch.as_tensor([pos[int(c)] for c in labels], dtype=torch.long, device=dev)
        except KeyError as e:
            raise ZsbenchError(f"{self.name}: training label {e} has no class text") from None
        xs = torch.as_tensor(x, device=dev)
        latent = cfg.latent_for(self._family)
        cycle = cfg.cycle_length_for(self._family, n_unseen)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = CrossAlignedVAE(x.shape[1], {TEXT: rows.shape[1]}, latent,
                                  per_dim_noise=cfg.per_dim_noise).to(dev)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr, foreach=True)
        n, total = len(xs), cfg.num_cycles * cycle
        vae.train()
        last: dict[str, float] = {}
        for it in ctx.progress(range(total), desc=f"{self.name} {ctx.fold_name}", total=total):
            idx = torch.randperm(n, generator=gen)[:cfg.batch_size].to(dev)
            factors = self._factors(it, cycle, n)
            final = it == total - 1     # every term for the record; else the weighted ones
            terms = vae.loss_terms(xs[idx], {TEXT: rows[col[idx]]}, generator=gen,
                                   factors=None if final else factors)
            loss = terms.total(factors)
            if final:
                last = {"loss": float(loss.detach()), **terms.as_floats()}
            opt.zero_grad()
            loss.backward()
            opt.step()
        vae.eval()
        self.vae = vae
        self.seen_ids = np.asarray(texts.class_ids, dtype=np.int64)
        self.seen_cls = train_seen_classifier(
            x, labels, self.seen_ids, epochs=cfg.seen_cls_epochs, batch_size=cfg.seen_cls_batch_size,
            lr=cfg.seen_cls_lr, seed=seed, device=str(dev))
        self._unseen_cls.clear()
        self._joint_cls.clear()
        self._x, self._labels = x, np.asarray(labels)
        return {"latent_size": latent, "cycle_length": cycle, "iterations": total,
                "final_loss_terms": last, "vae_train_seconds": round(time.perf_counter() - t0, 2)}

    # ------------------------------------------------------------------ classifiers
    def _unseen_classifier(self, texts: ClassTexts) -> LatentClassifier:
        key = tuple(int(c) for c in texts.class_ids)
        if key not in self._unseen_cls:
            assert self.vae is not None
            cfg = self.config
            rows = torch.as_tensor(self.text_rows(texts), dtype=torch.float32, device=self._device)
            gen = torch.Generator().manual_seed(self._seed + 1)
            z, y = self.vae.text_latents({TEXT: rows}, cfg.n_latents_per_class, generator=gen)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._seed + 2)
                cls = LatentClassifier(z.shape[1], len(key), relu=cfg.classifier_relu).to(self._device)
            self._unseen_cls[key] = train_latent_classifier(z, y, len(key), steps=cfg.cls_steps,
                                                            lr=cfg.cls_lr, classifier=cls)
        return self._unseen_cls[key]

    def _joint_classifier(self, candidates: ClassTexts, seen_cols: np.ndarray,
                          unseen_cols: np.ndarray) -> LatentClassifier:
        """Original CADA-VAE generalized classifier (``vaemodel.train_classifier``): latents
        of each seen candidate's training features (repeated to ``joint_seen_latents`` rows,
        first rows taken, sampled with noise) and ``joint_unseen_latents`` text latents per
        unseen candidate; Linear(L, K), NLL of log-softmax, Adam (0.5, 0.999), batch 32."""
        key = tuple(int(c) for c in candidates.class_ids)
        if key in self._joint_cls:
            return self._joint_cls[key]
        assert self.vae is not None and self._x is not None and self._labels is not None
        cfg, dev, vae = self.config, self._device, self.vae
        ids = np.asarray(candidates.class_ids)
        gen = torch.Generator().manual_seed(self._seed + 3)
        zs, ys = [], []
        with torch.no_grad():
            for col in seen_cols:
                feats = self._x[self._labels == ids[col]]
                reps = -(-cfg.joint_seen_latents // len(feats))
                xb = torch.as_tensor(np.tile(feats, (reps, 1))[:cfg.joint_seen_latents], device=dev)
                zs.append(vae.sample(*vae.encode_skeleton(xb), generator=gen))
                ys.append(torch.full((len(xb),), int(col), dtype=torch.long, device=dev))
            if len(unseen_cols):
                rows = torch.as_tensor(self.text_rows(candidates.subset(ids[unseen_cols])),
                                       dtype=torch.float32, device=dev)
                z, y = vae.text_latents({TEXT: rows}, cfg.joint_unseen_latents, generator=gen)
                zs.append(z)
                ys.append(torch.as_tensor(unseen_cols, device=dev)[y])
        z_all, y_all = torch.cat(zs), torch.cat(ys)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed + 4)
            cls = LatentClassifier(z_all.shape[1], len(ids), relu=False).to(dev)
        opt = torch.optim.Adam(cls.parameters(), lr=cfg.joint_cls_lr, betas=(0.5, 0.999), foreach=True)
        n = len(z_all)
        for _ in range(cfg.joint_cls_epochs):
            order = torch.randperm(n, generator=gen).to(dev)
            for s in range(0, n, 32):
                idx = order[s:s + 32]
                loss = torch.nn.functional.cross_entropy(cls(z_all[idx]), y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        cls.eval()
        self._joint_cls[key] = cls
        return cls

    @torch.no_grad()
    def _latent_scores(self, x: np.ndarray, cls: LatentClassifier, k: int) -> np.ndarray:
        assert self.vae is not None
        out = []
        for s in range(0, len(x), 4096):
            xb = torch.as_tensor(x[s:s + 4096], device=self._device)
            out.append(cls(self.vae.skeleton_mean(xb)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, k), np.float32)

    def _unseen_logits(self, x: np.ndarray, texts: ClassTexts) -> np.ndarray:
        return self._latent_scores(x, self._unseen_classifier(texts), len(texts))

    def _split(self, candidates: ClassTexts) -> tuple[np.ndarray, np.ndarray]:
        assert self.seen_ids is not None
        is_seen = np.isin(candidates.class_ids, self.seen_ids)
        return np.flatnonzero(is_seen), np.flatnonzero(~is_seen)

    def _seen_logits(self, x: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        assert self.seen_cls is not None and self.seen_ids is not None
        pos = {int(c): i for i, c in enumerate(self.seen_ids)}
        return self.seen_cls.logits(x)[:, [pos[int(c)] for c in class_ids]]

    # ------------------------------------------------------------------ scoring
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        if self.vae is None:
            raise ZsbenchError(f"{self.name}.score() called before fit()")
        x = self._features(test.x)
        seen_cols, unseen_cols = self._split(candidates)
        ids = np.asarray(candidates.class_ids)
        if not len(seen_cols):  # ZSL: the unseen classifier's logits
            return self._unseen_logits(x, candidates)
        if self.config.gzsl_scores == "joint_latent":
            logits = self._latent_scores(x, self._joint_classifier(candidates, seen_cols, unseen_cols),
                                         len(ids))
            return logits - np.logaddexp.reduce(logits.astype(np.float64), axis=1, keepdims=True)
        out = np.zeros((len(x), len(ids)), dtype=np.float64)
        out[:, seen_cols] = softmax(self._seen_logits(x, ids[seen_cols]))
        if len(unseen_cols):
            out[:, unseen_cols] = softmax(self._unseen_logits(x, candidates.subset(ids[unseen_cols])))
        return out

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray | None:
        x = self._features(test.x)
        ids = np.asarray(candidates.class_ids)
        seen_cols, unseen_cols = np.flatnonzero(seen_mask), np.flatnonzero(~np.asarray(seen_mask))
        if not len(unseen_cols) or not len(seen_cols):
            return np.asarray(scores).argmax(1)
        gate = self._gate(len(unseen_cols), ctx)
        z = softmax(self._unseen_logits(x, candidates.subset(ids[unseen_cols])))
        g = self._seen_logits(x, ids[seen_cols])
        is_seen = gate.is_seen(z, g)
        ctx.details["gate"] = {**gate.summary(), "routed_seen_fraction": float(np.mean(is_seen))}
        return route(is_seen, g, z, seen_cols, unseen_cols)

    # ------------------------------------------------------------------ the gate
    def _gate(self, k: int, ctx: RunContext) -> SeenUnseenGate:
        if k in self._gates:
            return self._gates[k]
        cfg = self.config
        train = self._train
        assert train is not None and self.seen_ids is not None
        x, labels = self._features(train.x), np.asarray(train.labels)
        prob = gate_validation_split(labels, self.seen_ids, k, ctx.seed + 101,
                                     val_unseen=train.val_unseen, holdout=cfg.gate_val_holdout)
        sub = type(self)(cfg)
        sub_info = sub._fit_core(x[prob.train_idx], labels[prob.train_idx],
                                 train.texts.subset(prob.val_seen), ctx, len(prob.val_unseen),
                                 ctx.seed + 1)
        xv, yv = x[prob.test_idx], labels[prob.test_idx]
        vu_texts = train.texts.subset(prob.val_unseen)
        logits_u = sub._unseen_logits(xv, vu_texts)
        z_all, g_all = softmax(logits_u), sub._seen_logits(xv, prob.val_seen)
        is_vu = np.isin(yv, prob.val_unseen)
        zu, gu, zs, gs = z_all[is_vu], g_all[is_vu], z_all[~is_vu], g_all[~is_vu]
        if cfg.gate_rows == "synse_code":
            ctx.note_deviation("gate_rows_synse_code")
            zu = synse_code_unseen_rows(zs, len(zu))
        temps, ths = cfg.gate_temperatures, cfg.gate_thresholds
        if cfg.gate_mode == "official_fixed":
            ctx.note_deviation("gate_official_fixed")
            th, t = cfg.official_gate(ctx.dataset.family, k)
            temps, ths = [t], [th]
        if cfg.gate_threshold_rule == "official":
            ctx.note_deviation("gate_threshold_rule_official")
        holdout = tuple(cfg.gate_holdout) if isinstance(cfg.gate_holdout, (tuple, list)) else cfg.gate_holdout
        gate = fit_gate((zu, gu), (zs, gs), temperatures=temps, thresholds=ths, holdout=holdout,
                        seed=cfg.gate_seed, C=cfg.gate_C, threshold_rule=cfg.gate_threshold_rule,
                        k=min(k, len(prob.val_unseen)))
        pred = prob.val_unseen[np.argmax(logits_u[is_vu], axis=1)]
        gate.info.update({"val_unseen_classes": [int(c) for c in prob.val_unseen],
                          "val_zsl_acc": float(np.mean(pred == yv[is_vu])),
                          "val_vae_train_seconds": sub_info["vae_train_seconds"]})
        self._gates[k] = gate
        return gate


class CadaVAE(CrossAlignedVAEMethod):
    """CADA-VAE (Schönfeld et al., CVPR 2019) as re-implemented for skeletons in SynSE's
    repository: the text VAE reads the L2-normalised embedding of the class label."""

    config: CadaVAEConfig
    name = "cada_vae"

    def text_rows(self, texts: ClassTexts) -> np.ndarray:
        return unit_rows(texts.matrix(self.config.text_kind))
