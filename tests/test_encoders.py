"""Skeleton encoders: NTU graph, ST-GCN, Shift-GCN (pure PyTorch shifts), streams, plugin."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from zsbench.api import ZsbenchError
from zsbench.nn.graph import NTU_BONE_PAIRS_1BASED, NTU_EDGES, Graph, bone_parents
from zsbench_encoders.configs import ShiftGCNConfig, ShiftGCNEnsembleConfig, STGCNConfig
from zsbench_encoders.ensemble import ShiftGCNEnsemble, build_shiftgcn_4s
from zsbench_encoders.shiftgcn import (ShiftGCN, SpatialShift, TemporalShift, build_shiftgcn)
from zsbench_encoders.stgcn import STGCN, GraphConv, build_stgcn
from zsbench_encoders.streams import to_bone, to_motion, to_stream

ROOT = Path(__file__).resolve().parents[1]
TINY_SHIFT = dict(widths=[4, 4, 4, 4, 8, 8, 8, 8, 8], out_dim=8)


pytestmark = pytest.mark.usefixtures("torch_single_thread")


def n_params(module: torch.nn.Module, skip: str | None = None) -> int:
    return sum(p.numel() for n, p in module.named_parameters()
               if p.requires_grad and (skip is None or skip not in n))


# ---- graph -----------------------------------------------------------------------------
def test_graph_shape_and_column_normalisation():
    a = Graph().A
    assert a.shape == (3, 25, 25) and a.dtype == np.float32
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(25), rtol=0, atol=1e-6)
    # subset 0 = self-loops only; support of the union = bones + self-loops
    assert np.count_nonzero(a[0] - np.diag(np.diag(a[0]))) == 0
    support = (a.sum(axis=0) > 0)
    expected = np.eye(25, dtype=bool)
    for i, j in NTU_EDGES:
        expected[i, j] = expected[j, i] = True
    assert np.array_equal(support, expected)
    # subsets are disjoint
    assert np.count_nonzero((a > 0).sum(axis=0) > 1) == 0


def test_graph_partition_hand_checked():
    a = Graph().A
    # centre joint 20 (SpineShoulder): 4 neighbours + self -> 1/5, all in subset 1
    assert a[0, 20, 20] == pytest.approx(0.2)
    for j in (1, 2, 4, 8):
        assert a[1, j, 20] == pytest.approx(0.2)
    assert not a[2, :, 20].any()
    # joint 1 (SpineMid): neighbour 20 is nearer the centre (subset 2), 0 is farther (subset 1)
    assert a[2, 20, 1] == pytest.approx(1 / 3) and a[1, 0, 1] == pytest.approx(1 / 3)
    # joint 4 (ShoulderLeft): 20 nearer -> subset 2; 5 (elbow) -> subset 1
    assert a[2, 20, 4] == pytest.approx(1 / 3) and a[1, 5, 4] == pytest.approx(1 / 3)
    # joint 6 (WristLeft) is 2 hops from the centre: official max_hop=1 quirk puts both
    # neighbours (5, 7) in subset 1 and leaves its subset-2 column empty
    assert a[1, 5, 6] == pytest.approx(1 / 3) and a[1, 7, 6] == pytest.approx(1 / 3)
    assert not a[2, :, 6].any()


def test_bone_parents_and_errors():
    p = bone_parents()
    assert p[20] == 20 and p[0] == 1 and p[21] == 22 and p[24] == 11
    assert len(NTU_BONE_PAIRS_1BASED) == 25
    with pytest.raises(ZsbenchError):
        Graph(strategy="uniform")


# ---- ST-GCN ----------------------------------------------------------------------------
def test_stgcn_parameter_counts():
    m = build_stgcn(STGCNConfig())
    assert n_params(m) == 821_380
    assert n_params(m.data_bn) == 150 and n_params(m.blocks) == 802_480
    proj = torch.nn.Linear(256, 768)
    assert n_params(m, skip="edge_importance") + n_params(proj) == 1_000_006  # PGFA 1.00M
    assert n_params(build_stgcn(STGCNConfig(edge_importance=False))) == 821_380 - 18_750


def test_stgcn_structure_and_shapes():
    m = STGCN()
    assert [b.residual_kind for b in m.blocks] == [
        "none", "identity", "identity", "identity", "conv", "identity", "identity", "conv",
        "identity", "conv"]
    assert [b.tcn[4].p for b in m.blocks] == [0.0] + [0.5] * 9
    x = torch.randn(2, 3, 50, 25, 2)
    m.eval()
    fmap = m.feature_map(x)
    assert fmap.shape == (2, 256, 13, 25)
    out = m(x)
    assert out.shape == (2, 256) and (out >= 0).all()
    torch.testing.assert_close(out, fmap.mean(dim=(2, 3)))
    # data_bn is shared by both body slots and bodies are averaged: slot order is irrelevant
    torch.testing.assert_close(m(x.flip(-1)), out, rtol=1e-5, atol=1e-6)
    with pytest.raises(ZsbenchError):
        m(torch.randn(2, 3, 50, 18, 2))


def test_graph_conv_matches_formula():
    torch.manual_seed(0)
    gc = GraphConv(2, 3, 3)
    x, adj = torch.randn(2, 2, 4, 25), torch.rand(3, 25, 25)
    z = gc.conv(x).view(2, 3, 3, 4, 25)
    expected = sum(z[:, k] @ adj[k] for k in range(3))  # y[..., w] = sum_k sum_v z A[k, v, w]
    torch.testing.assert_close(gc(x, adj), expected)


# ---- Shift-GCN: spatial shift ------------------------------------------------------------
@pytest.mark.parametrize("direction,sign", [("in", 1), ("out", -1)])
def test_spatial_shift_matches_loop(direction, sign):
    c = 7
    x = torch.randn(2, 3, 25, c)
    y = SpatialShift(c, direction)(x)
    ref = torch.empty_like(x)
    for i in range(25):
        for j in range(c):
            ref[:, :, i, j] = x[:, :, (i + sign * j) % 25, j]
    assert torch.equal(y, ref)


def test_spatial_shift_out_inverts_in():
    x = torch.randn(3, 25, 9)
    assert torch.equal(SpatialShift(9, "out")(SpatialShift(9, "in")(x)), x)


def test_spatial_shift_gradient_is_inverse_gather():
    x = torch.randn(2, 25, 6, requires_grad=True)
    w = torch.randn(2, 25, 6)
    (SpatialShift(6, "in")(x) * w).sum().backward()
    ref = torch.empty_like(w)
    for i in range(25):
        for j in range(6):
            ref[:, (i + j) % 25, j] = w[:, i, j]  # out[i, j] = x[(i + j) % 25, j]
    assert torch.equal(x.grad, ref)


# ---- Shift-GCN: temporal shift -----------------------------------------------------------
def _loop_shift(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Reference: out[n,c,t,v] = linear interpolation of x[n,c,:,v] at pos[c,t], zero outside."""
    n, c, t, v = x.shape
    out = torch.zeros(n, c, pos.shape[1], v, dtype=x.dtype)
    for ci in range(c):
        for to in range(pos.shape[1]):
            p = float(pos[ci, to])
            f = int(np.floor(p))
            a = p - f
            lo = x[:, ci, f] if 0 <= f < t else torch.zeros(n, v, dtype=x.dtype)
            hi = x[:, ci, f + 1] if 0 <= f + 1 < t else torch.zeros(n, v, dtype=x.dtype)
            out[:, ci, to] = (1 - a) * lo + a * hi
    return out


def test_temporal_shift_integer_exact():
    ts = TemporalShift(5, stride=1)
    shifts = torch.tensor([0.0, 1.0, -1.0, 3.0, -4.0])
    ts.shift.data.copy_(shifts)
    x = torch.randn(2, 5, 9, 4)
    ref = torch.zeros_like(x)
    for c in range(5):
        k = int(shifts[c])
        for t in range(9):
            if 0 <= t + k < 9:
                ref[:, c, t] = x[:, c, t + k]
    assert torch.equal(ts(x), ref)


def test_temporal_shift_stride2_exact():
    ts = TemporalShift(3, stride=2)
    ts.shift.data.copy_(torch.tensor([-0.5, 0.5, -2.5]))  # +0.5 offset -> integer positions
    x = torch.randn(2, 3, 9, 4)
    y = ts(x)
    assert y.shape == (2, 3, 5, 4)  # ceil(9 / 2)
    ref = torch.zeros_like(y)
    for c, k in enumerate([0, 1, -2]):
        for t in range(5):
            if 0 <= 2 * t + k < 9:
                ref[:, c, t] = x[:, c, 2 * t + k]
    assert torch.equal(y, ref)


@pytest.mark.parametrize("stride", [1, 2])
def test_temporal_shift_fractional_matches_interpolation(stride):
    ts = TemporalShift(4, stride=stride).double()
    ts.shift.data.copy_(torch.tensor([0.3, -1.7, 2.25, -0.05], dtype=torch.float64))
    x = torch.randn(2, 4, 8, 3, dtype=torch.float64)
    pos = torch.arange((8 - 1) // stride + 1, dtype=torch.float64)[None] * stride \
        + ts.shift.detach()[:, None] + (0.5 if stride > 1 else 0.0)
    torch.testing.assert_close(ts(x), _loop_shift(x, pos), rtol=0, atol=1e-12)


def test_temporal_shift_gradients():
    x = torch.randn(2, 3, 8, 4, dtype=torch.float64)
    w = torch.randn(2, 3, 8, 4, dtype=torch.float64)
    exact = TemporalShift(3, shift_grad="exact").double()
    exact.shift.data.copy_(torch.tensor([0.3, -0.6, 1.2], dtype=torch.float64))
    (exact(x) * w).sum().backward()
    # d out / d shift = x[floor+1] - x[floor] (zero padded)
    pos = torch.arange(8, dtype=torch.float64)[None] + exact.shift.detach()[:, None]
    xp = torch.nn.functional.pad(x, (0, 0, 2, 3))  # zero frames around the sequence
    lo = torch.floor(pos).long() + 2
    expected = torch.stack([((xp[:, c, lo[c] + 1] - xp[:, c, lo[c]]) * w[:, c]).sum()
                            for c in range(3)])
    torch.testing.assert_close(exact.shift.grad, expected)
    official = TemporalShift(3, shift_grad="official").double()
    official.shift.data.copy_(exact.shift.data)
    (official(x) * w).sum().backward()
    torch.testing.assert_close(official.shift.grad, 0.01 * torch.sign(expected))


# ---- Shift-GCN model ---------------------------------------------------------------------
def _shiftgcn_expected_params(cfg: ShiftGCNConfig) -> int:
    """Closed form: data_bn + per unit (shift-GCN layer, shift-TCN, residual)."""
    total = 2 * cfg.num_person * 25 * cfg.in_channels
    c_in = cfg.in_channels
    for i, (c, s) in enumerate(zip(list(cfg.widths) + [cfg.out_dim], cfg.strides)):
        conv_bn = c_in * c + c + 2 * c
        gcn = c_in * c + c + 25 * c_in + 2 * 25 * c + (conv_bn if c_in != c else 0)
        tcn = 2 * c + c + c * c + c + c + 2 * c  # bn, shift, 1x1 conv, shift, bn2
        res = conv_bn if i > 0 and (c_in != c or s != 1) else 0
        total += gcn + tcn + res
        c_in = c
    return total


def test_shiftgcn_parameter_counts():
    full = build_shiftgcn(ShiftGCNConfig())
    assert n_params(full) == _shiftgcn_expected_params(ShiftGCNConfig()) == 674_871
    # the official model also holds 2 frozen joint-axis shifts per unit (2816 values): 677,687
    assert n_params(full) + 2 * (4 * 64 + 3 * 128 + 3 * 256) == 677_687
    tiny_cfg = ShiftGCNConfig(**TINY_SHIFT)
    assert n_params(build_shiftgcn(tiny_cfg)) == _shiftgcn_expected_params(tiny_cfg) == 6_571
    assert n_params(build_shiftgcn_4s(ShiftGCNEnsembleConfig())) == 4 * 674_871 == 2_699_484
    assert n_params(build_shiftgcn_4s(ShiftGCNEnsembleConfig(**TINY_SHIFT))) == 4 * 6_571


def test_shiftgcn_shapes_and_gradients():
    torch.manual_seed(0)
    m = ShiftGCN(ShiftGCNConfig(**TINY_SHIFT))
    x = torch.randn(3, 3, 16, 25, 2)
    out = m(x)
    assert out.shape == (3, 8) and (out >= 0).all()
    assert m.feature_map(x).shape == (3, 8, 4, 25)
    out.sum().backward()
    shifts = [p for n, p in m.named_parameters() if n.endswith(".shift")]
    assert len(shifts) == 20 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in shifts)
    assert all(p.grad is not None for n, p in m.named_parameters() if n.endswith("mask"))
    exact = ShiftGCN(ShiftGCNConfig(shift_grad="exact", **TINY_SHIFT))
    assert {mod.shift_grad for mod in exact.modules() if isinstance(mod, TemporalShift)} == {"exact"}
    full = ShiftGCN().eval()
    assert full.feature_map(torch.randn(1, 3, 64, 25, 2)).shape == (1, 256, 16, 25)
    with pytest.raises(ZsbenchError):
        m(torch.randn(3, 3, 16, 25, 1))


# ---- streams -------------------------------------------------------------------------------
def test_streams_definitions():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 25, 2)).astype(np.float32)
    bone = to_bone(x)
    for v1, v2 in NTU_BONE_PAIRS_1BASED:
        assert np.array_equal(bone[:, :, :, v1 - 1], x[:, :, :, v1 - 1] - x[:, :, :, v2 - 1])
    assert not bone[:, :, :, 20].any()
    mot = to_motion(x)
    assert np.array_equal(mot[:, :, :-1], x[:, :, 1:] - x[:, :, :-1]) and not mot[:, :, -1].any()
    for name in ("joint", "bone", "joint_motion", "bone_motion"):
        t = to_stream(torch.from_numpy(x), name).numpy()
        assert np.array_equal(t, to_stream(x, name))
    assert np.array_equal(to_stream(x, "bone_motion"), to_motion(to_bone(x)))
    with pytest.raises(ZsbenchError):
        to_stream(x, "velocity")


def test_stream_encoder_equals_joint_encoder_on_stream_input():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 8, 25, 2)
    bone_m = ShiftGCN(ShiftGCNConfig(stream="bone", **TINY_SHIFT)).eval()
    joint_m = ShiftGCN(ShiftGCNConfig(**TINY_SHIFT)).eval()
    joint_m.load_state_dict(bone_m.state_dict())
    torch.testing.assert_close(bone_m(x), joint_m(to_bone(x)))


@pytest.mark.parametrize("fuse,dim", [("mean", 8), ("concat", 32)])
def test_ensemble_fusion(fuse, dim):
    torch.manual_seed(2)
    ens = ShiftGCNEnsemble(ShiftGCNEnsembleConfig(fuse=fuse, **TINY_SHIFT)).eval()
    x = torch.randn(2, 3, 8, 25, 2)
    out = ens(x)
    assert out.shape == (2, dim) and ens.feature_dim == dim
    per = [ens.streams[s](x) for s in ("joint", "bone", "joint_motion", "bone_motion")]
    ref = torch.stack(per).mean(0) if fuse == "mean" else torch.cat(per, 1)
    torch.testing.assert_close(out, ref)


# ---- configs and plugin ----------------------------------------------------------------------
def test_config_validation():
    with pytest.raises(ValidationError):
        ShiftGCNConfig(strides=[1, 2])
    with pytest.raises(ValidationError):
        STGCNConfig(hidden=16)
    with pytest.raises(ValidationError):
        ShiftGCNEnsembleConfig(streams=["joint", "joint"])


def test_plugin_specs():
    from zsbench_encoders.plugin import zsbench_skeleton_encoders

    specs = {s.name: s for s in zsbench_skeleton_encoders()}
    assert set(specs) == {"stgcn", "shiftgcn", "shiftgcn_4s"}
    assert {n: s.feature_dim for n, s in specs.items()} == {
        "stgcn": 256, "shiftgcn": 256, "shiftgcn_4s": 256}
    m = specs["stgcn"].load()(specs["stgcn"].config(hidden_channels=4, out_dim=8))
    assert m(torch.randn(1, 3, 8, 25, 2)).shape == (1, 8)
    code = ("import sys; import zsbench_encoders.plugin as p; p.zsbench_skeleton_encoders(); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    env = {"PYTHONPATH": f"{ROOT / 'harness'}:{ROOT / 'plugins'}", "PATH": "/usr/bin:/bin"}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


def test_eval_pass_computes_empty_body_slots_once_with_the_same_result():
    """Feature extraction skips repeated all-zero second bodies; the output equals the plain
    pass over every slot (eval mode: slots are independent), and training is unchanged."""
    torch.manual_seed(0)
    enc = STGCN(STGCNConfig(hidden_channels=8, dropout=0.5))
    for mod in enc.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
    x = torch.randn(6, 3, 20, 25, 2)
    x[[0, 2, 3], :, :, :, 1] = 0          # single-actor samples
    x[4] = 0                              # an empty sample: both slots empty
    slots = x.permute(0, 4, 1, 2, 3).reshape(12, 3, 20, 25)
    calls = []
    real = enc._slots_forward
    enc._slots_forward = lambda s: calls.append(len(s)) or real(s)
    enc.eval()
    with torch.no_grad():
        fast = enc(x)
        plain = real(slots).view(6, 2, -1, 5, 25).mean(1).mean((2, 3))
    assert sorted(calls) == [1, 7]        # one empty slot computed, 7 busy slots batched
    assert torch.allclose(fast, plain, atol=1e-5)
    enc.train()
    calls.clear()
    enc(x)
    assert calls == [12]                  # training: every slot, batch-norm statistics intact


def test_allocator_tuning_is_idempotent_and_can_be_disabled(monkeypatch):
    import zsbench.cpu as cpu

    monkeypatch.setattr(cpu, "_done", None)
    monkeypatch.setenv("ZSBENCH_TUNE_MALLOC", "0")
    assert cpu.tune_allocator() is False
    monkeypatch.setattr(cpu, "_done", None)
    monkeypatch.delenv("ZSBENCH_TUNE_MALLOC")
    first = cpu.tune_allocator()
    assert cpu.tune_allocator() is first
