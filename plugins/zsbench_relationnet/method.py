"""RelationNet on skeleton features: a semantic network maps each class text into the
feature space, a relation module scores every (sample, class) pair in (0, 1), trained with
the squared error to the one-hot class indicator on random episodes (``AwA1_RN.py`` of the
authors' zero-shot code). ZSL: the arg-max relation score over the unseen classes. GZSL:
the core's calibrated stacking on the relation scores (the method has no gate)."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError
from zsbench_revise.shared import (label_columns, selection_rows, text_matrix, view_features,
                                   zsl_accuracy)

from .config import RelationNetConfig
from .modules import RelationNet, relation_mse


def step_lr(base: float, episode: int, step: int, gamma: float) -> float:
    """StepLR stepped with the episode index: ``base * gamma ** (episode // step)``."""
    return base * gamma ** (episode // step)


def episode_count(cfg: RelationNetConfig, n: int) -> int:
    return cfg.episodes if cfg.epochs is None else cfg.epochs * math.ceil(n / cfg.batch_size)


class RelationNetMethod(Method):
    """Sung, Yang, Zhang, Xiang, Torr, Hospedales, "Learning to Compare: Relation Network
    for Few-Shot Learning", CVPR 2018 (zero-shot variant)."""

    config: RelationNetConfig

    def __init__(self, config: RelationNetConfig) -> None:
        super().__init__(config)
        self.net: RelationNet | None = None
        self.history: list[float] = []
        self._device = torch.device("cpu")

    def _text(self, texts: ClassTexts) -> torch.Tensor:
        return torch.from_numpy(text_matrix(texts, self.config.text_kind, "RelationNet",
                                            normalise=self.config.normalize_text))

    def _scores(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        assert self.net is not None
        self.net.eval()
        with torch.no_grad():
            emb = self.net.semantic(text.to(self._device))
            out = [self.net.relation(c.to(self._device), emb).cpu()
                   for c in x.split(self.config.test_batch_size)]
        return torch.cat(out)

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        x = torch.from_numpy(view_features(train, "RelationNet"))
        text = self._text(train.texts)
        cols = label_columns(train.labels, train.texts.class_ids, "RelationNet")
        self._device = device = torch.device(ctx.device)
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)

        rows, hold = selection_rows(train, cfg, ctx.seed + 3)
        x_fit, c_fit = x[rows].to(device), torch.from_numpy(cols[rows]).to(device)
        fit_classes = torch.unique(c_fit)
        text_d = text.to(device)
        self.net = net = RelationNet(x.shape[1], text.shape[1], cfg.semantic_hidden,
                                     cfg.relation_hidden).to(device)
        opt = torch.optim.Adam([
            {"params": net.semantic.parameters(), "weight_decay": cfg.semantic_weight_decay},
            {"params": net.relation.parameters(), "weight_decay": cfg.relation_weight_decay}],
            lr=cfg.lr, foreach=True)
        n = len(x_fit)
        episodes = episode_count(cfg, n)
        if hold is not None:
            val_pos = label_columns(hold.val_classes, train.texts.class_ids, "RelationNet")
            x_val, y_val = x[hold.val_rows], train.labels[hold.val_rows]
        best, best_state, best_episode = -1.0, None, -1
        self.history = []
        running = 0.0
        for ep in ctx.progress(range(episodes), desc=f"RelationNet {ctx.fold_name}".strip(),
                               total=episodes):
            for group in opt.param_groups:
                group["lr"] = step_lr(cfg.lr, ep, cfg.lr_step, cfg.lr_gamma)
            net.train()
            idx = torch.randperm(n, generator=gen)[:cfg.batch_size].to(device)
            c = c_fit[idx]
            classes = torch.unique(c) if cfg.pair_classes == "batch" else fit_classes
            target = torch.searchsorted(classes, c)
            loss = relation_mse(net(x_fit[idx], text_d[classes]), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += float(loss.detach())
            if (ep + 1) % cfg.eval_every == 0 or ep + 1 == episodes:
                self.history.append(running / ((ep % cfg.eval_every) + 1))
                running = 0.0
                if hold is not None:
                    acc = zsl_accuracy(self._scores(x_val, text[val_pos]).numpy(), y_val,
                                       hold.val_classes)
                    if acc > best:
                        best, best_episode = acc, ep
                        best_state = copy.deepcopy(net.state_dict())
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        ctx.details["relationnet"] = {"selection": cfg.selection, "episodes": episodes,
                                      "final_train_loss": self.history[-1]}
        if hold is not None:
            ctx.details["relationnet"].update(
                best_validation_zsl_acc=100.0 * best, best_episode=best_episode,
                validation_classes=[int(v) for v in hold.val_classes])

    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        if self.net is None:
            raise ZsbenchError("RelationNet: score() called before fit()")
        x = torch.from_numpy(view_features(test, "RelationNet"))
        return self._scores(x, self._text(candidates)).numpy()
