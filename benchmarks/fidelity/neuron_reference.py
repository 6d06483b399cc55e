"""Reference tensors from the OFFICIAL Neuron code (cseeyangchen/Neuron) for
tests/test_neuron.py.

Usage::

    python benchmarks/fidelity/neuron_reference.py --checkout /tmp/official/Neuron \
        [--out tests/fidelity/neuron.npz]

The checkout is imported as is (``model/shiftgcn_match.py``, class ``ModelMatch``); nothing
in it is edited. What this script changes at runtime, and why:

* ``shiftgcn_match`` imports the compiled CUDA op ``cuda.shift`` at import time; a stand-in
  module with an unused ``Shift`` class is put in ``sys.modules`` (the op belongs to the
  Shift-GCN encoder, which is not part of this comparison).
* The frozen Shift-GCN inside ``ModelMatch`` (``feature_extractor``) allocates CUDA tensors:
  the module-level name ``shiftgcn_match.Model`` is replaced by a pass-through whose
  forward returns the given ``(B, C, T, V)`` feature map as ``cube_feature``. So the
  reference covers exactly what Neuron adds on top of the encoder (prototypes, spatial
  compression, temporal memory, projections, text matching) and the training loss.
* ``ModelMatch.forward`` calls ``.cuda()`` on its mask: ``torch.Tensor.cuda`` becomes a
  no-op so everything runs on the CPU.
* The layers have fixed widths (256 channels, 768-d text), i.e. 2M parameters, too large
  for a committed file. After construction every layer is replaced by one of the same
  kind with C = 16 channels and a 12-d text space (the forward code is unchanged; it
  hard-codes only the 25 joints, the 80 prototypes, the 20-per-phase drop, the 5/10-step
  temporal prefixes and the top-10 text pooling, which are kept). All weights are seeded,
  float16-exact values.

Recorded (float32): the feature map (B = 4, C = 16, T = 16, V = 25), the text tensors of
the three spatial and three temporal phases (K = 5 classes x 10 descriptions x 12), the
labels, every weight under its official state-dict name; the inputs of the two projection
layers per phase (the pooled prototypes x_s^e, x_t^e, via forward hooks); the six logit
matrices; the official training loss ((mean of 3 spatial CE + mean of 3 temporal CE) / 2,
``main_match.py: train``) and the gradient of every weight; ``repo`` and ``commit``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = "cseeyangchen/Neuron"
PINNED = "7939873c2f63c24e591bca65de8fabc2b3ac90d6"
B, C, T, V, P = 4, 16, 16, 25, 80
K, NA, D = 5, 10, 12
LABELS = [0, 3, 1, 4]


def install_stand_ins() -> None:
    shift = types.ModuleType("cuda.shift")

    class Shift(nn.Module):  # never used: the encoder is replaced below
        def __init__(self, *args, **kwargs) -> None:
            super().__init__()

    shift.Shift = Shift  # type: ignore[attr-defined]
    pkg = types.ModuleType("cuda")
    pkg.shift = shift  # type: ignore[attr-defined]
    sys.modules["cuda"], sys.modules["cuda.shift"] = pkg, shift
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]


class PassThrough(nn.Module):
    """Stands in for the frozen Shift-GCN: ``forward(cube) -> (None, None, cube)``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, x):
        return None, None, x


def f16(gen: torch.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return ((torch.randn(*shape, generator=gen) * scale) + shift).half().float()


def mlp(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c), nn.ReLU())


def shrink(model: nn.Module) -> None:
    """Same layer kinds as ModelMatch.__init__, at C channels and a D-d text space."""
    model.spatial_prototype = nn.Embedding(P, C)
    model.temporal_prototype = nn.Embedding(P, C)
    model.fc_spatial, model.fc_temporal = mlp(C), mlp(C)
    model.spatial_project = nn.Sequential(nn.Linear(C, D), nn.ReLU())
    model.temporal_project = nn.Sequential(nn.Linear(C, D), nn.ReLU())
    for name in ("update_spatial", "update_temporal", "memory_temporal", "recall_temporal"):
        setattr(model, name, nn.ModuleList([mlp(C) for _ in range(3)]))


def randomise(model: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("prototype.weight"):
                p.copy_(f16(gen, *p.shape))               # nn.Embedding init: N(0, 1)
            elif name.endswith("bias"):
                p.copy_(f16(gen, *p.shape, scale=0.1, shift=0.05))
            else:
                p.copy_(f16(gen, *p.shape, scale=1.0 / np.sqrt(p.shape[1])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkout", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("tests/fidelity/neuron.npz"))
    ap.add_argument("--commit", default=PINNED, help="commit of the checkout when it is not a "
                    "git work tree (an archive export)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    install_stand_ins()
    sys.path.insert(0, str(args.checkout.resolve()))
    from model import shiftgcn_match  # noqa: E402  (the checkout's model package)

    commit = args.commit
    if (args.checkout / ".git").exists():
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.checkout,
                                capture_output=True, text=True, check=True).stdout.strip()
    shiftgcn_match.Model = PassThrough
    torch.manual_seed(0)
    model = shiftgcn_match.ModelMatch(num_class=K, graph="unused")
    shrink(model)
    gen = torch.Generator().manual_seed(2025)
    randomise(model, gen)
    model.train()

    cube = torch.relu(f16(gen, B, C, T, V, scale=1.0, shift=0.3))
    spatial = [f16(gen, K, NA, D) for _ in range(3)]
    temporal = [f16(gen, K, NA, D) for _ in range(3)]
    labels = torch.tensor(LABELS)

    pooled: dict[str, list[torch.Tensor]] = {"spatial": [], "temporal": []}
    model.spatial_project.register_forward_hook(
        lambda m, inp, out: pooled["spatial"].append(inp[0].detach().clone()))
    model.temporal_project.register_forward_hook(
        lambda m, inp, out: pooled["temporal"].append(inp[0].detach().clone()))
    out_s, out_t = model(cube, spatial, temporal)
    ce = nn.CrossEntropyLoss()
    loss_s = sum(ce(o, labels) for o in out_s) / 3
    loss_t = sum(ce(o, labels) for o in out_t) / 3
    loss = (loss_s + loss_t) / 2
    model.zero_grad()
    loss.backward()

    rec: dict[str, np.ndarray] = {
        "repo": np.array(REPO), "commit": np.array(commit),
        "cube": cube.numpy(), "labels": labels.numpy(),
        "spatial_texts": torch.stack(spatial).numpy(),
        "temporal_texts": torch.stack(temporal).numpy(),
        "logits_spatial": torch.stack(out_s).detach().numpy(),
        "logits_temporal": torch.stack(out_t).detach().numpy(),
        "pooled_spatial": torch.stack(pooled["spatial"]).numpy(),
        "pooled_temporal": torch.stack(pooled["temporal"]).numpy(),
        "loss": np.array(loss.item(), dtype=np.float32),
        "loss_spatial": np.array(loss_s.item(), dtype=np.float32),
        "loss_temporal": np.array(loss_t.item(), dtype=np.float32),
    }
    for name, p in model.named_parameters():
        rec[f"w/{name}"] = p.detach().numpy().copy()
        if p.grad is not None:
            rec[f"g/{name}"] = p.grad.numpy().copy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **rec)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) from {REPO}@{commit}; "
          f"loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
