"""DVTA: LeakySigmoid, SDE cross-attention, fusion/loss, and a tiny fit/score run."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsbench import api
from zsbench.api import ClassTexts, RunContext, TrainView, ZsbenchError
from zsbench.nn.losses import kl_multi_positive
from zsbench_dvta.config import DVTAConfig
from zsbench_dvta.method import DVTA, mixture_log_probs, warmup_cosine_lr
from zsbench_dvta.modules import DVTANet, cross_attention, leaky_sigmoid

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- LeakySigmoid
def test_leaky_sigmoid_both_branches():
    g = 0.01
    x = torch.tensor([-300.0, -2.0, 0.0, 0.5, 3.0])
    y = leaky_sigmoid(x, g)
    assert y[0].item() == pytest.approx(g * math.exp(-3.0))
    assert y[1].item() == pytest.approx(g * math.exp(-0.02))
    assert y[2].item() == pytest.approx(g)  # x <= 0 branch at 0 (discontinuous: sigmoid(0)=0.5)
    assert y[3].item() == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert y[4].item() == pytest.approx(1 / (1 + math.exp(-3.0)))


def test_leaky_sigmoid_gradient():
    g = 0.1
    x = torch.tensor([-2.0, -50.0, 1.0, 1e5], requires_grad=True)
    leaky_sigmoid(x, g).sum().backward()
    assert x.grad[0].item() == pytest.approx(g * g * math.exp(-0.2))  # d/dx g e^{gx}
    assert x.grad[1].item() == pytest.approx(g * g * math.exp(-5.0))
    s = 1 / (1 + math.exp(-1.0))
    assert x.grad[2].item() == pytest.approx(s * (1 - s))
    assert torch.isfinite(x.grad).all()  # no overflow from the unused exponential branch


# ----------------------------------------------------------------------------- SDE
def test_cross_attention_matches_manual_softmax():
    rng = np.random.default_rng(1)
    d = 4
    q = rng.normal(size=(3, d))
    kv = rng.normal(size=(3, 2, d))  # per query: two tokens [label, context]
    got = cross_attention(torch.tensor(q), torch.tensor(kv), 1 / math.sqrt(d)).numpy()
    for i in range(3):
        logits = kv[i] @ q[i] / math.sqrt(d)  # Q K^T / sqrt(d)
        w = np.exp(logits - logits.max())
        w /= w.sum()
        np.testing.assert_allclose(got[i], w @ kv[i], rtol=1e-10)  # softmax(.) V with V = K
    unscaled = cross_attention(torch.tensor(q), torch.tensor(kv), 1.0).numpy()
    w0 = np.exp(kv[0] @ q[0])
    np.testing.assert_allclose(unscaled[0], (w0 / w0.sum()) @ kv[0], rtol=1e-10)


def test_cross_attention_broadcasts_queries_over_classes():
    torch.manual_seed(0)
    q, kv = torch.randn(5, 6), torch.randn(3, 2, 6)  # 5 queries, 3 classes
    out = cross_attention(q[:, None, :], kv[None], 0.5)
    assert out.shape == (5, 3, 6)
    assert torch.allclose(out[4, 2], cross_attention(q[4], kv[2], 0.5), atol=1e-6)


def test_sde_code_variant_mixes_normalised_texts_then_projects():
    torch.manual_seed(0)
    net = DVTANet(6, 4, use_aa=False)
    v_e, lab, ctx = torch.randn(4), torch.randn(4), torch.randn(4)
    ln, cn = F.normalize(lab, dim=0), F.normalize(ctx, dim=0)
    a = torch.softmax(torch.stack([v_e @ ln, v_e @ cn]), dim=0)
    expected = net.text(a[0] * ln + a[1] * cn)
    assert torch.allclose(net.embed_text(v_e, lab, ctx), expected, atol=1e-6)
    paper = DVTANet(6, 4, use_aa=False, sde_variant="paper")
    keys = torch.stack([paper.text(ln), cn])
    w = torch.softmax(keys @ v_e / 2.0, dim=0)  # 1/sqrt(h), h = 4
    assert torch.allclose(paper.embed_text(v_e, lab, ctx), w @ keys, atol=1e-6)
    no_sde = DVTANet(6, 4, use_sde=False, use_aa=False)
    assert torch.allclose(no_sde.embed_text(v_e, lab, None), no_sde.text(ln))


def test_parameter_count_matches_official_layer_sizes():
    net = DVTANet(256, 768)
    assert sum(p.numel() for p in net.parameters()) == 4_888_195
    assert sum(p.numel() for p in net.visual.parameters()) == 755_584
    assert sum(p.numel() for p in net.metric.parameters()) == 3_542_017


def test_aa_inputs_detached():
    torch.manual_seed(0)
    net = DVTANet(6, 4)
    v_e = net.embed_skeleton(torch.randn(3, 6))
    t_e = net.embed_text(v_e, torch.randn(3, 4), torch.randn(3, 4))
    _, aa = net.pair_scores(v_e, t_e, detach_aa=True)
    aa.sum().backward()
    assert all(p.grad is None for p in net.visual.parameters())
    assert all(p.grad is not None for p in net.metric.parameters())
    net.zero_grad(set_to_none=True)
    v_e = net.embed_skeleton(torch.randn(3, 6))
    _, aa = net.pair_scores(v_e, net.embed_text(v_e, torch.randn(3, 4), torch.randn(3, 4)))
    aa.sum().backward()
    assert all(p.grad is not None for p in net.visual.parameters())


# ----------------------------------------------------------------------------- fusion / loss
def test_metric_split_first_layer_equals_the_concatenation():
    """The metric computes W [s; t] + b as W_s s + W_t t + b on unbroadcast operands: same
    values and gradients as the MLP on explicitly concatenated (B, K, 2h) pairs, for texts
    shared by every row (training) and per-row texts (SDE at test time)."""
    torch.manual_seed(0)
    net = DVTANet(6, 8)
    metric = net.metric
    v = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    metric.double()
    for t_shape in [(1, 7, 8), (5, 7, 8)]:
        t = torch.randn(*t_shape, dtype=torch.float64, requires_grad=True)
        fast = metric(v.unsqueeze(1), t)
        pairs = torch.cat([v.unsqueeze(1).expand(5, 7, 8), t.expand(5, 7, 8)], dim=-1)
        slow = metric.activation(metric.mlp(pairs).squeeze(-1))
        assert fast.shape == (5, 7)
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
        g = torch.randn(5, 7, dtype=torch.float64)
        grads_fast = torch.autograd.grad(fast, [v, t, *metric.parameters()], g)
        grads_slow = torch.autograd.grad(slow, [v, t, *metric.parameters()], g)
        for a, b in zip(grads_fast, grads_slow):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_mean_probs_fusion_is_log_of_average():
    torch.manual_seed(0)
    a, b = torch.randn(3, 3), torch.randn(3, 3)
    expected = torch.log((torch.softmax(a, 1) + torch.softmax(b, 1)) / 2)
    assert torch.allclose(mixture_log_probs([a, b], dim=1), expected, atol=1e-6)


def test_sum_logits_loss_is_kl_of_summed_logits():
    m = DVTA(DVTAConfig())
    m.net = DVTANet(6, 4)
    da, aa = torch.randn(4, 4), torch.rand(4, 4)
    labels = torch.tensor([0, 1, 0, 2])
    got = m._loss(m._logit_terms(da, aa), labels)
    assert got.item() == pytest.approx(kl_multi_positive(da / 0.1 + aa / 0.1, labels, 10.0).item(),
                                       rel=1e-5)
    m.config = DVTAConfig(loss="infonce", use_aa=False)
    x2t = torch.log_softmax(da / 0.1, 1)
    t2x = torch.log_softmax(da.T / 0.1, 1)
    expected = -0.5 * (x2t.diagonal().mean() + t2x.diagonal().mean())
    assert m._loss(m._logit_terms(da, None), labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_schedule_warmup_then_cosine():
    assert warmup_cosine_lr(1e-5, 0, 15, 100) == 0.0
    assert warmup_cosine_lr(1e-5, 5, 15, 100) == pytest.approx(1e-5 / 3)
    assert warmup_cosine_lr(1e-5, 15, 15, 100) == pytest.approx(1e-5)
    assert warmup_cosine_lr(1e-5, 57.5, 15, 100) == pytest.approx(0.5e-5)
    assert warmup_cosine_lr(1e-5, 100, 15, 100) == pytest.approx(0.0, abs=1e-20)


def test_config_presets_and_validation():
    assert DVTAConfig().resolve_lr("ntu60") == (1e-6, "code preset ntu60")
    assert DVTAConfig().resolve_lr("ntu120")[0] == 5e-6
    assert DVTAConfig().resolve_lr("pku_mmd")[0] == 1e-5
    assert DVTAConfig(lr_source="paper").resolve_lr("ntu60") == (1e-5, "paper")
    assert DVTAConfig().resolve_lr("synthetic")[0] == 1e-5
    assert DVTAConfig(use_sde=False).context_kind is None
    with pytest.raises(ValueError, match="no score"):
        DVTAConfig(use_da_logits=False, use_aa=False)
    with pytest.raises(ValueError, match="detach_aa_inputs"):
        DVTAConfig(use_da_logits=False)
    with pytest.raises(ValueError):
        DVTAConfig(aa_activation="relu")


# ----------------------------------------------------------------------------- fit / score
def make_problem(seed=0, dim=32, text_dim=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim)).astype(np.float32)
    labels = np.repeat(np.arange(6), 8)
    x = centres[labels] + 0.1 * rng.normal(size=(48, dim)).astype(np.float32)
    name = rng.normal(size=(6, text_dim)).astype(np.float32)
    context = rng.normal(size=(6, text_dim)).astype(np.float32)
    texts = ClassTexts(class_ids=np.arange(6), class_names=[f"c{i}" for i in range(6)],
                       texts={"name": [[f"c{i}"] for i in range(6)],
                              "context": [[f"x{i}"] for i in range(6)]},
                       embeddings={"name": [name[i:i + 1] for i in range(6)],
                                   "context": [context[i:i + 1] for i in range(6)]})
    seen = labels < 4
    train = TrainView(x=x[seen], labels=labels[seen], texts=texts.subset([0, 1, 2, 3]),
                      kind="features")
    return train, api.TestView(x=x[~seen], kind="features"), texts.subset([4, 5])


def make_ctx(tmp_path, dataset="synthetic"):
    return RunContext(device="cpu", seed=0, cache_dir=tmp_path, progress=lambda it, **kw: it,
                      dataset=api.DatasetInfo(name=dataset, family=dataset, num_classes=6))


def small(**kw):
    base = dict(epochs=8, warmup_epochs=1, lr=1e-3, batch_size=12, test_batch_size=5)
    base.update(kw)
    return DVTAConfig(**base)


def test_fit_and_score(tmp_path):
    train, test, cand = make_problem()
    ctx = make_ctx(tmp_path)
    m = DVTA(small())
    m.fit(train, ctx)
    assert m.history[-1] < m.history[1]
    assert ctx.details["dvta_lr"] == 1e-3 and ctx.details["dvta_tau_da"] != 0.1
    scores = m.score(test, cand, ctx)
    assert scores.shape == (16, 2) and np.isfinite(scores).all()
    # per-sample SDE: recompute sample 3 against each class by hand
    net = m.net
    with torch.no_grad():
        v = net.embed_skeleton(torch.as_tensor(test.x[3:4]))[0]
        lab, ctxt = (torch.as_tensor(cand.matrix(k)) for k in ("name", "context"))
        for k in range(2):
            t = net.embed_text(v, lab[k], ctxt[k])
            manual = (F.cosine_similarity(v, t, dim=0) / net.tau_da.value
                      + net.metric(v, t) / net.tau_aa.value)
            assert scores[3, k] == pytest.approx(manual.item(), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("options", [
    dict(use_sde=False),
    dict(fusion="mean_probs"),
    dict(loss="softmax_ce", aa_activation="sigmoid", sde_variant="paper"),
    dict(visual_projector="linear", text_projector="identity", use_aa=False),  # Table III (2)
    dict(use_da_logits=False, detach_aa_inputs=False, aa_activation="none"),
])
def test_ablation_switches_run(tmp_path, options):
    train, test, cand = make_problem()
    m = DVTA(small(epochs=2, **options))
    m.fit(train, make_ctx(tmp_path))
    scores = m.score(test, cand, make_ctx(tmp_path))
    assert scores.shape == (16, 2) and np.isfinite(scores).all()
    if options.get("fusion") == "mean_probs":
        assert np.allclose(scores.sum(1), 1.0, atol=1e-5)


def test_code_lr_preset_from_context(tmp_path):
    train, *_ = make_problem()
    ctx = make_ctx(tmp_path, dataset="ntu60")
    DVTA(small(epochs=1, lr=None)).fit(train, ctx)
    assert ctx.details["dvta_lr"] == 1e-6 and ctx.details["dvta_lr_source"] == "code preset ntu60"


def test_errors(tmp_path):
    train, test, cand = make_problem()
    seq = TrainView(x=np.zeros((4, 3, 2, 5, 1), np.float32), labels=train.labels[:4],
                    texts=train.texts, kind="sequences")
    with pytest.raises(ZsbenchError, match="features"):
        DVTA(small()).fit(seq, make_ctx(tmp_path))
    with pytest.raises(ZsbenchError, match="before fit"):
        DVTA(small()).score(test, cand, make_ctx(tmp_path))
    no_ctx = ClassTexts(class_ids=train.texts.class_ids, class_names=train.texts.class_names,
                        texts={"name": train.texts.texts["name"]},
                        embeddings={"name": train.texts.embeddings["name"]})
    with pytest.raises(ZsbenchError, match="context"):
        DVTA(small()).fit(TrainView(x=train.x, labels=train.labels, texts=no_ctx,
                                    kind="features"), make_ctx(tmp_path))


# ----------------------------------------------------------------------------- registration
def test_spec_and_reported_numbers():
    from zsbench.reported import read_reported
    from zsbench_dvta.plugin import zsbench_methods

    (spec,) = zsbench_methods()
    assert not spec.transductive and spec.inputs == "features" and spec.load() is DVTA
    rows = read_reported(spec.reported)
    assert len(rows) == 111 and {r["method"] for r in rows} == {"dvta"}
    table2 = {r["dataset"]: r["value"] for r in rows if r["table"] == "Table II"}
    assert table2 == {"ntu60": "74.03", "ntu120": "60.33", "pku_mmd": "77.06"}


def test_plugin_import_does_not_import_torch():
    code = "import sys, zsbench_dvta.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{ROOT / 'harness'}:{ROOT / 'plugins'}"})
    assert out.stdout.strip() == "False"
