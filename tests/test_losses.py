"""The shared KL multi-positive skeleton-text loss against hand computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsbench.nn.losses import (KLMultiPositiveLoss, Temperature, cosine_similarity_matrix,
                               diagonal_nce_from_log_probs, kl_multi_positive,
                               kl_multi_positive_from_log_probs, log_softmax_both,
                               multi_positive_targets)


def np_softmax(a: np.ndarray, axis: int = 1) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_kl_loss(logits: np.ndarray, labels: np.ndarray, sharpness: float | None) -> float:
    """0.5 * [1/B sum_i KL(q_i || softmax(l_i.)) + 1/B sum_i KL(q_i || softmax(l_.i))]."""
    g = (labels[:, None] == labels[None, :]).astype(float)
    q = g / g.sum(1, keepdims=True) if sharpness is None else np_softmax(sharpness * g)
    total = 0.0
    for p in (np_softmax(logits, 1), np_softmax(logits.T, 1)):
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(q > 0, q * (np.log(q) - np.log(p)), 0.0)
        total += terms.sum() / len(labels)
    return 0.5 * total


def test_targets_hard_and_smoothed():
    labels = torch.tensor([0, 1, 0, 2])
    hard = multi_positive_targets(labels, None)
    assert torch.allclose(hard[0], torch.tensor([0.5, 0.0, 0.5, 0.0]))
    assert torch.allclose(hard[1], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    soft = multi_positive_targets(labels, 10.0)
    e = math.exp(10.0)
    # two positives of weight e^10 and two negatives of weight 1 in row 0
    assert soft[0, 0].item() == pytest.approx(e / (2 * e + 2))
    assert soft[0, 1].item() == pytest.approx(1 / (2 * e + 2))
    # one positive in row 1
    assert soft[1, 1].item() == pytest.approx(e / (e + 3))
    assert torch.allclose(soft.sum(1), torch.ones(4))


def test_two_sample_batch_by_hand():
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # distinct classes, hard target: every row and column gives -log(e/(e+1))
    expected = math.log(1 + math.exp(-1))
    assert kl_multi_positive(logits, torch.tensor([0, 1]), None).item() == pytest.approx(expected)
    # same class: target (1/2, 1/2); p = (e/(1+e), 1/(1+e)) in every row and column
    p_hi, p_lo = math.e / (1 + math.e), 1 / (1 + math.e)
    kl = 0.5 * math.log(0.5 / p_hi) + 0.5 * math.log(0.5 / p_lo)
    assert kl_multi_positive(logits, torch.tensor([3, 3]), None).item() == pytest.approx(kl)


@pytest.mark.parametrize("sharpness", [None, 10.0, 2.0])
def test_matches_numpy_with_shared_classes(sharpness):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 6)) * 3
    labels = np.array([0, 1, 0, 2, 1, 0])  # class 0 three times, class 1 twice
    got = kl_multi_positive(torch.tensor(logits), torch.tensor(labels), sharpness).item()
    assert got == pytest.approx(np_kl_loss(logits, labels, sharpness), rel=1e-9)


def test_both_directions_are_used():
    # rows are uniform (zero skeleton->text loss for an all-same-class batch), columns not
    logits = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0])
    x2t, t2x = log_softmax_both(logits)
    q = multi_positive_targets(labels, None)
    only_rows = kl_multi_positive_from_log_probs(x2t, x2t, labels, None)
    assert only_rows.item() == pytest.approx(0.0, abs=1e-7)
    full = kl_multi_positive(logits, labels, None).item()
    p_col = 1 / (1 + math.exp(5.0))  # column softmax of (0, 5)
    col_kl = 0.5 * math.log(0.5 / p_col) + 0.5 * math.log(0.5 / (1 - p_col))
    assert full == pytest.approx(0.5 * col_kl)
    assert torch.allclose(q, torch.full((2, 2), 0.5))
    assert torch.allclose(t2x, torch.log_softmax(logits.T, dim=1))


def test_minimum_when_distribution_matches_target():
    labels = torch.tensor([0, 1, 0, 1])
    g = (labels[:, None] == labels[None, :]).float()
    loss = kl_multi_positive(10.0 * g, labels, 10.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert kl_multi_positive(-10.0 * g, labels, 10.0).item() > 1.0


def test_shape_errors():
    with pytest.raises(ValueError, match="labels"):
        kl_multi_positive(torch.zeros(3, 3), torch.tensor([0, 1]), 10.0)
    with pytest.raises(ValueError, match="square"):
        kl_multi_positive_from_log_probs(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]))


def test_diagonal_nce_by_hand():
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    x2t, t2x = log_softmax_both(logits)
    row0 = -math.log(math.exp(2) / (math.exp(2) + 1))
    row1 = math.log(2)
    assert diagonal_nce_from_log_probs(x2t).item() == pytest.approx((row0 + row1) / 2)
    col0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(1)))  # text 0: skeletons (2, 1)
    col1 = -math.log(math.exp(1) / (math.exp(0) + math.exp(1)))  # text 1: skeletons (0, 1)
    sym = diagonal_nce_from_log_probs(x2t, t2x).item()
    assert sym == pytest.approx(0.5 * ((row0 + row1) / 2 + (col0 + col1) / 2))


def test_temperature_parametrisations():
    fixed = Temperature(0.07, learnable=False)
    assert not fixed.learnable and list(fixed.parameters()) == []
    assert fixed.tau == pytest.approx(0.07)
    assert fixed(torch.tensor(0.7)).item() == pytest.approx(10.0, rel=1e-5)
    learn = Temperature(0.07, learnable=True)
    assert learn.learnable and learn.value.item() == pytest.approx(math.log(1 / 0.07))
    div = Temperature(0.1, learnable=True, parametrization="divisor")
    assert div.value.item() == pytest.approx(0.1)
    assert div(torch.tensor(0.5)).item() == pytest.approx(5.0)
    with pytest.raises(ValueError):
        Temperature(0.0)


def test_module_equals_functional_and_trains_temperature():
    torch.manual_seed(0)
    skel, text = torch.randn(5, 4), torch.randn(5, 4)
    labels = torch.tensor([0, 1, 1, 2, 0])
    crit = KLMultiPositiveLoss(tau=0.5, learnable=True, sharpness=10.0)
    loss = crit(skel, text, labels)
    expected = kl_multi_positive(cosine_similarity_matrix(skel, text) / 0.5, labels, 10.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert crit.temperature.value.grad is not None
    fixed = KLMultiPositiveLoss(tau=0.5, learnable=False)
    assert list(fixed.parameters()) == []
