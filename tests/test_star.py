"""STAR: match-cube layout (quirk Q1), part tokens, dual prompts, the three matching losses
by hand, fidelity to the official ModelMatch, the star_parts text source, the method's
fit/score/GZSL rule and a tiny end-to-end run."""
from __future__ import annotations

import json
import math
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsbench.api import ClassTexts, DatasetInfo, TestView, TrainView, ZsbenchError
from zsbench.testing import context
from zsbench_star.config import OFFICIAL_GAMMA_GRID, PART_JOINTS, StarConfig, StarPartsConfig
from zsbench_star.method import Star
from zsbench_star.modules import (LOG_EPS, PartPrompts, StarNet, match_cube, part_tokens,
                                  star_losses, total_loss)
from zsbench_star.texts import star_parts

pytestmark = pytest.mark.usefixtures("torch_single_thread")
ROOT = Path(__file__).resolve().parents[1]
FIDELITY = ROOT / "tests" / "fidelity" / "star.npz"


# ----------------------------------------------------------------------------- feature map
def test_match_cube_correct_and_official_layout():
    n, m, c, t, v = 2, 2, 4, 3, 5
    x = torch.arange(n * m * c * t * v, dtype=torch.float32).view(n, m, c, t, v)
    assert torch.equal(match_cube(x), (x[:, 0] + x[:, 1]) / 2)
    off = match_cube(x, official=True)
    assert off.shape == (n, c, t, v)
    # official: the flat (c, t, v, m) layout of one sample's memory, averaged over pairs of
    # neighbouring entries: output channel 0 holds body 0 only, channel c/2 body 1 only
    flat = x[0].reshape(-1)
    assert off[0, 0, 0, 0].item() == pytest.approx((flat[0] + flat[1]).item() / 2)
    assert off[0, 0, 0, 1].item() == pytest.approx((flat[2] + flat[3]).item() / 2)
    assert off[0, : c // 2].max() < x[0, 1].min()          # first half: body 0 values only
    assert off[0, c // 2:].min() >= x[0, 1].min()          # second half: body 1 values only
    assert not torch.allclose(off, match_cube(x))
    with pytest.raises(ValueError):
        match_cube(x[0])


def test_part_tokens_time_major():
    cube = torch.arange(2 * 3 * 4 * 25, dtype=torch.float32).view(2, 3, 4, 25)
    tok = part_tokens(cube, torch.tensor([2, 3, 20]))
    assert tok.shape == (2, 4 * 3, 3)
    # token l = (time l // 3, joint [2, 3, 20][l % 3]); features = channels
    for l in range(12):
        t, j = divmod(l, 3)
        assert torch.equal(tok[1, l], cube[1, :, t, [2, 3, 20][j]])


def test_part_joint_groups_cover_every_joint_once():
    joints = sorted(j for g in PART_JOINTS for j in g)
    assert joints == list(range(25))
    assert [len(g) for g in StarConfig().parts] == [3, 6, 6, 2, 4, 4]


# ----------------------------------------------------------------------------- prompts
def test_part_prompts_bilinear_readout_by_hand():
    torch.manual_seed(0)
    mod = PartPrompts(channels=3, width=8, num_prompts=5, num_heads=2)
    tokens = torch.randn(2, 7, 3)
    e = mod(tokens)
    assert e.shape == (2, 5)
    attended, _ = mod.attention(mod.prompts[None].expand(2, -1, -1), tokens, tokens)
    z = mod.fc2(torch.relu(mod.fc1(attended)))                  # (B, P, E)
    for b in range(2):
        for i in range(5):
            want = mod.prompts[i] @ mod.bilinear @ z[b, i]
            assert e[b, i].item() == pytest.approx(want.item(), rel=1e-5, abs=1e-4)
    # shapes of the official widths: 100 prompts of width 768 over 256-channel tokens
    big = PartPrompts(channels=256, width=768, num_prompts=100, num_heads=4)
    assert big.prompts.shape == (100, 768) and big.bilinear.shape == (768, 768)
    assert big.attention.kdim == big.attention.vdim == 256
    ablated = PartPrompts(channels=3, width=8, num_prompts=5, num_heads=2, use_prompts=False)
    assert ablated(tokens).shape == (2, 5)


def test_global_embedding_is_the_sum_of_parts():
    torch.manual_seed(1)
    net = StarNet(channels=4, text_dim=6, num_text_classes=3, parts=[[0, 1], [2], [3, 4]],
                  num_prompts=5, width=8, num_heads=2, hidden=7)
    parts, g = net.embed(torch.randn(3, 4, 2, 25))
    assert parts.shape == (3, 3, 5)
    assert torch.allclose(g, parts.sum(dim=1))
    names = torch.randn(4, 6)
    cos = net.scores(g, names)
    want = F.cosine_similarity(g[:, None], net.labels(names)[None], dim=2)
    assert torch.allclose(cos, want, atol=1e-6)
    # semantic prompts: one (K, D) matrix per part, added before the projection
    desc = torch.randn(3, 3, 6)
    out = net.descriptions(desc)
    assert out.shape == (3, 3, 5)
    assert torch.allclose(out[1, 2], net.part_proj[2](desc[1, 2] + net.semantic_prompts[2][1]))
    off = StarNet(4, 6, 3, [[0], [1]], 5, 8, 2, 7, use_semantic_prompts=False)
    assert all(float(p.abs().sum()) == 0 and not p.requires_grad for p in off.semantic_prompts)


# ----------------------------------------------------------------------------- losses
def _nll(logits, target):
    logits = logits.detach()
    return float(np.mean([-math.log(float(torch.softmax(logits[b], 0)[target[b]]) + LOG_EPS)
                          for b in range(len(target))]))


def test_star_losses_by_hand():
    torch.manual_seed(2)
    net = StarNet(channels=4, text_dim=6, num_text_classes=4, parts=[[0, 1], [2, 3]],
                  num_prompts=5, width=8, num_heads=2, hidden=7)
    parts, g = net.embed(torch.randn(3, 4, 2, 25))
    names, desc = torch.randn(4, 6), torch.randn(4, 2, 6)
    train_cols = torch.tensor([0, 2, 3])          # class 1 has texts but no training samples
    target = torch.tensor([2, 0, 1])              # positions among train_cols
    terms = star_losses(net, parts, g, target, names, desc, train_cols)
    lab = net.labels(names)
    s = net.descriptions(desc)
    cos_g = torch.stack([torch.stack([F.cosine_similarity(g[b], lab[k], 0) for k in (0, 2, 3)])
                         for b in range(3)])
    assert terms["global"].item() == pytest.approx(_nll(cos_g, target), rel=1e-5)
    part = np.mean([_nll(torch.stack([torch.stack([F.cosine_similarity(parts[b, r], s[k, r], 0)
                                                   for k in (0, 2, 3)]) for b in range(3)]),
                         target) for r in range(2)])
    assert terms["part"].item() == pytest.approx(part, rel=1e-5)
    # description-label matching: raw dot products, every class with texts (4), diagonal
    pd = np.mean([_nll(s[:, r] @ lab.t(), torch.arange(4)) for r in range(2)])
    assert terms["pd"].item() == pytest.approx(pd, rel=1e-5)
    assert total_loss(terms, 0.1, 1.0, 0.1).item() == pytest.approx(
        0.1 * terms["global"].item() + terms["part"].item() + 0.1 * pd, rel=1e-6)


def test_code_cross_entropy_saturates():
    # -log(p + 1e-12) as the code writes it: a confident wrong match stops at -log(1e-12)
    from zsbench_star.modules import _nll as code_nll

    assert code_nll(torch.tensor([[0.0, 1e4]]), torch.tensor([0])).item() == pytest.approx(
        -math.log(LOG_EPS), rel=1e-6)
    logits = torch.tensor([[0.3, -0.2, 0.9], [0.1, 0.4, -0.5]])
    assert code_nll(logits, torch.tensor([2, 1])).item() == pytest.approx(
        F.cross_entropy(logits, torch.tensor([2, 1])).item(), rel=1e-6)


# ----------------------------------------------------------------------------- fidelity
def _ours(name: str) -> str | None:
    head, _, rest = name.partition(".")
    idx, _, tail = rest.partition(".")
    table = {"body_part_st_attention_networks": f"visual.{idx}.attention.{tail}",
             "body_part_mapping_matrix1": f"visual.{idx}.fc1.{tail}",
             "body_part_mapping_matrix2": f"visual.{idx}.fc2.{tail}",
             "body_part_prompts": f"visual.{idx}.prompts",
             "body_part_w": f"visual.{idx}.bilinear",
             "pd_mapping_matrix1": f"part_proj.{idx}.0.{tail}",
             "pd_mapping_matrix2": f"part_proj.{idx}.2.{tail}",
             "pd_prompt": f"semantic_prompts.{idx}",
             "crossmodal_align1": f"label_proj.0.{rest}",
             "crossmodal_align2": f"label_proj.2.{rest}"}
    return table.get(head)           # None: modules outside the objective (gcn_*, global_fc*)


@pytest.fixture(scope="module")
def official():
    z = np.load(FIDELITY)
    net = StarNet(channels=6, text_dim=12, num_text_classes=60, parts=PART_JOINTS,
                  num_prompts=5, width=8, num_heads=4, hidden=7)
    state = {_ours(k[2:]): torch.tensor(z[k]) for k in z.files if k.startswith("w/")}
    state.pop(None, None)
    net.load_state_dict(state)
    return z, net


def test_fidelity_provenance(official):
    z, _ = official
    assert str(z["repo"]) == "cseeyangchen/STAR"
    assert str(z["commit"]) == "917ca673162e344f65b50328f2d4d7a1fe58bc7b"


def test_fidelity_official_feature_reshape(official):
    z, _ = official
    per_body = torch.tensor(z["per_body"])
    per_body = per_body.view(-1, 2, *per_body.shape[1:])
    cube = match_cube(per_body, official=True)
    np.testing.assert_allclose(cube.numpy(), z["cube"], atol=1e-6)
    assert np.abs(match_cube(per_body).numpy() - z["cube"]).max() > 1e-2   # Q1 is real


def test_fidelity_forward_losses_gradients(official):
    z, net = official
    net.train()
    parts, g = net.embed(torch.tensor(z["cube"]))
    np.testing.assert_allclose(parts.detach().numpy(), z["part_embeddings"], atol=1e-5)
    np.testing.assert_allclose(g.detach().numpy(), z["global_embedding"], atol=1e-5)
    seen = z["seen"]
    target = torch.tensor([int(np.flatnonzero(seen == c)[0]) for c in z["labels"]])
    terms = star_losses(net, parts, g, target, torch.tensor(z["names"]),
                        torch.tensor(z["parts"]), torch.tensor(seen))
    loss = total_loss(terms, 0.1, 1.0, 0.1)
    for key, ref in (("global", "loss_global"), ("part", "loss_part"), ("pd", "loss_pd")):
        assert terms[key].item() == pytest.approx(float(z[ref]), abs=1e-5)
    assert loss.item() == pytest.approx(float(z["loss"]), abs=1e-5)
    net.zero_grad()
    loss.backward()
    grads = {n: p.grad for n, p in net.named_parameters()}
    compared = 0
    for k in z.files:
        if k.startswith("g/") and _ours(k[2:]) is not None:
            np.testing.assert_allclose(grads[_ours(k[2:])].numpy(), z[k], atol=1e-5,
                                       rtol=1e-5, err_msg=k)
            compared += 1
    assert compared == 6 * 17 + 4


def test_fidelity_test_scores(official):
    z, net = official
    net.eval()
    with torch.no_grad():
        _, g = net.embed(torch.tensor(z["cube"]))
        cos = net.scores(g, torch.tensor(z["names"]))
    np.testing.assert_allclose(cos.numpy(), z["gzsl_cosines"], atol=1e-5)
    unseen = z["unseen"]
    assert cos[:, unseen].argmax(dim=1).tolist() == z["zsl_pred"].tolist()


# ----------------------------------------------------------------------------- texts
def _dataset(names, tmp_path, parts=None):
    texts = {}
    if parts is not None:
        path = tmp_path / "parts.json"
        path.write_text(json.dumps({"kind": "parts", "classes": [
            {"name": n, "texts": p} for n, p in zip(names, parts)]}))
        texts["parts"] = path
    return types.SimpleNamespace(name="toy", num_classes=len(names), class_names=list(names),
                                 texts=texts)


def test_star_parts_source_file_and_shipped(tmp_path):
    names = ["drink water", "eat meal", "brush teeth"]
    lines = [f"{n}; Head: h{i}; Hand: a{i}; Arm: r{i}; Hip: p{i}; Leg: l{i}; Foot: f{i}"
             for i, n in enumerate(names + ["extra class"])]
    lines[1] += ";"                    # a trailing ';' (NTU line 5) is ignored, as the code does
    f = tmp_path / "ntu_part_descriptions.txt"
    f.write_text("\n".join(lines) + "\n")
    out = star_parts(StarPartsConfig(path=f), _dataset(names, tmp_path))["star_parts"]
    assert len(out) == 3 and len(out[0]) == 6
    assert out[1][0] == "eat meal, Head: h1" and out[2][5] == "brush teeth, Foot: f2"
    parts = [[f"{n} part {r}" for r in range(6)] for n in names]
    shipped = star_parts(StarPartsConfig(template="{name}: {part}"),
                         _dataset(names, tmp_path, parts))["star_parts"]
    assert shipped[0][3] == "drink water: drink water part 3"
    bad = tmp_path / "bad.txt"
    bad.write_text("drink water; Head: h; Hand: a; Arm: r; Hip: p; Leg: l\n")
    with pytest.raises(ZsbenchError, match="7 ';'-separated"):
        star_parts(StarPartsConfig(path=bad), _dataset(names[:1], tmp_path))
    with pytest.raises(ZsbenchError, match="6"):
        star_parts(StarPartsConfig(), _dataset(names, tmp_path, [p[:4] for p in parts]))
    with pytest.raises(ZsbenchError, match="parts"):
        star_parts(StarPartsConfig(), _dataset(names, tmp_path))


def test_embedded_benchmark_parts_feed_star_parts():
    from zsbench_star.config import PART_NAMES
    from zsbench_synthetic.config import SyntheticConfig
    from zsbench_synthetic.dataset import load_synthetic
    from zsbench_synthetic.vocab import PARTS

    # the benchmark's part order is STAR's (head, hand, arm, hip, leg, foot)
    assert [p if p == "head" else {"feet": "foot"}.get(p, p[:-1]) for p in PARTS] == \
        list(PART_NAMES)
    ds = load_synthetic(SyntheticConfig(num_classes=12, sequences=240, frames=20,
                                        num_subjects=4), None)
    out = star_parts(StarPartsConfig(), ds)["star_parts"]
    assert len(out) == 12 and all(len(c) == 6 for c in out)
    assert all(t.startswith(f"{ds.class_names[i]},") for i, c in enumerate(out) for t in c)


# ----------------------------------------------------------------------------- method
def _bank(ids, names, parts):
    return ClassTexts(np.asarray(ids), [f"c{i}" for i in ids],
                      texts={"name": [[f"c{i}"] for i in ids],
                             "star_parts": [[f"c{i} p{r}" for r in range(6)] for i in ids]},
                      embeddings={"name": [names[i][None] for i in ids],
                                  "star_parts": [parts[i] for i in ids]})


def _shiftgcn_factory(name=None, **overrides):
    from zsbench_encoders.configs import ShiftGCNConfig
    from zsbench_encoders.shiftgcn import ShiftGCN

    return ShiftGCN(ShiftGCNConfig(**{"widths": [4] * 9, "out_dim": 8, **overrides}))


_SMALL = dict(epochs=2, pretrain_epochs=1, batch_size=8, pretrain_batch_size=8, num_prompts=4,
              attention_dim=8, hidden_dim=6, pretrain_cache=False)


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    names = rng.normal(size=(5, 10)).astype(np.float32)
    parts = rng.normal(size=(5, 6, 10)).astype(np.float32)
    labels = np.repeat(np.arange(5), 6)
    x = rng.normal(size=(30, 3, 16, 25, 2)).astype(np.float32)
    return names, parts, labels, x


def test_per_body_features_of_shiftgcn():
    from zsbench_star.method import feature_cube, per_body_features

    torch.manual_seed(3)
    enc = _shiftgcn_factory().eval()
    x = torch.randn(3, 3, 16, 25, 2)
    with torch.no_grad():
        per_body = per_body_features(enc, x)
        assert per_body.shape == (3, 2, 8, 4, 25)
        assert torch.allclose(per_body.mean(dim=1), enc.feature_map(x), atol=1e-6)
        assert torch.allclose(feature_cube(enc, x, True), match_cube(per_body, official=True))
    with pytest.raises(ZsbenchError, match="units"):
        per_body_features(torch.nn.Linear(2, 2), x)


def test_method_fit_score_gzsl_on_small_sequences():
    names, parts, labels, x = _problem()
    tr = labels < 3
    cfg = StarConfig(**_SMALL, record_gzsl_margins=True, gamma=0.1)
    m = Star(cfg)
    ctx = context(dataset=DatasetInfo("synthetic", "synthetic", 5, real=False))
    ctx.encoder_factory = _shiftgcn_factory
    m.fit(TrainView(x=x[tr], labels=labels[tr], texts=_bank([0, 1, 2], names, parts),
                    kind="sequences"), ctx)
    assert ctx.details["star_epochs"] == 2 and ctx.details["star_lr_steps"] == [10, 20]
    assert set(ctx.details["star_final_loss_terms"]) == {"global", "part", "pd"}
    zs = m.score(TestView(x=x[~tr], kind="sequences"), _bank([3, 4], names, parts), ctx)
    assert zs.shape == (12, 2) and np.isfinite(zs).all() and np.abs(zs).max() <= 1 + 1e-6
    cand = _bank([0, 1, 2, 3, 4], names, parts)
    test = TestView(x=x, kind="sequences")
    gz = m.score(test, cand, ctx)
    rec = ctx.details["star_gzsl_margins"]
    assert set(rec["best_seen"]) <= {0, 1, 2} and set(rec["best_unseen"]) <= {3, 4}
    assert "record_gzsl_margins" in ctx.deviations
    seen_mask = np.array([1, 1, 1, 0, 0], bool)
    pred = m.gzsl_decide(gz, seen_mask, test, cand, ctx)
    probs = torch.softmax(torch.tensor(gz), 1).numpy() - 0.1 * seen_mask[None]
    assert pred.tolist() == probs.argmax(1).tolist()
    # the recorded margin decides calibrated stacking: seen wins iff margin > gamma
    margin = np.array(rec["margin"])
    ids = np.array([0, 1, 2, 3, 4])
    assert (ids[pred] < 3).tolist() == (margin > 0.1).tolist()


@pytest.mark.parametrize("switches", [
    dict(official_feature_reshape=True, freeze_encoder_bn=False, test_augment=True,
         use_part_prompts=False, use_semantic_prompts=False),
    dict(encoder_features="cached", augment=False, pretrain_epochs=0, lr_steps=[1],
         pretrain_augment=False)])
def test_method_switches_run(switches):
    names, parts, labels, x = _problem(1)
    cfg = StarConfig(**{**_SMALL, "epochs": 1, **switches})
    ctx = context()
    ctx.encoder_factory = _shiftgcn_factory
    m = Star(cfg)
    m.fit(TrainView(x=x[:18], labels=labels[:18], texts=_bank([0, 1, 2], names, parts),
                    kind="sequences"), ctx)
    scores = m.score(TestView(x=x[18:], kind="sequences"), _bank([3, 4], names, parts), ctx)
    assert scores.shape == (12, 2) and np.isfinite(scores).all()
    for name, key in (("official_feature_reshape", "official_feature_reshape"),
                      ("encoder_bn_train_mode", "freeze_encoder_bn"),
                      ("test_augment", "test_augment")):
        on = switches.get(key, StarConfig.model_fields[key].default)
        expected = (not on) if key == "freeze_encoder_bn" else bool(on)
        assert (name in ctx.deviations) == expected


def test_method_errors_say_what_to_fix():
    names, parts, labels, x = _problem(2)
    ctx = context()
    ctx.encoder_factory = _shiftgcn_factory
    view = TrainView(x=x[:18], labels=labels[:18], texts=_bank([0, 1, 2], names, parts),
                     kind="sequences")
    with pytest.raises(ZsbenchError, match="seen-class texts only"):
        Star(StarConfig(**_SMALL, unseen_text_in_training=True)).fit(view, ctx)
    with pytest.raises(ZsbenchError, match="sequences"):
        Star(StarConfig(**_SMALL)).fit(TrainView(x=x[:18, :, 0, 0, 0], labels=labels[:18],
                                                 texts=view.texts, kind="features"), ctx)
    bad = _bank([0, 1, 2], names, parts[:, :4])
    with pytest.raises(ZsbenchError, match="one per body part"):
        Star(StarConfig(**_SMALL)).fit(TrainView(x=x[:18], labels=labels[:18], texts=bad,
                                                 kind="sequences"), ctx)
    for kw in (dict(attention_dim=10, num_heads=4),
               dict(encoder_features="cached", freeze_encoder_bn=False), dict(parts=[[0], []])):
        with pytest.raises(ValueError):
            StarConfig(**kw)


def test_presets_and_needs():
    cfg = StarConfig()
    assert cfg.resolve_epochs("ntu60") == (40, "code preset ntu60")
    assert cfg.resolve_epochs("ntu120")[0] == 30
    assert cfg.resolve_lr_steps("pku_mmd")[0] == [15, 20]
    assert cfg.resolve_lr_steps("synthetic")[0] == [10, 20]
    assert cfg.resolve_augment("ntu60") and not cfg.resolve_augment("pku_mmd")
    assert StarConfig(augment=True).resolve_augment("pku_mmd")
    assert cfg.needs().text_kinds == ["name", "star_parts"]
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.num_prompts) == (0.01, 5e-4, 64, 100)
    assert (cfg.w_global, cfg.w_part, cfg.w_pd) == (0.1, 1.0, 0.1)
    assert len(OFFICIAL_GAMMA_GRID) == 3 + 6 + 16 + 3 and OFFICIAL_GAMMA_GRID[-1] == 0.75


def test_official_gamma_grid_chosen_on_test():
    from zsbench_star.official import best_on_test, gzsl_at

    # classes 0, 1 seen, 5 unseen; margins decide seen vs unseen per sample
    entry = {"best_seen": [0, 1, 0, 1], "best_unseen": [5, 5, 5, 5],
             "margin": [0.3, 0.004, 0.02, -0.1]}
    target = np.array([0, 5, 5, 1])
    is_seen = np.isin(target, [0, 1])
    r0 = gzsl_at(entry, target, is_seen, 0.0)       # preds 0, 1, 0, 5
    assert (r0["acc_seen"], r0["acc_unseen"], r0["h"]) == (50.0, 0.0, 0.0)
    best = best_on_test(entry, target, is_seen)      # 0.02 <= gamma < 0.3: preds 0, 5, 5, 5
    assert best["gamma"] == 0.02 and best["acc_seen"] == 50.0 and best["acc_unseen"] == 100.0
    assert best["h"] == pytest.approx(2 * 50 * 100 / 150)


def test_spec_paper_and_reported_rows():
    from zsbench.plugins import load_plugins
    from zsbench.reported import read_reported

    spec = load_plugins().methods.get("star")
    assert "ACM MM 2024" in spec.paper and spec.default_encoder == "shiftgcn"
    rows = read_reported(spec.reported)
    assert len(rows) == 52 and {r["method"] for r in rows} == {"star"}
    key = {(r["dataset"], r["split"], r["sample_rule"], r["metric"]): float(r["value"])
           for r in rows if r["protocol"] == "star"}
    assert key[("ntu60", "55/5", "xsub", "acc")] == 81.4
    assert key[("pku_mmd", "39/12", "xview", "h")] == 56.5


@pytest.mark.slow
def test_check_plugin_tiny_benchmark(tmp_path, zs_cache):
    from zsbench.testing import check_plugin

    rec, path = check_plugin("star", tmp_path / "out", zs_cache, protocol="star")
    assert path.exists()
    for f in rec.folds:
        for key in ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"):
            assert f.metrics[key] is not None and 0 <= f.metrics[key] <= 100
        assert f.details["star_final_train_loss"] > 0
