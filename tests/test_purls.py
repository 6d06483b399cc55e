"""PURLS: feature tokens, description-queried pooling, the per-representation loss, scores,
fidelity to the official model/loss (azzh1/PURLS), the method on small sequences and a
tiny end-to-end run."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsbench.api import ClassTexts, DatasetInfo, TestView, TrainView, ZsbenchError
from zsbench.testing import context
from zsbench_purls.config import DEFAULT_DESCRIPTIONS, PurlsConfig, parse_source
from zsbench_purls.method import Purls, class_text_tensor, val_split
from zsbench_purls.modules import (DescriptionAttention, PurlsHead, candidate_scores,
                                   fixed_query_predictions, purls_loss, representation_loss,
                                   segment_tokens, static_pool)

pytestmark = pytest.mark.usefixtures("torch_single_thread")
ROOT = Path(__file__).resolve().parents[1]
FIDELITY = ROOT / "tests" / "fidelity" / "purls.npz"


# ----------------------------------------------------------------------------- tokens
def test_segment_tokens_by_hand():
    fmap = torch.arange(2 * 2 * 6 * 3, dtype=torch.float32).view(2, 2, 6, 3) + 1
    tok = segment_tokens(fmap, 3)
    assert tok.shape == (2, 3, 3, 2)
    for n in range(2):
        for s in range(3):
            for v in range(3):
                raw = fmap[n, :, 2 * s:2 * s + 2, v].mean(dim=1)     # mean over each third
                assert torch.allclose(tok[n, s, v], raw / raw.norm(), atol=1e-6)
    odd = torch.rand(1, 2, 16, 1) + 0.1                               # T' = 16: windows
    tok16 = segment_tokens(odd, 3)                                    # [0,6) [5,11) [10,16)
    for s, (a, b) in enumerate([(0, 6), (5, 11), (10, 16)]):
        raw = odd[0, :, a:b, 0].mean(dim=1)
        assert torch.allclose(tok16[0, s, 0], raw / raw.norm(), atol=1e-6)
    zero = segment_tokens(torch.zeros(1, 4, 3, 2), 3)                 # eps guard: no NaN
    assert torch.equal(zero, torch.zeros(1, 3, 2, 4))


def test_static_pool_by_hand():
    tok = torch.randn(2, 3, 25, 4)
    groups = [(0, 1), (2,), (3, 4, 5), (24,)]
    out = static_pool(tok, groups, 3)
    assert out.shape == (2, 8, 4)
    assert torch.allclose(out[:, 0], (tok[:, :, 0].mean(1) + tok[:, :, 1].mean(1)) / 2, atol=1e-6)
    assert torch.allclose(out[:, 3], tok[:, :, 24].mean(1), atol=1e-6)
    assert torch.allclose(out[:, 5], tok[:, 1].mean(1), atol=1e-6)
    assert torch.allclose(out[:, 7], tok.reshape(2, -1, 4).mean(1), atol=1e-6)
    with pytest.raises(ValueError):
        static_pool(tok, groups, 4)


# ----------------------------------------------------------------------------- attention
def test_description_attention_equation():
    torch.manual_seed(0)
    att = DescriptionAttention(dim_in=5, dim_text=4, k_dim=3, n_heads=2)
    x, t = torch.randn(2, 7, 5), torch.randn(2, 3, 4)
    pooled, w = att(x, t)
    wq, wk = att.query.weight, att.key.weight                        # (6, 4), (6, 5)
    for b in range(2):
        q, k = t[b] @ wq.t(), x[b] @ wk.t()                           # (3, 6), (7, 6)
        s = sum(q[:, 3 * h:3 * h + 3] @ k[:, 3 * h:3 * h + 3].t() for h in range(2)) / 2
        expect_w = torch.softmax(s / math.sqrt(3), dim=1)             # heads averaged first
        assert torch.allclose(w[b], expect_w, atol=1e-6)
        assert torch.allclose(pooled[b], expect_w @ x[b], atol=1e-6)  # values = raw tokens
    assert torch.allclose(w.sum(-1), torch.ones(2, 3), atol=1e-6)
    assert not any("bias" in n for n, _ in att.named_parameters())


def test_attention_keys_on_queries_equals_keys_on_tokens_in_float64():
    """weights() applies the key projection to the queries (K^T q) instead of the tokens
    (K x): in float64 the weights and every gradient equal the keys-first order (the
    official one) to rounding."""
    torch.manual_seed(1)
    att = DescriptionAttention(dim_in=16, dim_text=12, k_dim=5, n_heads=3).double()
    x = torch.randn(4, 30, 16, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 8, 12, dtype=torch.float64, requires_grad=True)

    def keys_first():
        q = att.query(t).view(4, 8, 3, 5).transpose(1, 2)
        k = att.key(x).view(4, 30, 3, 5).transpose(1, 2)
        return ((q @ k.transpose(2, 3)).mean(dim=1) / math.sqrt(5)).softmax(dim=-1)

    probe = torch.randn(4, 8, 30, dtype=torch.float64)
    results = []
    for fn in (keys_first, lambda: att.weights(x, t)):
        att.zero_grad()
        x.grad = t.grad = None
        w = fn()
        (w * probe).sum().backward()
        results.append([w.detach(), x.grad, t.grad, att.query.weight.grad, att.key.weight.grad])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- loss
def _ce_diag(logits: np.ndarray) -> float:
    lse = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    return float(np.mean(lse - np.diag(logits)))


def test_representation_loss_by_hand():
    rng = np.random.default_rng(0)
    o, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    tau = 2.5
    logits = tau * o @ t.T
    expect = _ce_diag(logits) + _ce_diag(logits.T)                   # summed directions
    got = representation_loss(torch.tensor(o, dtype=torch.float64),
                              torch.tensor(t, dtype=torch.float64), torch.tensor(tau))
    assert float(got) == pytest.approx(expect, rel=1e-10)
    got_exp = representation_loss(torch.tensor(o), torch.tensor(t), torch.tensor(math.log(tau)),
                                  tau_exp=True)
    assert float(got_exp) == pytest.approx(expect, rel=1e-8)


def test_purls_loss_sums_and_weights():
    torch.manual_seed(1)
    o, t = torch.randn(5, 3, 4, dtype=torch.float64), torch.randn(5, 3, 4, dtype=torch.float64)
    tau = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    parts = [float(representation_loss(o[:, i], t[:, i], tau[i])) for i in range(3)]
    total, per = purls_loss(o, t, tau)
    assert float(total) == pytest.approx(sum(parts))
    assert per.tolist() == pytest.approx(parts)
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    total_w, _ = purls_loss(o, t, tau, w)
    assert float(total_w) == pytest.approx(0.5 * parts[0] - parts[1] + 2 * parts[2])


# ----------------------------------------------------------------------------- scores
def _small_head(adaptive=True, n_repr=8):
    torch.manual_seed(3)
    head = PurlsHead(6, 5, n_repr, hidden=7, k_dim=3, n_heads=2, adaptive=adaptive)
    return head.eval()


def test_candidate_scores_are_class_conditional():
    head = _small_head()
    tokens, texts = torch.randn(3, 10, 6), F.normalize(torch.randn(4, 8, 5), dim=-1)
    s = candidate_scores(head, tokens, texts, global_index=7, chunk=5)
    s_all = candidate_scores(head, tokens, texts, global_index=7, score_parts=True)
    preds = fixed_query_predictions(head, tokens, texts, 7, chunk=3)
    with torch.no_grad():
        for n in range(3):
            for k in range(4):
                o = head(tokens[n:n + 1], texts[k:k + 1])[0]         # queries = k's texts
                assert float(s[n, k]) == pytest.approx(float(o[7] @ texts[k, 7]), abs=1e-5)
                assert float(s_all[n, k]) == pytest.approx(float((o * texts[k]).sum()), abs=1e-5)
            for q in range(4):
                o = head(tokens[n:n + 1], texts[q:q + 1])[0]
                assert int(preds[n, q]) == int((texts[:, 7] @ o[7]).argmax())
    assert candidate_scores(head, tokens[:0], texts, 7).shape == (0, 4)


# ----------------------------------------------------------------------------- fidelity
@pytest.fixture(scope="module")
def official():
    if not FIDELITY.exists():
        pytest.skip("tests/fidelity/purls.npz missing (benchmarks/fidelity/purls_reference.py)")
    return dict(np.load(FIDELITY, allow_pickle=False))


def _ours(ref, prefix, learnable=False):
    head = PurlsHead(16, 12, 8, hidden=32, n_hidden_layers=0, k_dim=6, n_heads=2,
                     learnable_weights=learnable)
    state = {}
    for key, value in ref.items():
        if not key.startswith(prefix + "/") or key == prefix + "/d":
            continue
        name = key[len(prefix) + 1:]
        name = (name.replace("attention.linear_q", "attention.query")
                .replace("attention.linear_k", "attention.key")
                .replace("skel_encoder.", "project.").replace("tmps", "tau"))
        state[name] = torch.as_tensor(value)
    if learnable:
        state["weight"] = torch.as_tensor(ref[prefix + "/d"])
    head.load_state_dict(state)
    return head


def test_fidelity_provenance(official):
    assert str(official["repo"]) == "azzh1/PURLS"
    assert str(official["commit"]) == "7198fe74ac114b37dd93d57a6946034d24ac1aff"
    assert FIDELITY.stat().st_size < 300_000


def test_fidelity_eval_forward_and_loss(official):
    ref = official
    head = _ours(ref, "w").eval()
    x = torch.as_tensor(ref["x"]).flatten(1, 2)                       # (B, 75, D)
    text = torch.as_tensor(ref["text"])
    seen, target = torch.as_tensor(ref["seen"]), torch.as_tensor(ref["target"])
    q = text[seen][target]
    with torch.no_grad():
        pooled, w = head.attention(x, q)
        out = head(x, q)
        loss, _ = purls_loss(out, q, head.tau)
    np.testing.assert_allclose(w.numpy(), ref["eval_att"], atol=1e-5)
    np.testing.assert_allclose(pooled.numpy(), ref["eval_pooled"], atol=1e-5)
    np.testing.assert_allclose(out.numpy(), ref["eval_out"], atol=1e-5)
    assert float(loss) == pytest.approx(float(ref["eval_loss"]), abs=1e-4)
    preds = (out[:, 7] @ text[seen][:, 7].t()).argmax(1)
    np.testing.assert_array_equal(preds.numpy(), ref["eval_preds"])
    # official test path (quirk Q1): the entry of each sample's true class
    unseen, tt = torch.as_tensor(ref["unseen"]), torch.as_tensor(ref["test_target"])
    fq = fixed_query_predictions(head, x, text[unseen], 7)
    np.testing.assert_array_equal(fq[torch.arange(len(tt)), tt].numpy(), ref["test_preds"])


def test_fidelity_training_gradients(official):
    ref = official
    head = _ours(ref, "w").train()
    for m in head.modules():
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    x = torch.as_tensor(ref["x"]).flatten(1, 2)
    text = torch.as_tensor(ref["text"])
    q = text[torch.as_tensor(ref["seen"])][torch.as_tensor(ref["target"])]
    loss, _ = purls_loss(head(x, q), q, head.tau)
    loss.backward()
    assert loss.item() == pytest.approx(float(ref["train_loss"]), abs=1e-4)
    names = {"attention.query.weight": "attention.linear_q.weight",
             "attention.key.weight": "attention.linear_k.weight", "tau": "tmps"}
    checked = 0
    for name, p in head.named_parameters():
        off = names.get(name, name.replace("project.", "skel_encoder."))
        np.testing.assert_allclose(p.grad.numpy(), ref[f"grad/{off}"], atol=1e-5, err_msg=name)
        checked += 1
    assert checked == 11
    for name, buf in head.named_buffers():
        if "running" in name:
            np.testing.assert_allclose(buf.numpy(), ref["after/" + name.replace(
                "project.", "skel_encoder.")], atol=1e-5)


def test_fidelity_learnable_loss_weights(official):
    ref = official
    head = _ours(ref, "wd", learnable=True).eval()
    x = torch.as_tensor(ref["x"]).flatten(1, 2)
    text = torch.as_tensor(ref["text"])
    q = text[torch.as_tensor(ref["seen"])][torch.as_tensor(ref["target"])]
    loss, _ = purls_loss(head(x, q), q, head.tau, head.weight)
    loss.backward()
    assert loss.item() == pytest.approx(float(ref["d_loss"]), abs=1e-4)
    np.testing.assert_allclose(head.weight.grad.numpy(), ref["d_grad"], atol=1e-5)
    np.testing.assert_allclose(head.tau.grad.numpy(), ref["d_tmps_grad"], atol=1e-5)


def test_fidelity_detects_a_changed_rule(official):
    """Softmax per head (instead of averaging the heads' scores first) is caught."""
    ref = official
    head = _ours(ref, "w").eval()
    x = torch.as_tensor(ref["x"]).flatten(1, 2)
    q = torch.as_tensor(ref["text"])[torch.as_tensor(ref["seen"])][torch.as_tensor(ref["target"])]
    att = head.attention
    with torch.no_grad():
        qh = att.query(q).view(6, 8, 2, 6).transpose(1, 2)
        kh = att.key(x).view(6, 75, 2, 6).transpose(1, 2)
        w = ((qh @ kh.transpose(2, 3)) / math.sqrt(6)).softmax(-1).mean(1)
    assert np.abs(w.numpy() - ref["eval_att"]).max() > 1e-4


# ----------------------------------------------------------------------------- config / texts
def test_config_sources_needs_and_validation():
    cfg = PurlsConfig()
    assert cfg.descriptions == DEFAULT_DESCRIPTIONS
    assert cfg.needs().text_kinds == ["parts", "phases", "description"]
    assert PurlsConfig(local_type="tp").sources() == [("phases", 0), ("phases", 1),
                                                       ("phases", 2), ("description", None)]
    assert PurlsConfig(local_type="bp").representation_ids() == (0, 1, 2, 3, 7)
    assert parse_source("purls:7") == ("purls", 7)
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.k_dim, cfg.n_heads, cfg.proj_hidden) == \
        (1e-4, 100, 256, 150, 2, 1024)
    assert cfg.tau_init == pytest.approx(math.log(1 / 0.07))
    with pytest.raises(ValueError):
        PurlsConfig(descriptions=["parts:x"] * 8)
    with pytest.raises(ValueError):
        PurlsConfig(descriptions=["parts"] * 7)
    with pytest.raises(ValueError):
        PurlsConfig(partitioning="static", segments=4)


def _bank(ids, emb):
    kinds = list(emb)
    return ClassTexts(np.asarray(ids), [f"c{i}" for i in ids],
                      texts={k: [[f"{k} {i} {a}" for a in range(len(emb[k][i]))] for i in ids]
                             for k in kinds},
                      embeddings={k: [emb[k][i] for i in ids] for k in kinds})


def _texts(rng, n_classes, dim=8):
    return {"parts": rng.normal(size=(n_classes, 6, dim)).astype(np.float32),
            "phases": rng.normal(size=(n_classes, 3, dim)).astype(np.float32),
            "description": rng.normal(size=(n_classes, 2, dim)).astype(np.float32)}


def test_class_text_tensor_selection():
    rng = np.random.default_rng(0)
    emb = _texts(rng, 3)
    t = class_text_tensor(_bank([2, 0], emb), PurlsConfig())
    assert t.shape == (2, 8, 8)
    unit = lambda v: v / np.linalg.norm(v)  # noqa: E731
    np.testing.assert_allclose(t[0, 2].numpy(), unit(emb["parts"][2, 3]), atol=1e-6)  # hips
    np.testing.assert_allclose(t[1, 6].numpy(), unit(emb["phases"][0, 2]), atol=1e-6)
    d = emb["description"][2]
    np.testing.assert_allclose(t[0, 7].numpy(), unit(unit(d[0]) + unit(d[1])), atol=1e-6)
    with pytest.raises(ZsbenchError, match="parts:9"):
        class_text_tensor(_bank([0], emb), PurlsConfig(descriptions=["parts:9"] * 8))
    with pytest.raises(ZsbenchError, match="purls"):
        class_text_tensor(_bank([0], emb), PurlsConfig(descriptions=["purls:0"] * 8))


def test_val_split_holds_out_per_class():
    rows = np.repeat(np.arange(3), [10, 2, 1])
    tr, va = val_split(rows, 0.1, np.random.default_rng(0))
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(13))
    assert np.bincount(rows[va], minlength=3).tolist() == [1, 1, 0]


# ----------------------------------------------------------------------------- method
def _stgcn_factory(name=None, **overrides):
    from zsbench_encoders.configs import STGCNConfig
    from zsbench_encoders.stgcn import STGCN

    return STGCN(STGCNConfig(**overrides))


@pytest.mark.parametrize("switches", [
    dict(official_true_label_queries=True),
    dict(partitioning="static", loss_weights="learnable", local_type="bp", score_parts=True,
         selection="last", n_hidden_layers=1, tau_exp=True, pretrain_epochs=0)])
def test_method_fit_score_on_small_sequences(switches):
    rng = np.random.default_rng(0)
    emb = _texts(rng, 5)
    labels = np.repeat(np.arange(5), 6)
    x = rng.normal(size=(30, 3, 12, 25, 2)).astype(np.float32)
    tr = labels < 3
    cfg = PurlsConfig(**{**dict(epochs=2, pretrain_epochs=1, batch_size=8, pretrain_batch_size=8,
                                k_dim=4, proj_hidden=16, pretrain_cache=False, encoder="stgcn",
                                encoder_overrides={"hidden_channels": 4, "out_dim": 16}),
                         **switches})
    m = Purls(cfg)
    ctx = context(dataset=DatasetInfo("synthetic", "synthetic", 5, real=False))
    ctx.encoder_factory = _stgcn_factory
    m.fit(TrainView(x=x[tr], labels=labels[tr], texts=_bank([0, 1, 2], emb), kind="sequences"),
          ctx)
    scores = m.score(TestView(x=x[~tr], kind="sequences"), _bank([3, 4], emb), ctx)
    assert scores.shape == (12, 2) and np.isfinite(scores).all()
    n_repr = 5 if cfg.local_type == "bp" else 8
    assert len(ctx.details["purls_tau"]) == n_repr
    bound = n_repr * math.sqrt(8) if cfg.score_parts else math.sqrt(8)   # tanh . unit vector
    assert np.abs(scores).max() <= bound
    if cfg.official_true_label_queries:
        assert "official_true_label_queries" in ctx.deviations
        entry = ctx.details["purls_true_label"]["zsl"]
        assert len(entry["predictions"]) == 12 and entry["query_classes"] == [3, 4]
        assert set(np.ravel(entry["predictions"]).tolist()) <= {3, 4}
        assert ctx.details["purls_val_samples"] == 3            # one per seen class
    else:
        assert not ctx.deviations and ctx.details["purls_val_samples"] == 0
    with pytest.raises(ZsbenchError, match="sequences"):
        Purls(cfg).fit(TrainView(x=x[tr, :, 0, 0, 0], labels=labels[tr],
                                 texts=_bank([0, 1, 2], emb), kind="features"), ctx)


def test_spec_and_reported_numbers():
    from zsbench.plugins import load_plugins
    from zsbench.reported import read_reported

    spec = load_plugins().methods.get("purls")
    assert spec.inputs == "sequences" and spec.default_encoder == "shiftgcn"
    assert "CVPR 2024" in spec.paper
    rows = read_reported(spec.reported)
    assert len(rows) == 8
    assert {(r["dataset"], r["split"], float(r["value"])) for r in rows
            if r["source_paper"] == "pgfa"} == {
        ("ntu60", "55/5", 79.23), ("ntu60", "48/12", 40.99), ("ntu120", "110/10", 71.95),
        ("ntu120", "96/24", 52.01)}


@pytest.mark.slow
def test_check_plugin_tiny_benchmark(tmp_path, zs_cache):
    from zsbench.testing import check_plugin

    rec, path = check_plugin("purls", tmp_path / "out", zs_cache, protocol="synse")
    assert path.exists()
    for f in rec.folds:
        for key in ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"):
            assert f.metrics[key] is not None and 0 <= f.metrics[key] <= 100
        assert f.details["purls_final_train_loss"] > 0


def test_official_true_label_accuracy_from_a_record():
    from zsbench_purls.official import official_numbers, true_label_predictions

    entry = {"dataset_index": [0, 1, 2], "query_classes": [7, 9],
             "predictions": [[7, 9], [9, 9], [7, 7]]}
    labels = np.array([9, 7, 7])
    np.testing.assert_array_equal(true_label_predictions(entry, labels), [9, 9, 7])
    record = {"folds": [{"name": "f", "seen": [1], "details": {"purls_true_label": {
        "zsl": entry,
        "gzsl": {"dataset_index": [3, 0], "query_classes": [1, 7, 9],
                 "predictions": [[1, 7, 9], [9, 9, 7]]}}}}]}
    labels = np.array([9, 7, 7, 1])
    row = official_numbers(record, labels)[0]
    assert row["zsl_acc"] == pytest.approx(200 / 3)
    assert row["gzsl_seen"] == 100.0 and row["gzsl_unseen"] == 0.0
    with pytest.raises(ValueError, match="query classes"):
        true_label_predictions(entry, np.array([9, 7, 3]))
