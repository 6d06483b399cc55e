"""RelationNet: relation module output range and pairing, the MSE-to-one-hot loss, the
schedule, fit/score. No skeleton implementation exists to compare with (the SynSE
repository has none), so these tests check the equations of the original method only."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zsbench.api import ZsbenchError
from zsbench.testing import context, tiny_problem
from zsbench_relationnet.config import RelationNetConfig
from zsbench_relationnet.method import RelationNetMethod, episode_count, step_lr
from zsbench_relationnet.modules import RelationModule, RelationNet, relation_mse

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def test_relation_scores_lie_in_the_open_unit_interval():
    torch.manual_seed(0)
    g = RelationModule(feature_dim=4, hidden=6)
    for scale in (1e-3, 1.0, 1e3):
        r = g(torch.randn(7, 4) * scale, torch.randn(3, 4) * scale)
        assert r.shape == (7, 3)
        assert ((r >= 0) & (r <= 1)).all()
    r = g(torch.randn(5, 4), torch.randn(2, 4))
    assert ((r > 0) & (r < 1)).all()                         # strictly inside for moderate inputs


def test_relation_module_equation_and_pair_order():
    # r_ic = sigmoid(w2 . ReLU(W1 [f_c ; x_i] + b1) + b2): class embedding first, as the code
    g = RelationModule(feature_dim=2, hidden=2)
    with torch.no_grad():
        g.fc1.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        g.fc1.bias.copy_(torch.tensor([0.0, -1.0]))
        g.fc2.weight.copy_(torch.tensor([[2.0, -1.0]]))
        g.fc2.bias.copy_(torch.tensor([0.5]))
    x = torch.tensor([[0.0, 3.0], [5.0, 0.5]])
    f = torch.tensor([[1.0, 9.0], [-2.0, 4.0]])
    r = g(x, f)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    for i in range(2):
        for c in range(2):
            h1 = max(0.0, float(f[c, 0]))                   # reads the class embedding
            h2 = max(0.0, float(x[i, 1]) - 1.0)             # reads the sample feature
            assert r[i, c].item() == pytest.approx(sig(2 * h1 - h2 + 0.5), rel=1e-6)


def test_split_first_layer_equals_the_concatenated_pairs():
    # the module computes W [f_c ; x_i] + b as W_t f_c + W_x x_i + b: same values as the
    # code's explicit (B, K, 2D) concatenation on random weights and inputs
    torch.manual_seed(0)
    g = RelationModule(feature_dim=16, hidden=12)
    x, f = torch.randn(7, 16), torch.randn(5, 16)
    pairs = torch.cat([f.unsqueeze(0).expand(7, 5, -1), x.unsqueeze(1).expand(7, 5, -1)], dim=2)
    expected = torch.sigmoid(g.fc2(torch.relu(g.fc1(pairs)))).squeeze(-1)
    got = g(x, f)
    assert got.shape == (7, 5)
    assert torch.allclose(got, expected, atol=1e-6)
    # and the gradients of both weights agree
    got.sum().backward()
    grads = [p.grad.clone() for p in g.parameters()]
    g.zero_grad()
    torch.sigmoid(g.fc2(torch.relu(g.fc1(pairs)))).sum().backward()
    for a, p in zip(grads, g.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-5)


def test_semantic_embedding_and_sizes():
    net = RelationNet(feature_dim=2048, text_dim=85, semantic_hidden=1024, relation_hidden=400)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net.semantic) == 85 * 1024 + 1024 + 1024 * 2048 + 2048   # AttributeNetwork(85,1024,2048)
    assert count(net.relation) == 4096 * 400 + 400 + 400 + 1               # RelationNetwork(4096,400)
    small = RelationNet(feature_dim=5, text_dim=3, semantic_hidden=4, relation_hidden=2)
    emb = small.semantic(torch.randn(6, 3))
    assert emb.shape == (6, 5) and (emb >= 0).all()                        # ReLU output layer
    x, t = torch.randn(4, 5), torch.randn(3, 3)
    assert torch.allclose(small(x, t), small.relation(x, small.semantic(t)))


def test_mse_to_one_hot_by_hand():
    r = torch.tensor([[0.9, 0.2, 0.1], [0.3, 0.4, 0.8]])
    y = torch.tensor([0, 2])
    expected = (0.01 + 0.04 + 0.01 + 0.09 + 0.16 + 0.04) / 6           # mean over B x K
    assert relation_mse(r, y).item() == pytest.approx(expected)
    assert relation_mse(torch.eye(3), torch.arange(3)).item() == 0.0


def test_schedule_and_episode_count():
    assert step_lr(1e-5, 0, 200_000, 0.5) == 1e-5
    assert step_lr(1e-5, 199_999, 200_000, 0.5) == 1e-5
    assert step_lr(1e-5, 200_000, 200_000, 0.5) == 5e-6
    assert step_lr(1e-5, 450_000, 200_000, 0.5) == pytest.approx(2.5e-6)
    assert episode_count(RelationNetConfig(), 100) == 500_000
    assert episode_count(RelationNetConfig(epochs=3, batch_size=32), 100) == 12


def test_config_defaults_are_the_original_awa_values():
    c = RelationNetConfig()
    assert (c.semantic_hidden, c.relation_hidden, c.batch_size, c.episodes) == (1024, 400, 32, 500_000)
    assert (c.lr, c.semantic_weight_decay, c.relation_weight_decay) == (1e-5, 1e-5, 0.0)
    assert (c.lr_step, c.lr_gamma, c.pair_classes, c.eval_every) == (200_000, 0.5, "batch", 2000)


def small(**kw):
    return RelationNetConfig(**{**dict(epochs=20, lr=1e-3, semantic_hidden=32, relation_hidden=16,
                                       eval_every=10), **kw})


@pytest.mark.parametrize("options", [{}, {"pair_classes": "seen"}, {"selection": "validation"}])
def test_fit_and_score(options):
    train, test, cand, y = tiny_problem(num_classes=10, num_unseen=3, per_class=20,
                                        feature_dim=12, text_dim=16)
    m = RelationNetMethod(small(**options))
    ctx = context()
    m.fit(train, ctx)
    s = m.score(test, cand, ctx)
    assert s.shape == (len(y), 3) and ((s > 0) & (s < 1)).all()
    d = ctx.details["relationnet"]
    if not options.get("selection"):
        assert d["episodes"] == 20 * math.ceil(len(train.labels) / 32)
    else:
        assert len(d["validation_classes"]) == 2 and 0 <= d["best_episode"] < d["episodes"]
    assert m.gzsl_decide(s, np.zeros(3, bool), test, cand, ctx) is None   # calibrated stacking


def test_training_reduces_the_loss():
    train, *_ = tiny_problem(num_classes=8, num_unseen=2, per_class=20, feature_dim=12, text_dim=16)
    m = RelationNetMethod(small(epochs=60))
    m.fit(train, context())
    assert m.history[-1] < m.history[0]


def test_errors():
    train, test, cand, _ = tiny_problem()
    with pytest.raises(ZsbenchError, match="before fit"):
        RelationNetMethod(small()).score(test, cand, context())
    with pytest.raises(ZsbenchError, match="text kind"):
        RelationNetMethod(small(text_kind="motion")).fit(train, context())
