"""Speed of the embedded synthetic benchmark: generation of the default config (budget:
10 s on 2 CPU cores), a cold load (generate + write the cache) and a warm load (verify
the checksums + memory-map).

Run: PYTHONPATH=harness:plugins python benchmarks/bench_synthetic.py [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from zsbench_synthetic import SyntheticConfig, generate, load_synthetic

BUDGET_S = 10.0


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = SyntheticConfig()
    print(f"config: {cfg.model_dump()}")
    print(f"cpu cores available: {len(os.sched_getaffinity(0))}")
    gen = _timed(lambda: generate(cfg), args.repeat)
    median = statistics.median(gen)
    print(f"generate (default config): median {median:.2f} s, min {min(gen):.2f} s over "
          f"{args.repeat} runs; ratio to the {BUDGET_S:.0f} s budget: {median / BUDGET_S:.3f}")
    with tempfile.TemporaryDirectory() as root:
        cold = _timed(lambda: load_synthetic(cfg, root), 1)[0]
        warm = _timed(lambda: load_synthetic(cfg, root), args.repeat)
        print(f"load_synthetic cold (generate + write cache): {cold:.2f} s")
        print(f"load_synthetic warm (verify sha256 + mmap): median {statistics.median(warm):.3f} s;"
              f" speed-up over cold: {cold / statistics.median(warm):.1f}x")
    if median > BUDGET_S:
        raise SystemExit(f"generation takes {median:.2f} s, over the {BUDGET_S:.0f} s budget")


if __name__ == "__main__":
    main()
