"""Speed targets of the ST-GCN path, each as a ratio against a baseline measured in the same run.

1. Training step: ``baseline`` is a straightforward transcription of the official ST-GCN
   algorithm written here (graph conv as conv -> einsum, per-slot batch norm, the official
   block layout) under the C library's default allocator; ``product`` is
   ``zsbench_encoders.stgcn.STGCN`` as ``zsbench run`` uses it (allocator tuned by
   ``zsbench.cpu.tune_allocator``). Both load the same weights; their loss and gradients
   are compared (max abs difference printed, must be <= 1e-5). Each variant runs in its own
   process (allocator settings are process-wide), alternated ``--repeat`` times.
2. Feature extraction (eval mode): the plain pass over every body slot vs the product's
   pass that computes the all-zero second body once (``--single`` = share of single-actor
   samples, default 0.8 like NTU); outputs compared.
3. ``--runs``: wall time of ``zsbench run --plugin M --protocol synse`` on the embedded
   benchmark, cold (fresh cache) and warm, per method given.

    python benchmarks/bench_speed.py [--threads 2] [--repeat 3] [--steps 4] [--runs devise,dvta]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "harness"), str(ROOT / "plugins")]


# ---- the baseline: a plain transcription of the official algorithm ----------------------
def baseline_stgcn(hidden: int, out_dim: int, dropout: float):
    import torch
    from torch import nn

    from zsbench.nn.graph import Graph

    class GCN(nn.Module):
        def __init__(self, cin: int, cout: int, k: int) -> None:
            super().__init__()
            self.k = k
            self.conv = nn.Conv2d(cin, cout * k, 1)

        def forward(self, x, a):
            x = self.conv(x)
            n, kc, t, v = x.size()
            x = x.view(n, self.k, kc // self.k, t, v)
            return torch.einsum("nkctv,kvw->nctw", (x, a)).contiguous()

    class Block(nn.Module):
        def __init__(self, cin, cout, k, stride, p, residual):
            super().__init__()
            self.gcn = GCN(cin, cout, k)
            self.tcn = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                     nn.Conv2d(cout, cout, (9, 1), (stride, 1), (4, 0)),
                                     nn.BatchNorm2d(cout), nn.Dropout(p, inplace=True))
            self.kind = residual
            if residual == "conv":
                self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, (stride, 1)),
                                              nn.BatchNorm2d(cout))
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x, a):
            res = 0 if self.kind == "none" else (x if self.kind == "identity" else self.residual(x))
            return self.relu(self.tcn(self.gcn(x, a)) + res)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            adj = torch.tensor(Graph().A, dtype=torch.float32)
            self.register_buffer("A", adj)
            k = adj.shape[0]
            self.data_bn = nn.BatchNorm1d(3 * 25)
            widths = [hidden] * 4 + [2 * hidden] * 3 + [4 * hidden] * 2 + [out_dim]
            strides = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
            blocks, cin = [], 3
            for i, (c, s) in enumerate(zip(widths, strides)):
                kind = "none" if i == 0 else ("identity" if (cin == c and s == 1) else "conv")
                blocks.append(Block(cin, c, k, s, 0.0 if i == 0 else dropout, kind))
                cin = c
            self.blocks = nn.ModuleList(blocks)
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones_like(adj))
                                                     for _ in blocks])

        def forward(self, x):
            n, c, t, v, m = x.size()
            x = x.permute(0, 4, 3, 1, 2).contiguous().view(n * m, v * c, t)
            x = self.data_bn(x)
            x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
            for block, imp in zip(self.blocks, self.edge_importance):
                x = block(x, self.A * imp)
            _, c2, t2, v2 = x.size()
            return x.view(n, m, c2, t2, v2).mean(dim=1).mean(dim=(2, 3))

    return Model()


def _models(args):
    import torch

    from zsbench_encoders.configs import STGCNConfig
    from zsbench_encoders.stgcn import STGCN

    torch.manual_seed(0)
    product = STGCN(STGCNConfig(hidden_channels=args.hidden, dropout=0.0))
    base = baseline_stgcn(args.hidden, product.feature_dim, 0.0)
    base.load_state_dict(product.state_dict())
    return base, product


def _batch(args, single: float = 0.0):
    import torch

    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, args.frames, 25, 2, generator=g)
    n_single = int(round(single * args.batch))
    x[:n_single, :, :, :, 1] = 0
    y = torch.randint(0, 60, (args.batch,), generator=g)
    return x, y


# ---- one measurement, in a fresh process --------------------------------------------------
def child(args) -> dict:
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    if args.variant.startswith("product"):
        from zsbench.cpu import tune_allocator

        tune_allocator()
    base, product = _models(args)
    model = base if args.variant.startswith("baseline") else product
    if args.task == "train":
        head = nn.Linear(model.feature_dim if hasattr(model, "feature_dim") else
                         product.feature_dim, 60)
        torch.manual_seed(2)
        head.reset_parameters()
        opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1,
                              momentum=0.9, weight_decay=1e-4)
        x, y = _batch(args)
        model.train()

        def step():
            loss = nn.functional.cross_entropy(head(model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        for _ in range(args.warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = time.perf_counter() - t0
        return {"samples_per_s": args.batch * args.steps / dt}
    x, _ = _batch(args, args.single)
    model.eval()
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            model(x)
        dt = time.perf_counter() - t0
    return {"samples_per_s": args.batch * args.steps / dt}


def equivalence(args) -> dict:
    """Same weights, same batch: loss, gradients (train) and features (eval) compared."""
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    base, product = _models(args)
    head = nn.Linear(product.feature_dim, 60)
    x, y = _batch(args, args.single)
    out = {}
    grads = []
    for model in (base, product):
        model.train()
        model.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(head(model(x)), y)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    out["train_loss_diff"] = abs(grads[0][0] - grads[1][0])
    out["train_grad_max_diff"] = max(float((a - b).abs().max()) for a, b in
                                     zip(grads[0][1], grads[1][1]))
    base.eval()
    product.eval()
    with torch.no_grad():
        out["eval_feature_max_diff"] = float((base(x) - product(x)).abs().max())
    return out


def _spawn(args, variant: str, task: str) -> float:
    cmd = [sys.executable, __file__, "--child", variant, "--task", task,
           "--threads", str(args.threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--batch", str(args.batch),
           "--frames", str(args.frames), "--hidden", str(args.hidden),
           "--single", str(args.single)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_per_s"]


def paired(args, task: str) -> tuple[float, float, float]:
    """Median samples/s of baseline and product, and the median of pairwise ratios."""
    b, p = [], []
    for _ in range(args.repeat):
        b.append(_spawn(args, "baseline", task))
        p.append(_spawn(args, "product", task))
    ratios = [pi / bi for pi, bi in zip(p, b)]
    return statistics.median(b), statistics.median(p), statistics.median(ratios)


def embedded_runs(methods: list[str]) -> list[tuple[str, float, float]]:
    rows = []
    for m in methods:
        with tempfile.TemporaryDirectory() as tmp:
            times = []
            for run_id in ("cold", "warm"):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "zsbench", "run", "--plugin", m,
                                "--protocol", "synse", "--device", "cpu", "--cache-dir",
                                f"{tmp}/cache", "--out", f"{tmp}/out", "--run-id", run_id],
                               check=True, capture_output=True,
                               env=dict(os.environ, ZSBENCH_PROGRESS="0", HF_HUB_OFFLINE="1"))
                times.append(time.perf_counter() - t0)
        rows.append((m, times[0], times[1]))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--single", type=float, default=0.8)
    ap.add_argument("--runs", default="", help="comma-separated methods for embedded-run wall times")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--task", default="train", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.variant = args.child
        print(json.dumps(child(args)))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, {args.threads} thread(s); batch {args.batch} x "
          f"(3, {args.frames}, 25, 2), ST-GCN h={args.hidden}, {args.repeat} paired run(s)")
    eq = equivalence(args)
    print("equivalence (same weights and batch): " + ", ".join(f"{k} {v:.2e}" for k, v in eq.items()))
    ok = max(eq.values()) <= 1e-5
    b, p, r = paired(args, "train")
    print(f"1. training step   baseline {b:7.1f}  product {p:7.1f} samples/s   ratio {r:.2f}x "
          "(target >= 1.5x)")
    b, p, r = paired(args, "extract")
    print(f"2. extraction      baseline {b:7.1f}  product {p:7.1f} samples/s   ratio {r:.2f}x "
          f"(target >= 2x; {args.single:.0%} single-actor samples)")
    if args.runs:
        for m, cold, warm in embedded_runs([s for s in args.runs.split(",") if s]):
            print(f"3. zsbench run --plugin {m} --protocol synse: cold {cold:.1f} s, warm {warm:.1f} s "
                  "(targets 40 s / 15 s)")
    if not ok:
        print("EQUIVALENCE FAILED: outputs differ by more than 1e-5")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
