"""One fold: fit the method on the training view, score the test views, apply the ZSL and
GZSL decision rules and compute metrics. The core, not the method, computes metrics."""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any, Callable, Iterator

import numpy as np

from .api import (
    ClassTexts,
    Fold,
    FoldInputs,
    InputKind,
    RunContext,
    TestView,
    TrainView,
    ZsbenchError,
    concat_inputs,
)
from .metrics import (
    batch_mean_accuracy,
    calibrated_stacking,
    choose_gamma,
    class_counts,
    gzsl_metrics,
    seen_margins,
    standardise_scores,
    top1_accuracy,
    transfer_gamma,
)
from .stats import pack_bits
from .views import ValidationProblem, carve_validation_classes, train_view, validation_problem

#: ``(fold, problem) -> (x_train, x_test, encoder info)``: inputs of the gamma-validation
#: problem from an encoder that never saw its validation-unseen classes (the runner builds
#: it for ``gzsl_validation=retrain_encoder``); None = reuse the fold's inputs.
ValidationInputs = Callable[[Fold, ValidationProblem], "tuple[Any, Any, dict[str, Any]]"]

#: at most this many training samples per model (a seeded subset) give the seen margins of
#: the ``seen_quantile`` calibration: one bounded extra scoring pass per model
MARGIN_SAMPLES = 4096


def _new_method(comp):
    cls = comp.method.load()
    return cls(comp.method_cfg)


def _check_scores(scores: Any, n: int, k: int, who: str) -> np.ndarray:
    if hasattr(scores, "detach"):
        scores = scores.detach().cpu().numpy()
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n, k):
        raise ZsbenchError(f"method {who!r}: score() returned shape {scores.shape}, expected ({n}, {k})")
    if not np.isfinite(scores).all():
        raise ZsbenchError(f"method {who!r}: score() returned non-finite values")
    return scores


@contextlib.contextmanager
def _test_selection(comp, method, x: Any, y: np.ndarray, class_ids: np.ndarray,
                    bank: ClassTexts, ctx: RunContext) -> Iterator[None]:
    """Under ``model_selection=best_on_test`` (official SMIE/PGFA/DVTA behaviour, a labelled
    deviation), ``ctx.test_selection`` scores the method's current state on ``x`` (the
    fold's unseen test samples) while it fits; a method that never asks is refused."""
    if comp.cfg.model_selection != "best_on_test":
        yield
        return
    ctx.note_deviation("model_selection_on_test")
    kind = comp.method.inputs
    cand, target, calls = bank.subset(class_ids), _columns(y, class_ids), [0]

    def zsl_accuracy_now() -> float:
        calls[0] += 1
        scores = _check_scores(method.score(TestView(x=x, kind=kind), cand, ctx), len(y),
                               len(class_ids), comp.method.name)
        return top1_accuracy(scores.argmax(1), target)

    ctx.test_selection = zsl_accuracy_now
    try:
        yield
    finally:
        ctx.test_selection = None
    if calls[0] == 0:
        raise ZsbenchError(
            f"model_selection=best_on_test: method {comp.method.name!r} does not select its "
            "epoch on the test set (only methods whose official code does so offer it: smie, "
            "smie_features, pgfa, dvta); leave model_selection at 'method'")


def _columns(labels: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    pos = {int(c): i for i, c in enumerate(class_ids)}
    return np.asarray([pos[int(c)] for c in labels], dtype=np.int64)


def evaluate_fold(comp, fold: Fold, bank: ClassTexts, inputs: FoldInputs,
                  ctx: RunContext, settings: list[str], all_labels: np.ndarray,
                  validation_inputs: ValidationInputs | None = None) -> dict[str, Any]:
    """``inputs.x`` maps ``train``/``test_seen``/``test_unseen`` (and ``support`` for
    one-shot folds) to features or sequences aligned with the fold's index arrays, or with
    ``inputs.labels`` when the inputs bring their own sample sets."""
    kind = comp.method.inputs
    x_tr, x_ts, x_tu = inputs.x["train"], inputs.x["test_seen"], inputs.x["test_unseen"]
    if inputs.labels is not None:  # pre-split feature files bring their own sample sets
        own = inputs.labels
        y_tr, y_ts, y_tu = own["train"], own["test_seen"], own["test_unseen"]
    else:
        y_tr, y_ts, y_tu = (all_labels[fold.train], all_labels[fold.test_seen],
                            all_labels[fold.test_unseen])
    method = _new_method(comp)
    # the validation classes the core uses for gamma are the ones a method may hold out
    val_unseen = carve_validation_classes(fold.split.validation_unseen, fold.seen,
                                          len(fold.unseen), ctx.seed + 17)
    t0 = time.perf_counter()
    with _test_selection(comp, method, x_tu, y_tu, fold.unseen, bank, ctx):
        method.fit(train_view(x_tr, y_tr, bank, fold, kind, val_unseen=val_unseen), ctx)
    metrics: dict[str, float | None] = {m: None for m in
                                        ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h")}
    seconds = {"fit": round(time.perf_counter() - t0, 3)}
    details: dict[str, Any] = {"seconds": seconds}
    out: dict[str, Any] = {"metrics": metrics, "details": details}
    unseen = fold.unseen
    if "zsl" in settings:
        t0 = time.perf_counter()
        cand = bank.subset(unseen)
        test = TestView(x=x_tu, kind=kind)
        if "support" in inputs.x:
            assert fold.support is not None
            test.support_x, test.support_labels = inputs.x["support"], all_labels[fold.support]
            details["support_samples"] = [int(i) for i in fold.support]
        scores = _check_scores(method.score(test, cand, ctx), len(y_tu), len(unseen), comp.method.name)
        target = _columns(y_tu, unseen)
        final_pred = scores.argmax(1)
        acc = top1_accuracy(final_pred, target)
        if comp.method.transductive:
            refined = method.transductive_step(scores, test, cand, ctx)
            if refined is not None:
                refined = _check_scores(refined, len(y_tu), len(unseen), comp.method.name)
                details["zsl_acc_before_transductive_step"] = acc
                final_pred = refined.argmax(1)
                acc = top1_accuracy(final_pred, target)
                details["zsl_acc_after_transductive_step"] = acc
        metrics["zsl_acc"] = _zsl_accuracy(comp, final_pred, target, acc, details, ctx)
        details["sample_correct"] = {"zsl": pack_bits(final_pred == target)}  # for stats
        if comp.cfg.diagnostics != "off":
            out["embeddings"] = _embeddings(method, test, y_tu, cand, ctx)
        out["class_counts"] = {"classes": [int(c) for c in unseen], "names": list(cand.class_names),
                               **class_counts(final_pred, target, len(unseen))}
        seconds["zsl"] = round(time.perf_counter() - t0, 3)
    if "gzsl" in settings:
        t0 = time.perf_counter()
        out["gzsl_rule"] = _gzsl(comp, method, fold, bank, x_tr, y_tr, x_ts, y_ts, x_tu, y_tu,
                                 ctx, metrics, validation_inputs)
        seconds["gzsl"] = round(time.perf_counter() - t0, 3)   # the validation refit included
        details.setdefault("sample_correct", {})["gzsl"] = out["gzsl_rule"].pop("correct")
    return out


def _embeddings(method, test: TestView, labels: np.ndarray, cand: ClassTexts,
                ctx: RunContext) -> dict[str, Any] | None:
    """Unseen test features before (the method's input features, or what its ``embed``
    returns as ``before``) and after its alignment (``embed``), for ``zsbench.diagnostics``."""
    embed = getattr(method, "embed", None)
    got = embed(test, ctx) if embed is not None else None
    before, after = (got.get("before"), got.get("after")) if isinstance(got, dict) else (None, got)
    if before is None and test.kind == "features":
        before = test.x
    arrays = {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64)
              for k, v in (("before", before), ("after", after)) if v is not None}
    if not arrays:
        return None
    names = {int(c): str(n) for c, n in zip(cand.class_ids, cand.class_names)}
    return {"labels": np.asarray(labels), "names": names, **arrays}


def _zsl_accuracy(comp, pred: np.ndarray, target: np.ndarray, per_sample: float,
                  details: dict[str, Any], ctx: RunContext) -> float:
    """The headline ZSL accuracy (``accuracy`` option); both variants go into the details.
    Test samples are in dataset order, as the official loaders (no shuffling) see them."""
    size = comp.cfg.accuracy_batch_size or comp.method.official_test_batch_size or 64
    batch_mean = batch_mean_accuracy(pred, target, size)
    details["zsl_acc_per_sample"] = per_sample
    details["zsl_acc_batch_mean"] = batch_mean
    details["accuracy_batch_size"] = size
    if comp.cfg.accuracy == "batch_mean":
        ctx.note_deviation("batch_averaged_accuracy")
        return batch_mean
    return per_sample


def _gzsl(comp, method, fold, bank, x_tr, y_tr, x_ts, y_ts, x_tu, y_tu, ctx, metrics,
          validation_inputs: ValidationInputs | None) -> dict:
    kind = comp.method.inputs
    seen, unseen = fold.seen, fold.unseen
    cand_ids = np.concatenate([seen, unseen])
    seen_mask = np.r_[np.ones(len(seen), bool), np.zeros(len(unseen), bool)]
    x = concat_inputs([x_ts, x_tu]) if len(x_ts) else x_tu
    y = np.concatenate([y_ts, y_tu])
    test = TestView(x=x, kind=kind)
    cand = bank.subset(cand_ids)
    scores = _check_scores(method.score(test, cand, ctx), len(y), len(cand_ids), comp.method.name)
    target = _columns(y, cand_ids)
    rule = comp.cfg.gzsl_rule
    if rule == "method":
        pred = method.gzsl_decide(scores, seen_mask, test, cand, ctx)
        if pred is None:
            raise ZsbenchError(f"gzsl_rule 'method' was chosen but {comp.method.name!r} has no "
                               "GZSL gate of its own; use calibrated_stacking or argmax")
        info: dict[str, Any] = {"rule": "method", "gamma": None}
    elif rule == "argmax":
        pred = standardise_scores(scores).argmax(1)
        info = {"rule": "argmax", "gamma": None}
    else:
        calibration = comp.cfg.gzsl_calibration
        gamma, val_h, val_info, val_margins = _gamma_on_validation(
            comp, fold, bank, x_tr, y_tr, ctx, validation_inputs,
            margins=calibration == "seen_quantile")
        info = {"rule": "calibrated_stacking", "calibration": calibration, "gamma": gamma,
                "chosen_on": "validation classes carved from seen classes",
                "validation_h": val_h, **val_info}
        if val_margins is not None:  # the final model's own seen margins set its gamma
            final_train = _train_margins(method, x_tr, cand, seen_mask, kind, ctx,
                                         comp.method.name)
            gamma, transfer = transfer_gamma(gamma, *val_margins, final_train)
            info.update(gamma=gamma, **transfer, margin_samples={
                "validation_heldout_seen": len(val_margins[0]),
                "validation_train": len(val_margins[1]), "final_train": len(final_train)})
        pred = calibrated_stacking(scores, seen_mask, gamma)
    metrics.update(gzsl_metrics(np.asarray(pred), target, seen_mask))
    info["correct"] = pack_bits(np.asarray(pred) == target)  # test_seen then test_unseen order
    return info


def _train_margins(model, x, cand: ClassTexts, seen_mask: np.ndarray, kind: InputKind,
                   ctx: RunContext, who: str) -> np.ndarray:
    """Seen margins (``metrics.seen_margins``) of ``model`` on its own training samples
    ``x`` (at most ``MARGIN_SAMPLES``, seeded) against the candidates ``cand``."""
    n = len(x)
    if n > MARGIN_SAMPLES:
        x = x[np.sort(np.random.default_rng(ctx.seed + 31).choice(n, MARGIN_SAMPLES, replace=False))]
    # a context of its own: notes of this pass do not overwrite the fold's
    ctx = dataclasses.replace(ctx, details={}, deviations=list(ctx.deviations))
    scores = _check_scores(model.score(TestView(x=x, kind=kind), cand, ctx), len(x),
                           len(cand.class_ids), who)
    return seen_margins(scores, seen_mask)


def _gamma_on_validation(comp, fold, bank, x_tr, y_tr, ctx,
                         validation_inputs: ValidationInputs | None, margins: bool = False
                         ) -> tuple[float, float, dict, tuple[np.ndarray, np.ndarray] | None]:
    """Fit a fresh method on (seen - val_unseen) classes and pick gamma maximising H on the
    held-out validation problem. No test sample is used. With ``margins``, also the
    validation model's seen margins on its held-out seen samples and on its training
    samples (for ``transfer_gamma``), else None."""
    val_unseen = carve_validation_classes(fold.split.validation_unseen, fold.seen,
                                          len(fold.unseen), ctx.seed + 17)
    prob = validation_problem(y_tr, fold.seen, val_unseen, ctx.seed + 29)
    if len(prob.test_idx) == 0 or len(prob.train_idx) == 0:
        raise ZsbenchError(f"fold {fold.name}: too few training samples to carve a validation problem")
    vm = _new_method(comp)
    sub = bank.subset(prob.val_seen)
    # the validation fit gets its own context so its notes do not overwrite the fold's
    ctx = dataclasses.replace(ctx, details={}, deviations=list(ctx.deviations),
                              fold_name=f"{ctx.fold_name} (gamma validation)")
    extra: dict[str, Any] = {"validation_features": "shared with the fold (encoder saw the "
                             "validation classes)" if comp.method.inputs == "features" else "n/a"}
    if validation_inputs is not None:  # features of an encoder pretrained on val_seen only
        x_vtr, x_vte, enc = validation_inputs(fold, prob)
        extra = {"validation_features": "encoder retrained on validation-seen classes",
                 "validation_encoder": enc}
    else:
        x_vtr, x_vte = x_tr[prob.train_idx], x_tr[prob.test_idx]
    unseen_rows = np.flatnonzero(np.isin(y_tr[prob.test_idx], prob.val_unseen))  # held out
    with _test_selection(comp, vm, x_vte[unseen_rows], y_tr[prob.test_idx][unseen_rows],
                         prob.val_unseen, bank, ctx):
        vm.fit(TrainView(x=x_vtr, labels=y_tr[prob.train_idx], texts=sub,
                         kind=comp.method.inputs), ctx)
    cand_ids = np.concatenate([prob.val_seen, prob.val_unseen])
    seen_mask = np.r_[np.ones(len(prob.val_seen), bool), np.zeros(len(prob.val_unseen), bool)]
    cand = bank.subset(cand_ids)
    scores = _check_scores(vm.score(TestView(x=x_vte, kind=comp.method.inputs), cand, ctx),
                           len(prob.test_idx), len(cand_ids), comp.method.name)
    target = _columns(y_tr[prob.test_idx], cand_ids)
    gamma, h = choose_gamma(scores, target, seen_mask)
    val_margins = None
    if margins:
        val_margins = (seen_margins(scores, seen_mask)[seen_mask[target]],
                       _train_margins(vm, x_vtr, cand, seen_mask, comp.method.inputs, ctx,
                                      comp.method.name))
    return gamma, h, {"validation_unseen": [int(c) for c in val_unseen],
                      "validation_source": "split" if fold.split.validation_unseen else "carved (seeded)",
                      **extra}, val_margins
