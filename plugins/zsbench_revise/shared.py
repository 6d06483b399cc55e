"""Pieces shared by the SynSE-repository baselines (ReViSE, JPoSE) and RelationNet:
input checks, the clean replacement of the repositories' test-set model selection, and the
seen/unseen gate of the repositories' ``gating_*`` scripts (through :mod:`zsbench.nn.gate`).

Model selection. The repositories step ``ReduceLROnPlateau`` on, and keep the checkpoint
of, the best ZSL accuracy *on the unseen test set* (RelationNet's authors keep the best test
checkpoint too). Test labels never reach ``fit``, so this is not offered. ``selection``:

* ``final`` (default): train on every seen class for the configured number of epochs at
  the initial learning rate (the plateau scheduler has no signal to step on) and keep the
  last weights;
* ``validation``: hold out validation classes carved from the seen classes (the split's
  ``val_unseen`` when it names them, else a seeded ``validation_fraction`` of the seen
  classes, at least two), train on the others, step the plateau scheduler on (and keep the
  best weights of) the ZSL accuracy on the held-out classes' samples, with the
  repositories' early stop (JPoSE).
  The model never sees the held-out classes' samples.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from zsbench.api import ClassTexts, RunContext, TestView, TrainView, ZsbenchError


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------
def feature_matrix(x: Any, who: str) -> np.ndarray:
    """(N, D) float32 features, or a ZsbenchError saying what is expected."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ZsbenchError(f"{who}: expects a non-empty (N, D) matrix of skeleton features "
                           f"(inputs='features'); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ZsbenchError(f"{who}: the skeleton features contain NaN or infinite values")
    return arr


def view_features(view: TrainView | TestView, who: str) -> np.ndarray:
    """The (N, D) features of a train or test view; a ZsbenchError for sequence inputs."""
    if view.kind != "features":
        raise ZsbenchError(f"{who} works on skeleton features (inputs='features'); got "
                           f"{view.kind!r} inputs")
    return feature_matrix(view.x, who)


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (all-zero rows stay zero)."""
    m = np.asarray(m, dtype=np.float32)
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)


def text_matrix(texts: ClassTexts, kind: str, who: str, normalise: bool = True) -> np.ndarray:
    """(K, T) class text matrix of ``kind`` (mean of each class's strings), L2-normalised
    rows as the repositories load their embedding files."""
    if kind not in texts.embeddings:
        raise ZsbenchError(f"{who}: text kind {kind!r} is not loaded (available: "
                           f"{texts.kinds}); the method declares it through its spec/needs()")
    m = texts.matrix(kind)
    return unit_rows(m) if normalise else m


def label_columns(labels: np.ndarray, class_ids: np.ndarray, who: str) -> np.ndarray:
    pos = {int(c): i for i, c in enumerate(class_ids)}
    missing = sorted({int(c) for c in labels} - set(pos))
    if missing:
        raise ZsbenchError(f"{who}: training labels {missing} have no class texts")
    return np.asarray([pos[int(c)] for c in labels], dtype=np.int64)


# --------------------------------------------------------------------------------------
# Model selection on validation classes
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Holdout:
    """Rows of the training view used for fitting / validation and the validation classes."""

    fit_rows: np.ndarray
    val_rows: np.ndarray
    val_classes: np.ndarray


def validation_holdout(train: TrainView, fraction: float, seed: int) -> Holdout:
    """Validation classes: ``train.val_unseen`` if given, else a seeded random
    ``fraction`` of the seen classes (at least two, so that the ZSL accuracy used for
    selection is not trivially 100 %, leaving at least two)."""
    seen = np.asarray(train.texts.class_ids, dtype=np.int64)
    if train.val_unseen is not None and len(train.val_unseen):
        val = np.asarray(sorted(int(c) for c in train.val_unseen), dtype=np.int64)
    else:
        k = max(2, int(round(fraction * len(seen))))
        if len(seen) - k < 2:
            raise ZsbenchError(f"selection=validation needs at least {k + 2} seen classes to "
                               f"hold {k} out; this fold has {len(seen)}. Use selection=final")
        val = np.sort(np.random.default_rng(seed).choice(seen, size=k, replace=False))
    is_val = np.isin(train.labels, val)
    if is_val.all() or not is_val.any():
        raise ZsbenchError("selection=validation: the validation classes leave no training or "
                           "no validation samples; use selection=final")
    return Holdout(np.flatnonzero(~is_val), np.flatnonzero(is_val), val)


def zsl_accuracy(scores: np.ndarray, labels: np.ndarray, class_ids: np.ndarray) -> float:
    pred = np.asarray(class_ids)[np.asarray(scores).argmax(axis=1)]
    return float(np.mean(pred == np.asarray(labels)))


def selection_rows(train: TrainView, cfg: Any, seed: int) -> tuple[np.ndarray, Holdout | None]:
    """Training-view rows to fit on, and the validation hold-out for
    ``selection=validation`` (None for ``final``)."""
    if cfg.selection != "validation":
        return np.arange(len(train.labels)), None
    hold = validation_holdout(train, cfg.validation_fraction, seed)
    return hold.fit_rows, hold


def train_epochs(net: nn.Module, optimizer: torch.optim.Optimizer,
                 step: Callable[[torch.Tensor], torch.Tensor], n: int, *, epochs: int,
                 batch_size: int, gen: torch.Generator, ctx: RunContext, desc: str,
                 cfg: Any = None, hold: Holdout | None = None,
                 val_scores: Callable[[], np.ndarray] | None = None,
                 val_labels: np.ndarray | None = None,
                 early_stop: int | None = None) -> dict[str, Any]:
    """The repositories' epoch loop: shuffled mini-batches (last partial batch kept),
    ``step(indices) -> loss``. With a hold-out (``selection=validation``), after every
    epoch the ZSL accuracy of ``val_scores()`` (validation samples x validation classes)
    drives a ``ReduceLROnPlateau`` (``cfg.plateau_*``), the best weights are restored at the
    end and training stops once more than ``early_stop`` epochs in a row brought no strict
    improvement."""
    scheduler = None
    if hold is not None:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience,
            cooldown=cfg.plateau_cooldown)
    history: list[float] = []
    best, best_epoch, best_state, since = -1.0, -1, None, 0
    for epoch in ctx.progress(range(epochs), desc=desc, total=epochs):
        net.train()
        total = 0.0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            loss = step(idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / n)
        if hold is None or val_scores is None:
            continue
        net.eval()
        acc = zsl_accuracy(val_scores(), np.asarray(val_labels), hold.val_classes)
        if acc > best:
            best, best_epoch, since = acc, epoch, 0
            best_state = copy.deepcopy(net.state_dict())
        else:
            since += 1
        assert scheduler is not None
        scheduler.step(acc)
        if early_stop is not None and since > early_stop:
            break
    net.eval()
    out: dict[str, Any] = {"selection": "final" if hold is None else "validation",
                           "epochs_run": len(history), "final_train_loss": history[-1]}
    if best_state is not None:
        assert hold is not None
        net.load_state_dict(best_state)
        out.update(best_validation_zsl_acc=100.0 * best, best_epoch=best_epoch,
                   validation_classes=[int(c) for c in hold.val_classes])
    return out


# --------------------------------------------------------------------------------------
# GZSL gate (gating_*_model_training.py / *_eval.py)
# --------------------------------------------------------------------------------------
def gate_decide(method: Any, train: TrainView | None, scores: np.ndarray, seen_mask: np.ndarray,
                test: TestView, candidates: ClassTexts, ctx: RunContext, cfg: Any,
                who: str) -> np.ndarray:
    """Route each GZSL test sample to the seen classifier or the zero-shot scores.

    Validation ("val phase"): classes carved from the seen classes play the unseen role; a
    second model of the same method and options is fitted on the other seen classes, a
    linear seen classifier on the same samples; gate rows = held-out samples (those of the
    carved classes are "unseen" rows). Gate input: top-k of the plain softmax of the
    method's scores over the unseen candidates and top-k of the temperature softmax of the
    seen classifier's logits (k = number of unseen candidates). Test: the seen classifier
    is refitted on all training samples; seen-routed samples take its arg-max seen class,
    the others the arg-max unseen candidate."""
    from zsbench.nn import gate

    if train is None:
        raise ZsbenchError(f"{who}: gzsl_decide() called before fit()")
    seen_mask = np.asarray(seen_mask, dtype=bool)
    seen_cols, unseen_cols = np.flatnonzero(seen_mask), np.flatnonzero(~seen_mask)
    if not len(seen_cols) or not len(unseen_cols):
        raise ZsbenchError(f"{who}: the gate needs seen and unseen candidates")
    k = len(unseen_cols)
    seen_ids = np.asarray(candidates.class_ids)[seen_cols]
    prob = gate.gate_validation_split(train.labels, seen_ids, k, ctx.seed + 41,
                                      val_unseen=train.val_unseen,
                                      holdout=cfg.gate_seen_holdout_fraction)
    vctx = dataclasses.replace(ctx, details={}, deviations=list(ctx.deviations),
                               fold_name=f"{ctx.fold_name} (gate validation)")
    x = np.asarray(train.x, dtype=np.float32)
    vm = type(method)(method.config)
    vm.fit(TrainView(x=x[prob.train_idx], labels=train.labels[prob.train_idx],
                     texts=train.texts.subset(prob.val_seen), kind=train.kind), vctx)
    xv, yv = x[prob.test_idx], train.labels[prob.test_idx]
    z = gate.softmax(vm.score(TestView(x=xv, kind=train.kind),
                              train.texts.subset(prob.val_unseen), vctx))
    clf_opts = dict(epochs=cfg.seen_classifier_epochs, batch_size=cfg.seen_classifier_batch_size,
                    lr=cfg.seen_classifier_lr, device=ctx.device)
    g = gate.train_seen_classifier(x[prob.train_idx], train.labels[prob.train_idx],
                                   prob.val_seen, seed=ctx.seed + 43, **clf_opts).logits(xv)
    is_u = np.isin(yv, prob.val_unseen)
    n_u, n_s = int(is_u.sum()), int((~is_u).sum())
    small = not (n_u > cfg.gate_holdout_unseen and n_s > cfg.gate_holdout_seen)
    holdout = cfg.gate_small_holdout if small else (cfg.gate_holdout_unseen, cfg.gate_holdout_seen)
    if cfg.gate_threshold_rule == "official":
        ctx.note_deviation("gate_threshold_rule_official")
    fitted = gate.fit_gate((z[is_u], g[is_u]), (z[~is_u], g[~is_u]),
                           temperatures=cfg.gate_temperatures, thresholds=cfg.gate_thresholds,
                           holdout=holdout, seed=cfg.gate_seed, multinomial=cfg.gate_multinomial,
                           threshold_rule=cfg.gate_threshold_rule, k=k)
    seen_clf = gate.train_seen_classifier(x, train.labels, seen_ids, seed=ctx.seed + 47, **clf_opts)
    g_test = seen_clf.logits(np.asarray(test.x, dtype=np.float32))
    z_test = gate.softmax(np.asarray(scores, dtype=np.float64)[:, unseen_cols])
    pred = fitted.route(z_test, g_test, seen_cols, unseen_cols)
    ctx.details["gate"] = {**fitted.summary(), "validation_unseen": [int(c) for c in prob.val_unseen],
                           "holdout": holdout if small else list(holdout),
                           "small_holdout": small,
                           "routed_seen_fraction": float(np.mean(np.isin(pred, seen_cols)))}
    return pred

