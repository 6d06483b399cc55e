"""Unseen accuracy of DeViSE per text kind and text encoder on the embedded benchmark.

    python benchmarks/text_kinds.py [--protocol smie] [--encoders sbert clip] [--features handmade|stgcn]

Every text kind the embedded benchmark ships (name, description, motion, parts, phases,
context) is run with each text encoder. `--features stgcn` uses the ST-GCN pretraining
stage (pretrained once per fold, cached, then reused for every kind); `handmade` (default)
uses simple skeleton statistics through the `precomputed` encoder and takes seconds.
CLIP runs with randomly initialised weights unless --clip-weights is given (offline), so
its numbers measure the plumbing, not CLIP.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from zsbench.config import build_run_config
from zsbench.plugins import load_plugins
from zsbench.runner import run
from zsbench_synthetic.config import SyntheticConfig

KINDS = ["name", "description", "motion", "parts", "phases", "context"]


def handmade_features(folder: Path, cache: Path) -> Path:
    from zsbench_synthetic.dataset import load_synthetic

    ds = load_synthetic(SyntheticConfig(), cache / "synthetic-root")
    x = np.asarray(ds.data, dtype=np.float32)
    b1 = x[..., 0]
    parts = [b1.mean(2), b1.std(2), np.abs(np.diff(b1, axis=2)).mean(2), x[..., 1].std(2)]
    path = folder / "handmade.npy"
    np.save(path, np.concatenate([p.reshape(len(x), -1) for p in parts], 1).astype(np.float32))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="smie")
    ap.add_argument("--encoders", nargs="*", default=["sbert", "clip"])
    ap.add_argument("--features", choices=["handmade", "stgcn"], default="handmade")
    ap.add_argument("--clip-weights", help="local open_clip weights file")
    ap.add_argument("--cache-dir", type=Path, help="reuse a cache folder")
    args = ap.parse_args(argv)
    plugins = load_plugins()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        cache = args.cache_dir or tmp_path / "cache"
        base = {"plugin": "devise", "protocol": args.protocol, "out": str(tmp_path / "out"),
                "cache_dir": str(cache), "device": "cpu"}
        sets: list[str] = []
        if args.features == "handmade":
            base["encoder"] = "precomputed"
            base["data_root"] = str(cache / "synthetic-root")
            sets += [f"encoder.path={handmade_features(tmp_path, cache)}", "encoder.trained_on=[]"]
        print(f"{'text encoder':<14}{'kind':<14}{'control':<9}{'ZSL acc (mean over folds)':>28}")
        for enc in args.encoders:
            enc_sets = []
            if enc == "clip":
                enc_sets = ([f"text_encoder.pretrained={args.clip_weights}"] if args.clip_weights
                            else ["text_encoder.pretrained=random"])
            for kind in KINDS:
                for control in ("real", "random"):
                    cfg = build_run_config({**base, "text_encoder": enc},
                                           sets + enc_sets + [f"method.text_kind={kind}",
                                                              f"text_control={control}"])
                    rec, _ = run(cfg, plugins, log=lambda m: None)
                    print(f"{enc:<14}{kind:<14}{control:<9}{rec.summary['zsl_acc']:>28.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
