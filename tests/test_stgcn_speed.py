"""ST-GCN fast paths against the straightforward ones (docs/performance.md).

The fast graph convolution and the eval-mode batch-norm folding are exact rewrites: checked
in float64 to 1e-12 and in float32 to 1e-5 (float32 gradients through ten training-mode
batch norms carry rounding of order 1e-5 in either order, so layouts are compared in
float64). The cheaper dropout draws other masks than
nn.Dropout: checked for its law (keep rate, scale, gradient) and reproducibility. The
official order with torch's dropout is the benchmark's transcription of the official code
bit for bit.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from zsbench_encoders.configs import STGCNConfig
from zsbench_encoders.stgcn import STGCN, GraphConv, bits_dropout

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(hidden_channels=4, out_dim=8)
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _model(dtype=torch.float32, **kw) -> STGCN:
    torch.manual_seed(0)
    m = STGCN(STGCNConfig(**{**TINY, **kw}))
    with torch.no_grad():                  # non-trivial edge importance and BN statistics
        for p in m.edge_importance:
            p.uniform_(0.5, 1.5)
        for mod in m.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_()
    return m.to(dtype)


def _batch(dtype=torch.float32, n=2, t=8):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, t, 25, 2, generator=g, dtype=dtype)
    x[0, ..., 1] = 0                       # a single-actor sample
    return x


def _train_pass(m: STGCN, x: torch.Tensor):
    m.train()
    m.zero_grad(set_to_none=True)
    w = torch.linspace(-1, 1, TINY["out_dim"], dtype=x.dtype)
    loss = (m(x) * w).sum() + m(x).pow(2).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}


def _assert_same(a: STGCN, b: STGCN, x: torch.Tensor, atol: float) -> None:
    la, ga = _train_pass(a, x)
    lb, gb = _train_pass(b, x)
    torch.testing.assert_close(la, lb, atol=atol, rtol=0)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=atol, rtol=0, msg=name)
    for k, v in a.state_dict().items():    # running statistics updated alike
        torch.testing.assert_close(v, b.state_dict()[k], atol=atol, rtol=0, msg=k)
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=atol, rtol=0)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_mix_first_graph_conv_is_the_official_order(dtype, atol):
    torch.manual_seed(0)
    gc = GraphConv(5, 6, 3).to(dtype)
    x, adj = torch.randn(2, 5, 7, 25, dtype=dtype), torch.rand(3, 25, 25, dtype=dtype)
    z = gc.conv(x).view(2, 3, 6, 7, 25)
    expected = sum(z[:, k] @ adj[k] for k in range(3))
    torch.testing.assert_close(gc(x, adj), expected, atol=atol, rtol=0)
    scale, shift = torch.rand(6, dtype=dtype), torch.randn(6, dtype=dtype)
    torch.testing.assert_close(gc(x, adj, scale, shift),
                               expected * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1),
                               atol=atol, rtol=0)
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gc(cl, adj), expected, atol=atol, rtol=0)


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fast_encoder_matches_official_order_outputs_gradients_and_statistics(dtype, atol):
    official = _model(dtype, graph_order="conv_first", fold_bn_eval=False, dropout=0.0)
    fast = copy.deepcopy(official)
    for b in fast.blocks:
        b.gcn.order, b.fold_bn_eval = "mix_first", True
    fast.load_state_dict(official.state_dict())
    _assert_same(official, fast, _batch(dtype), atol)


def test_channels_last_option_matches_contiguous():
    plain = _model(torch.float64, dropout=0.0)
    cl = _model(torch.float64, dropout=0.0, memory_format="channels_last")
    cl.load_state_dict(plain.state_dict())
    _assert_same(plain, cl, _batch(torch.float64), 1e-12)
    cl.eval()
    with torch.no_grad():
        assert cl.feature_map(_batch(torch.float64)).is_contiguous()


def test_eval_folding_matches_batch_norm_and_keeps_gradients():
    folded = _model(fold_bn_eval=True)
    plain = _model()
    x = _batch()
    folded.eval(), plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(folded(x), plain(x), atol=1e-5, rtol=0)
    # gradients still reach the batch-norm affine parameters through the folded weights
    folded(x).sum().backward()
    plain(x).sum().backward()
    for (n, p), q in zip(folded.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4, msg=n)


def test_official_options_reproduce_the_transcribed_official_code_bit_for_bit():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_speed import baseline_stgcn
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    ours = _model(graph_order="conv_first", dropout_impl="torch", fold_bn_eval=False)
    ref = baseline_stgcn(4, 8, 0.5)
    ref.load_state_dict(ours.state_dict())
    x = _batch()
    torch.manual_seed(7)
    lo, go = _train_pass(ours, x)
    torch.manual_seed(7)
    lr, gr = _train_pass(ref, x)
    assert torch.equal(lo, lr)
    assert all(torch.equal(go[n], gr[n]) for n in go)


def test_bits_dropout_law_scale_gradient_and_seed():
    x = torch.ones(1_000_000, requires_grad=True)
    for p in (0.5, 0.3):
        torch.manual_seed(3)
        y = bits_dropout(x.clone(), p)
        kept = y != 0
        assert abs(kept.float().mean().item() - (1 - p)) < 3e-3
        assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
        y.sum().backward()
        assert torch.equal(x.grad, y.detach())          # d(x * mask)/dx = mask
        x.grad = None
        torch.manual_seed(3)
        assert torch.equal(bits_dropout(x.detach().clone(), p), y.detach())  # same seed
    z = torch.randn(8, 8)
    assert bits_dropout(z, 0.0) is z


def test_bits_dropout_channels_last_keeps_layout_and_applies_one_mask():
    x = torch.randn(2, 6, 5, 25).contiguous(memory_format=torch.channels_last)
    y = bits_dropout(x.clone(), 0.5)
    assert y.is_contiguous(memory_format=torch.channels_last)
    kept = y != 0
    torch.testing.assert_close(y[kept], 2 * x[kept])
    assert 0.3 < kept.float().mean().item() < 0.7


def test_encoder_dropout_is_seeded_and_only_in_training():
    m, x = _model(dropout=0.5), _batch()
    m.train()
    outs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        with torch.no_grad():
            outs.append(m(x))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    m.eval()
    with torch.no_grad():
        torch.manual_seed(5)
        a = m(x)
        torch.manual_seed(6)
        assert torch.equal(a, m(x))


@pytest.mark.parametrize("dtype,memory_format", [("bf16", "contiguous"), ("fp16", "contiguous"),
                                                 ("bf16", "channels_last")])
def test_autocast_on_cpu_runs_and_stays_close_to_float32(dtype, memory_format):
    """The GPU variants of bench_speed.py (autocast, with channels-last too) run on the CPU;
    in-place ops inside the blocks must cope with reduced-precision activations."""
    ref = _model(dropout=0.0)
    amp = _model(dropout=0.0, autocast=dtype, memory_format=memory_format)
    amp.load_state_dict(ref.state_dict())
    x = _batch()
    ref.eval(), amp.eval()
    with torch.no_grad():
        a, b = ref(x), amp(x)
    assert b.dtype == torch.float32
    assert not torch.equal(a, b)      # the blocks did run in the reduced precision
    # bf16 has an 8-bit mantissa (fp16 11 bits): features agree to ~2% of their scale
    assert (a - b).abs().max() <= 0.03 * a.abs().max()
    la, _ = _train_pass(ref, x)
    lb, gb = _train_pass(amp, x)
    assert abs(la - lb) <= 0.03 * abs(la)
    assert all(torch.isfinite(g).all() for g in gb.values())


def test_speed_options_are_validated():
    for bad in (dict(graph_order="einsum"), dict(dropout_impl="fast"),
                dict(memory_format="nhwc"), dict(autocast="fp8")):
        with pytest.raises(ValidationError):
            STGCNConfig(**bad)


OPTIMIZERS = {  # what the built-in methods build (all with foreach=True)
    "adam": lambda groups, fe: torch.optim.Adam(
        groups, lr=1e-2, betas=(0.5, 0.999), foreach=fe),
    "adamw": lambda groups, fe: torch.optim.AdamW(
        groups, lr=1e-2, weight_decay=0.05, foreach=fe),
    "sgd_nesterov": lambda groups, fe: torch.optim.SGD(
        groups, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, foreach=fe),
    "sgd_momentum": lambda groups, fe: torch.optim.SGD(
        groups, lr=0.1, momentum=0.9, foreach=fe),
}


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_foreach_optimizers_are_the_per_tensor_update_bit_for_bit(kind):
    """Every built-in method builds its optimizer with ``foreach=True`` (one multi-tensor
    update instead of a Python loop over parameters: faster small-model fits; on the CPU
    torch defaults to the loop). The golden numbers rely on it computing exactly what the
    per-tensor loop computes; a torch release that broke this would move them, so it is
    asserted here (parameter groups with their own weight decay included)."""
    import torch

    def train(foreach: bool) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(12, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
        opt = OPTIMIZERS[kind]([{"params": net[0].parameters(), "weight_decay": 1e-3},
                                {"params": net[2].parameters()}], foreach)
        gen = torch.Generator().manual_seed(1)
        for _ in range(30):
            loss = net(torch.randn(8, 12, generator=gen)).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return [p.detach().clone() for p in net.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(train(True), train(False)))


def test_every_built_in_optimizer_chooses_foreach_explicitly():
    """The source of every plugin: each torch.optim.Adam/AdamW/SGD call passes foreach=True,
    or foreach=False where that was measured faster (TDSM's AdamW only): torch's CPU default
    is the per-parameter loop, which no built-in should get by omission."""
    import re
    root = Path(__file__).resolve().parents[1] / "plugins"
    missing = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"torch\.optim\.(Adam|AdamW|SGD)\(", text):
            depth, i = 1, m.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            call = text[m.end():i]
            where = f"{path.relative_to(root)}:{text.count(chr(10), 0, m.start()) + 1}"
            if "foreach=True" not in call and not ("foreach=False" in call and "tdsm" in where):
                missing.append(where)
    assert not missing, f"optimizers built without an explicit foreach=True: {missing}"
