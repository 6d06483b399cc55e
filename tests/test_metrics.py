import numpy as np
import pytest

from zsbench.metrics import (calibrated_stacking, choose_gamma, gzsl_metrics, harmonic_mean,
                             seen_margins, standardise_scores, top1_accuracy, transfer_gamma)


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


def test_seen_margin_is_where_calibrated_stacking_switches():
    # row [1, 0, -1]: z = [1, 0, -1] * sqrt(3/2); seen columns 0, 1, unseen column 2
    scores = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.9]])
    seen_mask = np.array([True, True, False])
    m = seen_margins(scores, seen_mask)
    assert m[0] == pytest.approx(2 * np.sqrt(1.5))
    assert m[1] < 0  # the unseen column already wins at gamma 0
    for gamma in (0.0, 0.05, 0.5, 2.0, 2.5, 3.0):
        unseen_pred = ~seen_mask[calibrated_stacking(scores, seen_mask, gamma)]
        assert (unseen_pred == (m < gamma)).all()


def test_transfer_gamma_keeps_the_seen_rate_hand_computed():
    held = np.array([0.0, 0.2, 0.4, 0.6, 0.8])     # gamma 0.5 moves 3 of 5: rate 0.6
    val_train = np.arange(6.0)                      # 0.6-quantile (linear): 3.0
    final_train = np.arange(6.0) + 10.0             # 13.0: margins 10 larger
    gamma, info = transfer_gamma(0.5, held, val_train, final_train)
    assert info["seen_rate"] == pytest.approx(0.6)
    assert info["validation_train_margin_at_rate"] == pytest.approx(3.0)
    assert info["final_train_margin_at_rate"] == pytest.approx(13.0)
    assert gamma == pytest.approx(0.5 + 13.0 - 3.0)
    # the same seen margins in both models (two-stage methods sharing features): gamma kept
    assert transfer_gamma(0.5, held, val_train, val_train)[0] == pytest.approx(0.5)
    # a final model with smaller margins lowers gamma, never below 0 (the grid's floor)
    assert transfer_gamma(0.5, held, val_train, val_train - 0.3)[0] == pytest.approx(0.2)
    assert transfer_gamma(0.5, held, val_train, val_train - 5.0)[0] == 0.0
    with pytest.raises(ValueError):
        transfer_gamma(0.5, held, val_train, np.empty(0))


def _biased_model(rng, seen_bias, n=150, seen_only=False):
    """4 seen + 2 unseen columns; each sample scores 1 on its class; seen columns get
    ``seen_bias`` more (a model trained longer on the seen classes has a larger one)."""
    target = rng.integers(0, 4, n) if seen_only else np.r_[rng.integers(0, 4, n), rng.integers(4, 6, n)]
    scores = rng.normal(0, 0.4, (len(target), 6))
    scores[np.arange(len(target)), target] += 1.0
    scores[:, :4] += seen_bias
    return scores, target


def test_seen_quantile_transfers_where_the_validation_gamma_does_not():
    seen_mask = np.r_[np.ones(4, bool), np.zeros(2, bool)]
    rng = np.random.default_rng(0)
    val_scores, val_target = _biased_model(rng, 0.3)          # validation model, its problem
    val_train, _ = _biased_model(rng, 0.3, seen_only=True)     # ... and its training samples
    test_scores, test_target = _biased_model(rng, 1.2)         # the final model: more biased
    final_train, _ = _biased_model(rng, 1.2, seen_only=True)
    gamma_val, _ = choose_gamma(val_scores, val_target, seen_mask)
    as_is = gzsl_metrics(calibrated_stacking(test_scores, seen_mask, gamma_val), test_target, seen_mask)
    gamma, _ = transfer_gamma(gamma_val, seen_margins(val_scores, seen_mask)[seen_mask[val_target]],
                              seen_margins(val_train, seen_mask), seen_margins(final_train, seen_mask))
    moved = gzsl_metrics(calibrated_stacking(test_scores, seen_mask, gamma), test_target, seen_mask)
    _, best_h = choose_gamma(test_scores, test_target, seen_mask)   # the test-tuned optimum
    assert gamma > gamma_val + 0.5
    assert as_is["gzsl_acc_unseen"] < 40 and as_is["gzsl_h"] < 55
    assert moved["gzsl_h"] > best_h - 2
