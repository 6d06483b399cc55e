"""PGFA: prototype step against the paper's rules, schedule, and a tiny fit/score run."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from zsbench import api
from zsbench.api import ClassTexts, DatasetInfo, RunContext, TrainView, ZsbenchError
from zsbench_pgfa import method as pgfa_method
from zsbench_pgfa.config import PGFAConfig
from zsbench_pgfa.method import PGFA
from zsbench_pgfa.prototypes import argmax_prototypes, softmax_entropy, weighted_prototypes
from zsbench_pgfa.training import TemporalResize, step_lr

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- prototypes
def unit(*rows):
    t = torch.tensor(rows, dtype=torch.float32)
    return t / t.norm(dim=1, keepdim=True)


def test_entropy_matches_definition():
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    p = 1 / (1 + math.exp(-1))
    h = softmax_entropy(s)
    assert h[0].item() == pytest.approx(math.log(2))
    assert h[1].item() == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)))


def test_empty_support_set_falls_back_to_text_feature():
    z = unit([1, 0], [0.9, 0.1], [0.8, 0.2])
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])  # everything -> class 0
    text = torch.tensor([[5.0, 5.0], [-1.0, 2.0]])
    protos, kept = argmax_prototypes(z, scores, text, alpha=1.0)
    assert torch.equal(protos[1], text[1]) and kept[1] == 0
    assert torch.allclose(protos[0], z.mean(0)) and kept[0] == 3


def test_alpha_zero_disables_alignment():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(10, 4), dim=1)
    text = torch.randn(3, 4)
    scores = torch.nn.functional.normalize(text, dim=1) @ z.T
    scores = scores.T
    protos, kept = argmax_prototypes(z, scores, text, alpha=0.0)
    assert torch.equal(protos, text) and kept.sum() == 0


def test_alpha_one_keeps_all_members():
    z = unit([1, 0], [1, 1], [0, 1], [-1, 1])
    scores = torch.tensor([[0.9, 0.0], [0.6, 0.5], [0.1, 0.8], [0.0, 0.3]])
    protos, kept = argmax_prototypes(z, scores, torch.zeros(2, 2), alpha=1.0)
    assert kept.tolist() == [2, 2]
    assert torch.allclose(protos[0], (z[0] + z[1]) / 2)
    assert torch.allclose(protos[1], (z[2] + z[3]) / 2)


def test_entropy_filter_keeps_lowest_entropy_members():
    # four samples pseudo-labelled class 0 with margins 0.1, 2.0, 0.5, 1.0 over class 1
    z = torch.eye(4)
    margins = torch.tensor([0.1, 2.0, 0.5, 1.0])
    scores = torch.stack([margins, torch.zeros(4)], dim=1)
    protos, kept = argmax_prototypes(z, scores, torch.zeros(2, 4), alpha=0.5)
    # floor(0.5 * 4) = 2 lowest-entropy members = the two largest margins (samples 1, 3)
    assert kept[0] == 2
    assert torch.allclose(protos[0], torch.tensor([0.0, 0.5, 0.0, 0.5]))
    # floor(0.9 * 1) = 0 -> fallback even though the support set is not empty
    protos, kept = argmax_prototypes(z[:1], scores[:1], torch.ones(2, 4), alpha=0.9)
    assert kept[0] == 0 and torch.equal(protos[0], torch.ones(4))
    # floor(0.75 * 4) = 3 -> drops only the least confident sample 0
    protos, kept = argmax_prototypes(z, scores, torch.zeros(2, 4), alpha=0.75)
    assert torch.allclose(protos[0], torch.tensor([0.0, 1.0, 1.0, 1.0]) / 3)


def test_replace_mask_keeps_seen_class_vectors():
    z = unit([1, 0], [0, 1])
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[3.0, 3.0], [4.0, 4.0]])
    protos, kept = argmax_prototypes(z, scores, text, 1.0, replace=torch.tensor([False, True]))
    assert torch.equal(protos[0], text[0]) and torch.allclose(protos[1], z[1])
    assert kept.tolist() == [0, 1]


def test_weighted_prototypes_formula():
    z = unit([1, 0], [0, 1], [1, 1])
    scores = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]])
    p = torch.softmax(scores, dim=1)
    protos, kept = weighted_prototypes(z, scores, torch.zeros(2, 2))
    for k in range(2):
        expected = (p[:, k:k + 1] * z).sum(0) / p[:, k].sum()
        assert torch.allclose(protos[k], expected)
    assert kept.tolist() == [3, 3]


def test_alpha_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        argmax_prototypes(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(2, 2), alpha=1.5)


def test_step_schedule_matches_official_code():
    assert step_lr(0.05, 0, 5, [50, 80], 0.1) == 0.0
    assert step_lr(0.05, 2, 5, [50, 80], 0.1) == pytest.approx(0.02)
    assert step_lr(0.05, 5, 5, [50, 80], 0.1) == pytest.approx(0.05)
    assert step_lr(0.05, 49, 5, [50, 80], 0.1) == pytest.approx(0.05)
    assert step_lr(0.05, 50, 5, [50, 80], 0.1) == pytest.approx(0.005)
    assert step_lr(0.05, 85, 5, [50, 80], 0.1) == pytest.approx(0.0005)


def test_temporal_resize_is_linear_along_time_only():
    x = torch.zeros(1, 1, 2, 3, 2)
    x[:, :, 1] = 1.0  # frame values 0, 1
    y = TemporalResize(4)(x)
    assert y.shape == (1, 1, 4, 3, 2)
    # align_corners=False: source positions -0.25, 0.25, 0.75, 1.25 (clamped at the ends)
    assert torch.allclose(y[0, 0, :, 1, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))
    assert torch.allclose(y[0, 0, :, 0, 1], y[0, 0, :, 2, 0])


def test_presets_follow_paper():
    cfg = PGFAConfig()
    assert cfg.preset("ntu60")[1].lr == 0.05 and cfg.preset("ntu60")[1].alpha == 0.9
    assert cfg.preset("ntu120")[1].lr == 0.005 and cfg.preset("ntu120")[1].alpha == 0.4
    assert cfg.preset("pku_mmd")[1].alpha == 1.0
    assert cfg.preset("synthetic")[0] == "ntu60"
    assert PGFAConfig(dataset="ntu120").preset("ntu60")[0] == "ntu120"


# ----------------------------------------------------------------------------- fit / score
class TinyEncoder(nn.Module):
    """(N, C, T, V, M) -> (N, 8): mean over time and bodies, then a small MLP."""

    def __init__(self, c: int = 3, v: int = 5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c * v, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                 nn.Linear(16, 8))

    def forward(self, x):
        return self.net(x.mean(dim=(2, 4)).flatten(1))


def make_ctx(tmp_path, dataset="synthetic"):
    return RunContext(device="cpu", seed=0, cache_dir=tmp_path, progress=lambda it, **kw: it,
                      encoder_factory=lambda name=None, **kw: TinyEncoder(),
                      dataset=DatasetInfo(name=dataset, family=dataset, num_classes=6))


def make_problem(seed=0):
    """6 classes x 8 samples; classes 0-3 seen, 4-5 unseen; text = class mean pattern."""
    rng = np.random.default_rng(seed)
    patterns = rng.normal(size=(6, 3, 1, 5, 1)).astype(np.float32)
    labels = np.repeat(np.arange(6), 8)
    x = patterns[labels] + 0.1 * rng.normal(size=(48, 3, 4, 5, 2)).astype(np.float32)
    emb = rng.normal(size=(6, 12)).astype(np.float32)
    texts = ClassTexts(class_ids=np.arange(6), class_names=[f"c{i}" for i in range(6)],
                       texts={"description": [[f"d{i}"] for i in range(6)]},
                       embeddings={"description": [emb[i:i + 1] for i in range(6)]})
    seen = labels < 4
    train = TrainView(x=x[seen], labels=labels[seen], texts=texts.subset([0, 1, 2, 3]),
                      kind="sequences")
    return train, api.TestView(x=x[~seen], kind="sequences"), texts.subset([4, 5]), labels[~seen]


def small_config(**kw):
    base = dict(epochs=12, batch_size=8, warmup_epochs=1, lr=0.05, test_batch_size=7)
    base.update(kw)
    return PGFAConfig(**base)


def test_fit_score_and_transductive_step(tmp_path):
    train, test, cand, _ = make_problem()
    ctx = make_ctx(tmp_path)
    m = PGFA(small_config())
    m.fit(train, ctx)
    assert m.history[-1] < m.history[1]  # epoch 0 runs at lr 0
    assert ctx.details["pgfa_preset"] == "ntu60" and ctx.details["pgfa_alpha"] == 0.9
    assert ctx.details["pgfa_tau"] == pytest.approx(0.07)  # fixed temperature by default
    scores = m.score(test, cand, ctx)
    assert scores.shape == (16, 2) and np.isfinite(scores).all()
    assert np.all(np.abs(scores) <= 1 + 1e-5)  # cosine, no temperature at test time
    refined = m.transductive_step(scores, test, cand, ctx)
    assert refined.shape == (16, 2) and np.isfinite(refined).all()
    kept = ctx.details["pgfa_prototype_members"]
    yhat = scores.argmax(1)
    assert kept == [math.floor(0.9 * int((yhat == k).sum())) for k in range(2)]
    # alpha = 0: the step changes nothing
    m.alpha = 0.0
    assert np.allclose(m.transductive_step(scores, test, cand, ctx), scores, atol=1e-6)
    assert PGFA(small_config(prototype_alignment=False)).transductive_step(scores, test, cand, ctx) is None


def test_dataset_preset_from_run_context(tmp_path):
    train, *_ = make_problem()
    ctx = make_ctx(tmp_path, dataset="ntu120")
    m = PGFA(small_config(epochs=1, lr=None, resize_frames=6))
    m.fit(train, ctx)
    assert isinstance(m.encoder[0], TemporalResize)
    assert ctx.details["pgfa_lr"] == 0.005 and ctx.details["pgfa_alpha"] == 0.4


def test_learnable_temperature_moves(tmp_path):
    train, *_ = make_problem()
    ctx = make_ctx(tmp_path)
    PGFA(small_config(epochs=4, learn_temperature=True)).fit(train, ctx)
    assert ctx.details["pgfa_tau"] != pytest.approx(0.07, abs=1e-7)


@pytest.mark.parametrize("framework,frozen", [("pretrained_fixed", True),
                                              ("pretrained_finetune", False)])
def test_pretraining_frameworks(tmp_path, monkeypatch, framework, frozen):
    snap = {}
    original = pgfa_method.pretrain_ce

    def spy(encoder, *args, **kwargs):
        out = original(encoder, *args, **kwargs)
        snap.update({k: v.clone() for k, v in encoder.state_dict().items()})
        return out

    monkeypatch.setattr(pgfa_method, "pretrain_ce", spy)
    train, test, cand, _ = make_problem()
    ctx = make_ctx(tmp_path)
    m = PGFA(small_config(epochs=3, framework=framework, pretrain_epochs=2, pretrain_batch_size=8))
    m.fit(train, ctx)
    assert "pgfa_pretrain_ce_loss" in ctx.details
    after = m.encoder.state_dict()
    same = all(torch.equal(snap[k], after[k]) for k in snap)
    assert same is frozen
    assert m.score(test, cand, ctx).shape == (16, 2)


def test_one_shot_uses_exemplar_features(tmp_path):
    train, test, cand, y_test = make_problem()
    ctx = make_ctx(tmp_path)
    m = PGFA(small_config(epochs=2, one_shot=True))
    m.fit(train, ctx)
    with pytest.raises(ZsbenchError, match="support"):
        m.score(test, cand, ctx)
    first = [int(np.flatnonzero(y_test == c)[0]) for c in (4, 5)]
    shot = api.TestView(x=test.x, kind="sequences", support_x=test.x[first],
                    support_labels=np.array([4, 5]))
    scores = m.score(shot, cand, ctx)
    z = m.embed(test.x).numpy()
    assert np.allclose(scores[first[0]], z[first[0]] @ z[first].T, atol=1e-5)
    bad = api.TestView(x=test.x, kind="sequences", support_x=test.x[first[:1]],
                   support_labels=np.array([4]))
    with pytest.raises(ZsbenchError, match=r"no exemplar for candidate classes \[5\]"):
        m.score(bad, cand, ctx)


def test_rejects_features_input(tmp_path):
    train, *_ = make_problem()
    feats = TrainView(x=np.zeros((32, 8), np.float32), labels=train.labels, texts=train.texts,
                      kind="features")
    with pytest.raises(ZsbenchError, match="sequences"):
        PGFA(small_config()).fit(feats, make_ctx(tmp_path))
    with pytest.raises(ZsbenchError, match="before fit"):
        PGFA(small_config()).score(api.TestView(x=np.zeros((2, 3, 4, 5, 2), np.float32),
                                            kind="sequences"), train.texts, make_ctx(tmp_path))


# ----------------------------------------------------------------------------- registration
def test_spec_and_reported_numbers():
    from zsbench.reported import read_reported
    from zsbench_pgfa.plugin import zsbench_methods

    (spec,) = zsbench_methods()
    assert spec.transductive and spec.inputs == "sequences" and spec.config is PGFAConfig
    assert spec.load() is PGFA
    rows = read_reported(spec.reported)
    assert len(rows) == 77 and {r["method"] for r in rows} == {"pgfa"}
    full = [r for r in rows if r["table"] == "Table I" and r["variant"] == "default"]
    assert {r["dataset"]: r["value"] for r in full} == {"ntu60": "93.17", "ntu120": "71.38",
                                                       "pku_mmd": "87.80"}


def test_plugin_import_does_not_import_torch():
    code = "import sys, zsbench_pgfa.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{ROOT / 'harness'}:{ROOT / 'plugins'}"})
    assert out.stdout.strip() == "False"


def test_config_rejects_unknown_and_invalid():
    with pytest.raises(ValueError):
        PGFAConfig(alhpa=0.5)
    with pytest.raises(ValueError):
        PGFAConfig(alpha=1.5)
    with pytest.raises(ValueError):
        PGFAConfig(lr_steps=[-1])
