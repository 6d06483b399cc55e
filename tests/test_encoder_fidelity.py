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
           dict(graph_order="conv_first", fold_bn_eval=False)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
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
                                           **TOL, msg=lambda m, n=name: f"{mode} {n}: {m}")
