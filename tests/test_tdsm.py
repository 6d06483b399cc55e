"""TDSM: schedule, noising, denoiser, losses and matching against their equations; the
official code's tensors (tests/fidelity/tdsm.npz, benchmarks/fidelity/tdsm_reference.py);
fit/score and one run on the embedded benchmark."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zsbench.api import ClassTexts, TestView, TrainView, ZsbenchError
from zsbench.testing import context, tiny_problem
from zsbench_tdsm.config import TDSMConfig
from zsbench_tdsm.method import TDSM
from zsbench_tdsm.modules import (NoiseSchedule, TDSMDenoiser, cosine_warmup_factor,
                                  from_official_state_dict, per_sample_error, tdsm_loss,
                                  timestep_embedding)

ROOT = Path(__file__).resolve().parents[1]
NPZ = ROOT / "tests" / "fidelity" / "tdsm.npz"
pytestmark = pytest.mark.usefixtures("torch_single_thread")


# ----------------------------------------------------------------------------- schedule
def test_scaled_linear_schedule_matches_equation():
    s = NoiseSchedule(50)
    r0, r1 = math.sqrt(0.00085), math.sqrt(0.012)
    betas = np.array([(r0 + t * (r1 - r0) / 49) ** 2 for t in range(50)])
    assert np.allclose(s.betas.numpy(), betas, rtol=1e-5)
    ab = np.cumprod(1.0 - betas)
    assert np.allclose(s.alphas_cumprod.numpy(), ab, rtol=1e-5)
    # the note's table: sqrt(alpha-bar) / sqrt(1 - alpha-bar) at t = 25 and t = 49
    assert math.sqrt(ab[25]) == pytest.approx(0.9665, abs=5e-4)
    assert math.sqrt(1 - ab[25]) == pytest.approx(0.257, abs=1e-3)
    assert math.sqrt(ab[49]) == pytest.approx(0.874, abs=1e-3)
    lin = NoiseSchedule(4, 0.1, 0.4, "linear")
    assert np.allclose(lin.betas.numpy(), [0.1, 0.2, 0.3, 0.4])
    assert np.allclose(lin.alphas_cumprod.numpy(), [0.9, 0.72, 0.504, 0.3024])


def test_one_noising_step_and_velocity_by_hand():
    s = NoiseSchedule(4, 0.1, 0.4, "linear")      # alpha-bar = 0.9, 0.72, 0.504, 0.3024
    x0 = torch.tensor([[[1.0, -2.0]], [[0.5, 3.0]]])
    eps = torch.tensor([[[0.3, 0.1]], [[-1.0, 2.0]]])
    t = torch.tensor([0, 2])
    xt = s.add_noise(x0, eps, t)
    for i, ab in enumerate([0.9, 0.504]):
        assert torch.allclose(xt[i], math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * eps[i])
        v = s.velocity(x0, eps, t)[i]
        assert torch.allclose(v, math.sqrt(ab) * eps[i] - math.sqrt(1 - ab) * x0[i])
    assert s.target("epsilon", x0, eps, t) is eps and s.target("sample", x0, eps, t) is x0


def test_timestep_embedding_by_hand():
    emb = timestep_embedding(torch.tensor([3.0, 0.0]), dim=8)
    freqs = [10000 ** (-k / 4) for k in range(4)]
    want = [math.cos(3 * f) for f in freqs] + [math.sin(3 * f) for f in freqs]
    assert np.allclose(emb[0].numpy(), want, atol=1e-6)
    assert np.allclose(emb[1].numpy(), [1] * 4 + [0] * 4)


def test_cosine_warmup_factor():
    assert cosine_warmup_factor(0, 100, 1000) == 0.0
    assert cosine_warmup_factor(50, 100, 1000) == 0.5
    assert cosine_warmup_factor(100, 100, 1000) == 1.0
    assert cosine_warmup_factor(550, 100, 1000) == pytest.approx(0.5)
    assert cosine_warmup_factor(1000, 100, 1000) == pytest.approx(0.0)
    assert 0 < cosine_warmup_factor(1010, 100, 1000) < 1e-3   # rises again past the end


# ----------------------------------------------------------------------------- denoiser
def _randomize(net: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def _manual_forward(net: TDSMDenoiser, x_t, t, z_g, z_l, heads):
    """The denoiser written out from its equations, one head and one block at a time."""
    def lin(m, h):
        return h @ m.weight.T + m.bias

    def ln(h):
        mu = h.mean(-1, keepdim=True)
        return (h - mu) / torch.sqrt(((h - mu) ** 2).mean(-1, keepdim=True) + 1e-6)

    def gelu_tanh(h):
        return 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))

    silu = lambda h: h * torch.sigmoid(h)  # noqa: E731
    x = lin(net.skel_in, x_t)
    loc = lin(net.local_in, z_l) + net.local_pos
    c = lin(net.time_mlp[2], silu(lin(net.time_mlp[0], timestep_embedding(t, net.freq_dim))))
    c = c + lin(net.global_mlp[2], silu(lin(net.global_mlp[0], z_g)))
    w = x.shape[-1]
    hd = w // heads
    for blk in net.blocks:
        mods = [lin(blk.mod_x, silu(c)).split(w, dim=1), lin(blk.mod_l, silu(c)).split(w, dim=1)]
        hs = [ln(x) * (1 + mods[0][1][:, None]) + mods[0][0][:, None],
              ln(loc) * (1 + mods[1][1][:, None]) + mods[1][0][:, None]]
        qkv = torch.cat([lin(blk.attn.qkv_x, hs[0]), lin(blk.attn.qkv_l, hs[1])], dim=1)
        q, k, v = qkv[..., :w], qkv[..., w:2 * w], qkv[..., 2 * w:]
        att = torch.cat([torch.softmax(q[..., i * hd:(i + 1) * hd] @ k[..., i * hd:(i + 1) * hd]
                                       .transpose(1, 2) / math.sqrt(hd), dim=-1)
                         @ v[..., i * hd:(i + 1) * hd] for i in range(heads)], dim=-1)
        n = x.shape[1]
        x = x + mods[0][2][:, None] * lin(blk.attn.out_x, att[:, :n])
        loc = loc + mods[1][2][:, None] * lin(blk.attn.out_l, att[:, n:])
        for s_, mlp, m in ((0, blk.mlp_x, mods[0]), (1, blk.mlp_l, mods[1])):
            h = x if s_ == 0 else loc
            upd = lin(mlp[2], gelu_tanh(lin(mlp[0], ln(h) * (1 + m[4][:, None]) + m[3][:, None])))
            if s_ == 0:
                x = x + m[5][:, None] * upd
            else:
                loc = loc + m[5][:, None] * upd
    shift, scale = lin(net.final_mod, silu(c)).split(w, dim=1)
    return lin(net.final_out, ln(x) * (1 + scale[:, None]) + shift[:, None])


def test_one_denoising_forward_matches_equations():
    torch.manual_seed(0)
    net = TDSMDenoiser(in_dim=5, cond_dim=6, width=8, depth=2, heads=2, num_local=3)
    _randomize(net)
    x_t, t = torch.randn(4, 1, 5), torch.tensor([0.0, 7.0, 25.0, 49.0])
    z_g, z_l = torch.randn(4, 6), torch.randn(4, 3, 6)
    with torch.no_grad():
        out = net(x_t, t, z_g, z_l)
        want = _manual_forward(net, x_t, t, z_g, z_l, heads=2)
    assert out.shape == (4, 1, 5)
    assert torch.allclose(out, want, atol=1e-5)


def test_adaln_zero_init_and_official_size():
    net = TDSMDenoiser(in_dim=5, cond_dim=6, width=8, depth=2, heads=2, num_local=3)
    out = net(torch.randn(2, 1, 5), torch.tensor([1, 2]), torch.randn(2, 6), torch.randn(2, 3, 6))
    assert torch.count_nonzero(out) == 0            # every block starts as identity, output 0
    assert net.skel_in.weight.abs().sum() > 0 and net.skel_in.bias.abs().sum() == 0
    with torch.device("meta"):
        big = TDSMDenoiser()                        # the official configuration
    n = sum(p.numel() for p in big.parameters())
    assert n == pytest.approx(261.2e6, rel=1e-3)    # the note's count from the layer shapes


# ----------------------------------------------------------------------------- losses
def test_triplet_diffusion_loss_by_hand():
    target = torch.zeros(3, 1, 2)
    pos = torch.tensor([[[1.0, 1.0]], [[0.0, 2.0]], [[0.5, 0.5]]])    # e_p = 1, 2, 0.25
    neg = torch.tensor([[[2.0, 0.0]], [[1.0, 1.0]], [[3.0, 1.0]]])    # e_n = 2, 1, 5
    valid = torch.tensor([True, True, False])
    total, l_diff, l_td = tdsm_loss(pos, neg, target, valid, margin=1.5, d_weight=2.0,
                                    t_weight=0.5)
    assert l_diff.item() == pytest.approx(2.0 * (1 + 2 + 0.25) / 3)
    # max(1-2+1.5, 0) = 0.5; max(2-1+1.5, 0) = 2.5; third masked but counted in 1/B
    assert l_td.item() == pytest.approx(0.5 * (0.5 + 2.5 + 0.0) / 3)
    assert total.item() == pytest.approx(l_diff.item() + l_td.item())
    e = per_sample_error(pos, target, "l2")
    assert np.allclose(e.numpy(), [math.sqrt(2), 2.0, math.sqrt(0.5)])


# ----------------------------------------------------------------------------- matching
def _fitted(seed=0, **kw) -> tuple[TDSM, TrainView, TestView, ClassTexts, np.ndarray]:
    train, test, cand, y = tiny_problem(kinds=("motion", "description"), seed=seed)
    base = dict(text_features="pooled", hidden_size=16, depth=1, num_heads=2, iters=30,
                whole_epochs=False, batch_size=16, warmup=3, lr=1e-3)
    base.update(kw)
    m = TDSM(TDSMConfig(**base))
    m.fit(train, context(seed=seed))
    return m, train, test, cand, y


def test_test_noises_are_the_official_draw():
    m = TDSM(TDSMConfig(noise_draws=2))
    noises = m.test_noises(7, seed=2025)
    torch.manual_seed(2025)
    official = torch.randn(3, 1, 1, 7)                    # train.py: Trainer.__init__
    assert torch.equal(noises[0], official.reshape(3, 7))
    assert noises.shape == (2, 3, 7) and not torch.equal(noises[1], noises[0])


def test_matching_score_is_minus_summed_noise_prediction_error():
    m, _, test, cand, _ = _fitted()
    scores = m.score(test, cand, context(seed=0))
    assert scores.shape == (len(test.x), 2) and np.isfinite(scores).all()
    net, sched = m.net, m.schedule
    noises = m.test_noises(test.x.shape[1], 0)[0]
    z_g, z_l = m.conditioning(cand)
    with torch.no_grad():
        for i in (0, 5):
            x0 = torch.as_tensor(test.x[i:i + 1])[:, None]
            for k in range(2):
                s = 0.0
                for j in range(3):
                    eps = noises[j].reshape(1, 1, -1)
                    xt = sched.add_noise(x0, eps, torch.tensor([25]))
                    pred = net(xt, torch.tensor([25.0]), z_g[k:k + 1], z_l[k:k + 1])
                    s += ((pred - eps) ** 2).mean().item()
                assert scores[i, k] == pytest.approx(-s, rel=1e-5, abs=1e-6)


def test_fit_is_deterministic_and_learns():
    a, _, test, cand, y = _fitted(iters=150)
    b, *_ = _fitted(iters=150)
    sa, sb = a.score(test, cand, context()), b.score(test, cand, context())
    assert np.array_equal(sa, sb)
    assert a.history[-1] < a.history[0]
    assert (sa.argmax(1) == y - 4).mean() >= 0.5
    c, *_ = _fitted(iters=150, noise_seed=7, noise_draws=2)
    assert not np.array_equal(c.score(test, cand, context()), sa)


@pytest.mark.parametrize("options", [
    dict(use_triplet_loss=False), dict(use_diff_loss=False), dict(loss_form="l2"),
    dict(prediction_type="v_prediction", num_steps=10, t_test=5), dict(prediction_type="sample"),
])
def test_option_variants_run(options):
    m, _, test, cand, _ = _fitted(iters=4, **options)
    assert np.isfinite(m.score(test, cand, context())).all()


def test_config_and_errors(tmp_path):
    with pytest.raises(ValueError, match="no loss"):
        TDSMConfig(use_diff_loss=False, use_triplet_loss=False)
    with pytest.raises(ValueError, match="t_test"):
        TDSMConfig(num_steps=10)
    assert TDSMConfig().needs().text_kinds == ["motion", "description"]
    train, test, cand, _ = tiny_problem(kinds=("motion", "description"))
    cfg = TDSMConfig(text_features="pooled", hidden_size=8, depth=1, num_heads=2, iters=1)
    with pytest.raises(ZsbenchError, match="before fit"):
        TDSM(cfg).score(test, cand, context())
    seq = TrainView(x=np.zeros((4, 3, 2, 5, 1), np.float32), labels=train.labels[:4],
                    texts=train.texts, kind="sequences")
    with pytest.raises(ZsbenchError, match="features"):
        TDSM(cfg).fit(seq, context())
    only_name, *_ = tiny_problem(kinds=("name",))
    with pytest.raises(ZsbenchError, match="text kinds"):
        TDSM(cfg).fit(only_name, context())
    missing = TDSMConfig(text_model=str(tmp_path / "no-such-model"), hidden_size=8, depth=1,
                         num_heads=2, iters=1)
    with pytest.raises(ZsbenchError, match="text_features=pooled"):
        TDSM(missing).fit(train, context())


# ----------------------------------------------------------------------------- fidelity
@pytest.fixture(scope="module")
def ref():
    return dict(np.load(NPZ))


def _official_net(ref) -> TDSMDenoiser:
    state = {k[2:]: torch.as_tensor(v) for k, v in ref.items() if k.startswith("w/")}
    net = TDSMDenoiser(in_dim=16, cond_dim=8, width=16, depth=2, heads=2, num_local=35)
    net.load_state_dict(from_official_state_dict(state), strict=True)
    return net


def test_fidelity_npz_provenance(ref):
    assert str(ref["repo"]) == "KAIST-VICLab/TDSM"
    assert str(ref["commit"]) == "7469361b112386eb7296ad7dea69c0074dcfe735"
    assert NPZ.stat().st_size < 300_000


def test_fidelity_schedule(ref):
    s = NoiseSchedule(50)
    assert np.abs(s.betas.numpy() - ref["sched_betas"]).max() < 1e-7
    assert np.abs(s.alphas_cumprod.numpy() - ref["sched_alphas_cumprod"]).max() < 1e-6
    x0, eps, t = (torch.as_tensor(ref[k]) for k in ("sched_x0", "sched_eps", "sched_t"))
    assert np.abs(s.add_noise(x0, eps, t).numpy() - ref["sched_noisy"]).max() < 1e-5
    assert np.abs(s.velocity(x0, eps, t).numpy() - ref["sched_velocity"]).max() < 1e-5


def test_fidelity_denoiser_forward(ref):
    net = _official_net(ref)
    te = torch.as_tensor(ref["text_embed"])
    lab = torch.as_tensor(ref["fwd_labels"])
    with torch.no_grad():
        out = net(torch.as_tensor(ref["fwd_x"]), torch.as_tensor(ref["fwd_t"]),
                  te[lab, -1], te[lab, :-1])
    assert np.abs(ref["fwd_out"]).max() > 0.1
    assert np.abs(out.numpy() - ref["fwd_out"]).max() < 1e-5


def test_fidelity_training_losses_and_gradients(ref):
    net = _official_net(ref)
    s = NoiseSchedule(50)
    te = torch.as_tensor(ref["text_embed"])
    x0 = torch.as_tensor(ref["train_features"])[:, None]
    eps = torch.as_tensor(ref["train_noise"])[:len(x0)]
    t = torch.as_tensor(ref["train_timesteps"])[:len(x0)]
    y, yn = torch.as_tensor(ref["train_labels"]), torch.as_tensor(ref["train_labels_r"]).long()
    xt = s.add_noise(x0, eps, t)
    lab = torch.cat([y, yn])
    pred = net(torch.cat([xt, xt]), torch.cat([t, t]), te[lab, -1], te[lab, :-1])
    total, l_diff, l_td = tdsm_loss(pred[:len(y)], pred[len(y):], eps, yn != y, margin=1.0)
    assert l_td.item() > 0
    for ours, key in ((total, "train_loss"), (l_diff, "train_loss_diff"),
                      (l_td, "train_loss_triplet")):
        assert abs(ours.item() - float(ref[key])) < 1e-5
    total.backward()
    grads = {k[5:]: v for k, v in ref.items() if k.startswith("grad/")}
    mapped = from_official_state_dict({k: torch.as_tensor(v) for k, v in grads.items()})
    params = dict(net.named_parameters())
    assert len(mapped) >= 10
    for name, g in mapped.items():
        assert (params[name].grad - g).abs().max().item() < 1e-5, name


def test_fidelity_matching_errors(ref):
    m = TDSM(TDSMConfig())
    m.net = _official_net(ref).eval()
    te = torch.as_tensor(ref["text_embed"])[torch.as_tensor(ref["test_unseen"])]
    g, l = m.net.embed_text(te[:, -1], te[:, :-1])
    noises = torch.as_tensor(ref["test_noise"]).reshape(1, 3, -1)
    errors = m.matching_errors(torch.as_tensor(ref["test_x"]), noises, g, l)
    assert np.abs(errors.numpy() - ref["test_errors"]).max() < 1e-5


# ----------------------------------------------------------------------------- harness
def test_spec_and_reported_numbers():
    from zsbench.reported import read_reported
    from zsbench_tdsm.plugin import zsbench_methods

    (spec,) = zsbench_methods()
    assert spec.inputs == "features" and not spec.transductive and spec.load() is TDSM
    rows = read_reported(spec.reported)
    main = {(r["dataset"], r["split"]): r["value"] for r in rows
            if r["table"] == "Table 1" and r["variant"] == "default"}
    assert main[("ntu60", "55/5")] == "86.49" and main[("ntu120", "96/24")] == "65.06"
    assert len(main) == 8 and len(rows) == 43


def test_plugin_import_does_not_import_torch():
    code = "import sys, zsbench_tdsm.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{ROOT / 'harness'}:{ROOT / 'plugins'}"})
    assert out.stdout.strip() == "False"


def test_end_to_end_on_tiny_benchmark(tmp_path, zs_cache):
    from zsbench.testing import check_plugin

    rec, path = check_plugin("tdsm", out=tmp_path, cache_dir=zs_cache)
    assert path.exists()
    fold = rec.folds[0]
    assert fold.metrics["zsl_acc"] is not None and 0 <= fold.metrics["zsl_acc"] <= 100
    assert fold.details["tdsm_steps"] == 20 and fold.details["tdsm_test_forwards_per_sample"] > 0
