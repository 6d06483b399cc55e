"""Feature diagnostics of unseen-class test features, before and after a method's alignment
(the analysis of PGFA, Zhou et al., §IV-G): the Fisher discriminant ratio, the silhouette
score with cosine distance and true unseen labels as clusters, and a t-SNE plot.

Turned on with the run option ``diagnostics`` (``metrics``: the two numbers; ``tsne``: also
the plot; default ``off``). "Before" are the features the method receives (the pretrained
encoder's for two-stage methods), "after" what its optional ``embed(test, ctx)`` hook
returns (see ``zsbench.api.Method.embed``). The numbers go into the fold's
``details["feature_diagnostics"]``; the plot is ``diagnostics/<fold>.png`` beside the record.

Definitions (PGFA §IV-G; the paper gives the formulas, not code, so these choices are ours):

* Fisher ratio ``tr(S_w^-1 S_b)`` with ``S_w = sum_k Cov_k`` (per-class covariance, ddof=1)
  and ``S_b = sum_k (mu_k - mu)(mu_k - mu)^T`` (unweighted; ``mu`` the mean of all samples).
  ``S_w`` is singular whenever the dimension exceeds the samples, so ``S_w + r I`` is
  inverted with ``r = 1e-3 * tr(S_w) / D`` (``RIDGE``): compare ratios computed the same way.
* Silhouette: ``sklearn.metrics.silhouette_score(metric="cosine")``, on at most
  ``MAX_SAMPLES`` samples (a seeded, per-class stratified subset) as it is quadratic.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .api import ZsbenchError

RIDGE = 1e-3
MAX_SAMPLES = 2000


def fisher_ratio(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> float | None:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) < 2 or x.ndim != 2 or len(x) < 3:
        return None
    d = x.shape[1]
    mu = x.mean(0)
    s_w = np.zeros((d, d))
    s_b = np.zeros((d, d))
    for c in classes:
        xc = x[y == c]
        mc = xc.mean(0)
        if len(xc) > 1:
            s_w += np.cov(xc, rowvar=False, ddof=1).reshape(d, d)
        s_b += np.outer(mc - mu, mc - mu)
    reg = ridge * max(float(np.trace(s_w)) / d, 1e-12)
    return float(np.trace(np.linalg.solve(s_w + reg * np.eye(d), s_b)))


def _subset(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` samples, the same share of every class."""
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(limit * len(idx) / len(y))))
        keep.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def silhouette(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float | None:
    from sklearn.metrics import silhouette_score

    y = np.asarray(y)
    idx = _subset(y, MAX_SAMPLES, seed)
    x, y = np.asarray(x, dtype=np.float64)[idx], y[idx]
    if not 2 <= len(np.unique(y)) <= len(y) - 1:
        return None
    return float(silhouette_score(x, y, metric="cosine"))


def measures(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, Any]:
    return {"fisher_ratio": fisher_ratio(x, y), "silhouette": silhouette(x, y, seed),
            "dim": int(np.asarray(x).shape[1])}


def tsne_2d(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    n = len(x)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(np.asarray(x, dtype=np.float64))


def tsne_plot(panels: dict[str, np.ndarray], y: np.ndarray, names: dict[int, str],
              path: Path, title: str, seed: int = 0) -> None:
    """One PNG, one t-SNE panel per feature set, points coloured by true unseen class."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ZsbenchError("diagnostics=tsne draws its plot with matplotlib: pip install "
                           "matplotlib, or use diagnostics=metrics") from None

    from .results import atomic_writer

    fig = Figure(figsize=(5 * len(panels), 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    classes = list(np.unique(y))
    for i, (label, x) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        xy = tsne_2d(x, seed)
        for j, c in enumerate(classes):
            m = y == c
            ax.scatter(xy[m, 0], xy[m, 1], s=8, color=f"C{j % 10}",
                       marker="o" if j < 10 else "^", label=names.get(int(c), str(c)))
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:
        handles, labels = fig.axes[-1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7)
    fig.suptitle(title, fontsize=9)
    with atomic_writer(path) as fh:
        fig.savefig(fh, format="png", dpi=110)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "fold"


def fold_diagnostics(emb: dict[str, Any], out_dir: Path, fold_name: str, mode: str,
                     seed: int = 0) -> dict[str, Any]:
    """Numbers (and with ``mode == "tsne"`` the plot) for one fold. ``emb`` holds
    ``labels`` (true unseen class ids), ``after`` and optionally ``before`` (N, D) arrays and
    ``names`` (class id -> name)."""
    y = np.asarray(emb["labels"])
    out: dict[str, Any] = {"n": int(len(y)), "classes": int(len(np.unique(y)))}
    panels: dict[str, np.ndarray] = {}
    for key in ("before", "after"):
        x = emb.get(key)
        if x is None:
            continue
        x = np.asarray(x)
        if x.ndim != 2 or len(x) != len(y):
            out[key] = {"error": f"expected ({len(y)}, D) features, got shape {x.shape}"}
            continue
        out[key] = measures(x, y, seed)
        panels[f"{key} alignment (D={x.shape[1]})"] = x
    if mode == "tsne" and panels and len(y) >= 5:
        rel = Path("diagnostics") / f"{safe_name(fold_name)}.png"
        tsne_plot(panels, y, emb.get("names", {}), Path(out_dir) / rel,
                  f"{fold_name}: unseen-class test features", seed)
        out["tsne"] = rel.as_posix()
    return out
