"""``zsbench sweep`` and ``zsbench compare`` (argument parsing; the work is in
``zsbench.sweep`` and ``zsbench.stats``). Cheap to import: nothing heavy at module level."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from .api import ZsbenchError


def add_parsers(sub: Any, plugin_args: Callable[[argparse.ArgumentParser], None]) -> None:
    sw = sub.add_parser(
        "sweep", help="run a matrix of methods x protocols x datasets x folds x seeds x "
        "variants into a resumable store (local, Ray or SLURM)",
        description="Expand SPEC (TOML/YAML; the flags add to or replace its keys) into cells, "
        "run the cells that are not done yet and write report.md with mean ± std over seeds. "
        "See docs/sweeps.md.")
    sw.add_argument("spec", nargs="?", type=Path, help="sweep spec file (TOML/YAML/JSON)")
    sw.add_argument("--methods", help="comma-separated method names")
    sw.add_argument("--protocols", help="comma-separated protocol names (default: synse)")
    sw.add_argument("--datasets", help="comma-separated dataset names (default: the protocol's)")
    sw.add_argument("--folds", help="'all' (one cell runs every fold, default), 'each' (a cell "
                    "per fold) or comma-separated fold names")
    sw.add_argument("--seeds", help="e.g. 0-4 or 0,1,2 (default: 0)")
    sw.add_argument("--variant", action="append", default=[], metavar="NAME[:KEY=VALUE]",
                    help="a named config variant; repeat to add overrides or variants "
                    "(replaces the spec's variants)")
    sw.add_argument("--set", dest="overrides", action="append", default=None,
                    metavar="KEY=VALUE", help="an override for every cell (added to the spec's)")
    sw.add_argument("--name", help="sweep folder name (default: the spec file's stem)")
    sw.add_argument("--out", type=Path, help="parent folder of the sweep (default: ./sweeps)")
    sw.add_argument("--reference", help="method the others are tested against in the report")
    sw.add_argument("--executor", choices=["local", "ray", "slurm"])
    sw.add_argument("--workers", help="local executor: N processes, or 'gpus' (one per GPU)")
    sw.add_argument("--cpus", type=int, help="CPU cores per cell")
    sw.add_argument("--gpus", type=int, help="GPUs per cell")
    sw.add_argument("--mem-gb", type=float, help="memory per cell (Ray, SLURM)")
    sw.add_argument("--timeout-min", type=int, help="SLURM time limit per cell")
    sw.add_argument("--ray-address", help="Ray cluster address ('auto' = the cluster this "
                    "machine belongs to); default: start a local Ray instance")
    sw.add_argument("--partition", help="SLURM partition")
    sw.add_argument("--account", help="SLURM account")
    sw.add_argument("--no-wait", action="store_true",
                    help="SLURM: submit and return (rerun with --dry-run to see progress)")
    sw.add_argument("--dry-run", action="store_true",
                    help="list the cells and their status (done/failed/running/pending); run nothing")
    sw.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    sw.add_argument("--report-only", action="store_true",
                    help="run nothing: write report.md from the records there are and print it")
    plugin_args(sw)

    cmp = sub.add_parser(
        "compare", help="paired significance test of runs A against runs B over matched folds "
        "and seeds, plus a bootstrap interval over test samples",
        description="Match the records under RUNS_A and RUNS_B by protocol, dataset, fold, seed "
        "and data fingerprint; test the differences (Wilcoxon signed-rank or paired t, "
        "scipy) and bootstrap them over test samples.")
    cmp.add_argument("runs_a", type=Path, metavar="RUNS_A")
    cmp.add_argument("runs_b", type=Path, metavar="RUNS_B")
    cmp.add_argument("--metric", action="append", default=None,
                     choices=["zsl_acc", "gzsl_acc_seen", "gzsl_acc_unseen", "gzsl_h"],
                     help="repeatable (default: zsl_acc and gzsl_h)")
    cmp.add_argument("--test", choices=["auto", "wilcoxon", "ttest"], default="auto",
                     help="auto: Wilcoxon from 6 pairs on, paired t below (default)")
    cmp.add_argument("--alpha", type=float, default=0.05)
    cmp.add_argument("--bootstrap", type=int, default=2000, metavar="N", help="resamples")
    cmp.add_argument("--a-where", action="append", default=[], metavar="KEY=VALUE",
                     help="keep only these runs of A (method, variant, protocol, dataset, fold)")
    cmp.add_argument("--b-where", action="append", default=[], metavar="KEY=VALUE")


def _list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise ZsbenchError(f"--seeds {text!r}: expected e.g. 0-4 or 0,1,2") from None
    return seeds


def parse_variants(items: list[str]) -> dict[str, list[str]] | None:
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        name, _, assignment = item.partition(":")
        if not name.strip():
            raise ZsbenchError(f"--variant {item!r}: expected NAME or NAME:KEY=VALUE")
        out.setdefault(name.strip(), [])
        if assignment:
            out[name.strip()].append(assignment)
    return out


def spec_flags(args: argparse.Namespace) -> dict[str, Any]:
    folds = args.folds if args.folds in ("all", "each") else _list(args.folds)
    workers: Any = args.workers
    if workers is not None and workers != "gpus":
        try:
            workers = int(workers)
        except ValueError:
            raise ZsbenchError(f"--workers {workers!r}: a number or 'gpus'") from None
    resources = {k: v for k, v in (("cpus", args.cpus), ("gpus", args.gpus),
                                   ("mem_gb", args.mem_gb), ("timeout_min", args.timeout_min))
                 if v is not None}
    slurm = {k: v for k, v in (("partition", args.partition), ("account", args.account))
             if v is not None}
    if args.no_wait:
        slurm["wait"] = False
    return {"methods": _list(args.methods), "protocols": _list(args.protocols),
            "datasets": _list(args.datasets), "folds": folds, "seeds": parse_seeds(args.seeds),
            "variants": parse_variants(args.variant), "name": args.name,
            "out": str(args.out) if args.out else None, "reference": args.reference,
            "executor": args.executor, "workers": workers, "resources": resources or None,
            "ray": {"address": args.ray_address} if args.ray_address else None,
            "slurm": slurm or None}


def cmd_sweep(args: argparse.Namespace, load: Callable[[argparse.Namespace], Any]) -> int:
    from .sweep import read_spec, sweep

    flags = spec_flags(args)
    spec = read_spec(args.spec, flags)
    if args.overrides:
        spec = spec.model_copy(update={"set": spec.set + list(args.overrides)})
    plugin_flags = {"blocked": [f[3:] for f in args.plugin_flags if f.startswith("no:")],
                    "requested": [f for f in args.plugin_flags if not f.startswith("no:")],
                    "autoload": False if args.no_autoload else None}
    _, counts = sweep(spec, load(args), dry_run=args.dry_run, retry_failed=args.retry_failed,
                      report_only=args.report_only, plugin_flags=plugin_flags)
    if args.dry_run or args.report_only or (spec.executor == "slurm" and not spec.slurm.wait):
        return 0
    return 1 if counts.get("failed") else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .stats import compare, observations, select
    from .sweep import load_runs

    sides = []
    for path, where in ((args.runs_a, args.a_where), (args.runs_b, args.b_where)):
        runs, stale = load_runs(path)
        if stale:
            print(f"zsbench: {stale} record(s) under {path} belong to cells no longer in their "
                  "sweep's spec (an earlier configuration); left out", file=sys.stderr)
        obs = select(observations(runs), where)
        if not obs:
            raise ZsbenchError(f"no result records under {path}"
                               + (f" match {' '.join(where)}" if where else ""))
        sides.append(obs)
    for metric in args.metric or ["zsl_acc", "gzsl_h"]:
        if not args.metric and not all(any(o.metrics.get(metric) is not None for o in side)
                                       for side in sides):
            print(f"{metric}: not measured by both sets of runs (skipped)")
            continue
        result = compare(sides[0], sides[1], metric, args.test, args.alpha, args.bootstrap)
        print("\n".join(result.lines()))
    return 0
