"""SMIE: the JSD MI estimator, negatives, temporal constraint, motion mask, schedule, fidelity
against the official code (tests/fidelity/smie.npz), fit/score and one pipeline run."""
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
from zsbench.api import ClassTexts, TestView, TrainView, ZsbenchError
from zsbench.testing import check_plugin, context, tiny_problem
from zsbench_encoders.configs import STGCNConfig
from zsbench_encoders.stgcn import STGCN
from zsbench_smie.config import SMIEConfig, SMIEFeaturesConfig
from zsbench_smie.method import SMIE, warmup_cosine
from zsbench_smie.modules import (Critic, SMIEHead, jsd_mi, lowest_motion_frames, mask_sizes,
                                  motion_energy, negative_scores, roll_by_one, smie_loss,
                                  temporal_constraint, temporal_mask)

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "fidelity" / "smie.npz"
pytestmark = pytest.mark.usefixtures("torch_single_thread")


# ----------------------------------------------------------------------------- MI estimator
def test_jsd_estimator_known_answer():
    """Two binary variables, joint P = [[.4,.1],[.1,.4]], product of marginals Q = 1/4 each.
    Samples in exact proportion; with the optimal critic T = log(P/Q) the estimate is
    2 JSD(P||Q) - 2 log 2, JSD by hand with M = (P+Q)/2 = (.325, .175, .175, .325)."""
    pos = torch.tensor([math.log(1.6)] * 8 + [math.log(0.4)] * 2)   # 4+4 diagonal, 1+1 off
    neg = torch.tensor([math.log(1.6), math.log(0.4), math.log(0.4), math.log(1.6)])
    kl_pm = 2 * 0.4 * math.log(0.4 / 0.325) + 2 * 0.1 * math.log(0.1 / 0.175)
    kl_qm = 2 * 0.25 * math.log(0.25 / 0.325) + 2 * 0.25 * math.log(0.25 / 0.175)
    jsd = 0.5 * kl_pm + 0.5 * kl_qm
    assert jsd == pytest.approx(0.0506718, abs=1e-6)
    assert jsd_mi(pos, neg).item() == pytest.approx(2 * jsd - 2 * math.log(2), abs=1e-6)
    # it is a lower bound maximised by the optimal critic: any other table scores less
    for delta in (0.3, -0.3):
        assert jsd_mi(pos + delta, neg + delta) < jsd_mi(pos, neg)
    # independent variables / a constant zero critic: -2 log 2
    assert jsd_mi(torch.zeros(5), torch.zeros(3)).item() == pytest.approx(-2 * math.log(2))


def test_jsd_weighted_negatives():
    pos, neg = torch.tensor([1.0, 2.0]), torch.tensor([[0.5, 3.0], [-1.0, 7.0]])
    w = torch.tensor([[True, False], [True, False]])
    expected = -(F.softplus(torch.tensor(-1.0)) + F.softplus(torch.tensor(-2.0))) / 2 \
        - (F.softplus(torch.tensor(0.5)) + F.softplus(torch.tensor(-1.0))) / 2
    assert jsd_mi(pos, neg, w).item() == pytest.approx(expected.item(), abs=1e-6)
    with pytest.raises(ValueError, match="no negative"):
        jsd_mi(pos, neg, torch.zeros(2, 2, dtype=torch.bool))


class PairCritic(torch.nn.Module):
    """D(v, t) = v . t (a critic whose scores are easy to write down)."""

    def forward(self, v, t):
        return (v * t).sum(-1)


def test_negative_pairs():
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    t = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 1.0]])
    assert torch.equal(roll_by_one(v), v[[1, 2, 0]])
    s, w = negative_scores(PairCritic(), v, t, "roll")
    assert w is None and torch.equal(s, torch.tensor([2.0, 6.0, 0.0]))   # D(v_{i+1}, t_i)
    s, w = negative_scores(PairCritic(), v, t, "all_other_samples")
    assert torch.equal(s, t @ v.T)                                       # [i, j] = D(v_j, t_i)
    assert torch.equal(w, ~torch.eye(3, dtype=torch.bool))
    s, w = negative_scores(PairCritic(), v, t, "other_classes_only", torch.tensor([0, 0, 1]))
    assert torch.equal(w, torch.tensor([[False, False, True], [False, False, True],
                                        [True, True, False]]))


def test_head_mi_is_the_equation_with_layernorm_and_roll():
    torch.manual_seed(0)
    head = SMIEHead(5, 3, hidden=(7, 4))
    v, v_red, t = torch.randn(4, 5), torch.randn(4, 5), F.normalize(torch.randn(4, 3), dim=1)
    ln = lambda a: (a - a.mean(1, keepdim=True)) / torch.sqrt(a.var(1, unbiased=False, keepdim=True) + 1e-5)
    d = lambda a, b: head.critic(a.unsqueeze(0), b.unsqueeze(0))[0]
    joint = sum(-F.softplus(-d(ln(v)[i], t[i])) for i in range(4)) / 4
    marg = sum(F.softplus(d(ln(v)[(i + 1) % 4], t[i])) for i in range(4)) / 4
    assert head.mi(v, t).item() == pytest.approx((joint - marg).item(), abs=1e-6)
    joint_r = sum(-F.softplus(-d(ln(v_red)[i], t[i])) for i in range(4)) / 4
    assert head.mi(v_red, t, v_neg=v).item() == pytest.approx((joint_r - marg).item(), abs=1e-6)
    scores = head.scores(v, t[:2])
    assert scores.shape == (4, 2)
    assert scores[2, 1].item() == pytest.approx(F.logsigmoid(d(v[2], t[1])).item(), abs=1e-6)
    assert head.scores(v, t[:2], layernorm=True)[2, 1].item() == pytest.approx(
        F.logsigmoid(d(ln(v)[2], t[1])).item(), abs=1e-6)


def test_critic_layer_sizes_and_parameter_count():
    critic = Critic(256, 768)
    assert sum(p.numel() for p in critic.parameters()) == 1_574_913   # smie.md §2
    with pytest.raises(ValueError):
        Critic(4, 4, hidden=(8,))


def test_temporal_constraint_and_total_loss():
    full, reduced = torch.tensor(-1.0), torch.tensor(-1.05)
    assert temporal_constraint(full, reduced, 0.1).item() == pytest.approx(0.05)
    assert temporal_constraint(full, torch.tensor(-1.5), 0.1).item() == 0.0   # gap 0.5 > margin
    assert smie_loss(full, reduced, 0.1, 0.5).item() == pytest.approx(1.0 + 0.5 * 0.05)
    assert smie_loss(full, None).item() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- temporal mask
def test_motion_energy_by_hand():
    x = torch.tensor([0.0, 1.0, 3.0, 3.0]).view(1, 1, 4, 1, 1)
    # forward differences (1, 2, 0 | 0), backward (0 | 1, 2, 0), squared and summed
    assert motion_energy(x).tolist() == [[1.0, 5.0, 4.0, 0.0]]
    assert motion_energy(x, two_sided=False).tolist() == [[1.0, 4.0, 0.0, 0.0]]
    assert lowest_motion_frames(x, 2).tolist() == [[0, 3]]
    x2 = torch.stack([x[0, 0] * 2, x[0, 0]]).unsqueeze(0)              # C = 2 (mean over C)
    assert motion_energy(x2)[0].tolist() == pytest.approx([2.5, 12.5, 10.0, 0.0])


def test_motion_mask_on_small_tensors():
    # frame values of two samples; energies (two-sided) sample 0: 1,1,4,13,9,0 -> keeps the
    # four lowest {0,1,2,5}; sample 1 (reversed): keeps {0,3,4,5}
    a = torch.tensor([0.0, 1.0, 1.0, 3.0, 0.0, 0.0])
    x = torch.stack([a, a.flip(0)]).view(2, 1, 6, 1, 1)
    assert motion_energy(x)[0].tolist() == [1.0, 1.0, 4.0, 13.0, 9.0, 0.0]
    out = temporal_mask(x, 2, positions=torch.tensor([1, 3]))           # T-m = 4, T-2m = 2
    assert out.shape == (2, 1, 2, 1, 1)
    assert out.flatten().tolist() == [a[1].item(), a[5].item(), a.flip(0)[3].item(), a.flip(0)[5].item()]
    # the positions are shared by the batch and drawn once when not given
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(temporal_mask(x, 2, generator=g1), temporal_mask(x, 2, generator=g2))
    rnd = temporal_mask(x, 2, "random", positions=torch.tensor([0, 2, 4, 5]))
    assert torch.equal(rnd, x[:, :, [0, 2, 4, 5]])
    assert mask_sizes(50, 15, "motion_attention_2sided") == (35, 20)
    assert mask_sizes(50, 15, "random") == (50, 35)
    with pytest.raises(ValueError, match="lower mask_frames"):
        temporal_mask(x, 3)
    with pytest.raises(ValueError, match="positions"):
        temporal_mask(x, 2, positions=torch.tensor([1, 4]))


def test_schedule_and_config():
    assert warmup_cosine(1.0, 0, 15, 100) == 0.0
    assert warmup_cosine(1.0, 5, 15, 100) == pytest.approx(1 / 3)
    assert warmup_cosine(1.0, 15, 15, 100) == pytest.approx(1.0)
    assert warmup_cosine(1.0, 57.5, 15, 100) == pytest.approx(0.5)
    cfg = SMIEConfig()
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.margin, cfg.tc_weight) == (1e-5, 100, 128, 0.1, 0.5)
    assert cfg.frames_to_mask(50) == 15 and cfg.frames_to_mask(20) == 6
    assert SMIEConfig(mask_reference_frames=None).frames_to_mask(20) == 15
    assert cfg.needs().text_kinds == ["name"] and cfg.reported_variant() == "default"
    assert SMIEConfig(text_kind="description").reported_variant() == "complete_description"
    assert SMIEFeaturesConfig(variant="x").reported_variant() == "x"
    with pytest.raises(ValueError, match="two widths"):
        SMIEConfig(critic_hidden=[4])
    with pytest.raises(ValueError):
        SMIEFeaturesConfig(use_temporal_constraint=True)


# ----------------------------------------------------------------------------- fidelity
@pytest.fixture(scope="module")
def ref():
    return dict(np.load(REF))


def official_encoder(ref) -> STGCN:
    enc = STGCN(STGCNConfig(hidden_channels=4, out_dim=8))
    state = {k[len("encoder/"):].replace("st_gcn_networks.", "blocks."): torch.from_numpy(v)
             for k, v in ref.items() if k.startswith("encoder/")}
    missing, unexpected = enc.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    return enc.eval()


def official_head(ref, key: str) -> SMIEHead:
    head = SMIEHead(8, 12, hidden=(16, 8))
    names = {"l0": "fc1", "l1": "fc2", "l2": "out"}
    head.critic.load_state_dict({f"{names[k.split('/')[1].split('.')[0]]}.{k.split('.')[-1]}":
                                 torch.from_numpy(v) for k, v in ref.items() if k.startswith(key)})
    return head


def test_reference_provenance(ref):
    assert str(ref["repo"]) == "YujieOuO/SMIE"
    assert str(ref["commit"]) == "fa41f1d218621ab220c1b2186b513c0bcdee88c6"


@pytest.mark.parametrize("key,mode", [("mask2", "motion_attention_2sided"),
                                      ("mask1", "motion_attention_1sided"),
                                      ("mask_random", "random")])
def test_fidelity_temporal_masks(ref, key, mode):
    data = torch.from_numpy(ref["data"].astype(np.float32))
    out = temporal_mask(data, 15, mode, positions=torch.from_numpy(ref[f"{key}_positions"]))
    idx = torch.from_numpy(ref[key])                                   # official frames (N, T')
    expected = torch.stack([data[n][:, idx[n]] for n in range(len(data))])
    assert torch.equal(out, expected)


def test_fidelity_features_and_mi(ref):
    data = torch.from_numpy(ref["data"].astype(np.float32))
    enc, head = official_encoder(ref), official_head(ref, "critic0/")
    t = torch.from_numpy(ref["language"])[torch.from_numpy(ref["labels"])]
    with torch.no_grad():
        feat0 = enc(data)
        feat1 = enc(temporal_mask(data, 15, positions=torch.from_numpy(ref["step_positions"])))
        np.testing.assert_allclose(feat0.numpy(), ref["feat0"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(feat1.numpy(), ref["feat1"], atol=1e-5, rtol=0)
        assert head.mi(feat0, t).item() == pytest.approx(float(ref["dim0"]), abs=1e-5)
        assert head.mi(feat1, t, v_neg=feat0).item() == pytest.approx(float(ref["dim1"]), abs=1e-5)


def test_fidelity_one_training_step(ref):
    """One official Processor.train_epoch step: loss, critic gradients, Adam update."""
    data = torch.from_numpy(ref["data"].astype(np.float32))
    enc, head = official_encoder(ref), official_head(ref, "critic0/")
    t = torch.from_numpy(ref["language"])[torch.from_numpy(ref["labels"])]
    lr = warmup_cosine(float(ref["step_base_lr"]), int(ref["step_epoch"]), 15, 100)
    assert lr == pytest.approx(float(ref["step_lr"]), rel=1e-6)
    with torch.no_grad():
        v0 = enc(data)
        v1 = enc(temporal_mask(data, 15, positions=torch.from_numpy(ref["step_positions"])))
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    loss = smie_loss(head.mi(v0, t), head.mi(v1, t, v_neg=v0), float(ref["margin"]), 0.5)
    assert loss.item() == pytest.approx(float(ref["step_loss"]), abs=1e-5)
    opt.zero_grad()
    loss.backward()
    opt.step()
    names = {"fc1": "l0", "fc2": "l1", "out": "l2"}
    for name, p in head.critic.named_parameters():
        off = f"{names[name.split('.')[0]]}.{name.split('.')[1]}"
        np.testing.assert_allclose(p.grad.numpy(), ref[f"grad/{off}"], atol=1e-5, rtol=0)
        np.testing.assert_allclose(p.detach().numpy(), ref[f"critic1/{off}"], atol=1e-5, rtol=0)


def test_fidelity_test_scores(ref):
    head = official_head(ref, "critic1/")
    text = torch.from_numpy(ref["language"])[torch.from_numpy(ref["unseen"])]
    scores = head.scores(torch.from_numpy(ref["feat0"]), text).detach()
    np.testing.assert_allclose(scores.numpy(), ref["test_scores"], atol=1e-5, rtol=0)
    assert np.array_equal(ref["unseen"][scores.argmax(1).numpy()], ref["test_pred"])


# ----------------------------------------------------------------------------- fit / score
def encoder_factory(name=None, **overrides):
    return STGCN(STGCNConfig(hidden_channels=4, out_dim=8, dropout=0.0))


def small(**kw):
    base = dict(epochs=3, warmup_epochs=1, lr=1e-3, batch_size=8, test_batch_size=5,
                critic_hidden=[16, 8], pretrain_epochs=2, pretrain_batch_size=16,
                pretrain_cache=False)
    base.update(kw)
    return SMIEConfig(**base)


def seq_ctx(seed=0, cache_dir=None):
    info = api.DatasetInfo(name="tiny", family="synthetic", num_classes=6, real=False)
    return context(cache_dir=cache_dir, seed=seed, dataset=info, encoder_factory=encoder_factory)


def test_fit_and_score_on_sequences():
    train, test, cand, _ = tiny_problem(seq_shape=(3, 20, 25, 2), per_class=4)
    ctx = seq_ctx()
    m = SMIE(small())
    m.fit(train, ctx)
    assert len(m.history) == 3 and all(np.isfinite(h["mi_reduced"]) for h in m.history)
    assert ctx.details["smie_mask_frames"] == 6 and "smie_pretrain_final_ce" in ctx.details
    assert not any(p.requires_grad for p in m.encoder.parameters())      # frozen
    scores = m.score(test, cand, ctx)
    assert scores.shape == (8, 2) and np.isfinite(scores).all() and (scores <= 0).all()
    with torch.no_grad():   # raw frozen-encoder features, no LayerNorm at test (official)
        v = m.encoder(torch.as_tensor(test.x[:3]))
        t = F.normalize(torch.as_tensor(cand.matrix("name")), dim=1)
        manual = F.logsigmoid(m.head.critic(v.unsqueeze(1), t.unsqueeze(0)))
    np.testing.assert_allclose(scores[:3], manual.numpy(), atol=1e-5)
    again = SMIE(small())
    again.fit(train, seq_ctx())
    assert np.allclose(again.score(test, cand, seq_ctx()), scores, atol=1e-6)   # seeded
    pred = m.gzsl_decide(scores, np.array([True, False]), test, cand, ctx)
    assert np.array_equal(pred, scores.argmax(1))


def test_pretrained_encoder_cache_continues_exactly(tmp_path):
    """A cached encoder is loaded with the generator states its training left: the fit
    then continues bit for bit as after training (head init, batch order, masks); another
    seed misses; a damaged entry is trained again, never half-read."""
    train, test, cand, _ = tiny_problem(seq_shape=(3, 20, 25, 2), per_class=4)
    fresh = SMIE(small())
    fresh.fit(train, seq_ctx())
    ref = fresh.score(test, cand, seq_ctx())

    def run(seed=0):
        m, ctx = SMIE(small(pretrain_cache=True)), seq_ctx(seed, cache_dir=tmp_path)
        m.fit(train, ctx)
        return m, ctx, m.score(test, cand, ctx)

    first, ctx1, s1 = run()
    entries = list((tmp_path / "smie" / "encoders").iterdir())
    assert len(entries) == 1 and (entries[0] / "rng.pt").is_file()
    assert ctx1.details["smie_encoder"] == "pretrained on the seen training classes"
    second, ctx2, s2 = run()
    assert ctx2.details["smie_encoder"].startswith("pretrained, from cache")
    assert ctx2.details["smie_pretrain_final_ce"] == ctx1.details["smie_pretrain_final_ce"]
    assert np.array_equal(s1, ref) and np.array_equal(s2, ref)
    assert second.history == first.history == fresh.history
    run(seed=1)
    assert len(list((tmp_path / "smie" / "encoders").iterdir())) == 2
    (entries[0] / "rng.pt").write_bytes(b"damaged")
    third, ctx3, s3 = run()
    assert ctx3.details["smie_encoder"] == "pretrained on the seen training classes"
    assert np.array_equal(s3, ref)


@pytest.mark.parametrize("options", [
    dict(use_temporal_constraint=False, pretrain_epochs=0),
    dict(mask_mode="random", negative_sampling="other_classes_only", pretrain_head="seen_classes"),
    dict(mask_mode="motion_attention_1sided", negative_sampling="all_other_samples",
         test_layernorm=True),
])
def test_switches_run(options):
    train, test, cand, _ = tiny_problem(seq_shape=(3, 20, 25, 2), per_class=3)
    m = SMIE(small(epochs=2, **options))
    ctx = seq_ctx()
    m.fit(train, ctx)
    assert np.isfinite(m.score(test, cand, ctx)).all()
    if not options.get("use_temporal_constraint", True):
        assert ctx.details["smie_final_mi_reduced"] is None


def test_features_variant_learns():
    """smie_features on separable features: the MI estimate starts near -2 log 2 (a fresh
    critic scores ~0) and rises; seen classes are told apart; unseen above chance (1/4)."""
    train, test, cand, y = tiny_problem(num_classes=12, num_unseen=4, per_class=20, seed=0)
    cfg = SMIEFeaturesConfig(epochs=60, warmup_epochs=2, lr=1e-3, batch_size=32,
                             critic_hidden=[64, 32])
    m = SMIE(cfg)
    ctx = context()
    m.fit(train, ctx)
    assert m.history[1]["mi"] == pytest.approx(-2 * math.log(2), abs=0.03)
    assert m.history[-1]["mi"] > -1.0
    seen = m.score(TestView(x=train.x, kind="features"), train.texts, ctx).argmax(1)
    assert (np.asarray(train.texts.class_ids)[seen] == train.labels).mean() > 0.75
    acc = (np.asarray(cand.class_ids)[m.score(test, cand, ctx).argmax(1)] == y).mean()
    assert acc > 0.5


def test_errors():
    train, test, cand, _ = tiny_problem(seq_shape=(3, 20, 25, 2), per_class=3)
    with pytest.raises(ZsbenchError, match="sequences"):
        SMIE(SMIEConfig()).fit(tiny_problem()[0], seq_ctx())
    with pytest.raises(ZsbenchError, match="features"):
        SMIE(SMIEFeaturesConfig()).fit(train, seq_ctx())
    with pytest.raises(ZsbenchError, match="mask_frames"):
        SMIE(small(mask_frames=10, mask_reference_frames=None)).fit(train, seq_ctx())
    with pytest.raises(ZsbenchError, match="before fit"):
        SMIE(small()).score(test, cand, seq_ctx())
    one_class = TrainView(x=train.x[:3], labels=train.labels[:3], texts=train.texts,
                          kind="sequences")
    with pytest.raises(ZsbenchError, match="negative pair"):
        SMIE(small(negative_sampling="other_classes_only", pretrain_epochs=0)).fit(one_class, seq_ctx())


# ----------------------------------------------------------------------------- registration
def test_spec_and_reported_numbers():
    from zsbench.reported import read_reported
    from zsbench_smie.plugin import zsbench_methods

    smie, feats = zsbench_methods()
    assert (smie.name, smie.inputs, feats.name, feats.inputs) == (
        "smie", "sequences", "smie_features", "features")
    assert smie.load() is SMIE and not smie.transductive
    assert smie.smoke_overrides["pretrain_epochs"] == 2
    rows = read_reported(smie.reported)
    main = {(r["source_paper"], r["dataset"]): r["value"] for r in rows
            if r["method"] == "smie" and r["protocol"] == "smie" and r["variant"] == "default"
            and r["source_paper"] == "pgfa"}
    assert main == {("pgfa", "ntu60"): "63.57", ("pgfa", "ntu120"): "56.37",
                    ("pgfa", "pku_mmd"): "67.15"}
    assert {r["method"] for r in rows} == {"smie", "smie_features"}
    assert all(r["protocol"] == "synse" for r in rows if r["method"] == "smie_features")


def test_plugin_import_does_not_import_torch():
    code = "import sys, zsbench_smie.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{ROOT / 'harness'}:{ROOT / 'plugins'}"})
    assert out.stdout.strip() == "False"


def test_pipeline_run(tmp_path):
    """One seconds-long run of the registered plugin on the shrunken embedded benchmark."""
    rec, path = check_plugin("smie", out=tmp_path / "out", cache_dir=tmp_path / "cache",
                             extra=["method.critic_hidden=[32,16]"])   # + the spec's smoke_overrides
    assert path.exists() and rec.plugin == "smie" and not rec.deviations
    fold = rec.folds[0]
    assert fold.metrics["zsl_acc"] is not None and fold.metrics["gzsl_h"] is not None
    assert fold.details["smie_mask_frames"] == 6     # 20 frames: round(15 * 20 / 50)
