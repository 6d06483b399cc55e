"""Metrics and GZSL decision rules (owned by the core, the same for every method).

Accuracies are per-sample top-1 percentages (0-100) like the papers.
"""
from __future__ import annotations

import numpy as np

#: gamma grid for calibrated stacking, in units of per-row standard deviations of the
#: scores (scores are standardised per sample first); gamma >= 0 only penalises seen classes
DEFAULT_GAMMAS = np.round(np.linspace(0.0, 3.0, 61), 4)


def top1_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    pred, target = np.asarray(pred), np.asarray(target)
    if len(target) == 0:
        return float("nan")
    return float((pred == target).mean() * 100.0)


def batch_mean_accuracy(pred: np.ndarray, target: np.ndarray, batch_size: int) -> float:
    """The mean over consecutive batches of ``batch_size`` samples (the last one possibly
    short) of each batch's top-1 accuracy: what a test loop that averages per-batch
    accuracies reports. Equals ``top1_accuracy`` when every batch has the same size."""
    pred, target = np.asarray(pred), np.asarray(target)
    if len(target) == 0:
        return float("nan")
    correct = (pred == target).astype(np.float64)
    starts = range(0, len(target), batch_size)
    return float(np.mean([correct[s:s + batch_size].mean() for s in starts]) * 100.0)


def harmonic_mean(seen: float, unseen: float) -> float:
    """H = 2SU / (S + U); 0 when both are 0."""
    if seen + unseen == 0:
        return 0.0
    return 2.0 * seen * unseen / (seen + unseen)


def standardise_scores(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scoring so one gamma grid suits methods whose scores differ in scale."""
    scores = np.asarray(scores, dtype=np.float64)
    mu = scores.mean(axis=1, keepdims=True)
    sd = scores.std(axis=1, keepdims=True)
    return (scores - mu) / np.where(sd > 0, sd, 1.0)


def calibrated_stacking(scores: np.ndarray, seen_mask: np.ndarray, gamma: float) -> np.ndarray:
    """Predicted column indices after subtracting ``gamma`` from seen-class scores
    (Chao et al., 2016)."""
    adjusted = standardise_scores(scores) - gamma * np.asarray(seen_mask, dtype=np.float64)[None, :]
    return adjusted.argmax(axis=1)


def gzsl_metrics(pred_cols: np.ndarray, target_cols: np.ndarray, seen_mask: np.ndarray
                 ) -> dict[str, float]:
    """acc_seen / acc_unseen over the samples whose true class is seen / unseen, and H."""
    pred_cols, target_cols = np.asarray(pred_cols), np.asarray(target_cols)
    is_seen = np.asarray(seen_mask, dtype=bool)[target_cols]
    s = top1_accuracy(pred_cols[is_seen], target_cols[is_seen])
    u = top1_accuracy(pred_cols[~is_seen], target_cols[~is_seen])
    s0 = 0.0 if np.isnan(s) else s
    u0 = 0.0 if np.isnan(u) else u
    return {"gzsl_acc_seen": s, "gzsl_acc_unseen": u, "gzsl_h": harmonic_mean(s0, u0)}


def choose_gamma(scores: np.ndarray, target_cols: np.ndarray, seen_mask: np.ndarray,
                 gammas: np.ndarray = DEFAULT_GAMMAS) -> tuple[float, float]:
    """Pick the gamma maximising H on a validation problem. Returns (gamma, H).
    Ties are broken towards the gamma closest to 0 (the least calibration)."""
    best_gamma, best_h = 0.0, -1.0
    for g in sorted(gammas, key=lambda x: (abs(x), x)):
        h = gzsl_metrics(calibrated_stacking(scores, seen_mask, g), target_cols, seen_mask)["gzsl_h"]
        if h > best_h + 1e-12:
            best_gamma, best_h = float(g), h
    return best_gamma, best_h



def seen_margins(scores: np.ndarray, seen_mask: np.ndarray) -> np.ndarray:
    """Per sample: best standardised seen-class score minus best unseen-class score. With
    the seen columns first (the core's GZSL candidate order), calibrated stacking with
    ``gamma`` predicts an unseen class exactly for the samples whose margin is below gamma."""
    z = standardise_scores(scores)
    mask = np.asarray(seen_mask, dtype=bool)
    return z[:, mask].max(axis=1) - z[:, ~mask].max(axis=1)


def transfer_gamma(gamma: float, val_heldout: np.ndarray, val_train: np.ndarray,
                   final_train: np.ndarray) -> tuple[float, dict[str, float]]:
    """Carry ``gamma``, chosen on the validation model, over to the final model as the share
    of seen samples it moves to unseen classes (the ``seen_quantile`` calibration).

    The arguments are seen margins (``seen_margins``) of seen-class samples: the validation
    model's on its held-out seen samples and on its training samples, and the final model's on
    its training samples. ``rate`` = share of held-out seen margins below ``gamma``. The final
    model has no held-out seen samples, so its margin at that rate is its training-sample
    margin plus the validation model's own held-out-minus-training gap at the same rate:
    ``gamma + Q_final_train(rate) - Q_val_train(rate)`` (Q = quantile), clipped at 0 like the
    gamma grid. Models with the same seen margins (two-stage methods sharing features) keep
    ``gamma``. Returns (gamma for the final model, the inputs for the record)."""
    val_heldout, val_train, final_train = (np.asarray(a, dtype=np.float64)
                                           for a in (val_heldout, val_train, final_train))
    if min(len(val_heldout), len(val_train), len(final_train)) == 0:
        raise ValueError("transfer_gamma needs seen margins of both models")
    rate = float((val_heldout < gamma).mean())
    q_val, q_final = float(np.quantile(val_train, rate)), float(np.quantile(final_train, rate))
    return max(0.0, gamma + q_final - q_val), {
        "validation_gamma": float(gamma), "seen_rate": rate,
        "validation_train_margin_at_rate": q_val, "final_train_margin_at_rate": q_final}

def class_counts(pred_cols: np.ndarray, target_cols: np.ndarray, num_classes: int,
                 confusion_up_to: int = 100) -> dict[str, list]:
    """Per-class ``correct``/``total`` sample counts and, for up to ``confusion_up_to``
    classes, the confusion matrix (row = true column, column = predicted column)."""
    pred_cols = np.asarray(pred_cols, dtype=np.int64)
    target_cols = np.asarray(target_cols, dtype=np.int64)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (target_cols, pred_cols), 1)
    out: dict[str, list] = {"correct": [int(v) for v in np.diag(conf)],
                            "total": [int(v) for v in conf.sum(1)]}
    if num_classes <= confusion_up_to:
        out["confusion"] = conf.tolist()
    return out
