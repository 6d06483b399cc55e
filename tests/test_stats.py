"""Statistics of sweeps (zsbench.stats) and feature diagnostics (zsbench.diagnostics)
against hand-computed values and scipy; the methods' embed hooks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsbench.api import TestView
from zsbench.diagnostics import RIDGE, fisher_ratio, fold_diagnostics, silhouette
from zsbench.stats import (Observation, bootstrap_diff, pack_bits, paired_test, seed_markdown,
                           seed_stats, unpack_bits)
from zsbench.testing import context, tiny_problem

T_975_3 = 3.182446305284263   # Student t, 97.5% quantile, 3 degrees of freedom (table value)


def test_seed_stats_by_hand():
    s = seed_stats([70.0, 72.0, 74.0, 78.0, None])
    # mean 73.5; squared deviations 12.25 + 2.25 + 0.25 + 20.25 = 35; var = 35 / 3
    std = math.sqrt(35 / 3)
    half = T_975_3 * std / 2
    assert (s.n, s.mean) == (4, 73.5)
    assert s.std == pytest.approx(std, abs=1e-12)
    assert (s.ci_low, s.ci_high) == (pytest.approx(73.5 - half), pytest.approx(73.5 + half))
    assert s.text(ci=True) == f"73.50 ± {std:.2f} [{73.5 - half:.2f}, {73.5 + half:.2f}]"
    one = seed_stats([61.0])
    assert (one.n, one.mean, one.std, one.ci_low) == (1, 61.0, None, None)
    assert seed_stats([]).mean is None


A = [71.2, 68.5, 74.0, 70.1, 69.8, 73.3, 72.0]
B = [69.0, 68.9, 71.5, 68.0, 69.1, 70.2, 70.5]


def test_paired_tests_match_scipy_and_hand_values():
    from scipy import stats as st

    w = paired_test(A, B, "wilcoxon")
    # differences 2.2 -0.4 2.5 2.1 0.7 3.1 1.5: the only negative one has rank 1, so
    # W- = 1; exact two-sided p = 2 * #{subsets of ranks with sum <= 1} / 2^7 = 4 / 128
    assert w.statistic == 1.0 and w.p_value == pytest.approx(4 / 128, abs=1e-12)
    assert w.p_value == pytest.approx(st.wilcoxon(A, B).pvalue, abs=1e-12)
    assert w.significant and w.n == 7 and w.mean_diff == pytest.approx(11.7 / 7)
    t = paired_test(A, B, "ttest")
    ref = st.ttest_rel(A, B)
    assert t.statistic == pytest.approx(ref.statistic) and t.p_value == pytest.approx(ref.pvalue)
    d = np.subtract(A, B)
    assert t.statistic == pytest.approx(d.mean() / (d.std(ddof=1) / math.sqrt(7)))
    assert paired_test(A, B).test == "wilcoxon"               # auto: 7 pairs
    small = paired_test(A[:4], B[:4])
    assert small.test == "ttest"                              # auto: 4 pairs
    assert not paired_test(A[:4], B[:4], "wilcoxon").significant   # cannot be, with 4 pairs
    assert paired_test(A, A).p_value == 1.0 and not paired_test(A, A).significant


def test_bits_round_trip():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 100):
        bits = rng.random(n) < 0.5
        assert np.array_equal(unpack_bits(pack_bits(bits), n), bits)


def _obs(bits_zsl, bits_gzsl=None, n_seen=0, seed=0, fold="f"):
    correct = {"zsl": pack_bits(bits_zsl)}
    if bits_gzsl is not None:
        correct["gzsl"] = pack_bits(bits_gzsl)
    return Observation(method="m", variant="-", protocol="p", dataset="d", fold=fold,
                       split_id="s", seed=seed, fingerprint="x",
                       metrics={"zsl_acc": 100 * float(np.mean(bits_zsl))},
                       n_test_seen=n_seen, n_test_unseen=len(bits_zsl), correct=correct)


def test_bootstrap_interval_matches_the_analytic_one():
    # 400 paired samples: both right 200, A only 60, B only 20, neither 120
    a = np.r_[np.ones(260, bool), np.zeros(140, bool)]
    b = np.r_[np.ones(200, bool), np.zeros(60, bool), np.ones(20, bool), np.zeros(120, bool)]
    bs = bootstrap_diff([(_obs(a), _obs(b))], "zsl_acc", n_resamples=4000, seed=1)
    assert bs.diff == pytest.approx(10.0)
    # per-sample difference d in {+1 (60), -1 (20), 0}: var = 0.2 - 0.1^2 = 0.19
    half = 1.959964 * 100 * math.sqrt(0.19 / 400)
    assert bs.ci_low == pytest.approx(10 - half, abs=0.4)
    assert bs.ci_high == pytest.approx(10 + half, abs=0.4)
    assert bs.significant


def test_bootstrap_gzsl_h_and_identical_runs():
    rng = np.random.default_rng(0)
    g = rng.random(50) < 0.6       # 20 seen then 30 unseen test samples
    z = g[20:]
    same = bootstrap_diff([(_obs(z, g, 20), _obs(z, g, 20))], "gzsl_h", n_resamples=500)
    assert (same.diff, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0) and not same.significant
    better = g.copy()
    better[20:] = True
    bs = bootstrap_diff([(_obs(better[20:], better, 20), _obs(z, g, 20))], "gzsl_h", 500)
    s, u_a, u_b = 100 * g[:20].mean(), 100.0, 100 * g[20:].mean()
    assert bs.diff == pytest.approx(2 * s * u_a / (s + u_a) - 2 * s * u_b / (s + u_b))
    assert bootstrap_diff([(_obs(z), _obs(z))], "gzsl_h") is None      # no GZSL bits


def test_seed_table_marks_significant_differences():
    obs = []
    for seed, (x, y) in enumerate(zip(A, B)):
        for method, v in (("ref", y), ("new", x)):
            o = _obs(np.ones(3, bool), seed=seed)
            o.method, o.metrics = method, {"zsl_acc": v}
            obs.append(o)
    text = seed_markdown(obs, ["zsl_acc"], reference="ref")
    row = next(line for line in text.splitlines() if line.startswith("| new"))
    assert f"{seed_stats(A).text(ci=True)} *" in row
    assert "| ref " in text and "significantly different from `ref`" in text


# ------------------------------------------------------------------ diagnostics
def test_fisher_ratio_by_hand():
    x = np.array([[0.0], [2.0], [4.0], [6.0], [8.0]])
    y = np.array([0, 0, 1, 1, 1])
    # S_w = var{0,2} + var{4,6,8} = 2 + 4; S_b = (1-4)^2 + (6-4)^2 = 13 (overall mean 4)
    assert fisher_ratio(x, y) == pytest.approx(13 / (6 * (1 + RIDGE)))
    assert fisher_ratio(x, np.zeros(5)) is None


def test_silhouette_is_the_cosine_definition():
    x = np.array([[1, 0], [1, 0.2], [0.9, 0.3], [0, 1], [0.2, 1], [0.4, 0.9]])
    y = np.array([0, 0, 0, 1, 1, 1])
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    dist = 1 - unit @ unit.T
    s = []
    for i in range(6):
        same = (y == y[i]) & (np.arange(6) != i)
        a, b = dist[i, same].mean(), dist[i, y != y[i]].mean()
        s.append((b - a) / max(a, b))
    assert silhouette(x, y) == pytest.approx(np.mean(s))


def test_fold_diagnostics_writes_the_plot(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat([3, 5, 7], 6)
    before = rng.normal(size=(18, 4)) + y[:, None]
    out = fold_diagnostics({"labels": y, "before": before, "after": before[:, :2],
                            "names": {3: "a", 5: "b", 7: "c"}}, tmp_path, "split/x", "tsne")
    assert out["before"]["dim"] == 4 and out["after"]["dim"] == 2
    assert out["after"]["fisher_ratio"] == pytest.approx(fisher_ratio(before[:, :2], y))
    png = tmp_path / out["tsne"]
    assert out["tsne"] == "diagnostics/split_x.png" and png.read_bytes()[:4] == b"\x89PNG"
    assert "tsne" not in fold_diagnostics({"labels": y, "after": before}, tmp_path, "f", "metrics")


def test_devise_and_dvta_embed_hooks():
    from zsbench_devise.config import DeViSEConfig
    from zsbench_devise.method import DeViSE, unit_rows
    from zsbench_dvta.config import DVTAConfig
    from zsbench_dvta.method import DVTA

    torch.set_num_threads(1)
    train, test, cand, _ = tiny_problem(kinds=("name", "description"))
    m = DeViSE(DeViSEConfig(epochs=2))
    m.fit(train, context())
    z = m.embed(test, context())
    assert z.shape == (len(test.x), 12)
    assert np.allclose(z @ unit_rows(cand.matrix("name")).T, m.score(test, cand, context()),
                       atol=1e-5)
    d = DVTA(DVTAConfig(epochs=1, use_sde=False))
    d.fit(train, context())
    e = d.embed(TestView(x=test.x, kind="features"), context())
    with torch.no_grad():
        ref = d.net.embed_skeleton(torch.as_tensor(np.asarray(test.x, np.float32)))
    assert e.shape[0] == len(test.x) and np.allclose(e, ref.numpy(), atol=1e-6)
