"""JPoSE: part-of-speech space losses against hand-computed values and the official
implementation (tests/fidelity/jpose.npz), phrase groups, fit/score and the gate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from zsbench.api import ClassTexts, TestView, TrainView, ZsbenchError
from zsbench.testing import context, tiny_problem
from zsbench_jpose.config import JPoSEConfig
from zsbench_jpose.method import JPoSE, phrase_groups, text_hidden_width
from zsbench_jpose.modules import JPoseNet, PosSpace, batch_hard_triplet

pytestmark = pytest.mark.usefixtures("torch_single_thread")
FIDELITY = Path(__file__).parent / "fidelity" / "jpose.npz"


# ----------------------------------------------------------------------------- triplet
def unit(deg):
    r = np.deg2rad(deg)
    return [np.cos(r), np.sin(r)]


# three unit vectors at 0, 60 and 90 degrees; groups: {0, 1} and {2}
E = torch.tensor([unit(0), unit(60), unit(90)], dtype=torch.float64)
G = torch.tensor([0, 0, 1])
C60, C30 = 0.5, np.cos(np.deg2rad(30))


def test_triplet_other_group_hand_values():
    # hardest positive of 0 and 1: each other (the lowest same-group similarity, 0.5);
    # sample 2 is alone: itself. Hardest other-group negative: 0, 1 -> 2; 2 -> 1 (cos 30).
    # pos = [e1, e0, e2], neg = [e2, e2, e1]
    m = 0.3
    got = batch_hard_triplet(E, G, m, all_pairs=False, negatives="other_group").item()
    own = [m + 0.0 - C60, m + C30 - C60, m + C30 - 1.0]          # <a_i, n_i> - <a_i, p_i>
    assert got == pytest.approx(sum(max(0.0, v) for v in own) / 3)
    pos, neg = E[[1, 0, 2]], E[[2, 2, 1]]
    pairs = (m + E @ neg.T - E @ pos.T).clamp(min=0).sum().item() / 3
    assert batch_hard_triplet(E, G, m, negatives="other_group").item() == pytest.approx(pairs)
    # by hand, term (i, j) = .3 + <e_i, n_j> - <e_i, p_j>, clipped at 0:
    # anchor 0: j=0: .3 + 0 - .5 < 0; j=1: .3 + 0 - 1 < 0; j=2: .3 + .5 - 0 = .8
    # anchor 1: j=0: .3 + C30 - 1; j=1: .3 + C30 - .5; j=2: .3 + 1 - C30
    # anchor 2: j=0: .3 + 1 - C30; j=1: .3 + 1 - 0; j=2: .3 + C30 - 1
    by_hand = (0.8 + 2 * (C30 - 0.7) + (C30 - 0.2) + 2 * (1.3 - C30) + 1.3) / 3
    assert pairs == pytest.approx(by_hand)


def test_triplet_as_executed_mines_the_sample_itself():
    # negatives="any": the hardest "negative" of a unit vector is itself (similarity 1), so
    # term (i, j) = max(0, m + <a_i, a_j> - <a_i, p_j>)
    m = 0.3
    pos = E[[1, 0, 2]]
    expected = (m + E @ E.T - E @ pos.T).clamp(min=0).sum().item() / 3
    assert batch_hard_triplet(E, G, m).item() == pytest.approx(expected)
    own = [m + 1 - C60, m + 1 - C60, m + 1 - 1]
    assert batch_hard_triplet(E, G, m, all_pairs=False).item() == pytest.approx(sum(own) / 3)


def test_triplet_edge_cases_and_gradient():
    e = torch.nn.functional.normalize(torch.randn(4, 3, dtype=torch.float64), dim=1)
    one_group = torch.zeros(4, dtype=torch.long)
    assert batch_hard_triplet(e, one_group, negatives="other_group").item() == 0.0
    e.requires_grad_(True)
    batch_hard_triplet(e, torch.tensor([0, 0, 1, 1]), 0.3).backward()
    assert torch.isfinite(e.grad).all()                          # mined samples are detached
    with pytest.raises(ValueError):
        batch_hard_triplet(e, one_group, negatives="hardest")


# ----------------------------------------------------------------------------- spaces
def test_architecture_and_normalisation():
    torch.manual_seed(0)    # unseeded, a text row could leave the final ReLU all zero (norm 0)
    assert text_hidden_width("auto", 1024) == 512 and text_hidden_width("auto", 300) is None
    sbert = PosSpace(256, 1024, 50, 512)                         # Mmen(256, 1024, 50)
    assert [type(m).__name__ for m in sbert.text] == ["Linear", "Tanh", "Linear", "ReLU"]
    assert sum(p.numel() for p in sbert.parameters()) == 256 * 50 + 50 + 1024 * 512 + 512 + 512 * 50 + 50
    assert [type(m).__name__ for m in PosSpace(256, 300, 50, None).text] == ["Linear", "Tanh"]
    net = JPoseNet(8, {"verb": 6, "noun": 5}, 4, 3, {"verb": 7, "noun": None})
    x = torch.randn(5, 8) * 10
    for emb in net.visual_embeddings(x) + net.text_embeddings(torch.randn(5, 6), torch.randn(5, 5)):
        np.testing.assert_allclose(emb.norm(dim=1).detach().numpy(), 1.0, rtol=1e-5)
    assert net.joint.visual[0].in_features == 8                  # [verb, noun] of width 4 each
    s = net.scores(x, torch.randn(3, 6), torch.randn(3, 5))
    assert s.shape == (5, 3) and (s.abs() <= 1 + 1e-6).all()


def test_losses_compose_with_weights():
    torch.manual_seed(0)
    net = JPoseNet(8, {"verb": 6, "noun": 6}, 4, 3)
    x, cv, cn = torch.rand(6, 8), torch.randn(3, 6), torch.randn(3, 6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    vg, ng = torch.tensor([0, 1, 1, 0, 1, 1]), torch.tensor([0, 0, 1, 0, 0, 1])
    out = net.losses(x, y, vg, ng, cv, cn, triplet_weight=0.5)
    expected = (out["hinge_verb"] + out["hinge_noun"] + out["hinge_joint"]
                + 0.5 * (out["triplet_verb"] + out["triplet_noun"]))
    assert out["total"].item() == pytest.approx(expected.item())
    # the class embeddings are computed without gradient: a hinge against them only trains
    # through the anchors and the samples' own texts
    net.zero_grad()
    out["hinge_verb"].backward()
    assert net.joint.visual[0].weight.grad is None


def test_losses_from_class_rows_equal_per_sample_texts():
    """losses() embeds each class text once and gathers the samples' rows: same loss and
    gradients (float64, 1e-12) as embedding every sample's own text (the repository's way)."""
    torch.manual_seed(0)
    net = JPoseNet(8, {"verb": 6, "noun": 6}, 4, 3).double()
    x, cv, cn = torch.rand(7, 8).double(), torch.randn(3, 6).double(), torch.randn(3, 6).double()
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    vg, ng = torch.tensor([0, 1, 1, 0, 1, 1, 1]), torch.tensor([0, 0, 1, 0, 0, 1, 1])

    def per_sample_texts():
        with torch.no_grad():
            ev, en, ej = net.text_embeddings(cv, cn)
        vv, vn, vj = net.visual_embeddings(x)
        tv, tn, tj = net.text_embeddings(cv[y], cn[y])
        from zsbench_jpose.modules import batch_hard_triplet, multiclass_hinge
        return (multiclass_hinge(vv, tv, ev, 0.3) + multiclass_hinge(vn, tn, en, 0.3)
                + multiclass_hinge(vj, tj, ej, 0.3)
                + 0.01 * (batch_hard_triplet(vv, vg, 0.3) + batch_hard_triplet(vn, ng, 0.3)))

    fast, slow = net.losses(x, y, vg, ng, cv, cn)["total"], per_sample_texts()
    assert fast.item() == pytest.approx(slow.item(), abs=1e-12)
    params = list(net.parameters())
    for a, b in zip(torch.autograd.grad(fast, params), torch.autograd.grad(slow, params)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_losses_gradients_are_deterministic():
    """Repeated class rows are gathered with a fixed-order backward: the same batch gives
    bit-identical gradients every time (advanced indexing's CPU backward would not)."""
    torch.manual_seed(0)
    net = JPoseNet(8, {"verb": 6, "noun": 6}, 50, 50, {"verb": 16, "noun": 16})
    x, cv, cn = torch.rand(4096, 8), torch.randn(5, 6), torch.randn(5, 6)  # big enough to
    y = torch.randint(0, 5, (4096,))                                       # run in parallel
    vg, ng = y % 3, y % 2

    def grads() -> list[torch.Tensor]:
        net.zero_grad(set_to_none=True)
        net.losses(x, y, vg, ng, cv, cn)["total"].backward()
        return [p.grad.clone() for p in net.parameters()]

    from zsbench.device import torch_threads

    with torch_threads(2):         # atomic adds only race with more than one thread
        first = grads()
        for _ in range(5):
            assert all(torch.equal(a, b) for a, b in zip(grads(), first))


# ----------------------------------------------------------------------------- fidelity
def load_reference():
    ref = np.load(FIDELITY)
    net = JPoseNet(20, {"verb": 32, "noun": 32}, 6, 5, {"verb": 16, "noun": 16})
    rename = lambda k: k.replace("VisArch", "visual").replace("TextArch", "text")  # noqa: E731
    net.load_state_dict({rename(k[2:]): torch.from_numpy(ref[k]) for k in ref.files
                         if k.startswith("w/") and not k.startswith("w/small.")})
    return ref, net, rename


def test_fidelity_pos_losses_gradients_and_scores():
    ref, net, rename = load_reference()
    assert str(ref["repo"]) == "skelemoa/synse-zsl"
    assert str(ref["commit"]) == "90f39a118170d708843c5d4305bd807905cb4c54"
    x, ve, ne = (torch.from_numpy(ref[k]) for k in ("x", "verb_emb", "noun_emb"))
    t = torch.from_numpy(ref["target"])
    vg, ng = torch.from_numpy(ref["verb_of_class"])[t], torch.from_numpy(ref["noun_of_class"])[t]
    out = net.losses(x, t, vg, ng, ve, ne, margin=float(ref["margin"]))
    for key in ("hinge_verb", "hinge_noun", "triplet_verb", "triplet_noun", "hinge_joint", "total"):
        assert out[key].item() == pytest.approx(float(ref[f"loss_{key}"]), abs=1e-5), key
    net.zero_grad()
    out["total"].backward()
    official = {rename(k[2:]): k for k in ref.files if k.startswith("g/")}
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ref[official[name]], atol=1e-5, err_msg=name)
    u = torch.from_numpy(ref["unseen"])
    np.testing.assert_allclose(net.scores(x, ve[u], ne[u]).detach().numpy(), ref["zsl_scores"],
                               atol=1e-5)


def test_fidelity_word2vec_width_branch():
    ref = np.load(FIDELITY)
    small = PosSpace(20, 12, 6, None)
    small.load_state_dict({k[8:].replace("VisArch", "visual").replace("TextArch", "text"):
                           torch.from_numpy(ref[k]) for k in ref.files if k.startswith("w/small.")})
    x = torch.from_numpy(ref["x"])
    with torch.no_grad():
        np.testing.assert_allclose(small.text(torch.from_numpy(ref["verb_emb"])[:, :12]).numpy(),
                                   ref["small_text_out"], atol=1e-5)
        np.testing.assert_allclose(small.visual(x / x.norm(dim=1, keepdim=True)).numpy(),
                                   ref["small_vis_out"], atol=1e-5)


# ----------------------------------------------------------------------------- fit / score
def pos_problem():
    verbs = ["wave", "wave", "kick", "jump", "kick", "throw", "wave", "clap", "jump", "hop"]
    nouns = ["hand", "arm", "ball", "hand", "leg", "ball", "flag", "hands", "rope", "leg"]
    rng = np.random.default_rng(0)
    vemb = {v: rng.normal(size=(1, 16)).astype(np.float32) for v in set(verbs)}
    nemb = {n: rng.normal(size=(1, 16)).astype(np.float32) for n in set(nouns)}
    texts = ClassTexts(class_ids=np.arange(10), class_names=[f"{v} {n}" for v, n in zip(verbs, nouns)],
                       texts={"verb": [[v] for v in verbs], "noun": [[n] for n in nouns]},
                       embeddings={"verb": [vemb[v] for v in verbs], "noun": [nemb[n] for n in nouns]})
    train, test, _, y = tiny_problem(num_classes=10, num_unseen=3, per_class=24, feature_dim=12,
                                     text_dim=16)
    train = TrainView(x=train.x, labels=train.labels, texts=texts.subset(range(7)), kind="features")
    return train, test, texts, y


def small(**kw):
    return JPoSEConfig(**{**dict(epochs=5, batch_size=32, lr=1e-3, seen_classifier_epochs=3), **kw})


def test_phrase_groups_follow_shared_phrases():
    _, _, texts, _ = pos_problem()
    v = phrase_groups(texts, "verb")
    assert v[0] == v[1] == v[6] and v[2] == v[4] and v[3] == v[8] and len(set(v.tolist())) == 6
    no_strings = ClassTexts(class_ids=texts.class_ids, class_names=texts.class_names, texts={},
                            embeddings=texts.embeddings)
    np.testing.assert_array_equal(phrase_groups(no_strings, "verb"), v)


def test_fit_score_and_gate():
    train, test, texts, y = pos_problem()
    m = JPoSE(small())
    ctx = context()
    m.fit(train, ctx)
    assert ctx.details["jpose"]["verb_groups"] == 4 and ctx.details["jpose"]["epochs_run"] == 5
    cand = texts.subset([7, 8, 9])
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 3) and (np.abs(s) <= 1 + 1e-5).all()
    gtest = TestView(x=np.concatenate([train.x[:10], test.x[:10]]), kind="features")
    scores = m.score(gtest, texts, ctx)
    pred = m.gzsl_decide(scores, np.arange(10) < 7, gtest, texts, ctx)
    assert pred.shape == (20,) and set(pred.tolist()) <= set(range(10))
    assert ctx.details["gate"]["k"] == 3


def test_validation_selection_and_early_stop():
    train, *_ = pos_problem()
    ctx = context()
    JPoSE(small(selection="validation", epochs=30, early_stop=0, plateau_patience=0)).fit(train, ctx)
    d = ctx.details["jpose"]
    assert d["selection"] == "validation" and d["epochs_run"] <= 30
    assert d["epochs_run"] == d["best_epoch"] + 2 or d["epochs_run"] == 30


def test_errors_and_needs():
    train, test, texts, _ = pos_problem()
    assert JPoSEConfig(verb_kind="v", noun_kind="n").needs().text_kinds == ["v", "n"]
    with pytest.raises(ValueError):
        JPoSEConfig(verb_kind="x", noun_kind="x")
    with pytest.raises(ZsbenchError, match="text kind 'verbs'"):
        JPoSE(small(verb_kind="verbs")).fit(train, context())
    with pytest.raises(ZsbenchError, match="before fit"):
        JPoSE(small()).score(test, texts, context())
    c = JPoSEConfig()
    assert (c.margin, c.triplet_weight, c.embed_dim, c.joint_dim, c.epochs, c.early_stop) == (0.3, 0.01, 50, 50, 2000, 40)
    assert (c.lr, c.joint_weight_decay, c.plateau_patience, c.plateau_cooldown) == (1e-4, 1e-3, 14, 6)
    assert c.gate_multinomial and c.triplet_all_pairs and c.triplet_negatives == "any"
