"""Skeleton encoders against the official code's tensors (tests/fidelity/stgcn.npz,
written by benchmarks/fidelity/stgcn_reference.py from kaai520/PGFA's module/gcn/st_gcn.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zsbench_encoders.configs import STGCNConfig
from zsbench_encoders.stgcn import STGCN

FIDELITY = Path(__file__).parent / "fidelity"
TOL = dict(rtol=0, atol=1e-5)
# Shift-GCN activations reach ~100 after ten residual units: float32 rounding alone is ~1e-5,
# and it depends on the summation order (max abs error of the outputs, eval / train mode:
# 1.5e-5 / 7.7e-6 with two torch threads, 1.5e-5 / 1.4e-5 with one)
SHIFT_TOL = dict(rtol=1e-6, atol=3e-5)


def unpack_state(ref) -> dict[str, torch.Tensor]:
    """Inverse of the reference scripts' ``pack_state``: int8 ``q`` times ``2**e``."""
    q = ref["w/q"]
    shapes = json.loads(str(ref["w/shapes"]))
    state, offset = {}, 0
    for name, shape, e in zip(ref["w/names"], shapes, ref["w/exp"]):
        size = int(np.prod(shape, dtype=np.int64))
        chunk = torch.from_numpy(q[offset:offset + size].astype(np.int64)).view(shape)
        offset += size
        state[str(name)] = chunk if name.endswith("num_batches_tracked") else chunk.float() * 2.0 ** int(e)
    assert offset == q.size
    return state


@pytest.fixture(scope="module")
def stgcn_ref():
    return np.load(FIDELITY / "stgcn.npz")


def _stgcn(ref, **options) -> STGCN:
    cfg = STGCNConfig(hidden_channels=int(ref["hidden_channels"]), out_dim=int(ref["out_dim"]),
                      dropout=float(ref["dropout"]), **options)
    model = STGCN(cfg)
    ours_a = model.A.clone()
    state = {k.replace("st_gcn_networks.", "blocks."): v for k, v in unpack_state(ref).items()}
    state["A"] = torch.from_numpy(ref["A"])
    model.load_state_dict(state, strict=True)
    torch.testing.assert_close(ours_a, model.A, rtol=0, atol=1e-7)   # our graph = official A
    return model


def test_stgcn_reference_metadata(stgcn_ref):
    assert str(stgcn_ref["repo"]) == "kaai520/PGFA"
    assert str(stgcn_ref["commit"]).startswith("3e09542b")
    x = stgcn_ref["x"]
    assert (x[1, ..., 1] == 0).all() and (x[0, ..., 1] != 0).any()


OPTIONS = [dict(), dict(graph_order="conv_first"), dict(fold_bn_eval=False),
           dict(graph_order="conv_first", fold_bn_eval=False), dict(memory_format="channels_last")]


@pytest.mark.parametrize("options", OPTIONS,
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_stgcn_matches_official_eval_and_train(stgcn_ref, options):
    x = torch.from_numpy(stgcn_ref["x"])
    model = _stgcn(stgcn_ref, **options).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.from_numpy(stgcn_ref["eval/out"]), **TOL)
    # train mode without dropout: batch statistics (shared by both body slots)
    model = _stgcn(stgcn_ref, **options).train()
    for block in model.blocks:
        block.tcn[4].p = 0.0
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.from_numpy(stgcn_ref["train_nodrop/out"]), **TOL)


@pytest.mark.parametrize("graph_order", ["mix_first", "conv_first"])
def test_stgcn_matches_official_with_dropout_and_gradients(stgcn_ref, graph_order):
    """``dropout_impl="torch"`` draws nn.Dropout's masks in the official order."""
    x = torch.from_numpy(stgcn_ref["x"])
    model = _stgcn(stgcn_ref, graph_order=graph_order, dropout_impl="torch").train()
    torch.manual_seed(int(stgcn_ref["drop_seed"]))
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.from_numpy(stgcn_ref["train_drop/out"]), **TOL)
    for k in ("data_bn", "blocks.4.tcn.0", "blocks.9.residual.1"):
        bn = model.get_submodule(k)
        ok = k.replace("blocks.", "st_gcn_networks.")
        for stat in ("running_mean", "running_var"):
            torch.testing.assert_close(getattr(bn, stat),
                                       torch.from_numpy(stgcn_ref[f"after_train/{ok}.{stat}"]), **TOL)
    for mode in ("train_drop", "eval"):
        model = _stgcn(stgcn_ref, graph_order=graph_order, dropout_impl="torch")
        model.train(mode == "train_drop")
        xg = x.clone().requires_grad_(True)
        torch.manual_seed(int(stgcn_ref["drop_seed"]))
        y = model(xg)
        r = torch.linspace(-1.0, 1.0, y.numel()).view_as(y)
        loss = (y * r).sum() + 0.1 * (y ** 2).sum()
        loss.backward()
        assert abs(loss.item() - float(stgcn_ref[f"{mode}/loss"])) < 1e-4
        torch.testing.assert_close(xg.grad, torch.from_numpy(stgcn_ref[f"{mode}/grad/x"]), **TOL)
        params = dict(model.named_parameters())
        for key in stgcn_ref.files:
            if key.startswith(f"{mode}/grad/") and key != f"{mode}/grad/x":
                name = key[len(f"{mode}/grad/"):].replace("st_gcn_networks.", "blocks.")
                torch.testing.assert_close(params[name].grad, torch.from_numpy(stgcn_ref[key]),
                                           **TOL, msg=lambda m, n=f"{mode} {name}": f"{n}: {m}")


# ---- Shift-GCN (tests/fidelity/shiftgcn.npz: kchengiva/Shift-GCN, CUDA shift transcribed) ----
@pytest.fixture(scope="module")
def shift_ref():
    return np.load(FIDELITY / "shiftgcn.npz")


def _shift_key(name: str) -> str | None:
    """Official state-dict name -> ours (None: not a parameter of ours)."""
    unit, _, rest = name.partition(".")
    if not unit.startswith("l") or not unit[1:].isdigit():
        return name                                              # data_bn.*
    prefix = f"units.{int(unit[1:]) - 1}."
    if rest.endswith("xpos"):
        return None                                              # joint-axis shift, frozen at ~1e-8
    for old, new in (("gcn1.Linear_weight", "gcn.weight"), ("gcn1.Linear_bias", "gcn.bias"),
                     ("gcn1.Feature_Mask", "gcn.mask"), ("gcn1.", "gcn."),
                     ("tcn1.temporal_linear.", "tcn.linear."), ("tcn1.", "tcn."),
                     ("ypos", "shift"), ("residual.conv.", "residual.0."),
                     ("residual.bn.", "residual.1.")):
        rest = rest.replace(old, new)
    return prefix + rest


def _shiftgcn(ref, shift_grad: str = "official"):
    from zsbench_encoders.configs import ShiftGCNConfig
    from zsbench_encoders.shiftgcn import ShiftGCN
    widths = [int(w) for w in ref["widths"]]
    model = ShiftGCN(ShiftGCNConfig(widths=widths[:-1], out_dim=widths[-1],
                                    strides=[int(s) for s in ref["strides"]], shift_grad=shift_grad))
    state = {}
    for name, value in unpack_state(ref).items():
        key = _shift_key(name)
        if key is None:
            assert value.abs().max() <= 2e-8       # +-1e-8 init, rounded to the int8 grid
            continue
        state[key] = value.reshape(model.state_dict()[key].shape)
    model.load_state_dict(state, strict=True)
    return model


def test_shiftgcn_spatial_shift_index_is_official(shift_ref):
    model = _shiftgcn(shift_ref)
    for key in shift_ref.files:
        if key.startswith("index/"):
            unit, direction = key[len("index/l"):].split(".")
            ours = getattr(model.units[int(unit) - 1].gcn, direction).index
            np.testing.assert_array_equal(ours.numpy(), shift_ref[key].astype(np.int64))


def test_shiftgcn_matches_official_outputs(shift_ref):
    assert str(shift_ref["repo"]) == "kchengiva/Shift-GCN"
    assert str(shift_ref["commit"]).startswith("20276b6")
    x = torch.from_numpy(shift_ref["x"])
    model = _shiftgcn(shift_ref)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), torch.from_numpy(shift_ref["eval/out"]), **SHIFT_TOL)
        torch.testing.assert_close(model.train()(x), torch.from_numpy(shift_ref["train/out"]), **SHIFT_TOL)
    for k, ours in (("data_bn", "data_bn"), ("l5.tcn1.bn2", "units.4.tcn.bn2"),
                    ("l8.residual.bn", "units.7.residual.1")):
        bn = model.get_submodule(ours)
        for stat in ("running_mean", "running_var"):
            torch.testing.assert_close(getattr(bn, stat),
                                       torch.from_numpy(shift_ref[f"after_train/{k}.{stat}"]), **SHIFT_TOL)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_shiftgcn_matches_official_gradients(shift_ref, mode):
    """Input and weight gradients (float64, see the reference script) to 1e-5; every temporal
    shift's gradient follows the CUDA op's rule (0.01 * sign) with ``shift_grad="official"``."""
    x = torch.from_numpy(shift_ref["x"]).double().requires_grad_(True)
    model = _shiftgcn(shift_ref).double().train(mode == "train")
    y = model(x)
    r = torch.linspace(-1.0, 1.0, y.numel()).view_as(y)
    loss = (y * r).sum() + 0.1 * (y ** 2).sum()
    loss.backward()
    ref_loss = float(shift_ref[f"{mode}/loss"])
    assert abs(loss.item() - ref_loss) < 1e-4 * max(1.0, abs(ref_loss) * 1e-3)
    torch.testing.assert_close(x.grad, torch.from_numpy(shift_ref[f"{mode}/grad/x"]), **SHIFT_TOL)
    assert x.grad.abs().max() > 1e-3
    params = dict(model.named_parameters())
    n_shift = n_vanishing = 0
    for key in shift_ref.files:
        if key.startswith(f"{mode}/grad/") and key != f"{mode}/grad/x":
            name = _shift_key(key[len(f"{mode}/grad/"):])
            expected = torch.from_numpy(shift_ref[key]).reshape(params[name].shape)
            got = params[name].grad
            if name.endswith(".shift"):
                n_shift += 1
                # 1e-4: our summed gradient is exactly 0 (a degenerate channel); the official
                # sum then is the +-1e-8 joint-axis shift's contribution (omitted here), so
                # its sign is arbitrary
                vanishing = got == 1e-4
                n_vanishing += int((expected[vanishing] != 1e-4).sum())
                assert torch.isin(expected[vanishing], torch.tensor([1e-4, 0.01, -0.01],
                                                                    dtype=expected.dtype)).all()
                got, expected = got[~vanishing], expected[~vanishing]
            torch.testing.assert_close(got, expected, **SHIFT_TOL,
                                       msg=lambda m, n=f"{mode} {name}": f"{n}: {m}")
    assert n_shift == 20 and n_vanishing <= 3
