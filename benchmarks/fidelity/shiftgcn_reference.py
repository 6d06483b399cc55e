"""Reference tensors for the Shift-GCN encoder (plugins/zsbench_encoders/shiftgcn.py).

    python benchmarks/fidelity/shiftgcn_reference.py --checkout /tmp/official/shiftgcn \
        [--out tests/fidelity/shiftgcn.npz]

``--checkout``: kchengiva/Shift-GCN at 20276b64d16775c2de33408beb32825d2f93ffa4
(``model/shift_gcn.py``: ``Model``, ``TCN_GCN_unit``, ``Shift_gcn``, ``Shift_tcn``, ``tcn``).
The checkout is imported, never edited. What this script changes at runtime, and why:

* The learnable temporal shift is a compiled CUDA extension (``cuda.shift.Shift`` over
  ``shift_cuda``), which cannot be built or run here, and no pure-Python version exists in
  the related repositories (Neuron, STAR and PGFA ship the same CUDA op). A stand-in
  ``cuda.shift`` module is installed whose ``Shift`` re-implements, in plain torch and ONLY
  inside this script, the kernel file ``model/Temporal_shift/cuda/shift_cuda_kernel.cu``
  and ``shift.py`` element by element: parameters ``xpos`` (uniform +-1e-8) and ``ypos``
  (uniform +-init_scale); ``ypos + 0.5`` when stride > 1; the forward is the kernel's 4-tap
  bilinear read at (h*stride + ypos, w + xpos) with zero outside and output height
  ``H // stride``; the input gradient is the kernel's gather at the negated positions (for
  stride 2 only from even rows, ``h/2 < H // 2``); the position gradients are the kernel's
  ``val * grad_output`` averaged over the batch and summed over (h, w), then
  ``applyShiftConstraint`` (x: 0; y: 0.01 * sign, 1e-4 where the sum is 0). This is the
  ``shift_grad="official"`` semantics, which the tests check on the recorded gradients of
  every ``ypos``.
* ``Shift_gcn`` allocates its parameters with ``device='cuda'``: ``torch.zeros`` and
  ``torch.ones`` are wrapped to map ``device='cuda'`` to the CPU. ``np.int`` (removed in
  NumPy 1.24) is aliased to ``int``.
* Widths: the official units are 64..256 wide (about 0.7M parameters, too large for the npz
  budget). After ``Model`` is built, ``l1..l10`` are replaced by official ``TCN_GCN_unit``
  instances at the embedded benchmark's widths 16,16,16,16,32,32,32,64,64,64 (strides as in
  the official model); ``fc`` is replaced by an identity so the forward returns the pooled
  feature. Everything else (data_bn over M*V*C, forward, readout) is the official code.

Weights: official init, then batch-norm parameters/statistics, ``Feature_Mask`` and
``Linear_bias`` randomised, every floating tensor rounded to an int8 grid (``pack_state`` of
``stgcn_reference.py``; stored losslessly). Records: input (2 x 3 x 12 x 25 x 2, sample 1
with an all-zero second body), eval and train-mode outputs, gradients of a fixed loss w.r.t.
the input, every ``ypos`` and a few weights (train and eval mode, in float64), the official
spatial shift index arrays of three units, and ``repo``/``commit``. Not run by the tests.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stgcn_reference import (fixed_input, loss_of, pack_state, quantise,  # noqa: E402
                             record_bn_stats, save_npz)

REPO, COMMIT = "kchengiva/Shift-GCN", "20276b64d16775c2de33408beb32825d2f93ffa4"
WIDTHS = [16, 16, 16, 16, 32, 32, 32, 64, 64, 64]
STRIDES = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
INDEX_UNITS = (1, 5, 10)
GRAD_PARAMS = ["data_bn.weight", "l1.gcn1.Feature_Mask", "l1.gcn1.Linear_weight",
               "l5.residual.conv.weight", "l8.gcn1.down.0.weight", "l9.tcn1.temporal_linear.bias",
               "l10.gcn1.bn.weight", "l10.gcn1.Linear_bias"]


def _read(inp: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, height: int, width: int,
          row_ok: torch.Tensor | None = None) -> torch.Tensor:
    """``inp[n, c, rows[c, h], cols[c, w]]``, 0 where the position is outside
    ``[0, height) x [0, width)`` (or ``row_ok`` is False): the kernels' bounds-checked read."""
    ok_r = (rows >= 0) & (rows < height)
    if row_ok is not None:
        ok_r = ok_r & row_ok
    ok_c = (cols >= 0) & (cols < width)
    c = torch.arange(inp.shape[1])[:, None, None]
    vals = inp[:, c, rows.clamp(0, height - 1)[:, :, None], cols.clamp(0, width - 1)[:, None, :]]
    return vals * (ok_r[:, :, None] & ok_c[:, None, :]).to(inp.dtype)


def _taps(xpos: torch.Tensor, ypos: torch.Tensor):
    x1, y1 = torch.floor(xpos), torch.floor(ypos)
    return x1.long(), y1.long(), xpos - x1, ypos - y1


def _bilinear(q11, q21, q12, q22, dx, dy):
    dx, dy = dx[:, None, None], dy[:, None, None]
    return q11 * (1 - dx) * (1 - dy) + q21 * dx * (1 - dy) + q12 * (1 - dx) * dy + q22 * dx * dy


def kernel_forward(inp, xpos, ypos, stride):
    """shift_cuda_forward_kernel: output (N, C, H // stride, W)."""
    n, c, h, w = inp.shape
    ho = h // stride
    x1, y1, dx, dy = _taps(xpos, ypos)
    rows = torch.arange(ho)[None, :] * stride
    cols = torch.arange(w)[None, :]
    q = {(a, b): _read(inp, rows + y1[:, None] + b, cols + x1[:, None] + a, h, w)
         for a in (0, 1) for b in (0, 1)}
    return _bilinear(q[0, 0], q[1, 0], q[0, 1], q[1, 1], dx, dy), q, dx, dy


class KernelShiftFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inp, xpos, ypos, stride=1):
        if stride != 1:
            ypos = ypos + 0.5
        out, _, _, _ = kernel_forward(inp, xpos, ypos, stride)
        ctx.save_for_backward(inp, xpos, ypos)
        ctx.stride = stride
        return out

    @staticmethod
    def backward(ctx, grad_out):
        inp, xpos, ypos = ctx.saved_tensors
        stride = ctx.stride
        n, c, h, w = inp.shape
        ho = h // stride
        # Shift_Bottom_Backward(_Stride1): gather grad_out at the negated positions
        x1, y1, dx, dy = _taps(-xpos, -ypos)
        rows = torch.arange(h)[None, :]
        cols = torch.arange(w)[None, :]
        q = {}
        for a in (0, 1):
            for b in (0, 1):
                r = rows + y1[:, None] + b
                cc = cols + x1[:, None] + a
                if stride == 1:
                    q[a, b] = _read(grad_out, r, cc, h, w)
                else:
                    even = torch.remainder(r, stride) == 0
                    q[a, b] = _read(grad_out, torch.div(r, stride, rounding_mode="floor"), cc,
                                    ho, w, row_ok=even & (r >= 0))
        grad_in = _bilinear(q[0, 0], q[1, 0], q[0, 1], q[1, 1], dx, dy)
        # Shift_Position_Backward + mean over batch, sum over (h, w) + applyShiftConstraint
        _, qf, dxf, dyf = kernel_forward(inp, xpos, ypos, stride)
        dxb, dyb = dxf[:, None, None], dyf[:, None, None]
        val_x = (1 - dyb) * (qf[1, 0] - qf[0, 0]) + dyb * (qf[1, 1] - qf[0, 1])
        val_y = (1 - dxb) * (qf[0, 1] - qf[0, 0]) + dxb * (qf[1, 1] - qf[1, 0])
        gx = (val_x * grad_out).mean(0).sum((1, 2))
        gy = (val_y * grad_out).mean(0).sum((1, 2))
        dr = gy.abs()
        gx = torch.zeros_like(gx)
        gy = torch.where(dr != 0, gy / torch.where(dr != 0, dr, torch.ones_like(dr)) * 0.01,
                         torch.full_like(gy, 1e-4))
        return grad_in, gx, gy, None


class Shift(nn.Module):
    """Stand-in for ``cuda.shift.Shift`` (same parameters and init)."""

    def __init__(self, channel, stride, init_scale=3):
        super().__init__()
        self.stride = stride
        self.xpos = nn.Parameter(torch.zeros(channel))
        self.ypos = nn.Parameter(torch.zeros(channel))
        self.xpos.data.uniform_(-1e-8, 1e-8)
        self.ypos.data.uniform_(-init_scale, init_scale)

    def forward(self, inp):
        return KernelShiftFunction.apply(inp, self.xpos, self.ypos, self.stride)


def self_check() -> None:
    """The transcribed backward against autograd through the transcribed forward (float64):
    the kernel's input gradient is the exact adjoint, its y-gradient has the exact sign."""
    g = torch.Generator().manual_seed(5)
    for stride in (1, 2):
        inp = torch.randn(3, 5, 12, 4, generator=g, dtype=torch.float64, requires_grad=True)
        xpos = (torch.rand(5, generator=g, dtype=torch.float64) - 0.5) * 2e-8
        ypos = torch.tensor([-2.3, -0.7, 0.0, 0.4, 1.9], dtype=torch.float64)
        gout = torch.randn(3, 5, 12 // stride, 4, generator=g, dtype=torch.float64)
        yp = (ypos + 0.5 if stride > 1 else ypos).requires_grad_(True)
        kernel_forward(inp, xpos, yp, stride)[0].backward(gout)
        ypos.requires_grad_(True)
        inp2 = inp.detach().clone().requires_grad_(True)
        KernelShiftFunction.apply(inp2, xpos.clone().requires_grad_(True), ypos, stride).backward(gout)
        assert torch.allclose(inp2.grad, inp.grad, atol=1e-12), stride
        assert torch.equal(torch.sign(ypos.grad), torch.sign(yp.grad)), stride


def install_stand_ins() -> None:
    shift = types.ModuleType("cuda.shift")
    shift.Shift = Shift  # type: ignore[attr-defined]
    pkg = types.ModuleType("cuda")
    pkg.shift = shift  # type: ignore[attr-defined]
    sys.modules["cuda"], sys.modules["cuda.shift"] = pkg, shift
    np.int = int  # type: ignore[attr-defined]

    def cpu(fn):
        def wrapped(*a, **k):
            if str(k.get("device", "")).startswith("cuda"):
                k["device"] = "cpu"
            return fn(*a, **k)
        return wrapped
    torch.zeros, torch.ones = cpu(torch.zeros), cpu(torch.ones)


def build(official) -> nn.Module:
    torch.manual_seed(0)
    model = official.Model(num_class=60, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph",
                           graph_args={"labeling_mode": "spatial"})
    a = model.graph.A
    c_in = 3
    for i, (c_out, s) in enumerate(zip(WIDTHS, STRIDES), start=1):
        setattr(model, f"l{i}", official.TCN_GCN_unit(c_in, c_out, a, stride=s, residual=i > 1))
        c_in = c_out
    model.fc = nn.Identity()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                k = mod.num_features
                mod.weight.copy_(1.0 + 0.3 * torch.randn(k, generator=g))
                mod.bias.copy_(0.2 * torch.randn(k, generator=g))
                mod.running_mean.copy_(0.3 * torch.randn(k, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(k, generator=g))
        for name, p in model.named_parameters():
            if name.endswith(("Feature_Mask", "Linear_bias")):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
        for v in model.state_dict().values():
            if v.is_floating_point():
                q, e = quantise(v)
                v.copy_(torch.from_numpy(q).float() * 2.0 ** e)
    return model


def grads(model: nn.Module, x: torch.Tensor, tag: str, out: dict) -> None:
    """In float64: the train-mode input gradient is ill-conditioned in float32 (batch norms
    over few rows; float32 rounding alone moves the official one by ~4e-3 from its float64
    value), so gradients are recorded, and compared, in float64."""
    model.double()
    xg = x.double().clone().requires_grad_(True)
    model.zero_grad()
    loss = loss_of(model(xg))
    loss.backward()
    out[f"{tag}/loss"] = np.float64(loss.item())
    out[f"{tag}/grad/x"] = xg.grad.numpy().copy()
    for name, p in model.named_parameters():
        if name in GRAD_PARAMS or name.endswith("ypos"):
            out[f"{tag}/grad/{name}"] = p.grad.numpy().copy()
    model.float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/shiftgcn.npz"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    self_check()
    install_stand_ins()
    sys.path.insert(0, str(args.checkout))
    official = importlib.import_module("model.shift_gcn")
    model = build(official)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    packed = {k: v for k, v in state.items() if not k.endswith((".shift_in", ".shift_out"))}
    out: dict[str, np.ndarray] = pack_state(packed)
    out.update({"x": fixed_input().numpy(), "widths": np.asarray(WIDTHS, np.int64),
                "strides": np.asarray(STRIDES, np.int64)})
    for i in INDEX_UNITS:
        for d in ("shift_in", "shift_out"):
            out[f"index/l{i}.{d}"] = state[f"l{i}.gcn1.{d}"].numpy().astype(np.int16)
    x = fixed_input()

    def fresh() -> nn.Module:
        model.float()
        model.load_state_dict(state)
        return model

    with torch.no_grad():
        out["eval/out"] = fresh().eval()(x).numpy()
        m = fresh().train()
        out["train/out"] = m(x).numpy()
        record_bn_stats(m, ("data_bn", "l5.tcn1.bn2", "l8.residual.bn"), out)
    grads(fresh().train(), x, "train", out)
    grads(fresh().eval(), x, "eval", out)
    save_npz(out, args.out, REPO, COMMIT)


if __name__ == "__main__":
    main()
