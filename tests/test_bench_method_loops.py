"""benchmarks/bench_method_loops.py runs (tiny sizes) and reports the product loops equal to
their baselines: the VAE parameters bit for bit, the MMD gradient closer to the exact one."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


def test_bench_method_loops_prints_ratios_and_equality(capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_method_loops
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    import torch
    threads = str(torch.get_num_threads())     # the benchmark sets it: keep the session's
    assert bench_method_loops.main(["--repeat", "1", "--iterations", "40", "--mmd-reps", "1",
                                    "--threads", threads]) == 0
    out = capsys.readouterr().out
    assert out.count("parameters bit for bit: yes") == 2, out
    mmd = re.findall(r"baseline ([0-9.e+-]+), product ([0-9.e+-]+)", out)
    assert len(mmd) == 2 and all(float(p) < float(b) for b, p in mmd), out
    assert len(re.findall(r"ratio +[0-9.]+x", out)) == 4, out
