"""Reference tensors for the ST-GCN encoder (plugins/zsbench_encoders/stgcn.py).

    python benchmarks/fidelity/stgcn_reference.py --checkout /tmp/official/pgfa \
        [--out tests/fidelity/stgcn.npz]

``--checkout``: kaai520/PGFA at 3e09542b98ac3af8a1ec84df85247c060d0932b8 (its
``module/gcn/st_gcn.py`` + ``utils/{graph,tgcn}.py`` are the ST-GCN shared by SMIE, PGFA and
DVTA; encoders_stgcn.md "Identity check"). Builds the official ``Model`` with the repos'
settings (3 channels, h = 16, ``ntu-rgb+d``/``spatial`` graph, edge importance, dropout 0.5)
except ``hidden_dim`` = 48 instead of 256: the 256-wide last block alone holds 640k weights,
which do not fit the npz size budget; 48 keeps the last block's distinctive shape (channel
change at stride 1, so a 1x1-conv residual) while every other layer has its real width.

Weights: PyTorch's default init, then batch-norm affine parameters and running statistics
and the edge-importance masks are randomised (so eval-mode folding and the masks are
exercised), and every floating tensor is rounded to ``q * 2**e`` with ``q`` an int8 and one
power-of-two ``e`` per tensor. The official model runs with exactly these weights, which the
npz stores losslessly as (int8 array, exponent): about a quarter of the float32 size.

Records: inputs (2 samples x 3 x 12 frames x 25 joints x 2 bodies, sample 1 with an all-zero
second body), outputs in eval mode, in train mode with dropout (RNG seeded right before the
forward pass, so ``nn.Dropout`` masks can be reproduced), in train mode with the dropout
probabilities set to 0, the batch-norm running statistics after one train-mode pass, the
graph ``A``, and gradients of a fixed loss w.r.t. the input and a few parameters (train mode
with dropout, and eval mode). CPU only; the checkout is imported, never edited. Not run by
the tests; the npz is committed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO, COMMIT = "kaai520/PGFA", "3e09542b98ac3af8a1ec84df85247c060d0932b8"
HIDDEN, OUT_DIM, DROPOUT = 16, 48, 0.5
N, C, T, V, M = 2, 3, 12, 25, 2
DROP_SEED = 7
GRAD_PARAMS = ["data_bn.weight", "st_gcn_networks.0.gcn.conv.weight", "edge_importance.4",
               "st_gcn_networks.7.residual.0.weight", "st_gcn_networks.9.gcn.conv.bias"]


def quantise(t: torch.Tensor) -> tuple[np.ndarray, int]:
    """``t`` ~ ``q * 2**e`` with int8 ``q`` (|q| <= 127)."""
    amax = float(t.abs().max())
    e = int(np.ceil(np.log2(amax / 127.0))) if amax > 0 else 0
    q = torch.round(t / 2.0 ** e).clamp(-127, 127).to(torch.int8)
    return q.numpy(), e


def build(st_gcn_module) -> torch.nn.Module:
    torch.manual_seed(0)
    model = st_gcn_module.Model(in_channels=C, hidden_channels=HIDDEN, hidden_dim=OUT_DIM,
                                dropout=DROPOUT, edge_importance_weighting=True,
                                graph_args={"layout": "ntu-rgb+d", "strategy": "spatial"})
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = mod.num_features
                mod.weight.copy_(1.0 + 0.3 * torch.randn(n, generator=g))
                mod.bias.copy_(0.2 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
        for p in model.edge_importance:
            p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
        for k, v in model.state_dict().items():
            if v.is_floating_point() and k != "A":
                q, e = quantise(v)
                v.copy_(torch.from_numpy(q).float() * 2.0 ** e)
    return model


def pack_state(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """The state dict (without ``A``) as one flat int8 array ``w/q`` plus, per tensor, its
    name, shape (``json``) and exponent: tensor = ``q[offset:offset+size] * 2**e``
    (non-floating buffers, e.g. ``num_batches_tracked``, are stored as their integer value
    with ``e = 0``)."""
    import json
    names, shapes, exps, flat = [], [], [], []
    for k, v in state.items():
        if k == "A":
            continue
        if v.is_floating_point():
            q, e = quantise(v)
            assert torch.equal(torch.from_numpy(q).float() * 2.0 ** e, v), k
        else:
            q, e = v.numpy().astype(np.int8), 0
            assert np.array_equal(q.astype(np.int64), v.numpy()), k
        names.append(k)
        shapes.append(list(v.shape))
        exps.append(e)
        flat.append(q.reshape(-1))
    return {"w/q": np.concatenate(flat), "w/names": np.asarray(names),
            "w/shapes": np.asarray(json.dumps(shapes)), "w/exp": np.asarray(exps, np.int64)}


def record_bn_stats(model: torch.nn.Module, names, out: dict) -> None:
    for k in names:
        bn = model.get_submodule(k)
        out[f"after_train/{k}.running_mean"] = bn.running_mean.numpy().copy()
        out[f"after_train/{k}.running_var"] = bn.running_var.numpy().copy()


def save_npz(out: dict, path: Path, repo: str, commit: str) -> None:
    out["repo"], out["commit"] = np.asarray(repo), np.asarray(commit)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB, {len(out)} arrays)")


def fixed_input() -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(N, C, T, V, M, generator=g)
    x[1, ..., 1] = 0.0           # single-actor sample: all-zero second body
    return x


def loss_of(out: torch.Tensor) -> torch.Tensor:
    r = torch.linspace(-1.0, 1.0, out.numel()).view_as(out)
    return (out * r).sum() + 0.1 * (out ** 2).sum()


def grads(model: torch.nn.Module, x: torch.Tensor, tag: str, out: dict) -> None:
    xg = x.clone().requires_grad_(True)
    model.zero_grad()
    y = model(xg)
    loss = loss_of(y)
    loss.backward()
    out[f"{tag}/loss"] = np.float64(loss.item())
    out[f"{tag}/grad/x"] = xg.grad.numpy().copy()
    params = dict(model.named_parameters())
    for name in GRAD_PARAMS:
        out[f"{tag}/grad/{name}"] = params[name].grad.numpy().copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/stgcn.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(args.checkout))
    import importlib
    st_gcn = importlib.import_module("module.gcn.st_gcn")

    model = build(st_gcn)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out: dict[str, np.ndarray] = {"A": model.A.numpy().copy(), "x": fixed_input().numpy(),
                                  "hidden_channels": np.int64(HIDDEN),
                                  "out_dim": np.int64(OUT_DIM), "dropout": np.float64(DROPOUT),
                                  "drop_seed": np.int64(DROP_SEED)}
    out.update(pack_state(state))
    x = fixed_input()

    def fresh() -> torch.nn.Module:
        model.load_state_dict(state)
        return model

    with torch.no_grad():
        out["eval/out"] = fresh().eval()(x).numpy()
        m = fresh().train()
        torch.manual_seed(DROP_SEED)
        out["train_drop/out"] = m(x).numpy()
        record_bn_stats(m, ("data_bn", "st_gcn_networks.4.tcn.0", "st_gcn_networks.9.residual.1"),
                        out)
        m = fresh().train()
        drops = [(mod, mod.p) for mod in m.modules() if isinstance(mod, torch.nn.Dropout)]
        for mod, _ in drops:
            mod.p = 0.0
        out["train_nodrop/out"] = m(x).numpy()
        for mod, p in drops:
            mod.p = p
    m = fresh().train()
    torch.manual_seed(DROP_SEED)
    grads(m, x, "train_drop", out)
    grads(fresh().eval(), x, "eval", out)
    save_npz(out, args.out, REPO, COMMIT)


if __name__ == "__main__":
    main()
