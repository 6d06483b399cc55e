"""Building what a method may see, with leakage guards that make cheating impossible.

``train_view`` hands fit() only seen-class training samples and seen-class texts; it
re-checks this on every call (an assertion a test exercises with a forged fold).
``validation_problem`` carves a smaller zero-shot problem out of the seen classes for
choosing calibrated-stacking gamma, never touching test data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .api import ClassTexts, Fold, LeakageError, TrainView


def check_no_leakage(labels: np.ndarray, texts: ClassTexts, unseen: np.ndarray, where: str) -> None:
    unseen_set = set(int(c) for c in unseen)
    bad_samples = sorted(set(int(c) for c in np.unique(labels)) & unseen_set)
    if bad_samples:
        raise LeakageError(f"{where}: training samples of unseen classes {bad_samples}")
    bad_texts = sorted(set(int(c) for c in texts.class_ids) & unseen_set)
    if bad_texts:
        raise LeakageError(f"{where}: texts of unseen classes {bad_texts}")


def train_view(x: np.ndarray, labels: np.ndarray, bank: ClassTexts, fold: Fold, kind: str,
               val_unseen: np.ndarray | None = None) -> TrainView:
    seen = fold.seen
    texts = bank.subset(seen)
    check_no_leakage(labels, texts, fold.unseen, f"fold {fold.name}")
    if not np.isin(labels, seen).all():
        raise LeakageError(f"fold {fold.name}: training labels outside the seen classes")
    return TrainView(x=x, labels=np.asarray(labels, dtype=np.int64), texts=texts, kind=kind,  # type: ignore[arg-type]
                     val_unseen=val_unseen)


def carve_validation_classes(split_val: tuple[int, ...] | None, seen: np.ndarray, n_unseen: int,
                             seed: int) -> np.ndarray:
    """Validation-unseen classes: the split's own, else a seeded random subset of the seen
    classes with the same unseen proportion as the fold."""
    if split_val:
        return np.asarray(sorted(split_val), dtype=np.int64)
    k = max(1, round(len(seen) * n_unseen / (len(seen) + n_unseen)))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(seen, size=min(k, len(seen) - 1), replace=False)).astype(np.int64)


@dataclass
class ValidationProblem:
    """A GZSL problem inside the seen classes: train on ``train_idx`` (classes seen minus
    val_unseen, minus held-out samples), evaluate on ``test_idx`` (held-out samples of those
    classes + all samples of the val_unseen classes). Indices index the fold's train set."""

    val_seen: np.ndarray
    val_unseen: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray


def validation_problem(train_labels: np.ndarray, seen: np.ndarray, val_unseen: np.ndarray,
                       seed: int, holdout: float = 0.2) -> ValidationProblem:
    rng = np.random.default_rng(seed)
    val_seen = np.setdiff1d(seen, val_unseen)
    train_idx: list[int] = []
    test_idx: list[int] = []
    for c in val_seen:
        idx = np.flatnonzero(train_labels == c)
        rng.shuffle(idx)
        n_hold = int(round(len(idx) * holdout)) if len(idx) > 1 else 0
        test_idx.extend(idx[:n_hold])
        train_idx.extend(idx[n_hold:])
    test_idx.extend(np.flatnonzero(np.isin(train_labels, val_unseen)))
    return ValidationProblem(val_seen=val_seen, val_unseen=np.asarray(val_unseen),
                             train_idx=np.sort(np.asarray(train_idx, dtype=np.int64)),
                             test_idx=np.sort(np.asarray(test_idx, dtype=np.int64)))
