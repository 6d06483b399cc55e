"""Command line and output of the reference scripts that import the OFFICIAL SynSE-repository
code (``revise_reference.py``, ``jpose_reference.py``): ``--checkout PATH`` (a work tree of
``skelemoa/synse-zsl``) and ``--out FILE`` (default ``tests/fidelity/<name>.npz``)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = "skelemoa/synse-zsl"
COMMIT = "90f39a118170d708843c5d4305bd807905cb4c54"


def setup(doc: str, name: str, subdir: str) -> tuple[argparse.Namespace, str]:
    """Parse the arguments, put ``<checkout>/<subdir>`` first on ``sys.path`` (the official
    modules import each other by bare name) and return (arguments, commit of the checkout:
    its ``git rev-parse HEAD``, or the pinned commit for an exported tree)."""
    import torch

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--checkout", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2]
                    / "tests" / "fidelity" / f"{name}.npz")
    args = ap.parse_args()
    if not (args.checkout / subdir).is_dir():
        ap.error(f"{args.checkout} has no {subdir}/ folder: pass a work tree of {REPO}")
    sys.path.insert(0, str(args.checkout / subdir))
    torch.set_num_threads(1)
    head = subprocess.run(["git", "-C", str(args.checkout), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    return args, (head.stdout.strip() if head.returncode == 0 else COMMIT)


def save(out: Path, arrays: dict[str, Any], commit: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, repo=np.array(REPO), commit=np.array(commit), **arrays)
    print(f"wrote {out} ({out.stat().st_size} bytes) from {REPO}@{commit}")
