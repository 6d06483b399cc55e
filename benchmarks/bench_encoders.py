"""Training-step throughput of the built-in skeleton encoders (CPU by default).

One step = forward, cross-entropy through a Linear(D -> 60) head, backward, Adam update, on a
batch of (64, 3, 50, 25, 2) random skeletons. Prints samples/s per encoder and the ratio to
ST-GCN (the baseline).

    PYTHONPATH=harness:plugins python benchmarks/bench_encoders.py [--steps 5] [--warmup 2]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from zsbench_encoders.configs import ShiftGCNConfig, STGCNConfig
from zsbench_encoders.shiftgcn import ShiftGCN
from zsbench_encoders.stgcn import STGCN


def throughput(encoder: nn.Module, batch: int, frames: int, steps: int, warmup: int,
               device: str) -> float:
    """Samples per second of full training steps (after ``warmup`` untimed steps)."""
    torch.manual_seed(0)
    encoder = encoder.to(device).train()
    head = nn.Linear(encoder.feature_dim, 60).to(device)
    opt = torch.optim.Adam(list(encoder.parameters()) + list(head.parameters()), lr=1e-3)
    x = torch.randn(batch, 3, frames, 25, 2, device=device)
    y = torch.randint(0, 60, (batch,), device=device)

    def step() -> None:
        loss = nn.functional.cross_entropy(head(encoder(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    encoders = {
        "stgcn (h=16)": lambda: STGCN(STGCNConfig(hidden_channels=16)),
        "shiftgcn (joint)": lambda: ShiftGCN(ShiftGCNConfig()),
    }
    print(f"torch {torch.__version__}, device={args.device}, threads={torch.get_num_threads()}, "
          f"batch={args.batch}, frames={args.frames}, steps={args.steps} (+{args.warmup} warm-up)")
    base = None
    for name, build in encoders.items():
        enc = build()
        params = sum(p.numel() for p in enc.parameters())
        sps = throughput(enc, args.batch, args.frames, args.steps, args.warmup, args.device)
        base = base or sps
        print(f"{name:18s} params={params:>9,d}  {sps:8.1f} samples/s  "
              f"({sps / base:.2f}x stgcn)")


if __name__ == "__main__":
    main()
