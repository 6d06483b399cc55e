"""ReViSE on skeleton features, as ``revise/zsl_revise.py`` of the SynSE repository trains
it: two autoencoders aligned by a Gaussian-kernel MMD between their codes, a multi-class
hinge loss in a 50-d common space, reconstruction losses (the skeleton one with a
contractive term). ZSL score of sample x and class c: ``<e_v(x), e_t(t_c)>`` (dot product
of the tanh outputs). GZSL: the core's calibrated stacking, or the repository's gate with
``--set gzsl_rule=method``."""
from __future__ import annotations

import numpy as np
import torch

from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError

from .config import ReViSEConfig
from .modules import ReviseNet
from .shared import (gate_decide, label_columns, selection_rows, text_matrix, train_epochs,
                     view_features)


def autoencoder_sizes(in_dim: int, hidden: list[int] | None, code: int, wide_from: int,
                      default_hidden: int = 512) -> list[int]:
    """``[in, *hidden, code]``; ``hidden=None`` applies the repository's rule: one
    ``default_hidden``-wide layer when ``in_dim > wide_from``, none otherwise."""
    if hidden is None:
        hidden = [default_hidden] if in_dim > wide_from else []
    return [in_dim, *hidden, code]


class ReViSE(Method):
    """Hubert Tsai, Huang, Salakhutdinov, "Learning Robust Visual-Semantic Embeddings",
    ICCV 2017; skeleton version of the SynSE repository (Gupta et al., ICIP 2021)."""

    config: ReViSEConfig

    def __init__(self, config: ReViSEConfig) -> None:
        super().__init__(config)
        self.net: ReviseNet | None = None
        self.train_view: TrainView | None = None
        self.history: dict = {}
        self.log_input = config.log_input is True
        self._device = torch.device("cpu")

    # ------------------------------------------------------------------ helpers
    def _features(self, view: TrainView | TestView) -> torch.Tensor:
        arr = view_features(view, "ReViSE")
        if self.log_input and arr.min() <= -1.0:
            raise ZsbenchError("ReViSE: log_input=true needs features > -1 (the repository's "
                               "Shift-GCN features are non-negative); got a minimum of "
                               f"{arr.min():.3g}. Set method.log_input=false or auto")
        return torch.from_numpy(arr)

    def _scores(self, x: torch.Tensor, class_text: torch.Tensor) -> torch.Tensor:
        assert self.net is not None
        out = []
        with torch.no_grad():
            cemb = self.net.text.embed(class_text.to(self._device))
            for chunk in x.split(self.config.test_batch_size):
                ev = self.net.visual_embedding(chunk.to(self._device), self.log_input)
                out.append((ev @ cemb.T).cpu())
        return torch.cat(out)

    # ------------------------------------------------------------------ training
    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        if cfg.log_input == "auto":
            self.log_input = bool(view_features(train, "ReViSE").min() >= 0.0)
        x = self._features(train)
        text = torch.from_numpy(text_matrix(train.texts, cfg.text_kind, "ReViSE"))
        cols = label_columns(train.labels, train.texts.class_ids, "ReViSE")
        self.train_view = train
        self._device = device = torch.device(ctx.device)
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)

        rows, hold = selection_rows(train, cfg, ctx.seed + 3)
        fit_classes = np.unique(cols[rows])              # columns of the classes trained on
        x_fit = x[rows].to(device)
        sample_text = text[cols[rows]].to(device)
        class_text = text[fit_classes].to(device)

        self.net = net = ReviseNet(
            autoencoder_sizes(x.shape[1], cfg.visual_hidden, cfg.code_dim, 512),
            autoencoder_sizes(text.shape[1], cfg.text_hidden, cfg.code_dim, 300),
            cfg.embed_dim).to(device)
        opt = torch.optim.Adam([
            {"params": net.visual.parameters(), "weight_decay": cfg.visual_weight_decay},
            {"params": net.text.parameters(), "weight_decay": cfg.text_weight_decay}],
            lr=cfg.lr, foreach=True)

        def step(idx: torch.Tensor) -> torch.Tensor:
            return net.losses(x_fit[idx], sample_text[idx], class_text, log_input=self.log_input,
                              gamma=cfg.contractive_gamma,
                              contractive_differentiable=cfg.contractive_differentiable,
                              mmd_k=cfg.mmd_k, margin=cfg.hinge_margin)["total"]

        val_scores = val_labels = None
        if hold is not None:
            val_text = text[label_columns(hold.val_classes, train.texts.class_ids, "ReViSE")]
            x_val, val_labels = x[hold.val_rows], train.labels[hold.val_rows]

            def val_scores() -> np.ndarray:
                return self._scores(x_val, val_text).numpy()

        self.history = train_epochs(net, opt, step, len(x_fit), epochs=cfg.epochs,
                                    batch_size=cfg.batch_size, gen=gen, ctx=ctx,
                                    desc=f"ReViSE {ctx.fold_name}".strip(), cfg=cfg, hold=hold,
                                    val_scores=val_scores, val_labels=val_labels)
        ctx.details["revise"] = {**self.history, "log_input": self.log_input,
                                 "visual_sizes": net.visual.sizes, "text_sizes": net.text.sizes}

    # ------------------------------------------------------------------ inference
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        if self.net is None:
            raise ZsbenchError("ReViSE: score() called before fit()")
        text = torch.from_numpy(text_matrix(candidates, self.config.text_kind, "ReViSE"))
        return self._scores(self._features(test), text).numpy()

    def gzsl_decide(self, scores: np.ndarray, seen_mask: np.ndarray, test: TestView,
                    candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        return gate_decide(self, self.train_view, scores, seen_mask, test, candidates, ctx,
                           self.config, "ReViSE")
