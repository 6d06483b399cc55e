"""ReViSE: the MMD, contractive and hinge terms against hand-computed values, the official
implementation's outputs (tests/fidelity/revise.npz), fit/score and the seen/unseen gate."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from zsbench.api import ClassTexts, TestView, TrainView, ZsbenchError
from zsbench.testing import check_plugin, context, tiny_problem
from zsbench_revise.config import ReViSEConfig
from zsbench_revise.method import ReViSE, autoencoder_sizes
from zsbench_revise.modules import (ReviseAutoencoder, ReviseNet, contractive_term, gaussian_mmd,
                                    multiclass_hinge)

pytestmark = pytest.mark.usefixtures("torch_single_thread")
FIDELITY = Path(__file__).parent / "fidelity" / "revise.npz"


# ----------------------------------------------------------------------------- MMD
def test_mmd_closed_form():
    # a = {(0,0), (1,0)}, b = {(0,0), (0,1)}: within-set squared distances 0,1,1,0 in both
    # sets; across 0,1,1,2 -> MMD = [2(2 + 2e^-k) - 2(1 + 2e^-k + e^-2k)] / 4 = (1 - e^-2k) / 2
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    for k in (0.5, 2.0, 32.0):
        assert gaussian_mmd(a, b, k).item() == pytest.approx((1 - math.exp(-2 * k)) / 2, rel=1e-6)


def test_mmd_against_explicit_kernel_sums():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(5, 3, generator=g), torch.rand(5, 3, generator=g)
    k = 0.7

    def K(u, v):
        return sum(math.exp(-k * float(((ui - vj) ** 2).sum())) for ui in u for vj in v) / 25

    expected = K(a, a) + K(b, b) - K(a, b) - K(b, a)
    assert gaussian_mmd(a, b, k).item() == pytest.approx(expected, rel=1e-5)
    assert gaussian_mmd(a, a, k).item() == pytest.approx(0.0, abs=1e-7)
    assert gaussian_mmd(a, b[[4, 2, 0, 1, 3]], k).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError):
        gaussian_mmd(a, b[:4], k)


def _official_mmd(a, b, k):
    """The repository's MMDLoss formula: broadcast differences, squared, summed."""
    z = torch.cat([a, b])
    sq = ((z.unsqueeze(0) - z.unsqueeze(1)) ** 2).sum(2)
    kern = torch.exp(-k * sq)
    n = a.shape[0]
    return (kern[:n, :n] + kern[n:, n:] - kern[:n, n:] - kern[n:, :n]).mean()


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_mmd_value_and_gradients_equal_the_official_formula_in_float64(scale):
    """The product form in float64 gives the official broadcast formula's function: value
    and gradients against that formula evaluated in float64 are within float32 rounding,
    and at least as close as the official formula evaluated in float32 (which is what the
    original code computes); close pairs, where the product form cancels, included."""
    g = torch.Generator().manual_seed(1)
    a0 = torch.rand(40, 16, generator=g) * scale
    b0 = a0 + 0.02 * scale * torch.randn(40, 16, generator=g)   # near pairs across sets
    k = 0.5 / scale ** 2

    def run(f, dtype):
        a = a0.to(dtype).requires_grad_()
        b = b0.to(dtype).requires_grad_()
        v = f(a, b, k)
        v.backward()
        return v.detach().double(), a.grad.double(), b.grad.double()

    exact = run(_official_mmd, torch.float64)
    ours = run(gaussian_mmd, torch.float32)
    theirs32 = run(_official_mmd, torch.float32)
    # the value is a difference of kernel means (kernels <= 1): float32 rounding of the
    # exp and the means, common to both ways, sets its error
    assert abs(float(ours[0] - exact[0])) <= 1e-6
    for i, (e, o, t) in enumerate(zip(exact[1:], ours[1:], theirs32[1:])):
        size = float(e.abs().max())
        err_ours, err_theirs = float((o - e).abs().max()), float((t - e).abs().max())
        assert err_ours <= 1e-5 * size + 1e-9, (i, err_ours, size)
        assert err_ours <= max(2 * err_theirs, 1e-7 * size), (i, err_ours, err_theirs)


def test_mmd_gradient_is_finite_on_identical_rows():
    a = torch.zeros(3, 4, requires_grad=True)
    gaussian_mmd(a, torch.ones(3, 4), 1.0).backward()
    assert torch.isfinite(a.grad).all()


# ----------------------------------------------------------------------------- contractive
def test_contractive_term_of_an_active_linear_layer():
    # h = ReLU(W x + b) with every pre-activation positive: d(sum h)/dx_i = column sums of W
    w = torch.tensor([[1.0, 2.0, 0.5], [0.5, -1.0, 1.0]])
    x = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.5, 1.0]], requires_grad=True)
    h = torch.relu(x @ w.T + 5.0)
    colsum = w.sum(0)                                            # (1.5, 1.0, 1.5)
    expected = math.sqrt(2) * float(colsum.norm())               # two identical rows
    got = contractive_term(h, x)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got.grad_fn is None                                   # as the code: a constant
    h = torch.relu(x @ w.T + 5.0)
    assert contractive_term(h, x, differentiable=True).grad_fn is not None


# ----------------------------------------------------------------------------- hinge
def test_multiclass_hinge_hand_values():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[0.5, 0.0], [0.0, 0.2]])                   # <a, p> = 0.5, 0.2
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.4, 0.4]])
    # row 1: scores 1, 0, 0.4 -> max(0, .3 + s - .5) = .8, 0, .2 ; row 2: 0, 1, .4 -> .1, 1.1, .5
    assert multiclass_hinge(a, p, e, 0.3).item() == pytest.approx((0.8 + 0.2 + 0.1 + 1.1 + 0.5) / 2)
    # a perfect own text still pays the margin once (the true class is in the sum)
    assert multiclass_hinge(a, a, a, 0.3).item() == pytest.approx(0.3)


# ----------------------------------------------------------------------------- architecture
def test_autoencoder_sizes_follow_the_repository_rule():
    assert autoencoder_sizes(256, None, 100, 512) == [256, 100]          # Shift-GCN: AttAE
    assert autoencoder_sizes(2048, None, 100, 512) == [2048, 512, 100]   # VA-CNN: VisAE
    assert autoencoder_sizes(1024, None, 100, 300) == [1024, 512, 100]   # Sentence-BERT
    assert autoencoder_sizes(300, None, 100, 300) == [300, 100]          # word2vec
    assert autoencoder_sizes(384, [64, 32], 100, 300) == [384, 64, 32, 100]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ReviseAutoencoder([256, 100])) == 56_606                # AttAE(256, 100)
    assert count(ReviseAutoencoder([1024, 512, 100])) == 1_158_174       # VisAE(1024, 512, 100)
    with pytest.raises(ValueError, match="code width"):
        ReviseNet([256, 100], [1024, 50])


def test_config_defaults_are_the_repository_values():
    c = ReViSEConfig()
    assert (c.code_dim, c.embed_dim, c.mmd_k, c.hinge_margin, c.contractive_gamma) == (100, 50, 32, 0.3, 1e-4)
    assert (c.epochs, c.batch_size, c.lr, c.text_weight_decay, c.visual_weight_decay) == (300, 1024, 1e-4, 1e-3, 0)
    assert (c.plateau_factor, c.plateau_patience, c.plateau_cooldown) == (0.1, 25, 3)
    assert c.gate_temperatures == [float(t) for t in range(2, 10)] and not c.gate_multinomial
    assert (c.gate_holdout_unseen, c.gate_holdout_seen, c.gate_seed) == (300, 400, 5)
    assert c.selection == "final"
    assert c.needs().text_kinds == ["name"]
    with pytest.raises(ValueError):
        ReViSEConfig(mmd_k=0)


# ----------------------------------------------------------------------------- fidelity
def load_reference():
    ref = np.load(FIDELITY)
    net = ReviseNet([24, 10], [32, 16, 10], embed_dim=6)
    net.load_state_dict({k[2:]: torch.from_numpy(ref[k]) for k in ref.files if k.startswith("w/")})
    return ref, net


def test_fidelity_losses_gradients_and_scores():
    ref, net = load_reference()
    assert str(ref["repo"]) == "skelemoa/synse-zsl"
    assert str(ref["commit"]) == "90f39a118170d708843c5d4305bd807905cb4c54"
    x, text, ctext = (torch.from_numpy(ref[k]) for k in ("x", "text", "class_text"))
    losses = net.losses(x, text, ctext, gamma=float(ref["gamma"]))
    for key in ("hinge", "rec_v", "contractive", "rec_t", "mmd", "total"):
        assert losses[key].item() == pytest.approx(float(ref[f"loss_{key}"]), abs=1e-5), key
    net.zero_grad()
    losses["total"].backward()
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref[f"g/{name}"], atol=1e-5, err_msg=name)
    with torch.no_grad():
        h_v, rec_v, e_v = net.visual(torch.log(1 + x))
        h_t, _, e_t = net.text(text)
        for got, key in ((h_v, "h_v"), (rec_v, "rec_v_out"), (e_v, "e_v"), (h_t, "h_t"), (e_t, "e_t")):
            np.testing.assert_allclose(got.numpy(), ref[key], atol=1e-5, err_msg=key)
        assert gaussian_mmd(h_v, h_t, 0.05).item() == pytest.approx(float(ref["mmd_k0.05"]), abs=1e-5)
        scores = net.visual_embedding(x) @ net.text.embed(ctext[2:]).T
    np.testing.assert_allclose(scores.numpy(), ref["zsl_scores"], atol=1e-5)


# ----------------------------------------------------------------------------- fit / score
def problem(seed=0):
    train, test, cand, y = tiny_problem(num_classes=10, num_unseen=3, per_class=24,
                                        feature_dim=12, text_dim=16, seed=seed)
    train.x, test.x = np.abs(train.x), np.abs(test.x)
    return train, test, cand, y


def small(**kw):
    return ReViSEConfig(**{**dict(epochs=6, batch_size=32, lr=1e-3, seen_classifier_epochs=3), **kw})


def test_fit_and_score_dot_products():
    train, test, cand, y = problem()
    m = ReViSE(small())
    ctx = context()
    m.fit(train, ctx)
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 3) and np.isfinite(s).all()
    assert ctx.details["revise"]["log_input"] is True                   # features are >= 0
    with torch.no_grad():
        ev = m.net.visual.embed(torch.log1p(torch.from_numpy(test.x[:2])))
        t = torch.from_numpy(cand.matrix("name"))
        et = m.net.text.embed(t / t.norm(dim=1, keepdim=True))
    np.testing.assert_allclose(s[:2], (ev @ et.T).numpy(), rtol=1e-5, atol=1e-6)


def test_validation_selection_holds_classes_out():
    train, test, cand, _ = problem()
    m = ReViSE(small(selection="validation", epochs=4))
    ctx = context()
    m.fit(train, ctx)
    d = ctx.details["revise"]
    assert d["selection"] == "validation" and len(d["validation_classes"]) == 2
    assert set(d["validation_classes"]) <= set(train.texts.class_ids.tolist())
    assert 0 <= d["best_epoch"] < 4


def test_gate_routes_gzsl_samples():
    train, _, _, _ = problem()
    rng = np.random.default_rng(1)
    full = ClassTexts(class_ids=np.arange(10), class_names=[f"c{i}" for i in range(10)],
                      texts={"name": [[f"c{i}"] for i in range(10)]},
                      embeddings={"name": [rng.normal(size=(1, 16)).astype(np.float32)
                                           for _ in range(10)]})
    train = TrainView(x=train.x, labels=train.labels, texts=full.subset(range(7)), kind="features")
    m = ReViSE(small(gate_threshold_rule="official"))
    ctx = context()
    m.fit(train, ctx)
    test = TestView(x=np.abs(rng.normal(size=(20, 12))).astype(np.float32), kind="features")
    scores = m.score(test, full, ctx)
    seen_mask = np.r_[np.ones(7, bool), np.zeros(3, bool)]
    pred = m.gzsl_decide(scores, seen_mask, test, full, ctx)
    assert pred.shape == (20,) and set(pred.tolist()) <= set(range(10))
    gate = ctx.details["gate"]
    assert gate["k"] == 3 and gate["small_holdout"] is True             # too few rows for 300/400
    assert 2.0 <= gate["temperature"] <= 9.0 and 0.25 <= gate["threshold"] <= 0.74
    assert "gate_threshold_rule_official" in ctx.deviations
    unseen_rows = ~np.isin(pred, np.arange(7))
    np.testing.assert_array_equal(pred[unseen_rows], 7 + scores[unseen_rows, 7:].argmax(1))


def test_errors():
    train, test, cand, _ = problem()
    with pytest.raises(ZsbenchError, match="before fit"):
        ReViSE(small()).score(test, cand, context())
    neg = TrainView(x=train.x - 5.0, labels=train.labels, texts=train.texts, kind="features")
    with pytest.raises(ZsbenchError, match="log_input"):
        ReViSE(small(log_input=True)).fit(neg, context())
    m = ReViSE(small())
    m.fit(neg, context())                                               # auto: no log transform
    assert m.log_input is False
    seq = TrainView(x=np.zeros((4, 3, 2, 5, 1), np.float32), labels=train.labels[:4],
                    texts=train.texts, kind="sequences")
    with pytest.raises(ZsbenchError, match="features"):
        ReViSE(small()).fit(seq, context())
    with pytest.raises(ZsbenchError, match="text kind"):
        ReViSE(small(text_kind="description")).fit(train, context())


@pytest.mark.slow
def test_gate_end_to_end_on_tiny_benchmark(tmp_path, zs_cache):
    rec, _ = check_plugin("revise", out=tmp_path, cache_dir=zs_cache,
                          extra=["gzsl_rule=method", "method.seen_classifier_epochs=3"])
    fold = rec.folds[0]
    assert fold.gzsl_rule["rule"] == "method"
    assert fold.details["gate"]["k"] == len(fold.unseen)
    assert all(v is not None and 0 <= v <= 100 for v in fold.metrics.values())


# ----------------------------------------------------------------------------- registration
def test_specs_reported_numbers_and_lazy_imports():
    import subprocess
    import sys

    from zsbench.reported import read_reported
    from zsbench_jpose.plugin import zsbench_methods as jpose_specs
    from zsbench_relationnet.plugin import zsbench_methods as relationnet_specs
    from zsbench_revise.plugin import zsbench_methods as revise_specs

    counts = {"revise": 71, "jpose": 76, "relationnet": 14}
    for specs in (revise_specs, jpose_specs, relationnet_specs):
        (spec,) = specs()
        rows = read_reported(spec.reported)
        assert len(rows) == counts[spec.name] and {r["method"] for r in rows} == {spec.name}
        assert spec.inputs == "features" and not spec.transductive
        assert spec.load().__name__ in ("ReViSE", "JPoSE", "RelationNetMethod")
    synse_5 = {r["source_paper"]: r["value"] for r in read_reported("zsbench_jpose:reported.csv")
               if r["protocol"] == "synse" and r["split"] == "55/5" and r["setting"] == "zsl"}
    assert synse_5 == {"dvta": "64.82", "pgfa": "64.82", "msf": "64.32"}
    code = ("import sys, zsbench_revise.plugin, zsbench_jpose.plugin, zsbench_relationnet.plugin; "
            "print('torch' in sys.modules)")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{root / 'harness'}:{root / 'plugins'}"})
    assert out.stdout.strip() == "False"
