"""Embedded-benchmark metrics under autocast against float32 (issue 15, target 5: "metrics
within 0.5 points of fp32").

Two measurements, because they answer different questions:

1. **Training and extraction under autocast** (``encoder.autocast=<dtype>`` for the whole
   run: the seen-class pretraining and the feature extraction), over several seeds, against
   float32 runs of the same seeds. Training in another precision changes the optimisation
   trajectory, so single-seed differences mix the precision's effect with seed noise: the
   script prints every seed, the mean and standard deviation per metric, and the difference
   of the means next to the float32 seed spread.
2. **Extraction only** (deterministic): the float32-pretrained encoder of each seed-0 fold
   (read from the cache the float32 run filled) extracts every sample's features in float32
   and under autocast; the method then runs on both feature sets (``--encoder precomputed``,
   one fold at a time) and the metric differences are printed. This isolates what the lower
   precision does to the features themselves. Only for methods on frozen features.

    python benchmarks/bench_autocast_metrics.py [--method devise] [--protocol synse]
        [--seeds 0,1,2] [--autocast bf16] [--device cpu] [--cache-dir DIR] [--keep DIR]

Every run is a ``zsbench run`` subprocess with the cache in ``--cache-dir`` (default: a
temporary folder, so the float32 pretraining is measured cold); results land in ``--keep``
(default: a temporary folder, deleted). Runs go one at a time (two torch processes on a
2-core machine slow each other several-fold).
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
METRICS = ("zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h")
TARGET = 0.5   # points


def zsbench_run(args: argparse.Namespace, run_id: str, out: Path, sets: list[str],
                extra: list[str] = ()) -> dict:
    """One ``zsbench run`` subprocess; returns its result record (exits on failure)."""
    cmd = [sys.executable, "-m", "zsbench", "run", "--plugin", args.method, "--protocol",
           args.protocol, "--dataset", "synthetic", "--device", args.device, "--cache-dir",
           str(args.cache_dir), "--out", str(out), "--run-id", run_id, *extra]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, ZSBENCH_PROGRESS="0", HF_HUB_OFFLINE="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"zsbench run failed ({' '.join(cmd)}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    rec = json.loads((out / run_id / "result.json").read_text(encoding="utf-8"))
    rec["_seconds"] = time.perf_counter() - t0
    return rec


def summary(rec: dict) -> dict[str, float]:
    """The record's metrics averaged over its folds (the runner's ``summary``), those it has."""
    return {m: v for m, v in rec["summary"].items() if m in METRICS and v is not None}


def _fmt(vals: list[float]) -> str:
    if len(vals) > 1:
        return f"{statistics.fmean(vals):6.2f} +- {statistics.stdev(vals):5.2f}"
    return f"{vals[0]:6.2f}" if vals else "   -  "


def part1(args: argparse.Namespace, seeds: list[int]) -> dict[int, dict]:
    print(f"1. training and extraction under autocast={args.autocast} vs float32, "
          f"{args.method} --protocol {args.protocol}, seeds {seeds}")
    recs: dict[tuple[str, int], dict] = {}
    for seed in seeds:
        for ac in ("off", args.autocast):
            rec = zsbench_run(args, f"{ac}-s{seed}", args.keep, [f"seed={seed}",
                                                                 f"encoder.autocast={ac}"])
            recs[(ac, seed)] = rec
            vals = summary(rec)
            print(f"   seed {seed} autocast {ac:4s} ({rec['_seconds']:5.1f} s): "
                  + "  ".join(f"{m} {vals[m]:6.2f}" for m in METRICS if m in vals), flush=True)
    print("   metric            float32 (mean +- sd)   autocast (mean +- sd)   diff of means  "
          f"within {TARGET} / within the float32 sd")
    means = {key: summary(rec) for key, rec in recs.items()}
    for m in METRICS:
        a = [means[("off", s)].get(m) for s in seeds]
        b = [means[(args.autocast, s)].get(m) for s in seeds]
        if None in a or None in b:
            continue
        d = statistics.fmean(b) - statistics.fmean(a)
        sd = statistics.stdev(a) if len(a) > 1 else float("nan")
        print(f"   {m:17s} {_fmt(a):>20s}   {_fmt(b):>20s}   {d:+7.2f}        "
              f"{'yes' if abs(d) <= TARGET else 'no'} / {'yes' if abs(d) <= sd else 'no'}")
    return {s: recs[("off", s)] for s in seeds}


def part2(args: argparse.Namespace, rec: dict) -> None:
    """Extraction only: the float32-pretrained encoder of each fold, features in float32
    and under autocast, the method on both (precomputed features)."""
    import numpy as np
    import torch

    from zsbench.config import build_run_config
    from zsbench.plugins import load_plugins
    from zsbench.pretrain import extract_features
    from zsbench.runner import dataset_and_folds
    from zsbench.setup import resolve

    print(f"2. extraction only: float32-pretrained encoders (seed {rec['seed']}), features in "
          f"float32 and under autocast={args.autocast}, {args.method} on both")
    if rec["config"].get("encoder") not in (None, "stgcn") or not rec["folds"][0].get("encoder"):
        print("   skipped: the method does not run on frozen ST-GCN features")
        return
    cfg = build_run_config({"plugin": args.method, "protocol": args.protocol,
                            "dataset": "synthetic", "cache_dir": str(args.cache_dir),
                            "seed": rec["seed"]}, [])
    plugins = load_plugins()
    comp = resolve(plugins, cfg)
    dataset, _ = dataset_and_folds(cfg, plugins, comp)
    from zsbench_encoders.configs import STGCNConfig
    from zsbench_encoders.stgcn import STGCN

    options = dict(rec["config"]["encoder_options"])
    every = np.arange(len(dataset), dtype=np.int64)
    for fold in rec["folds"]:
        enc = fold["encoder"]
        ckpt = Path(args.cache_dir) / "encoders" / enc["fingerprint"] / "checkpoint.pt"
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["encoder"]
        feats = {}
        for ac in ("off", args.autocast):
            model = STGCN(STGCNConfig(**{**options, "autocast": ac}))
            model.load_state_dict(state)
            model.to(args.device)
            feats[ac] = extract_features(model, dataset, every, args.device)
        diff = np.abs(feats[args.autocast] - feats["off"])
        scale = float(np.abs(feats["off"]).max())
        print(f"   {fold['name']}: feature max abs diff {diff.max():.3g} "
              f"({diff.max() / scale:.2%} of the largest feature), mean {diff.mean():.3g}")
        vals = {}
        for ac, f in feats.items():
            path = args.keep / f"features-{fold['name'].replace('/', '_')}-{ac}.npy"
            np.save(path, f)
            r = zsbench_run(args, f"pre-{ac}-{fold['name'].replace('/', '_')}", args.keep,
                            [f"seed={rec['seed']}", f"encoder.path={path}",
                             f"encoder.trained_on={json.dumps(enc['trained_on'])}",
                             f"folds={json.dumps([fold['name']])}"],
                            ["--encoder", "precomputed"])
            vals[ac] = summary(r)
        for m in METRICS:
            if m in vals["off"]:
                d = vals[args.autocast][m] - vals["off"][m]
                print(f"      {m:17s} float32 {vals['off'][m]:6.2f}  autocast "
                      f"{vals[args.autocast][m]:6.2f}  diff {d:+6.2f}  "
                      f"{'within' if abs(d) <= TARGET else 'OUTSIDE'} {TARGET}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="devise")
    ap.add_argument("--protocol", default="synse")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--autocast", default="bf16", choices=["bf16", "fp16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="folder for records and features")
    ap.add_argument("--skip-training", action="store_true",
                    help="part 2 only (needs the seed's float32 run; runs it if missing)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs (load average {load:.1f} at start), device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        args.cache_dir = args.cache_dir or Path(tmp) / "cache"
        args.keep = args.keep or Path(tmp) / "runs"
        args.keep.mkdir(parents=True, exist_ok=True)
        if args.skip_training:
            first = zsbench_run(args, f"off-s{seeds[0]}-only", args.keep,
                                [f"seed={seeds[0]}", "encoder.autocast=off"])
        else:
            first = part1(args, seeds)[seeds[0]]
        part2(args, first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
