"""zsbench.nn.gate: routing and threshold rules on hand-made inputs, the logistic
regression's optimality, the validation split, and fidelity against the official gate
scripts (synse-zsl cada_vae/gating_cadavae_model_{training,eval}.py and MSF
gating_{train,eval}.py, run by benchmarks/fidelity/*_reference.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsbench.api import ZsbenchError
from zsbench.nn.gate import (OFFICIAL_TEMPERATURES, OFFICIAL_THRESHOLDS, LogisticRegressionL2,
                             SeenUnseenGate, fit_gate, gate_features, gate_validation_split,
                             holdout_rows, route, synse_code_unseen_rows, temperature_softmax)

FIDELITY = Path(__file__).parent / "fidelity"


def test_gate_features_hand_values():
    z = np.array([[0.2, 0.7, 0.1]])
    g = np.array([[0.0, np.log(3.0), 0.0, 0.0]])
    f = gate_features(z, g, temperature=1.0)
    # softmax of [0, ln3, 0, 0] = [1, 3, 1, 1] / 6
    np.testing.assert_allclose(f, [[0.7, 0.2, 0.1, 0.5, 1 / 6, 1 / 6]], atol=1e-9)
    # temperature 2 flattens: [1, sqrt3, 1, 1] / (3 + sqrt3)
    p = temperature_softmax(g, 2.0)
    np.testing.assert_allclose(p[0, 1], np.sqrt(3) / (3 + np.sqrt(3)), atol=1e-9)
    assert gate_features(z, g, 1.0, k=2).shape == (1, 4)


def test_route_and_threshold_rules():
    is_seen = np.array([True, False, True])
    seen_scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4]])
    unseen_scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    cols = route(is_seen, seen_scores, unseen_scores, seen_cols=[0, 1], unseen_cols=[2, 3, 4])
    assert cols.tolist() == [1, 4, 0]
    # a gate that always says p_unseen = 0.5: the two threshold rules disagree off 0.5
    lr = LogisticRegressionL2()
    lr.coef_, lr.intercept_ = np.zeros(4), 0.0
    z, g = np.full((2, 2), 0.5), np.zeros((2, 3))
    consistent = SeenUnseenGate(model=lr, temperature=1.0, threshold=0.6, k=2)
    official = SeenUnseenGate(model=lr, temperature=1.0, threshold=0.6, k=2, threshold_rule="official")
    np.testing.assert_allclose(consistent.p_unseen(z, g), 0.5)
    assert consistent.is_seen(z, g).all()          # unseen iff p_unseen > 0.6: no
    assert not official.is_seen(z, g).any()        # seen iff 1 - p_unseen > 0.6: no
    for b, seen in ((1.0, True), (-1.0, False)):   # p_unseen = 0.27 / 0.73: rules agree at 0.5
        lr_b = LogisticRegressionL2()
        lr_b.coef_, lr_b.intercept_ = np.zeros(4), b
        for rule in ("consistent", "official"):
            gate = SeenUnseenGate(model=lr_b, temperature=1.0, threshold=0.5, k=2, threshold_rule=rule)
            assert gate.is_seen(z, g).tolist() == [seen, seen]
    with pytest.raises(ZsbenchError):
        consistent.p_unseen(np.full((2, 1), 1.0), g)


def test_logistic_regression_reaches_the_optimum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=120) > 0).astype(float)
    for multinomial, c_eff in ((False, 1.0), (True, 2.0)):
        m = LogisticRegressionL2(C=1.0, multinomial=multinomial).fit(x, y)
        p = m.predict_proba(x)[:, 1]
        grad_w = x.T @ (p - y) + m.coef_ / c_eff       # stationarity of the penalised loss
        grad_b = np.sum(p - y)
        assert np.abs(grad_w).max() < 1e-6 and abs(grad_b) < 1e-6
        assert np.mean(m.predict(x) == y) > 0.85
    with pytest.raises(ValueError):
        LogisticRegressionL2().fit(x, np.zeros(120))


def test_fit_gate_separates_and_records():
    rng = np.random.default_rng(1)
    zu = rng.dirichlet(np.full(4, 0.3), size=80)   # peaked ZSL outputs for unseen rows
    gu = rng.normal(size=(80, 9))                  # flat seen logits
    zs = rng.dirichlet(np.full(4, 3.0), size=100)
    gs = rng.normal(size=(100, 9)) * 4
    gate = fit_gate((zu, gu), (zs, gs), temperatures=[1, 2], thresholds=[0.4, 0.5, 0.6])
    assert gate.temperature in (1.0, 2.0) and gate.threshold in (0.4, 0.5, 0.6)
    assert gate.validation_accuracy > 0.8 and gate.k == 4
    assert gate.info["gate_holdout"] == [16, 20]
    acc = np.mean(np.r_[~gate.is_seen(zu, gu), gate.is_seen(zs, gs)])
    assert acc > 0.8
    fixed = fit_gate((zu, gu), (zs, gs), temperatures=[2], thresholds=[0.5], holdout=(10, 10))
    assert (fixed.temperature, fixed.threshold) == (2.0, 0.5) and fixed.info["gate_holdout"] == [10, 10]


def test_holdout_rows_and_synse_rows():
    rng = np.random.RandomState(5)
    tr, ho = holdout_rows(rng, 10, 0.2)
    assert len(ho) == 2 and len(tr) == 8 and not set(tr) & set(ho) and list(tr) == sorted(tr)
    with pytest.raises(ZsbenchError):
        holdout_rows(rng, 10, 300)
    z = np.arange(6).reshape(3, 2)
    np.testing.assert_array_equal(synse_code_unseen_rows(z, 4), z[[0, 1, 2, 0]])


def test_gate_validation_split():
    labels = np.repeat(np.arange(8), 10)
    prob = gate_validation_split(labels, np.arange(8), n_unseen=2, seed=3)
    assert len(prob.val_unseen) == 2 and set(prob.val_unseen) <= set(range(8))
    train_cls, test_cls = set(labels[prob.train_idx]), set(labels[prob.test_idx])
    assert not train_cls & set(prob.val_unseen)
    assert set(prob.val_unseen) <= test_cls and len(test_cls) == 8
    held_seen = np.isin(labels[prob.test_idx], prob.val_seen).sum()
    assert held_seen == 6 * 2          # 20% of 10 samples of each of the 6 val-seen classes
    given = gate_validation_split(labels, np.arange(8), 2, seed=3, val_unseen=[6, 1])
    assert given.val_unseen.tolist() == [1, 6]
    with pytest.raises(ZsbenchError):
        gate_validation_split(labels[:20], np.arange(2), 1, seed=0)


def _official_eval(ref, key: str, gate: SeenUnseenGate) -> tuple[float, float, float]:
    """acc_s, acc_u, H of gating_*_eval.py on the reference test rows with our gate."""
    zs, out, labels = ref["gate_in/gzsl_zs"], ref["gate_in/gtest_out"], ref["gate_in/g_label"]
    seen, unseen = ref["gate_in/seen_classes"], ref["gate_in/unseen_classes"]
    is_seen = gate.is_seen(zs, out)        # features from all C logit columns, as the scripts
    pred = np.where(is_seen, seen[np.argmax(out[:, seen], 1)], unseen[np.argmax(zs, 1)])
    m_seen = np.isin(labels, seen)
    acc_s = float(np.mean(pred[m_seen] == labels[m_seen]))
    acc_u = float(np.mean(pred[~m_seen] == labels[~m_seen]))
    return acc_s, acc_u, 2 * acc_s * acc_u / (acc_s + acc_u)


@pytest.mark.parametrize("name,runs,holdout", [("cada_vae", [0], (300, 400)), ("msf", [0, 1], 0.2)])
def test_gate_matches_official_scripts(name, runs, holdout):
    ref = np.load(FIDELITY / f"{name}.npz")
    rows_u = (ref["gate_in/unseen_zs"], ref["gate_in/ztest_out"])
    rows_s = (ref["gate_in/seen_zs"], ref["gate_in/val_out"])
    for r in runs:
        key = f"gate{r}"
        search = bool(ref[f"{key}/search"])
        temps = OFFICIAL_TEMPERATURES if search else [2.0]
        ths = OFFICIAL_THRESHOLDS if search else [0.5]
        gate = fit_gate(rows_u, rows_s, temperatures=temps, thresholds=ths, holdout=holdout,
                        seed=5, threshold_rule="official")
        assert gate.temperature == float(ref[f"{key}/temperature"])
        assert gate.threshold == pytest.approx(float(ref[f"{key}/threshold"]))
        assert gate.validation_accuracy == pytest.approx(float(ref[f"{key}/val_accuracy"]), abs=1e-9)
        feats = gate_features(ref["gate_in/gzsl_zs"], ref["gate_in/gtest_out"], gate.temperature)
        # scikit-learn's lbfgs stops at tol 1e-4; ours is solved to machine precision
        np.testing.assert_allclose(gate.model.predict_proba(feats), ref[f"{key}/test_proba"], atol=3e-3)
        acc_s, acc_u, h = _official_eval(ref, key, gate)
        tol = 1e-4 if name == "msf" else 1e-9     # MSF prints percentages with 2 decimals
        assert acc_s == pytest.approx(float(ref[f"{key}/acc_seen"]), abs=tol)
        assert acc_u == pytest.approx(float(ref[f"{key}/acc_unseen"]), abs=tol)
        assert h == pytest.approx(float(ref[f"{key}/h"]), abs=tol)
