import numpy as np
import pytest

from zsbench.metrics import (calibrated_stacking, choose_gamma, gzsl_metrics, harmonic_mean,
                             standardise_scores, top1_accuracy)


def test_harmonic_mean_formula():
    assert harmonic_mean(80.0, 40.0) == pytest.approx(2 * 80 * 40 / 120)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(50.0, 50.0) == pytest.approx(50.0)


def test_top1_accuracy_percent():
    assert top1_accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == pytest.approx(75.0)


def test_gzsl_metrics_split_by_true_class():
    seen_mask = np.array([True, True, False])
    target = np.array([0, 1, 2, 2])
    pred = np.array([0, 2, 2, 0])
    m = gzsl_metrics(pred, target, seen_mask)
    assert m["gzsl_acc_seen"] == pytest.approx(50.0)
    assert m["gzsl_acc_unseen"] == pytest.approx(50.0)
    assert m["gzsl_h"] == pytest.approx(50.0)


def test_calibrated_stacking_moves_predictions_to_unseen():
    scores = np.array([[2.0, 1.9, 0.0], [0.0, 2.0, 1.0]])
    seen_mask = np.array([True, False, False])
    assert calibrated_stacking(scores, seen_mask, 0.0).tolist() == [0, 1]
    # subtracting a large gamma from seen columns flips the first sample to unseen class 1
    assert calibrated_stacking(scores, seen_mask, 1.0).tolist() == [1, 1]
    # standardisation is a per-row monotone map: argmax unchanged at gamma 0
    assert (standardise_scores(scores).argmax(1) == scores.argmax(1)).all()


def test_choose_gamma_finds_calibration_that_balances():
    rng = np.random.default_rng(0)
    n = 200
    seen_mask = np.array([True, True, False, False])
    target = np.r_[rng.integers(0, 2, n), rng.integers(2, 4, n)]
    scores = rng.normal(0, 0.1, (2 * n, 4))
    scores[np.arange(2 * n), target] += 1.0
    scores[:, :2] += 1.5  # seen classes dominate: argmax never predicts unseen
    g0 = gzsl_metrics(calibrated_stacking(scores, seen_mask, 0.0), target, seen_mask)
    assert g0["gzsl_acc_unseen"] < 5
    gamma, h = choose_gamma(scores, target, seen_mask)
    assert gamma > 0
    assert h > 90


def test_batch_mean_accuracy_differs_from_per_sample_on_a_short_last_batch():
    from zsbench.metrics import batch_mean_accuracy

    pred = np.array([0, 1, 2, 3, 4])
    target = np.array([0, 1, 9, 3, 9])          # correct: 1 1 | 0 1 | 0
    assert top1_accuracy(pred, target) == pytest.approx(60.0)
    # batches of 2: (100 + 50 + 0) / 3; the short last batch weighs as much as a full one
    assert batch_mean_accuracy(pred, target, 2) == pytest.approx(50.0)
    assert batch_mean_accuracy(pred, target, 5) == pytest.approx(60.0)   # one batch: equal
    assert batch_mean_accuracy(pred[:4], target[:4], 2) == pytest.approx(75.0)  # equal sizes
    assert np.isnan(batch_mean_accuracy(pred[:0], target[:0], 2))
