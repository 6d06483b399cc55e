"""DeViSE: a linear map M (no bias) from skeleton features into the text-embedding space,
trained with the hinge rank loss

    L(v, y) = sum_{j != y} max(0, m - t_y^T M v + t_j^T M v)

over the seen classes (t_c unit-normalised class text embeddings); a test sample gets
score s_c = t_c^T M v for each candidate class."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from zsbench.api import ClassTexts, Method, RunContext, TestView, TrainView, ZsbenchError

from .config import DeViSEConfig


def hinge_rank_loss(scores: torch.Tensor, target: torch.Tensor, margin: float,
                    negatives: str = "all") -> torch.Tensor:
    """Mean over the batch of the DeViSE hinge rank loss. ``scores`` (B, K), ``target`` (B,)
    column indices."""
    true = scores.gather(1, target[:, None])
    viol = (margin - true + scores).clamp(min=0)
    viol = viol.scatter(1, target[:, None], 0.0)
    per_sample = viol.max(dim=1).values if negatives == "hardest" else viol.sum(dim=1)
    return per_sample.mean()


def unit_rows(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


class DeViSE(Method):
    config: DeViSEConfig

    def __init__(self, config: DeViSEConfig) -> None:
        super().__init__(config)
        self.proj: nn.Linear | None = None
        self.mu: np.ndarray | None = None
        self.sd: np.ndarray | None = None

    def _features(self, x: np.ndarray) -> torch.Tensor:
        if x.ndim != 2:
            raise ZsbenchError("DeViSE expects (N, D) skeleton features; got shape "
                               f"{x.shape} (use a skeleton encoder with the pretraining stage)")
        x = np.asarray(x, dtype=np.float32)
        if self.config.feature_norm == "standardize":
            assert self.mu is not None and self.sd is not None
            x = (x - self.mu) / self.sd
        return torch.from_numpy(x)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        assert self.proj is not None
        z = self.proj(x)
        return nn.functional.normalize(z, dim=1) if self.config.normalize_projection else z

    def fit(self, train: TrainView, ctx: RunContext) -> None:
        cfg = self.config
        x = np.asarray(train.x, dtype=np.float32)
        self.mu = x.mean(0, keepdims=True)
        self.sd = x.std(0, keepdims=True) + 1e-6
        feats = self._features(x).to(ctx.device)
        text = torch.from_numpy(unit_rows(train.texts.matrix(cfg.text_kind))).to(ctx.device)
        col = {int(c): i for i, c in enumerate(train.texts.class_ids)}
        target = torch.as_tensor([col[int(c)] for c in train.labels], device=ctx.device)
        gen = torch.Generator().manual_seed(ctx.seed)
        self.proj = nn.Linear(feats.shape[1], text.shape[1], bias=False).to(ctx.device)
        with torch.no_grad():  # seeded init independent of global RNG state
            w = torch.empty_like(self.proj.weight, device="cpu")
            bound = 1.0 / np.sqrt(feats.shape[1])
            w.uniform_(-bound, bound, generator=gen)
            self.proj.weight.copy_(w)
        opt = torch.optim.Adam(self.proj.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
        n = len(feats)
        for _ in ctx.progress(range(cfg.epochs), desc=f"devise {ctx.fold_name}", total=cfg.epochs, leave=False):
            order = torch.randperm(n, generator=gen).to(ctx.device)
            for start in range(0, n, cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                scores = self._project(feats[idx]) @ text.T
                loss = hinge_rank_loss(scores, target[idx], cfg.margin, cfg.negatives)
                opt.zero_grad()
                loss.backward()
                opt.step()

    @torch.no_grad()
    def score(self, test: TestView, candidates: ClassTexts, ctx: RunContext) -> np.ndarray:
        if self.proj is None:
            raise ZsbenchError("DeViSE.score() called before fit()")
        text = torch.from_numpy(unit_rows(candidates.matrix(self.config.text_kind))).to(ctx.device)
        z = self._project(self._features(test.x).to(ctx.device))
        return (z @ text.T).cpu().numpy()

    @torch.no_grad()
    def embed(self, test: TestView, ctx: RunContext) -> np.ndarray:
        """Test features mapped into the text space (M v, unit-normalised if configured):
        "after alignment" for the feature diagnostics."""
        if self.proj is None:
            raise ZsbenchError("DeViSE.embed() called before fit()")
        return self._project(self._features(test.x).to(ctx.device)).cpu().numpy()
