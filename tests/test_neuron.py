"""Neuron: spatial compression, temporal memory, per-phase losses, the two-guess metric,
fidelity to the official ModelMatch, the embedded benchmark's side information, and a
tiny end-to-end run."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsbench.api import ClassTexts, DatasetInfo, TestView, TrainView, ZsbenchError
from zsbench.testing import context
from zsbench_neuron.config import NeuronConfig
from zsbench_neuron.method import Neuron, calibrated, combine, two_guess_margins
from zsbench_neuron.modules import (DROPPED_WEIGHT, NeuronHead, class_logits, compress_spatial,
                                    keep_mask, memory_update, neuron_loss, phase_losses,
                                    segment_bounds, split_features)
from zsbench_neuron.official import (gzsl_two_guess, official_numbers, stacked_prediction,
                                     two_guess_accuracy)
from zsbench_neuron.texts import cumulative, temporal_texts
from zsbench_neuron.training import (crop_resize, rotation_matrices, step_lr, valid_frames)

pytestmark = pytest.mark.usefixtures("torch_single_thread")
ROOT = Path(__file__).resolve().parents[1]
FIDELITY = ROOT / "tests" / "fidelity" / "neuron.npz"


# ----------------------------------------------------------------------------- compression
def test_keep_mask_keeps_exactly_the_top_entries_per_row():
    sim = torch.tensor([[[0.1, 2.0, -1.0, 0.5],      # order 1, 3, 0, 2
                         [3.0, -2.0, 1.0, 0.0]]])    # order 0, 2, 3, 1
    m = keep_mask(sim, keep=2)
    d = DROPPED_WEIGHT
    assert torch.equal(m, torch.tensor([[[d, 1.0, d, 1.0], [1.0, d, 1.0, d]]]))
    assert torch.equal(keep_mask(sim, keep=3), torch.tensor([[[1.0, 1.0, d, 1.0],
                                                              [1.0, d, 1.0, 1.0]]]))
    assert torch.equal(keep_mask(sim, keep=4), torch.ones_like(sim))
    assert torch.equal(keep_mask(sim, keep=1, dropped=0.0),
                       torch.tensor([[[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]]))
    with pytest.raises(ValueError):
        keep_mask(sim, keep=0)


def test_compress_spatial_by_hand():
    # one channel, two joints (features 1 and 2), two prototypes (1 and -1)
    fs = torch.tensor([[[1.0, 2.0]]])            # (B=1, C=1, V=2)
    protos = torch.tensor([[[1.0, -1.0]]])       # (B=1, C=1, P=2)
    # S[j, k] = f_j * p_k = [[1, -1], [2, -2]]; weights = softmax over joints (column-wise)
    w0 = torch.softmax(torch.tensor([1.0, 2.0]), 0)      # prototype 0
    w1 = torch.softmax(torch.tensor([-1.0, -2.0]), 0)    # prototype 1
    full = compress_spatial(fs, protos, keep=None)       # (1, P, C)
    assert full[0, :, 0].tolist() == pytest.approx([float(w0 @ torch.tensor([1.0, 2.0])),
                                                    float(w1 @ torch.tensor([1.0, 2.0]))])
    # keep 1 per joint: both joints rank prototype 0 first, so prototype 1 loses its weights
    kept = compress_spatial(fs, protos, keep=1, dropped=0.0)
    assert kept[0, 0, 0].item() == pytest.approx(full[0, 0, 0].item())
    assert kept[0, 1, 0].item() == 0.0


def test_spatial_keep_counts_from_fractions():
    assert NeuronConfig().spatial_keep() == [60, 40, 20]            # code: drop 20/40/60 of 80
    assert NeuronConfig(num_spatial_prototypes=10).spatial_keep() == [8, 5, 2]
    assert NeuronConfig(spatial_compression=False).spatial_keep() is None


# ----------------------------------------------------------------------------- memory
def test_memory_gates_by_hand():
    prev = torch.tensor([[[2.0]]])
    refined = torch.tensor([[[4.0]]])
    r, m = torch.tensor([[[0.0]]]), torch.tensor([[[math.log(3.0)]]])   # sigmoids .5 and .75
    assert memory_update(prev, r, m, refined).item() == pytest.approx(0.5 * 2 + 0.75 * 4)
    # convex: g * prev + (1 - g) * refined, between the two for any gate value
    assert memory_update(prev, m, r, refined, "convex").item() == pytest.approx(
        0.75 * 2 + 0.25 * 4)
    for logit in (-30.0, -1.0, 0.3, 30.0):
        v = memory_update(prev, torch.tensor([[[logit]]]), r, refined, "convex").item()
        assert 2.0 - 1e-6 <= v <= 4.0 + 1e-6
    with pytest.raises(ValueError):
        memory_update(prev, r, m, refined, "nope")  # type: ignore[arg-type]


def test_temporal_segments():
    assert segment_bounds(16, "cumulative") == [(0, 5), (0, 10), (0, 16)]   # code 5/10/16
    assert segment_bounds(16, "disjoint") == [(0, 5), (5, 10), (10, 16)]
    assert segment_bounds(6, "full") == [(0, 6)] * 3
    with pytest.raises(ValueError):
        segment_bounds(2, "disjoint")


def test_temporal_memory_off_replaces_prototypes():
    torch.manual_seed(0)
    head = NeuronHead(4, 3, num_spatial=5, num_temporal=5, spatial_keep=(4, 3, 2),
                      temporal_memory=False)
    ft = torch.rand(2, 4, 6)
    q = None
    protos = head.temporal_prototypes.T.unsqueeze(0).expand(2, -1, -1)
    for e, (a, b) in enumerate(segment_bounds(6, "cumulative")):
        attn = torch.softmax(torch.einsum("bcl,bcp->blp", ft[:, :, a:b], protos), dim=1)
        q = torch.einsum("bcl,blp->bpc", ft[:, :, a:b], attn)
        protos = head.temporal_refine[e](q).permute(0, 2, 1)
    torch.testing.assert_close(head.temporal_stream(ft)[-1], protos.mean(dim=2))


# ----------------------------------------------------------------------------- scores, losses
def test_class_logits_top_k_pooling():
    u = torch.tensor([[1.0, 0.0]])
    texts = [torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),   # cos 1, 0, -1
             torch.tensor([[3.0, 4.0]])]                           # cos 0.6 (one text)
    assert class_logits(u, texts, topk=10, scale=0.1)[0].tolist() == pytest.approx([0.0, 0.06])
    assert class_logits(u, texts, topk=2, scale=1.0)[0].tolist() == pytest.approx([0.5, 0.6])


def test_per_phase_losses_and_reduction():
    target = torch.tensor([0, 1])
    phases = [torch.tensor([[0.0, 0.0], [0.0, 0.0]]),                  # CE = ln 2
              torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]]),  # p(y)=3/4, 1/4
              torch.tensor([[1.0, 1.0], [2.0, 2.0]])]                  # ln 2
    ce = phase_losses(phases, target)
    want = [math.log(2), (-math.log(0.75) - math.log(0.25)) / 2, math.log(2)]
    assert ce.tolist() == pytest.approx(want)
    temporal = [p.flip(1) for p in phases]
    lt = phase_losses(temporal, target)
    loss, ls, lt2 = neuron_loss(phases, temporal, target, "mean")
    assert loss.item() == pytest.approx((sum(want) / 3 + lt.mean().item()) / 2)
    total, _, _ = neuron_loss(phases, temporal, target, "sum")
    assert total.item() == pytest.approx(sum(want) + lt.sum().item())
    assert torch.equal(ls, ce) and torch.equal(lt2, lt)


def test_cumulative_texts():
    a = [torch.tensor([[2.0, 0.0], [0.0, 1.0]])]
    b = [torch.tensor([[0.0, 5.0], [0.0, 2.0]])]
    out = cumulative([a, b])[0]
    s = 1 / math.sqrt(2)
    assert out.flatten().tolist() == pytest.approx([s, s, 0.0, 1.0])
    bank = ClassTexts(np.array([0]), ["c"], texts={},
                      embeddings={"t1": [a[0].numpy()], "t2": [b[0].numpy()],
                                  "t3": [np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)]})
    cfg = NeuronConfig(temporal_kinds=["t1", "t2", "t3"])
    ph = temporal_texts(bank, cfg)
    assert torch.allclose(ph[0][0], F.normalize(a[0], dim=-1))
    assert torch.allclose(ph[1][0], out)
    flat = temporal_texts(bank, cfg.model_copy(update={"temporal_text_context": "phase",
                                                      "phase_evolving": False}))
    assert all(torch.equal(p[0], torch.tensor([[1.0, 0.0], [1.0, 0.0]])) for p in flat)


# ----------------------------------------------------------------------------- two guesses
def test_two_guess_accuracy_versus_top1():
    target = np.array([0, 1, 2, 3, 4])
    spatial = np.array([0, 1, 0, 0, 0])     # top-1 40 %
    temporal = np.array([1, 1, 2, 0, 0])    # top-1 40 %
    assert two_guess_accuracy(spatial, temporal, target) == pytest.approx(60.0)
    assert two_guess_accuracy(spatial, spatial, target) == pytest.approx(40.0)  # = top-1
    # the single prediction the core scores is one of the two, so never above the pair
    ls = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    lt = torch.tensor([[0.0, 2.0], [3.0, 0.0], [0.0, 0.5]])
    y = np.array([1, 1, 1])
    single = combine(ls, lt, "sum_softmax").argmax(1).numpy()
    both = two_guess_accuracy(ls.argmax(1).numpy(), lt.argmax(1).numpy(), y)
    assert both == pytest.approx(100.0) and (single == y).mean() * 100 <= both


def test_gzsl_two_guess_calibration():
    probs = torch.tensor([[0.40, 0.35, 0.25], [0.30, 0.31, 0.39]])
    seen = torch.tensor([True, True, False])
    cs, cu, margin = two_guess_margins(probs, seen)
    assert cs.tolist() == [0, 1] and cu.tolist() == [2, 2]
    assert margin.tolist() == pytest.approx([0.15, -0.08])
    for gamma in (0.0, 0.1, 0.2):   # summary reproduces argmax(p - gamma * seen)
        direct = calibrated(probs, seen, gamma).argmax(1).numpy()
        assert np.array_equal(stacked_prediction(cs.numpy(), cu.numpy(), margin.numpy(), gamma),
                              direct)
    st = {"best_seen": [0, 1], "best_unseen": [2, 2], "margin": [0.15, -0.08]}
    tt = {"best_seen": [1, 0], "best_unseen": [2, 2], "margin": [0.01, 0.5]}
    r = gzsl_two_guess(st, tt, np.array([1, 2]), np.array([True, False]), 0.1, 0.1)
    # spatial predicts [0, 2], temporal [2, 0]: sample 0 (class 1) missed, sample 1 hit
    assert (r["acc_seen"], r["acc_unseen"], r["h"]) == (0.0, 100.0, 0.0)


def test_official_numbers_from_a_record():
    labels = np.array([0, 1, 2, 2, 1, 0])
    record = {"config": {"method": {"gamma_s": 0.1, "gamma_t": 0.1}}, "folds": [
        {"name": "f", "seen": [0, 1], "details": {"neuron_two_guess": {
            "zsl": {"dataset_index": [2, 3], "spatial": [2, 0], "temporal": [0, 0]},
            "gzsl": {"dataset_index": [0, 2],
                     "spatial": {"best_seen": [0, 1], "best_unseen": [2, 2],
                                 "margin": [0.5, 0.0]},
                     "temporal": {"best_seen": [1, 0], "best_unseen": [2, 2],
                                  "margin": [0.0, 0.0]}}}}}]}
    [row] = official_numbers(record, labels)
    assert row["zsl_acc"] == pytest.approx(50.0)
    assert row["gzsl"]["acc_seen"] == 100.0 and row["gzsl"]["acc_unseen"] == 100.0
    [test_row] = official_numbers(record, labels, gamma="test")
    assert "test set" in test_row["gzsl"]["gamma_chosen_on"]


# ----------------------------------------------------------------------------- augmentation
def test_rotation_matrix_convention():
    a = torch.tensor([[0.2, -0.1, 0.3]])
    r = rotation_matrices(a)[0]
    al, be, ga = 0.2, -0.1, 0.3
    rx = np.array([[1, 0, 0], [0, math.cos(al), math.sin(al)], [0, -math.sin(al), math.cos(al)]])
    ry = np.array([[math.cos(be), 0, -math.sin(be)], [0, 1, 0], [math.sin(be), 0, math.cos(be)]])
    rz = np.array([[math.cos(ga), math.sin(ga), 0], [-math.sin(ga), math.cos(ga), 0], [0, 0, 1]])
    np.testing.assert_allclose(r.numpy(), rz @ ry @ rx, atol=1e-6)


def test_crop_resize():
    x = torch.zeros(2, 3, 8, 25, 2)
    x[0, :, :6] = torch.arange(6.0).view(1, 6, 1, 1) + 1   # 6 valid frames, then padding
    assert valid_frames(x).tolist() == [6, 0]
    same = crop_resize(x, torch.tensor([1.0, 0.7]), torch.tensor([0.0, 0.0]))
    # the 6 valid frames stretched over 8 (half-pixel linear), the empty sample untouched
    src = (torch.arange(8.0) + 0.5) * 6 / 8 - 0.5
    want = 1 + src.clamp(0, 5)
    assert same[0, 0, :, 0, 0].tolist() == pytest.approx(want.tolist())
    assert torch.equal(same[1], x[1])
    half = crop_resize(x, torch.tensor([0.5, 1.0]), torch.tensor([1.0, 0.0]))
    assert half[0, 0, 0, 0, 0].item() == pytest.approx(4.0)     # frames 3..5 = values 4..6
    assert half[0, 0, -1, 0, 0].item() == pytest.approx(6.0)


def test_step_lr_and_presets():
    assert [step_lr(0.1, e, [4, 20], 0.1) for e in (0, 3, 4, 19, 20)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])
    assert NeuronConfig().resolve_lr_steps("pku_mmd")[0] == [8, 20]
    assert NeuronConfig().resolve_lr_steps("synthetic")[0] == [4, 20]
    assert NeuronConfig(lr_steps=[10, 20]).resolve_lr_steps("ntu60") == ([10, 20], "config")


def test_reported_variant_and_needs():
    assert NeuronConfig().reported_variant() == "default"
    assert NeuronConfig(spatial_compression=False, temporal_memory=False).reported_variant() \
        == "gu_pe"
    off = NeuronConfig(granularity_update=False, spatial_compression=False,
                       phase_evolving=False, temporal_memory=False)
    assert off.reported_variant() == "no_gu_no_sc_no_pe_no_tm"
    assert NeuronConfig(granularity_update=False).needs().text_kinds == [
        "neuron_spatial_fg", "neuron_temporal_fp", "neuron_temporal_sp", "neuron_temporal_tp"]
    with pytest.raises(ValueError):
        NeuronConfig(crop_interval=[0.9, 0.5])


# ----------------------------------------------------------------------------- fidelity
OFFICIAL_NAMES = {"update_spatial": "spatial_refine", "update_temporal": "temporal_refine",
                  "memory_temporal": "temporal_remember", "recall_temporal": "temporal_recall"}


def _ours(name: str) -> str | None:
    if name.startswith("fc_"):
        return None                      # the unused templates of ModelMatch
    if name.endswith("prototype.weight"):
        return name.split("_")[0] + "_prototypes"
    head, _, rest = name.partition(".")
    return f"{OFFICIAL_NAMES.get(head, head)}.{rest}"


@pytest.fixture(scope="module")
def official():
    z = np.load(FIDELITY)
    head = NeuronHead(16, 12)
    state = {_ours(k[2:]): torch.tensor(z[k]) for k in z.files if k.startswith("w/")}
    state.pop(None, None)
    head.load_state_dict(state)
    return z, head


def test_fidelity_provenance(official):
    z, _ = official
    assert str(z["repo"]) == "cseeyangchen/Neuron"
    assert str(z["commit"]) == "7939873c2f63c24e591bca65de8fabc2b3ac90d6"


def test_fidelity_forward_and_loss(official):
    z, head = official
    fs, ft = split_features(torch.tensor(z["cube"]))
    xs, xt = head.spatial_stream(fs), head.temporal_stream(ft)
    np.testing.assert_allclose(torch.stack(xs).detach().numpy(), z["pooled_spatial"], atol=1e-5)
    np.testing.assert_allclose(torch.stack(xt).detach().numpy(), z["pooled_temporal"], atol=1e-5)
    us, ut = head.embed(fs, ft)
    texts = lambda key: [[t for t in torch.tensor(z[key][e])] for e in range(3)]  # noqa: E731
    ls = head.logits(us, texts("spatial_texts"), topk=10, scale=0.1)
    lt = head.logits(ut, texts("temporal_texts"), topk=10, scale=0.1)
    np.testing.assert_allclose(torch.stack(ls).detach().numpy(), z["logits_spatial"], atol=1e-5)
    np.testing.assert_allclose(torch.stack(lt).detach().numpy(), z["logits_temporal"], atol=1e-5)
    loss, ps, pt = neuron_loss(ls, lt, torch.tensor(z["labels"]), "mean")
    assert loss.item() == pytest.approx(float(z["loss"]), abs=1e-5)
    assert ps.mean().item() == pytest.approx(float(z["loss_spatial"]), abs=1e-5)
    head.zero_grad()
    loss.backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    compared = 0
    for k in z.files:
        if k.startswith("g/") and _ours(k[2:]) is not None:
            np.testing.assert_allclose(grads[_ours(k[2:])].numpy(), z[k], atol=1e-5, err_msg=k)
            compared += 1
    assert compared == 54


def test_fidelity_detects_missing_compression(official):
    z, head = official
    fs, _ = split_features(torch.tensor(z["cube"]))
    head.spatial_keep = None
    try:
        diff = np.abs(torch.stack(head.spatial_stream(fs)).detach().numpy() - z["pooled_spatial"])
    finally:
        head.spatial_keep = [60, 40, 20]
    assert diff.max() > 1e-2


# ----------------------------------------------------------------------------- embedded texts
# sha256[:16] of each kind of SyntheticConfig(num_classes=12, sequences=240, frames=20,
# num_subjects=4) before the Neuron kinds were added (they must never move)
_TINY_TEXT_HASHES = {"name": "80c4cea230a3a8ac", "description": "529fc940111617f9",
                     "motion": "930ed58cf7766bb4", "parts": "03479350104c2546",
                     "phases": "857bf408eae52684", "context": "68b02361e49cf09a"}
_TINY_DATA_HASH = "62cc11df3da940e2"


def test_synthetic_neuron_texts_leave_the_rest_unchanged():
    from zsbench_synthetic import SyntheticConfig, generate
    from zsbench_synthetic.texts import NEURON_KINDS, NEURON_VARIANTS

    g = generate(SyntheticConfig(num_classes=12, sequences=240, frames=20, num_subjects=4))
    assert hashlib.sha256(g.data.tobytes()).hexdigest()[:16] == _TINY_DATA_HASH
    for kind, digest in _TINY_TEXT_HASHES.items():
        assert hashlib.sha256(json.dumps(g.texts[kind]).encode()).hexdigest()[:16] == digest
    for kind in NEURON_KINDS:
        per_class = g.texts[kind]
        assert len(per_class) == 12
        for strings in per_class:
            assert len(strings) == NEURON_VARIANTS == len(set(strings))
    # granularity grows: fine descriptions are longer than medium, medium than coarse
    mean_len = {k: np.mean([len(s) for c in g.texts[k] for s in c]) for k in NEURON_KINDS[:3]}
    assert mean_len["neuron_spatial_cg"] < mean_len["neuron_spatial_mg"] \
        < mean_len["neuron_spatial_fg"]


# ----------------------------------------------------------------------------- method
def _bank(ids, emb_by_kind):
    kinds = list(emb_by_kind)
    return ClassTexts(np.asarray(ids), [f"c{i}" for i in ids],
                      texts={k: [[f"{k} {i} {a}" for a in range(3)] for i in ids] for k in kinds},
                      embeddings={k: [emb_by_kind[k][i] for i in ids] for k in kinds})


def test_method_fit_score_on_small_sequences():
    rng = np.random.default_rng(0)
    kinds = NeuronConfig().spatial_kinds + NeuronConfig().temporal_kinds
    emb = {k: rng.normal(size=(5, 3, 8)).astype(np.float32) for k in kinds}
    labels = np.repeat(np.arange(5), 6)
    x = rng.normal(size=(30, 3, 12, 25, 2)).astype(np.float32)
    tr = labels < 3
    cfg = NeuronConfig(epochs=2, pretrain_epochs=1, batch_size=8, pretrain_batch_size=8,
                       num_spatial_prototypes=8, num_temporal_prototypes=8,
                       official_two_guess_accuracy=True, pretrain_cache=False,
                       encoder="stgcn", encoder_overrides={"hidden_channels": 4, "out_dim": 16})
    m = Neuron(cfg)
    ctx = context(dataset=DatasetInfo("synthetic", "synthetic", 5, real=False))
    ctx.encoder_factory = _stgcn_factory
    m.fit(TrainView(x=x[tr], labels=labels[tr], texts=_bank([0, 1, 2], emb), kind="sequences"),
          ctx)
    test = TestView(x=x[~tr], kind="sequences")
    scores = m.score(test, _bank([3, 4], emb), ctx)
    assert scores.shape == (12, 2) and np.isfinite(scores).all()
    assert scores.sum(1) == pytest.approx(np.full(12, 2.0), abs=1e-5)   # two softmaxes
    entry = ctx.details["neuron_two_guess"]["zsl"]
    assert set(entry["spatial"]) <= {3, 4} and len(entry["temporal"]) == 12
    assert "official_two_guess_accuracy" in ctx.deviations
    gz = m.score(TestView(x=x, kind="sequences"), _bank([0, 1, 2, 3, 4], emb), ctx)
    assert gz.shape == (30, 5)
    g = ctx.details["neuron_two_guess"]["gzsl"]["spatial"]
    assert set(g["best_seen"]) <= {0, 1, 2} and set(g["best_unseen"]) <= {3, 4}
    pred = m.gzsl_decide(gz, np.array([1, 1, 1, 0, 0], bool), TestView(x=x, kind="sequences"),
                         _bank([0, 1, 2, 3, 4], emb), ctx)
    assert pred.shape == (30,) and set(pred.tolist()) <= set(range(5))
    with pytest.raises(ZsbenchError, match="sequences"):
        Neuron(cfg).fit(TrainView(x=x[tr, :, 0, 0, 0], labels=labels[tr],
                                  texts=_bank([0, 1, 2], emb), kind="features"), ctx)
    with pytest.raises(ZsbenchError, match="neuron_spatial_cg"):
        bad = {k: v for k, v in emb.items() if k != "neuron_spatial_cg"}
        Neuron(cfg).fit(TrainView(x=x[tr], labels=labels[tr], texts=_bank([0, 1, 2], bad),
                                  kind="sequences"), ctx)


@pytest.mark.parametrize("switches", [
    dict(granularity_update=False, phase_evolving=False, spatial_compression=False,
         temporal_memory=False, temporal_text_context="phase"),
    dict(temporal_segments="disjoint", memory_gate="convex", share_init=False,
         encoder_features="online", encoder_bn="eval", test_augment=True,
         loss_reduction="sum", decision="temporal", pretrain_epochs=0)])
def test_method_switches_run(switches):
    rng = np.random.default_rng(1)
    kinds = NeuronConfig().spatial_kinds + NeuronConfig().temporal_kinds
    emb = {k: rng.normal(size=(4, 2, 6)).astype(np.float32) for k in kinds}
    labels = np.repeat(np.arange(4), 4)
    x = rng.normal(size=(16, 3, 12, 25, 2)).astype(np.float32)
    cfg = NeuronConfig(**{**dict(epochs=1, pretrain_epochs=1, batch_size=4, pretrain_batch_size=4,
                                 num_spatial_prototypes=6, num_temporal_prototypes=6,
                                 pretrain_cache=False, encoder="stgcn",
                                 encoder_overrides={"hidden_channels": 2, "out_dim": 8}),
                          **switches})
    ctx = context()
    ctx.encoder_factory = _stgcn_factory
    m = Neuron(cfg)
    m.fit(TrainView(x=x[:12], labels=labels[:12], texts=_bank([0, 1, 2], emb),
                    kind="sequences"), ctx)
    scores = m.score(TestView(x=x[12:], kind="sequences"), _bank([3], emb), ctx)
    assert scores.shape == (4, 1) and np.isfinite(scores).all()
    assert ("test_augment" in ctx.deviations) == bool(switches.get("test_augment"))


def _stgcn_factory(name=None, **overrides):
    from zsbench_encoders.configs import STGCNConfig
    from zsbench_encoders.stgcn import STGCN

    return STGCN(STGCNConfig(**overrides))


@pytest.mark.slow
def test_check_plugin_tiny_benchmark(tmp_path, zs_cache):
    from zsbench.testing import check_plugin

    rec, path = check_plugin("neuron", tmp_path / "out", zs_cache, protocol="synse",
                             extra=["method.pretrain_epochs=2"])
    assert rec.config["method"]["encoder_features"] == "cached"   # the benchmark's suggestion
    assert path.exists()
    for f in rec.folds:
        for key in ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"):
            assert f.metrics[key] is not None and 0 <= f.metrics[key] <= 100
        assert f.details["neuron_final_train_loss"] > 0
