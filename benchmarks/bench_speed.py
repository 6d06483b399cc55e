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
   benchmark, cold (fresh cache) and warm, per method given (default ``devise,synse``: the
   ST-GCN and the Shift-GCN pipelines; ``all``: every installed method, ~30 min on 2 cores;
   ``none``: skip).

    python benchmarks/bench_speed.py [--threads 2] [--repeat 3] [--steps 4] [--runs devise,dvta]
        [--variants "product product:graph_order=conv_first ..."] [--tasks train,extract]
        [--interleaved] [--device cuda]
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


def _models(args, dropout: float = 0.0, overrides: dict | None = None):
    import torch

    from zsbench_encoders.configs import STGCNConfig
    from zsbench_encoders.stgcn import STGCN

    torch.manual_seed(0)
    product = STGCN(STGCNConfig(hidden_channels=args.hidden, dropout=dropout,
                                **(overrides or {})))
    base = baseline_stgcn(args.hidden, product.feature_dim, dropout)
    base.load_state_dict(product.state_dict())
    return base, product


def _overrides(variant: str) -> dict:
    """``product`` or ``product:key=value,key=value`` (STGCNConfig speed options, and
    ``malloc=default`` for the C library's allocator defaults)."""
    _, _, spec = variant.partition(":")
    out = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        out[key] = {"true": True, "false": False}.get(value, value)
    return out


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
    overrides = _overrides(args.variant) if args.variant.startswith("product") else None
    if overrides is not None and overrides.pop("malloc", "tuned") == "tuned":
        from zsbench.cpu import tune_allocator

        tune_allocator()
    base, product = _models(args, args.dropout if args.task == "train" else 0.0, overrides)
    dev = torch.device(args.device)
    model = (base if args.variant.startswith("baseline") else product).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    if args.task == "train":
        head = nn.Linear(product.feature_dim, 60)
        torch.manual_seed(2)
        head.reset_parameters()
        head.to(dev)
        opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.1,
                              momentum=0.9, weight_decay=1e-4)
        x, y = (t.to(dev) for t in _batch(args))
        model.train()

        def step():
            loss = nn.functional.cross_entropy(head(model(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        for _ in range(args.warmup):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        dt = time.perf_counter() - t0
        return {"samples_per_s": args.batch * args.steps / dt}
    x = _batch(args, args.single)[0].to(dev)
    model.eval()
    with torch.no_grad():
        for _ in range(args.warmup):
            model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            model(x)
        sync()
        dt = time.perf_counter() - t0
    return {"samples_per_s": args.batch * args.steps / dt}


def _loss_and_grads(model, head, x, y, seed: int = 3):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model.train()
    model.zero_grad(set_to_none=True)
    head.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(head(model(x)), y)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def equivalence(args) -> dict:
    """Same weights, same batch: loss, gradients (train, dropout off: the product draws
    other masks) and features (eval) compared. ``_rel``: relative to the largest gradient
    entry of the model. In float32 neither path is exact: ten training-mode batch norms
    amplify rounding in the backward pass (the baseline's own float32 gradients differ from
    its float64 ones by ~3e-5), so the exactness check is done in float64 and the float32
    errors of both paths against float64 are printed."""
    import copy

    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    base, product = _models(args)
    head = nn.Linear(product.feature_dim, 60)
    x, y = _batch(args, args.single)
    (lb, gb), (lp, gp) = (_loss_and_grads(m, head, x, y) for m in (base, product))
    scale = max(float(g.abs().max()) for g in gb)
    out = {"train_loss_diff": abs(lb - lp),
           "train_grad_max_diff": max(float((a - b).abs().max()) for a, b in zip(gb, gp)),
           "train_grad_max_diff_rel": max(float((a - b).abs().max()) for a, b in zip(gb, gp))
           / scale}
    # the rounding of each float32 path against the float64 baseline: the exact-math check
    # is float64 product vs float64 baseline (the fast path is an exact rewrite)
    base64, product64 = copy.deepcopy(base).double(), copy.deepcopy(product).double()
    head64 = copy.deepcopy(head).double()
    (l64, g64), (lp64, gp64) = (_loss_and_grads(m, head64, x.double(), y)
                                for m in (base64, product64))
    out["float64_grad_max_diff"] = max(float((a - b).abs().max()) for a, b in zip(g64, gp64))
    out["float64_loss_diff"] = abs(l64 - lp64)
    out["baseline_fp32_grad_err"] = max(float((a.double() - b).abs().max()) for a, b in zip(gb, g64))
    out["product_fp32_grad_err"] = max(float((a.double() - b).abs().max()) for a, b in zip(gp, g64))
    base.eval()
    product.eval()
    with torch.no_grad():
        out["eval_feature_max_diff"] = float((base(x) - product(x)).abs().max())
    # the official order with torch's dropout is the baseline bit for bit, dropout on
    base, official = _models(args, args.dropout, {"graph_order": "conv_first",
                                                  "dropout_impl": "torch",
                                                  "fold_bn_eval": False})
    (lb, gb), (lo, go) = (_loss_and_grads(m, head, x, y) for m in (base, official))
    out["official_order_bitwise"] = float(lb == lo and all(torch.equal(a, b)
                                                           for a, b in zip(gb, go)))
    return out


def _spawn(args, variant: str, task: str) -> float:
    cmd = [sys.executable, __file__, "--child", variant, "--task", task,
           "--threads", str(args.threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--batch", str(args.batch),
           "--frames", str(args.frames), "--hidden", str(args.hidden),
           "--single", str(args.single), "--dropout", str(args.dropout),
           "--device", args.device]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_per_s"]


def paired(args, task: str, variants: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """Per variant: median samples/s, and the min / median / max of its ratio to the
    baseline of the same round (variants alternate within each round)."""
    rates: dict[str, list[float]] = {v: [] for v in ["baseline", *variants]}
    for _ in range(args.repeat):
        for v in rates:
            rates[v].append(_spawn(args, v, task))
    out = {}
    for v, r in rates.items():
        ratios = [a / b for a, b in zip(r, rates["baseline"])]
        out[v] = (statistics.median(r), min(ratios), statistics.median(ratios), max(ratios))
    return out


def interleaved(args, task: str, variants: list[str]) -> dict[str, tuple[float, float, float, float]]:
    """All variants in this process (allocator tuned for all, which favours the baseline),
    alternating step by step (order reversed every other round): on a loaded machine the
    rounds see the same load. Ratios of CPU time per step (``time.process_time``)."""
    import torch
    from torch import nn

    from zsbench.cpu import tune_allocator

    tune_allocator()
    torch.set_num_threads(args.threads)
    train = task == "train"
    x, y = _batch(args, 0.0 if train else args.single)
    runs = {}
    for v in ["baseline", *variants]:
        overrides = _overrides(v) if v.startswith("product") else None
        if overrides:
            overrides.pop("malloc", None)
        base, product = _models(args, args.dropout if train else 0.0, overrides)
        model = base if v == "baseline" else product
        if train:
            head = nn.Linear(product.feature_dim, 60)
            opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.01,
                                  momentum=0.9)

            def run(model=model, head=head, opt=opt):
                loss = nn.functional.cross_entropy(head(model(x)), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            model.train()
        else:
            def run(model=model):
                with torch.no_grad():
                    model(x)
            model.eval()
        runs[v] = run
    for run in runs.values():
        for _ in range(args.warmup):
            run()
    cpu: dict[str, list[float]] = {v: [] for v in runs}
    for r in range(args.repeat):
        for v in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            t0 = time.process_time()
            for _ in range(args.steps):
                runs[v]()
            cpu[v].append(time.process_time() - t0)
    out = {}
    for v, c in cpu.items():
        ratios = [b / a for a, b in zip(c, cpu["baseline"])]
        out[v] = (args.batch * args.steps / statistics.median(c), min(ratios),
                  statistics.median(ratios), max(ratios))
    return out


def _report(title: str, rows: dict, target: str) -> None:
    print(title)
    for v, (rate, lo, med, hi) in rows.items():
        print(f"   {v:48s} {rate:7.1f} samples/s   ratio min {lo:.2f} / median {med:.2f} / "
              f"max {hi:.2f}{target if v == 'product' else ''}")


def method_names(spec: str) -> list[str]:
    """``--runs`` value -> method names (``all``: every installed method plugin)."""
    if spec.strip() in ("", "none"):
        return []
    if spec.strip() == "all":
        from zsbench.plugins import load_plugins

        return sorted(load_plugins().methods.names())
    return [m.strip() for m in spec.split(",") if m.strip()]


def embedded_runs(methods: list[str], device: str = "cpu"):
    """Yields (method, cold seconds, warm seconds) as each method finishes (None for a run
    that failed; its output's tail is printed)."""
    for m in methods:
        with tempfile.TemporaryDirectory() as tmp:
            times: list[float | None] = []
            for run_id in ("cold", "warm"):
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "zsbench", "run", "--plugin", m, "--protocol", "synse",
                     "--device", device, "--cache-dir", f"{tmp}/cache", "--out", f"{tmp}/out",
                     "--run-id", run_id], capture_output=True, text=True,
                    env=dict(os.environ, ZSBENCH_PROGRESS="0", HF_HUB_OFFLINE="1"))
                if proc.returncode:
                    print(f"   {m} ({run_id}) failed with exit code {proc.returncode}:\n"
                          f"{(proc.stdout + proc.stderr)[-1500:]}")
                    times.append(None)
                    break
                times.append(time.perf_counter() - t0)
        times += [None] * (2 - len(times))
        yield m, times[0], times[1]


def verdict(sec: float | None, target: float) -> str:
    """One embedded-run time against its target (None: the run failed)."""
    if sec is None:
        return "  failed"
    return f"{sec:6.1f} s ({'met' if sec < target else 'NOT met'})"


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
    ap.add_argument("--dropout", type=float, default=0.5,
                    help="dropout of the timed training steps (the encoder's default)")
    ap.add_argument("--variants", default="product",
                    help="space-separated variants timed against the baseline: product or "
                         "product:key=value,... with STGCNConfig speed options")
    ap.add_argument("--tasks", default="train,extract")
    ap.add_argument("--device", default="cpu",
                    help="device of the timed runs (e.g. cuda; equivalence stays on the CPU)")
    ap.add_argument("--interleaved", action="store_true",
                    help="time all variants in one process, alternating, by CPU time (for a "
                         "loaded machine; the allocator is then tuned for the baseline too)")
    ap.add_argument("--runs", default="devise,synse",
                    help="comma-separated methods for embedded-run wall times, 'all' or 'none'")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--task", default="train", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.variant = args.child
        print(json.dumps(child(args)))
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs (load average {load:.1f} at start), {args.threads} "
          f"thread(s); batch {args.batch} x (3, {args.frames}, 25, 2), ST-GCN h={args.hidden}, "
          f"dropout {args.dropout} in training, {args.repeat} paired round(s)")
    eq = equivalence(args)
    print("equivalence (same weights and batch): " + ", ".join(f"{k} {v:.2e}" for k, v in eq.items()))
    ok = (eq["train_loss_diff"] <= 1e-5 and eq["float64_grad_max_diff"] <= 1e-10
          and eq["float64_loss_diff"] <= 1e-10 and eq["eval_feature_max_diff"] <= 1e-5
          and eq["official_order_bitwise"] == 1.0)
    variants = args.variants.split()
    tasks = args.tasks.split(",")
    if args.interleaved and args.device != "cpu":
        ap.error("--interleaved measures CPU time: use it with --device cpu")
    measure = interleaved if args.interleaved else paired
    unit = " (per CPU second, variants interleaved in one process)" if args.interleaved else ""
    if "train" in tasks:
        _report(f"1. training step (forward, backward, SGD step){unit}",
                measure(args, "train", variants), "   (target >= 1.5x)")
    if "extract" in tasks:
        _report(f"2. feature extraction (eval, no_grad; {args.single:.0%} single-actor "
                f"samples){unit}", measure(args, "extract", variants), "   (target >= 2x)")
    methods = method_names(args.runs)
    if methods:
        print("3. embedded runs, zsbench run --protocol synse (targets: cold < 40 s, warm < 15 s)")
        for m, cold, warm in embedded_runs(methods, args.device):
            print(f"   {m:16s} cold {verdict(cold, 40)}, warm {verdict(warm, 15)}", flush=True)
    if not ok:
        print("EQUIVALENCE FAILED: loss or eval features differ by more than 1e-5, float64 "
              "gradients by more than 1e-10, or the official order is not the baseline bit for bit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
