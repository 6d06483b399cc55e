"""Regression matrix: every built-in method x protocol on the (shrunken) embedded benchmark,
compared with golden numbers recorded in benchmarks/golden/<method>_<protocol>.json.

    python benchmarks/regression.py                 # check (exit 1 on regression)
    python benchmarks/regression.py --record        # (re)write the golden files
    python benchmarks/regression.py --only devise   # a subset

For real data, `zsbench check RESULTS_DIR --tolerance PTS` compares runs with the numbers
each paper reports (carried by each method plugin).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


HERE = Path(__file__).resolve().parent
# The embedded benchmark at its default size with the CPU-sized defaults it suggests
# (DatasetSpec.run_defaults); the ST-GCN pretraining is shared by the two-stage methods
# through the cache. About 15 minutes on 2 CPU cores from a cold cache.
MATRIX = {
    "devise": ["synse", "smie"],
    "dvta": ["smie"],
    "pgfa": ["smie"],
}


def run_one(method: str, protocol: str, tmp: Path):
    from zsbench.config import build_run_config
    from zsbench.plugins import load_plugins
    from zsbench.runner import run

    cfg = build_run_config({"plugin": method, "protocol": protocol, "out": str(tmp / "out"),
                            "cache_dir": str(tmp / "cache"), "device": "cpu", "seed": 0}, [])
    return run(cfg, load_plugins(), log=lambda m: None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--tolerance", type=float, default=2.0, help="points below golden allowed")
    args = ap.parse_args(argv)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for method, protocols in MATRIX.items():
            if args.only and method not in args.only:
                continue
            for protocol in protocols:
                rec, _ = run_one(method, protocol, Path(tmp))
                golden_path = HERE / "golden" / f"{method}_{protocol}.json"
                got = {k: v for k, v in rec.summary.items() if v is not None}
                if args.record:
                    golden_path.write_text(json.dumps({"summary": got, "config": rec.config},
                                                      indent=2) + "\n")
                    print(f"recorded {golden_path.name}: {got}")
                    continue
                if not golden_path.exists():
                    failures.append(f"{method}/{protocol}: no golden file (run with --record)")
                    continue
                golden = json.loads(golden_path.read_text())["summary"]
                for metric, value in golden.items():
                    now = got.get(metric)
                    status = "ok"
                    if now is None or now < value - args.tolerance:
                        status = "REGRESSION"
                        failures.append(f"{method}/{protocol} {metric}: {now} < {value} - {args.tolerance}")
                    print(f"{method:<8} {protocol:<8} {metric:<16} golden {value:6.2f}  now "
                          f"{'-' if now is None else f'{now:6.2f}'}  {status}")
    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
