"""SA-DVAE on frozen skeleton features (official ``train.py``, ``gating_train.py``,
``gating_eval.py`` of pha123661/SA-DVAE).

Training: ``num_cycles`` epochs over the seen-class training features in shuffled batches
(last partial batch kept); per batch the disentangled VAE loss with the epoch-rescaled
cyclic weights and the TC penalty, and every ``dis_step``-th batch one discriminator
update (:mod:`zsbench_sa_dvae.modules`). After training, text latents of the unseen
candidates train the ZSL classifier (Linear + ReLU, 500 latents per class, 300 Adam
steps); a test sample's ZSL scores are its logits on the skeleton encoder's *semantic*
mean. Scoring, the seen classifier and the GZSL routing are the CADA-VAE pipeline's
(:class:`zsbench_cada_vae.method.CrossAlignedVAEMethod`); the gate is fitted the SA-DVAE
way (:meth:`SADVAE._gate`): the validation run keeps the outputs of its best epoch on the
validation-unseen samples, seen gate rows are subsampled to the unseen row count, and the
hold-out is min(300, n // 6) rows per group.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from zsbench.api import ClassTexts, RunContext, ZsbenchError
from zsbench.nn.gate import (SeenUnseenGate, ThresholdRule, fit_gate, gate_validation_split, softmax,
                             train_seen_classifier)
from zsbench.nn.selection import BestEpoch
from zsbench_cada_vae.method import CrossAlignedVAEMethod, unit_rows

from .config import SADVAEConfig
from .modules import (DisentangledVAE, ScheduleParams, TCDiscriminator, epoch_batches,
                      train_epoch)


def fit_sadvae_gate(unseen_rows: tuple[np.ndarray, np.ndarray], seen_rows: tuple[np.ndarray, np.ndarray],
                    *, temperatures: Sequence[float], thresholds: Sequence[float],
                    balance_seen: bool = True, holdout_max: int = 300, holdout_div: int = 6,
                    seed: int = 5, C: float = 1.0, threshold_rule: ThresholdRule = "consistent",
                    k: int | None = None) -> SeenUnseenGate:
    """gating_train.py: with one numpy stream seeded ``seed``, the seen rows are first drawn
    down to the unseen row count (without replacement, ``balance_seen``), then per
    temperature ``min(holdout_max, n // holdout_div)`` rows of each group are held out to
    choose the threshold (:func:`zsbench.nn.gate.fit_gate`). Rows: (ZSL softmax, seen logits)."""
    zu, gu = (np.asarray(a) for a in unseen_rows)
    zs, gs = (np.asarray(a) for a in seen_rows)
    rng = np.random.RandomState(seed)
    if balance_seen:
        sel = rng.choice(np.arange(len(zs)), min(len(zu), len(zs)), replace=False)
        zs, gs = zs[sel], gs[sel]
    holdout = (min(holdout_max, len(zu) // holdout_div), min(holdout_max, len(zs) // holdout_div))
    return fit_gate((zu, gu), (zs, gs), temperatures=temperatures, thresholds=thresholds,
                    holdout=holdout, seed=seed, C=C, threshold_rule=threshold_rule, k=k, rng=rng)


class SADVAE(CrossAlignedVAEMethod):
    """Li, Wei, Chen, Yu, Yang, Hsu, "SA-DVAE: Improving Zero-Shot Skeleton-Based Action
    Recognition by Disentangled Variational Autoencoders", ECCV 2024."""

    config: SADVAEConfig
    name = "sa_dvae"

    def __init__(self, config: SADVAEConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        self.discriminator: TCDiscriminator | None = None

    def text_rows(self, texts: ClassTexts) -> np.ndarray:
        """The configured kinds concatenated in order, then each row L2-normalised
        (train.py: modes of --tm concatenated, then normalised)."""
        kinds = self.config.text_kinds
        missing = [k for k in kinds if k not in texts.embeddings]
        if missing:
            raise ZsbenchError(f"sa_dvae: text kinds {missing} are not loaded; set "
                               f"method.text_kinds to kinds the text source provides")
        return unit_rows(np.concatenate([np.asarray(texts.matrix(k), dtype=np.float32)
                                         for k in kinds], axis=1))

    # ------------------------------------------------------------------ training
    def _fit_core(self, x: np.ndarray, labels: np.ndarray, texts: ClassTexts, ctx: RunContext,
                  n_unseen: int, seed: int,
                  epoch_hook: Callable[[int], None] | None = None) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        seed = cfg.seed if cfg.seed is not None else seed
        self._family, self._seed = ctx.dataset.family, seed
        self._device = dev = torch.device(ctx.device)
        res = cfg.resolve(ctx.dataset.family, ctx.protocol)
        rows = torch.as_tensor(self.text_rows(texts), dtype=torch.float32, device=dev)
        pos = {int(c): i for i, c in enumerate(texts.class_ids)}
        try:
            col = torch.as_tensor([pos[int(c)] for c in labels], dtype=torch.long, device=dev)
        except KeyError as e:
            raise ZsbenchError(f"{self.name}: training label {e} has no class text") from None
        xs = torch.as_tensor(x, device=dev)
        t_all = rows[col]
        l_r, l_v = res["latent_size"], res["irrelevant_latent_size"]
        use_tc = cfg.use_tc and l_v > 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = DisentangledVAE(x.shape[1], rows.shape[1], l_r, l_v, per_dim_noise=cfg.per_dim_noise,
                                  decoder_out_relu=cfg.decoder_out_relu).to(dev)
            try:
                disc = TCDiscriminator(l_r + l_v).to(dev) if use_tc else None
            except ValueError as e:
                raise ZsbenchError(f"sa_dvae: {e}; use larger latent sizes or use_tc=false") from None
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(vae.parameters(), lr=res["lr"], foreach=True)
        dis_opt = (torch.optim.Adam(disc.parameters(), lr=res["lr"], foreach=True)
                   if disc is not None else None)
        sched = ScheduleParams(kind=cfg.schedule, text_kl_from_epoch=cfg.text_kl_from_cycle,
                               cross_start=cfg.cross_alignment_start, beta_x=cfg.beta_x,
                               beta_y=cfg.beta_y)
        self.vae, self.discriminator = vae, disc  # type: ignore[assignment]
        self.seen_ids = np.asarray(texts.class_ids, dtype=np.int64)
        n = len(xs)
        history: list[dict[str, float]] = []
        # model_selection=best_on_test (train.py keeps the best-on-test epoch): main fit only
        best = BestEpoch(ctx, vae) if epoch_hook is None else None
        for epoch in ctx.progress(range(cfg.num_cycles), desc=f"{self.name} {ctx.fold_name}",
                                  total=cfg.num_cycles):
            batches = [b.to(dev) for b in epoch_batches(n, res["batch_size"], gen)]
            last = train_epoch(vae, disc, opt, dis_opt, xs, t_all, batches, epoch, schedule=sched,
                               dis_step=res["dis_step"], tc_form=cfg.tc_form,
                               dis_text_pairs=cfg.dis_text_pairs, generator=gen)
            history.append(last)
            vae.eval()
            if epoch_hook is not None:
                epoch_hook(epoch)
            if best is not None and best.active:
                self._unseen_cls.clear()   # a fresh ZSL classifier per epoch, as train.py
                best.after_epoch(epoch)
        if best is not None:
            best.restore()
            self._unseen_cls.clear()
        vae.eval()
        self.seen_cls = train_seen_classifier(
            x, labels, self.seen_ids, epochs=cfg.seen_cls_epochs, batch_size=cfg.seen_cls_batch_size,
            lr=cfg.seen_cls_lr, seed=seed, device=str(dev))
        self._unseen_cls.clear()
        self._joint_cls.clear()
        self._x, self._labels = x, np.asarray(labels)
        return {**{k: v for k, v in res.items() if k != "fixed_gate"}, "use_tc": use_tc,
                "seed": seed, "epochs": cfg.num_cycles,
                "batches_per_epoch": -(-n // res["batch_size"]),
                "final_loss_terms": history[-1] if history else {},
                "vae_train_seconds": round(time.perf_counter() - t0, 2)}

    # ------------------------------------------------------------------ the gate
    def _gate(self, k: int, ctx: RunContext) -> SeenUnseenGate:
        """Validation run (train.py --phase val) + gating_train.py, clean rows."""
        if k in self._gates:
            return self._gates[k]
        cfg = self.config
        train = self._train
        assert train is not None and self.seen_ids is not None
        x, labels = self._features(train.x), np.asarray(train.labels)
        prob = gate_validation_split(labels, self.seen_ids, k, ctx.seed + 101,
                                     val_unseen=train.val_unseen, holdout=cfg.gate_val_holdout)
        xv, yv = x[prob.test_idx], labels[prob.test_idx]
        is_vu = np.isin(yv, prob.val_unseen)
        vu_texts = train.texts.subset(prob.val_unseen)
        sub = type(self)(cfg)
        best: dict[str, Any] = {"acc": -1.0}

        def keep_best(epoch: int) -> None:
            if cfg.gate_val_selection == "last" and epoch < cfg.num_cycles - 1:
                return
            sub._unseen_cls.clear()
            logits = sub._unseen_logits(xv, vu_texts)
            acc = float(np.mean(prob.val_unseen[np.argmax(logits[is_vu], axis=1)] == yv[is_vu]))
            if acc > best["acc"]:
                best.update(acc=acc, epoch=epoch, logits=logits)

        sub_info = sub._fit_core(x[prob.train_idx], labels[prob.train_idx],
                                 train.texts.subset(prob.val_seen), ctx, len(prob.val_unseen),
                                 ctx.seed + 1, epoch_hook=keep_best)
        z_all, g_all = softmax(best["logits"]), sub._seen_logits(xv, prob.val_seen)
        zu, gu, zs, gs = z_all[is_vu], g_all[is_vu], z_all[~is_vu], g_all[~is_vu]
        temps, ths = cfg.gate_temperatures, cfg.gate_thresholds
        if cfg.gate_mode == "official_fixed":
            fixed = cfg.resolve(ctx.dataset.family, ctx.protocol)["fixed_gate"]
            if fixed is not None:
                ctx.note_deviation("gate_official_fixed")
                temps, ths = [fixed[1]], [fixed[0]]
            else:
                ctx.log("sa_dvae: this preset's script searches the gate; gate_mode=official_fixed "
                        "has no fixed values here")
        if cfg.gate_threshold_rule == "official":
            ctx.note_deviation("gate_threshold_rule_official")
        gate = fit_sadvae_gate((zu, gu), (zs, gs), temperatures=temps, thresholds=ths,
                               balance_seen=cfg.gate_balance_seen, holdout_max=cfg.gate_holdout_max,
                               holdout_div=cfg.gate_holdout_div, seed=cfg.gate_seed, C=cfg.gate_C,
                               threshold_rule=cfg.gate_threshold_rule, k=min(k, len(prob.val_unseen)))
        gate.info.update({"val_unseen_classes": [int(c) for c in prob.val_unseen],
                          "val_zsl_acc": best["acc"], "val_best_epoch": best["epoch"],
                          "val_vae_train_seconds": sub_info["vae_train_seconds"]})
        self._gates[k] = gate
        return gate
