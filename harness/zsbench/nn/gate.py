"""The seen/unseen gate of the SynSE-repo methods (SynSE, CADA-VAE, ReViSE, JPoSE) and MSF.

A binary logistic regression decides, per GZSL test sample, whether it goes to the seen
classifier or to the zero-shot (unseen) classifier. Its input, per sample, is

    [ top-k of sort_desc(Z), top-k of sort_desc(softmax((G + 1e-12) / T)) ]

with Z the unseen classifier's softmax (over the unseen candidates), G the seen
classifier's logits, T a temperature and k the number of unseen classes (2k features).
Labels: 0 = unseen, 1 = seen. Training rows come from a *validation* problem carved out of
the seen classes: "unseen" rows are samples of the validation-unseen classes, "seen" rows
held-out samples of the remaining seen classes, with both classifiers trained without the
validation-unseen classes. A random part of each row set (``holdout``) is kept aside to pick
the temperature (grid 1..9) and the threshold (0.25..0.74) by gate accuracy, as the
official ``gating_*_training.py`` scripts do; fixed values are options (MSF's run scripts
pass T = 2, threshold 0.5).

Test rule (official ``gating_*_eval.py``): seen when ``1 - p_unseen > threshold``. The
training-side search predicts unseen when ``p_unseen > threshold``; the two agree only at
0.5. ``threshold_rule="consistent"`` (default) applies the searched rule at test time too;
``"official"`` keeps the scripts' flip.

Numpy only (no torch, no scikit-learn): :class:`LogisticRegressionL2` solves the same
L2-regularised problem as scikit-learn's ``LogisticRegression(C=1, solver='lbfgs',
multi_class='multinomial')`` to machine precision with Newton's method (for two classes
the multinomial form with both coefficient vectors penalised equals the binary form with
C doubled). :func:`train_seen_classifier` (torch, imported lazily) fits a linear softmax
classifier on seen-class features for methods that do not receive the encoder's own logits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from ..api import ZsbenchError
from ..views import ValidationProblem, carve_validation_classes, validation_problem

__all__ = [
    "OFFICIAL_TEMPERATURES", "OFFICIAL_THRESHOLDS", "temperature_softmax", "softmax",
    "gate_features", "LogisticRegressionL2", "SeenUnseenGate", "fit_gate", "route",
    "holdout_rows", "synse_code_unseen_rows", "gate_validation_split", "train_seen_classifier",
    "LinearScorer",
]

#: the official search grids (gating_*_training.py): T in 1..9, threshold 0.25..0.74
OFFICIAL_TEMPERATURES: tuple[float, ...] = tuple(float(t) for t in range(1, 10))
OFFICIAL_THRESHOLDS: tuple[float, ...] = tuple(th / 100 for th in range(25, 75))

ThresholdRule = Literal["consistent", "official"]
IntArray = Sequence[int] | np.ndarray


def softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def temperature_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax((logits + 1e-12) / T) (the scripts' ``temp_scale``)."""
    return softmax((np.asarray(logits, dtype=np.float64) + 1e-12) / float(temperature))


def _top_k_desc(p: np.ndarray, k: int) -> np.ndarray:
    s = -np.sort(-p, axis=1)
    if s.shape[1] < k:  # fewer columns than unseen classes: pad with zeros
        s = np.concatenate([s, np.zeros((s.shape[0], k - s.shape[1]))], axis=1)
    return s[:, :k]


def gate_features(unseen_probs: np.ndarray, seen_logits: np.ndarray, temperature: float,
                  k: int | None = None) -> np.ndarray:
    """(N, 2k) gate input: top-k sorted unseen-classifier probabilities, then top-k sorted
    temperature-softmaxed seen-classifier logits; k defaults to the number of unseen
    columns."""
    z = np.asarray(unseen_probs, dtype=np.float64)
    k = int(k or z.shape[1])
    if len(z) != len(seen_logits):
        raise ValueError(f"{len(z)} unseen-classifier rows, {len(seen_logits)} seen-classifier rows")
    return np.concatenate([_top_k_desc(z, k),
                           _top_k_desc(temperature_softmax(seen_logits, temperature), k)], axis=1)


# --------------------------------------------------------------------------------------
# Logistic regression
# --------------------------------------------------------------------------------------
class LogisticRegressionL2:
    """Binary logistic regression minimising ``C * sum_i logloss_i + |w|^2 / 2`` (intercept
    not penalised). ``multinomial=True`` reproduces scikit-learn's two-class
    ``multi_class='multinomial'`` fit (softmax over two score vectors, both penalised:
    the same problem with C doubled). ``predict_proba`` returns columns [P(0), P(1)]."""

    def __init__(self, C: float = 1.0, multinomial: bool = True, max_iter: int = 100,
                 tol: float = 1e-10) -> None:
        if C <= 0:
            raise ValueError("C must be positive")
        self.C, self.multinomial, self.max_iter, self.tol = float(C), multinomial, max_iter, tol
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0
        self.n_iter_ = 0

    def _objective(self, X1: np.ndarray, y: np.ndarray, theta: np.ndarray, lam: float) -> float:
        m = X1 @ theta
        loss = np.sum(np.logaddexp(0.0, m) - y * m)
        return float(loss + 0.5 * lam * np.sum(theta[:-1] ** 2))

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LogisticRegressionL2":
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if set(np.unique(y)) - {0.0, 1.0} or len(np.unique(y)) != 2:
            raise ValueError("LogisticRegressionL2 needs labels of both classes 0 and 1")
        c_eff = self.C * (2.0 if self.multinomial else 1.0)
        lam = 1.0 / c_eff
        X1 = np.concatenate([X, np.ones((len(X), 1))], axis=1)
        d = X1.shape[1]
        theta = np.zeros(d)
        reg = np.full(d, lam)
        reg[-1] = 0.0
        f = self._objective(X1, y, theta, lam)
        for it in range(1, self.max_iter + 1):
            p = 1.0 / (1.0 + np.exp(-(X1 @ theta)))
            grad = X1.T @ (p - y) + reg * theta
            w = p * (1.0 - p)
            hess = (X1 * w[:, None]).T @ X1 + np.diag(reg) + 1e-12 * np.eye(d)
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while True:  # backtracking (Newton steps are almost always accepted)
                cand = theta - t * step
                fc = self._objective(X1, y, cand, lam)
                if fc <= f - 1e-4 * t * float(grad @ step) or t < 1e-8:
                    break
                t *= 0.5
            theta, f_old, f = cand, f, fc
            self.n_iter_ = it
            if np.max(np.abs(t * step)) < self.tol or abs(f_old - f) <= self.tol * max(1.0, abs(f)):
                break
        self.coef_, self.intercept_ = theta[:-1], float(theta[-1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("LogisticRegressionL2 is not fitted")
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.stack([1.0 - p1, p1], axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(np.int64)


# --------------------------------------------------------------------------------------
# Gate
# --------------------------------------------------------------------------------------
@dataclass
class SeenUnseenGate:
    """A fitted gate reading the top ``k`` values of each classifier's outputs (2k
    features); at test time the unseen classifier needs at least k columns."""

    model: LogisticRegressionL2
    temperature: float
    threshold: float
    k: int
    threshold_rule: ThresholdRule = "consistent"
    validation_accuracy: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def p_unseen(self, unseen_probs: np.ndarray, seen_logits: np.ndarray) -> np.ndarray:
        """(N,) gate probability that each sample is of an unseen class."""
        if np.asarray(unseen_probs).shape[1] < self.k:
            raise ZsbenchError(f"the gate reads the top {self.k} unseen-classifier outputs; "
                               f"this problem has only {np.asarray(unseen_probs).shape[1]}")
        x = gate_features(unseen_probs, seen_logits, self.temperature, self.k)
        return self.model.predict_proba(x)[:, 0]

    def is_seen(self, unseen_probs: np.ndarray, seen_logits: np.ndarray) -> np.ndarray:
        """(N,) bool routing decision."""
        pu = self.p_unseen(unseen_probs, seen_logits)
        if self.threshold_rule == "official":
            return (1.0 - pu) > self.threshold
        return ~(pu > self.threshold)

    def route(self, unseen_probs: np.ndarray, seen_logits: np.ndarray,
              seen_cols: IntArray, unseen_cols: IntArray) -> np.ndarray:
        """Predicted candidate columns (see :func:`route`)."""
        return route(self.is_seen(unseen_probs, seen_logits), seen_logits, unseen_probs,
                     seen_cols, unseen_cols)

    def summary(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "threshold": self.threshold, "k": self.k,
                "threshold_rule": self.threshold_rule,
                "gate_validation_accuracy": self.validation_accuracy, **self.info}


def route(is_seen: np.ndarray, seen_scores: np.ndarray, unseen_scores: np.ndarray,
          seen_cols: IntArray, unseen_cols: IntArray) -> np.ndarray:
    """Column index per sample: ``seen_cols[argmax seen_scores]`` where ``is_seen``, else
    ``unseen_cols[argmax unseen_scores]``."""
    sc = np.asarray(seen_cols, dtype=np.int64)
    uc = np.asarray(unseen_cols, dtype=np.int64)
    s = sc[np.argmax(np.asarray(seen_scores), axis=1)]
    u = uc[np.argmax(np.asarray(unseen_scores), axis=1)]
    return np.where(np.asarray(is_seen, dtype=bool), s, u)


def holdout_rows(rng: np.random.RandomState, n: int, holdout: float | int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows) of ``n``; ``holdout`` = fraction (MSF: n // 5) or count
    (SynSE: 300 unseen / 400 seen), drawn with ``rng.choice(n, m, replace=False)`` like the
    scripts; train rows ascending (the scripts' ``list(set(...))``)."""
    if isinstance(holdout, float):
        m = int(np.floor(n * holdout + 1e-9))
    else:
        m = int(holdout)
    if not 0 < m < n:
        raise ZsbenchError(f"gate hold-out of {holdout} leaves no training or no hold-out rows "
                           f"out of {n}; use a hold-out fraction or more validation samples")
    held = rng.choice(np.arange(n), m, replace=False)
    train = np.setdiff1d(np.arange(n), held)
    return train, held


def fit_gate(unseen_rows: tuple[np.ndarray, np.ndarray], seen_rows: tuple[np.ndarray, np.ndarray],
             *, temperatures: Iterable[float] = OFFICIAL_TEMPERATURES,
             thresholds: Iterable[float] = OFFICIAL_THRESHOLDS,
             holdout: float | tuple[int, int] = 0.2, seed: int = 5, C: float = 1.0,
             multinomial: bool = True, threshold_rule: ThresholdRule = "consistent",
             k: int | None = None, rng: np.random.RandomState | None = None) -> SeenUnseenGate:
    """Fit the gate as ``gating_*_training.py`` does.

    ``unseen_rows = (Z_u, G_u)``: unseen-classifier probabilities (n_u, k) and seen-classifier
    logits (n_u, S) of validation-unseen samples; ``seen_rows = (Z_s, G_s)`` the same for
    held-out seen samples. Per temperature (in order): draw the hold-out rows (numpy
    ``RandomState(seed)``, unseen then seen, continuing across temperatures), fit the
    logistic regression on the rest, pick the first threshold with the best hold-out
    accuracy (predict unseen when ``p_unseen > th``); keep the first temperature with the
    best accuracy. ``holdout``: fraction of each row set, or (n_unseen, n_seen) counts.
    ``rng`` given: draw from it instead of a fresh ``RandomState(seed)`` (a script that
    drew from the same numpy stream before, e.g. SA-DVAE's seen-row subsample).
    """
    zu, gu = (np.asarray(a, dtype=np.float64) for a in unseen_rows)
    zs, gs = (np.asarray(a, dtype=np.float64) for a in seen_rows)
    k = int(k or zu.shape[1])
    if zs.shape[1] != zu.shape[1]:
        raise ValueError("unseen-classifier outputs of seen and unseen rows differ in width")
    temps = [float(t) for t in temperatures]
    ths = [float(t) for t in thresholds]
    if not temps or not ths:
        raise ValueError("fit_gate needs at least one temperature and one threshold")
    hu, hs = (holdout, holdout) if not isinstance(holdout, tuple) else holdout
    rng = rng if rng is not None else np.random.RandomState(seed)
    best: SeenUnseenGate | None = None
    best_acc = -1.0
    for t in temps:
        fu, fs = gate_features(zu, gu, t, k), gate_features(zs, gs, t, k)
        tr_u, va_u = holdout_rows(rng, len(fu), hu)
        tr_s, va_s = holdout_rows(rng, len(fs), hs)
        x_tr = np.concatenate([fu[tr_u], fs[tr_s]])
        y_tr = np.r_[np.zeros(len(tr_u)), np.ones(len(tr_s))]
        x_va = np.concatenate([fu[va_u], fs[va_s]])
        y_va = np.r_[np.zeros(len(va_u)), np.ones(len(va_s))]
        order = np.arange(len(x_tr))
        rng.shuffle(order)  # the scripts shuffle; keeps the RNG stream aligned with them
        model = LogisticRegressionL2(C=C, multinomial=multinomial).fit(x_tr[order], y_tr[order])
        pu = model.predict_proba(x_va)[:, 0]
        acc_t, th_t = 0.0, ths[0]
        for th in ths:
            acc = float(np.mean((1 - (pu > th)) == y_va))
            if acc > acc_t:
                acc_t, th_t = acc, th
        if acc_t > best_acc:
            best_acc = acc_t
            best = SeenUnseenGate(model=model, temperature=t, threshold=th_t, k=k,
                                  threshold_rule=threshold_rule, validation_accuracy=acc_t,
                                  info={"gate_rows_unseen": int(len(zu)),
                                        "gate_rows_seen": int(len(zs)),
                                        "gate_holdout": [int(len(va_u)), int(len(va_s))]})
    assert best is not None
    return best


def gate_validation_split(labels: np.ndarray, seen: IntArray, n_unseen: int, seed: int,
                          val_unseen: IntArray | None = None,
                          holdout: float = 0.2) -> ValidationProblem:
    """The validation problem the gate is fitted on (the official "val phase"): validation-
    unseen classes = ``val_unseen`` (e.g. ``TrainView.val_unseen``) when given, else carved
    from ``seen`` by :func:`zsbench.views.carve_validation_classes` (seeded, the fold's
    unseen proportion); a ``holdout`` fraction of each remaining seen class's samples
    becomes the held-out seen rows. Indices index ``labels`` (the fold's training set)."""
    seen_ids = np.asarray(seen, dtype=np.int64)
    if val_unseen is not None and len(val_unseen):
        vu = np.asarray(sorted(int(c) for c in val_unseen), dtype=np.int64)
    else:
        vu = carve_validation_classes(None, seen_ids, int(n_unseen), seed)
    if len(np.setdiff1d(seen_ids, vu)) < 2:
        raise ZsbenchError("too few seen classes to carve a validation problem for the gate")
    prob = validation_problem(np.asarray(labels), seen_ids, vu, seed + 1, holdout)
    if not len(prob.train_idx) or not np.isin(np.asarray(labels)[prob.test_idx], vu).any() \
            or np.isin(np.asarray(labels)[prob.test_idx], vu).all():
        raise ZsbenchError("the gate's validation problem has no held-out seen or no "
                           "validation-unseen samples; the fold has too few training samples")
    return prob


def synse_code_unseen_rows(z_heldout_seen: np.ndarray, n_unseen_rows: int) -> np.ndarray:
    """The SynSE/CADA-VAE scripts' validation-phase rows: the "unseen" unseen-classifier
    outputs are those of the held-out *seen* samples (``val_loader``), indexed by the
    unseen rows' positions. Row i of the result = row (i mod n) of ``z_heldout_seen``
    (the scripts need n >= n_unseen_rows; the modulo only matters when it is not)."""
    z = np.asarray(z_heldout_seen)
    return z[np.arange(n_unseen_rows) % len(z)]


# --------------------------------------------------------------------------------------
# Seen classifier on features (for methods that only receive features)
# --------------------------------------------------------------------------------------
@dataclass
class LinearScorer:
    """Logits ``x @ W.T + b`` of a linear softmax classifier (numpy, picklable)."""

    weight: np.ndarray
    bias: np.ndarray
    classes: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weight.T.astype(np.float64) + self.bias


def train_seen_classifier(x: np.ndarray, labels: np.ndarray, classes: IntArray, *,
                          epochs: int = 30, batch_size: int = 256, lr: float = 1e-3,
                          weight_decay: float = 0.0, seed: int = 0,
                          device: str = "cpu") -> LinearScorer:
    """Linear(D, S) softmax classifier over ``classes`` (global ids; columns in that order)
    trained with cross-entropy and Adam on features ``x`` - a stand-in for the encoder's
    own fc head (the official gate reads the Shift-GCN's logits)."""
    import torch

    class_ids = np.asarray(classes, dtype=np.int64)
    col = {int(c): i for i, c in enumerate(class_ids)}
    try:
        y = torch.as_tensor([col[int(c)] for c in labels], dtype=torch.long)
    except KeyError as e:
        raise ZsbenchError(f"seen classifier: label {e} is not one of the classes") from None
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    gen = torch.Generator().manual_seed(seed)
    fc = torch.nn.Linear(xt.shape[1], len(class_ids))
    with torch.no_grad():
        bound = 1.0 / np.sqrt(xt.shape[1])
        fc.weight.copy_(torch.empty_like(fc.weight).uniform_(-bound, bound, generator=gen))
        fc.bias.zero_()
    fc = fc.to(device)
    xt, y = xt.to(device), y.to(device)
    opt = torch.optim.Adam(fc.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    n = len(xt)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            loss = torch.nn.functional.cross_entropy(fc(xt[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return LinearScorer(weight=fc.weight.detach().cpu().numpy(), bias=fc.bias.detach().cpu().numpy(),
                        classes=class_ids)
