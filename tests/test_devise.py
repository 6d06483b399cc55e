import numpy as np
import pytest
import torch

from zsbench.api import ClassTexts, RunContext, TestView, TrainView
from zsbench_devise.config import DeViSEConfig
from zsbench_devise.method import DeViSE, hinge_rank_loss


def test_hinge_rank_loss_matches_formula():
    scores = torch.tensor([[0.5, 0.45, 0.1], [0.0, 0.3, 0.35]])
    target = torch.tensor([0, 2])
    m = 0.1
    # sample 0: j=1: max(0, .1-.5+.45)=.05; j=2: max(0,.1-.5+.1)=0 -> .05
    # sample 1: j=0: max(0,.1-.35+0)=0;   j=1: max(0,.1-.35+.3)=.05 -> .05
    assert hinge_rank_loss(scores, target, m).item() == pytest.approx(0.05)
    assert hinge_rank_loss(scores, target, m, "hardest").item() == pytest.approx(0.05)
    scores2 = torch.tensor([[0.0, 0.2, 0.3]])
    # j=1: .1+.2=.3, j=2: .1+.3=.4 -> sum .7, hardest .4
    assert hinge_rank_loss(scores2, torch.tensor([0]), m).item() == pytest.approx(0.7)
    assert hinge_rank_loss(scores2, torch.tensor([0]), m, "hardest").item() == pytest.approx(0.4)


def _texts(ids, emb):
    return ClassTexts(class_ids=np.asarray(ids), class_names=[str(i) for i in ids],
                      texts={"name": [[str(i)] for i in ids]},
                      embeddings={"name": [emb[i][None] for i in ids]})


def _ctx():
    return RunContext(device="cpu", seed=0, cache_dir=None, progress=lambda it, **k: it)


def test_devise_learns_linear_map_and_transfers_zero_shot():
    # features are a fixed linear function of the class text embedding plus noise, so a
    # linear map learnt on seen classes transfers to unseen ones
    rng = np.random.default_rng(0)
    n_cls, d_text, d_feat = 30, 8, 12
    emb = rng.normal(size=(n_cls, d_text)).astype(np.float32)
    A = rng.normal(size=(d_text, d_feat)).astype(np.float32)
    labels = np.repeat(np.arange(n_cls), 20)
    x = emb[labels] @ A + 0.1 * rng.normal(size=(len(labels), d_feat)).astype(np.float32)
    seen, unseen = np.arange(25), np.arange(25, 30)
    tr = np.isin(labels, seen)
    m = DeViSE(DeViSEConfig(epochs=150, lr=3e-2))
    m.fit(TrainView(x=x[tr], labels=labels[tr], texts=_texts(seen, emb), kind="features"), _ctx())
    s = m.score(TestView(x=x[~tr], kind="features"), _texts(unseen, emb), _ctx())
    assert s.shape == (int((~tr).sum()), 5)
    acc = (s.argmax(1) == labels[~tr] - 25).mean()
    assert acc > 0.8  # chance is 0.2


def test_devise_is_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(4, 8)).astype(np.float32)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    outs = []
    for _ in range(2):
        torch.manual_seed(123)  # global state must not matter
        m = DeViSE(DeViSEConfig(epochs=3))
        m.fit(TrainView(x=x, labels=y, texts=_texts(np.arange(4), emb), kind="features"), _ctx())
        outs.append(m.score(TestView(x=x, kind="features"), _texts(np.arange(4), emb), _ctx()))
    assert np.array_equal(outs[0], outs[1])
