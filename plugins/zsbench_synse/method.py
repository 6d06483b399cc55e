"""SynSE: a skeleton VAE cross-aligned with separate verb and noun text VAEs; unseen
classes are recognised by a classifier trained on latents generated from their verb and
noun phrases (official ``synse/synse_training.py``); GZSL through the seen/unseen gate of
``gating_synse_model_*.py`` (``--set gzsl_rule=method``) or the core's calibrated stacking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench.nn import gate as gating
from zsbench.nn.vae import CrossAlignedVAE, LatentClassifier, train_latent_classifier

from .config import SynSEConfig
from .training import build_vae, normalise_rows, random_batch, train_cycle, unseen_latents

GATE_DEVIATION = "gate_rows_synse_code"


@dataclass
class _Model:
    """One trained SynSE (the fold's, or the gate's validation-phase one)."""

    vae: CrossAlignedVAE
    classes: np.ndarray                  # seen classes it was trained on
    losses: list[float]
    classifiers: dict[tuple[int, ...], LatentClassifier] = field(default_factory=dict)


class SynSE(Method):
    """Gupta, Sharma, Sarvadevabhatla, "Syntactically Guided Generative Embeddings for
    Zero-Shot Skeleton Action Recognition", ICIP 2021."""

    config: SynSEConfig

    def __init__(self, config: SynSEConfig) -> None:
        super().__init__(config)
        self.model: _Model | None = None
        self._train: TrainView | None = None
        self._device = torch.device("cpu")
        self._seed = 0
        self._latent = 0
        self._cycle = 0
        self._seen_scorer: gating.LinearScorer | None = None
        self._gate: tuple[tuple[int, ...], gating.SeenUnseenGate] | None = None

    # ------------------------------------------------------------------ helpers
    def _texts(self, texts: ClassTexts) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        out = []
        for kind in (cfg.noun_kind, cfg.verb_kind):
            if kind not in texts.embeddings:
                raise ZsbenchError(f"SynSE needs the {kind!r} texts (verb and noun phrases of "
                                   f"each class; text source 'synse_pos'); loaded: {texts.kinds}")
            t = torch.as_tensor(texts.matrix(kind), dtype=torch.float32)
            if cfg.normalize_text:
                t = normalise_rows(t)
            out.append(t.to(self._device))
        if out[0].shape[1] != out[1].shape[1]:
            raise ZsbenchError(f"SynSE: noun texts ({out[0].shape[1]}-d) and verb texts "
                               f"({out[1].shape[1]}-d) must come from one text encoder")
        return out[0], out[1]

    def _features(self, x: Any, where: str) -> torch.Tensor:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 2:
            raise ZsbenchError(f"SynSE: {where} features must be an (N, D) array, got shape "
                               f"{arr.shape}")
        return torch.from_numpy(arr)

    def _train_model(self, x: torch.Tensor, labels: np.ndarray, texts: ClassTexts,
                     ctx: RunContext, seed: int, desc: str) -> _Model:
        cfg = self.config
        nouns, verbs = self._texts(texts)
        pos = {int(c): i for i, c in enumerate(texts.class_ids)}
        missing = sorted({int(c) for c in labels} - set(pos))
        if missing:
            raise ZsbenchError(f"SynSE: training labels {missing} have no class texts")
        rows = torch.as_tensor([pos[int(c)] for c in labels], dtype=torch.long, device=self._device)
        torch.manual_seed(seed)
        vae = build_vae(x.shape[1], nouns.shape[1], self._latent, cfg.per_dim_noise).to(self._device)
        opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr, foreach=True)
        noise = torch.Generator().manual_seed(seed + 1)
        batches = torch.Generator().manual_seed(seed + 2)
        xd = x.to(self._device)
        losses: list[float] = []
        for cycle in ctx.progress(range(cfg.num_cycles), desc=desc, total=cfg.num_cycles):
            losses += train_cycle(
                vae, opt, xd, nouns, verbs, rows, cycle, self._cycle,
                lambda: random_batch(len(xd), cfg.batch_size, batches).to(self._device),
                noise, cfg.cross_start, cfg.text_kl_from_cycle)
        vae.eval()
        return _Model(vae=vae, classes=np.asarray(texts.class_ids, dtype=np.int64), losses=losses)

    def _classifier(self, model: _Model, candidates: ClassTexts, seed: int) -> LatentClassifier:
        """The classifier over ``candidates`` trained on latents generated from their noun
        and verb phrases (cached per candidate set)."""
        key = tuple(int(c) for c in candidates.class_ids)
        if key not in model.classifiers:
            cfg = self.config
            nouns, verbs = self._texts(candidates)
            torch.manual_seed(seed + 3)
            cls = LatentClassifier(self._latent, len(candidates), relu=cfg.classifier_relu)
            cls = cls.to(self._device)
            z, y = unseen_latents(model.vae, nouns, verbs, cfg.latents_per_class,
                                  torch.Generator().manual_seed(seed + 4))
            model.classifiers[key] = train_latent_classifier(
                z, y, len(candidates), steps=cfg.classifier_steps, lr=cfg.classifier_lr,
                relu=cfg.classifier_relu, classifier=cls)
        return model.classifiers[key]

    def _logits(self, model: _Model, x: Any, candidates: ClassTexts, seed: int) -> np.ndarray:
        cls = self._classifier(model, candidates, seed)
        feats = self._features(x, "test")
        out = []
        with torch.no_grad():
            for i in range(0, len(feats), 4096):
                mu = model.vae.skeleton_mean(feats[i:i + 4096].to(self._device))
                out.append(cls(mu).cpu())
        if not out:
            return np.zeros((0, len(candidates)), np.float32)
        return torch.cat(out).numpy()

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if train.kind != "features":
            raise ZsbenchError("SynSE works on frozen pretrained skeleton features "
                               f"(inputs='features'); got {train.kind!r}")
        x = self._features(train.x, "training")
        if len(x) == 0:
            raise ZsbenchError("SynSE: no training samples")
        self._device = torch.device(ctx.device)
        self._seed = int(ctx.seed)
        family = ctx.dataset.family
        n_unseen = max(ctx.dataset.num_classes - len(train.texts), 1)
        self._latent, latent_from = cfg.resolve_latent_size(family)
        self._cycle, cycle_from = cfg.resolve_cycle_length(family, n_unseen)
        self._train = train
        self._gate, self._seen_scorer = None, None
        self.model = self._train_model(x, np.asarray(train.labels), train.texts, ctx,
                                       self._seed, "SynSE training")
        losses = self.model.losses
        ctx.details.update({"synse_latent_size": self._latent, "synse_latent_source": latent_from,
                            "synse_cycle_length": self._cycle, "synse_cycle_source": cycle_from,
                            "synse_num_cycles": cfg.num_cycles,
                            "synse_final_loss": float(np.mean(losses[-min(100, len(losses)):])),
                            "synse_model_selection": "last cycle"})
        ctx.log(f"SynSE: L={self._latent} ({latent_from}), {cfg.num_cycles} cycles of "
                f"{self._cycle} ({cycle_from}), final loss {losses[-1]:.4f}")

    # ------------------------------------------------------------------ inference
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        """Logits of the latent classifier over ``candidates`` on the skeleton encoder mean
        ``mu_s(x)`` (ReLU'd as in the code). For ZSL the candidates are the unseen classes
        (the official classifier); for other candidate sets the classifier covers all of
        them, each class's latents generated from its own verb and noun phrases."""
        if self.model is None:
            raise ZsbenchError("SynSE: score() called before fit()")
        if test.kind != "features":
            raise ZsbenchError(f"SynSE scores features, got {test.kind!r}")
        return self._logits(self.model, test.x, candidates, self._seed)

    # ------------------------------------------------------------------ GZSL gate
    def _seen_classifier(self, x: np.ndarray, labels: np.ndarray, classes: np.ndarray,
                         seed: int) -> gating.LinearScorer:
        cfg = self.config
        return gating.train_seen_classifier(x, labels, classes, epochs=cfg.seen_classifier_epochs,
                                            batch_size=cfg.seen_classifier_batch_size,
                                            lr=cfg.seen_classifier_lr, seed=seed,
                                            device=str(self._device))

    def _holdout(self, n_unseen_rows: int, n_seen_rows: int) -> tuple[int, int] | float:
        cfg = self.config
        if n_unseen_rows > cfg.gate_holdout_unseen and n_seen_rows > cfg.gate_holdout_seen:
            return (cfg.gate_holdout_unseen, cfg.gate_holdout_seen)
        return cfg.gate_small_holdout

    def _fit_gate(self, n_unseen: int, ctx: RunContext) -> gating.SeenUnseenGate:
        """The official validation phase: a second SynSE and seen classifier trained
        without the validation-unseen classes (and without the held-out seen samples), then
        the gate on their outputs for validation-unseen and held-out seen samples."""
        cfg = self.config
        train = self._train
        assert train is not None
        labels = np.asarray(train.labels)
        seen = np.asarray(train.texts.class_ids, dtype=np.int64)
        prob = gating.gate_validation_split(labels, seen, n_unseen, self._seed + 17,
                                            val_unseen=train.val_unseen,
                                            holdout=cfg.gate_seen_holdout_fraction)
        x = np.asarray(train.x, dtype=np.float32)
        vseed = self._seed + 101
        model = self._train_model(torch.from_numpy(x[prob.train_idx]), labels[prob.train_idx],
                                  train.texts.subset(prob.val_seen), ctx, vseed,
                                  "SynSE gate (validation phase)")
        scorer = self._seen_classifier(x[prob.train_idx], labels[prob.train_idx],
                                       prob.val_seen, vseed)
        rows_x = x[prob.test_idx]
        is_u = np.isin(labels[prob.test_idx], prob.val_unseen)
        z = gating.softmax(self._logits(model, rows_x, train.texts.subset(prob.val_unseen), vseed))
        g = scorer.logits(rows_x)
        z_u, z_s = z[is_u], z[~is_u]
        if cfg.gate_unseen_rows == "held_out_seen":
            ctx.note_deviation(GATE_DEVIATION)
            z_u = gating.synse_code_unseen_rows(z_s, int(is_u.sum()))
        holdout = self._holdout(int(is_u.sum()), int((~is_u).sum()))
        k = min(len(prob.val_unseen), n_unseen)
        gate = gating.fit_gate((z_u, g[is_u]), (z_s, g[~is_u]),
                               temperatures=cfg.gate_temperatures,
                               thresholds=cfg.gate_thresholds, holdout=holdout,
                               seed=cfg.gate_seed, threshold_rule=cfg.gate_threshold_rule, k=k)
        gate.info.update({"validation_unseen": [int(c) for c in prob.val_unseen],
                          "validation_source": "split" if train.val_unseen is not None
                          and len(train.val_unseen) else "carved (seeded)",
                          "gate_unseen_rows": cfg.gate_unseen_rows,
                          "gate_holdout_rule": list(holdout) if isinstance(holdout, tuple)
                          else f"fraction {holdout}"})
        return gate

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray | None:
        """Route each sample to the seen classifier or to the ZSL classifier with the
        gate (official ``gating_synse_model_eval.py``); returns candidate columns."""
        if self.model is None or self._train is None:
            raise ZsbenchError("SynSE: gzsl_decide() called before fit()")
        seen_mask = np.asarray(seen_mask, dtype=bool)
        ids = np.asarray(candidates.class_ids, dtype=np.int64)
        seen_cols, unseen_cols = np.flatnonzero(seen_mask), np.flatnonzero(~seen_mask)
        if not len(unseen_cols) or not len(seen_cols):
            raise ZsbenchError("SynSE gate: the candidates need both seen and unseen classes")
        train_seen = set(int(c) for c in self._train.texts.class_ids)
        if not set(int(c) for c in ids[seen_cols]) <= train_seen:
            raise ZsbenchError("SynSE gate: a 'seen' candidate was not a training class")
        key = tuple(int(c) for c in ids[unseen_cols])
        if self._gate is None or self._gate[0] != key:
            self._gate = (key, self._fit_gate(len(unseen_cols), ctx))
        gate = self._gate[1]
        if self._seen_scorer is None:
            self._seen_scorer = self._seen_classifier(
                np.asarray(self._train.x, dtype=np.float32), np.asarray(self._train.labels),
                np.asarray(self._train.texts.class_ids, dtype=np.int64), self._seed)
        scorer = self._seen_scorer
        order = {int(c): i for i, c in enumerate(scorer.classes)}
        g = scorer.logits(np.asarray(test.x, dtype=np.float32))
        g_seen = g[:, [order[int(c)] for c in ids[seen_cols]]]
        z = gating.softmax(self._logits(self.model, test.x, candidates.subset(ids[unseen_cols]),
                                        self._seed))
        pred = gate.route(z, g_seen, seen_cols, unseen_cols)
        is_seen = gate.is_seen(z, g_seen)
        ctx.details["synse_gate"] = {**gate.summary(),
                                     "routed_seen_fraction": float(np.mean(is_seen))}
        if gate.threshold_rule == "official":
            ctx.note_deviation("gate_threshold_rule_official")
        return pred
