"""Sequence-level streaming at NTU-120 scale: is the loader the bottleneck?

Builds a synthetic NTU-120-sized store (``--samples`` x 3 x 50 x 25 x 2 float32, 3.42 GB
for 114,000; memory-mapped ``.npy`` as ``zsbench data prepare`` writes it) in a temporary
folder, loads it through the dataset plugin, and reads shuffled training batches the way
``zsbench.pretrain`` does (sorted indices within a batch, fancy-indexed from the memory
map, ``torch.from_numpy``). It prints samples/s of

* the loader with a null model (a sum over the batch), page cache cold (pages dropped with
  ``posix_fadvise(DONTNEED)``) and warm (after one sequential pass over the whole store,
  whose rate is printed too), read in the main thread, by ``zsbench.batch_reader`` (one
  reader thread, one batch ahead: what ``zsbench.pretrain`` uses) or by 1 or ``--readers``
  prefetching threads up to ``2 * readers`` batches ahead;
* an ST-GCN training step fed by the loader, against the same step on a batch already in
  memory (the loader's share of the step is the difference).

The store is deleted afterwards. Free disk is checked first (the store is scaled down when
there is not enough).

    python benchmarks/bench_streaming.py [--samples 114000] [--batch 64] [--threads 2]
        [--null-batches 300] [--cold-batches 40] [--readers 4] [--steps 4] [--tmp DIR]
"""
from __future__ import annotations

import argparse
import gc
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "harness"), str(ROOT / "plugins"), str(ROOT / "benchmarks")]

ROW_BYTES = 3 * 50 * 25 * 2 * 4


def drop_cache(path: Path) -> bool:
    """Ask the kernel to drop the file's clean pages from the page cache (no root needed)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    finally:
        os.close(fd)


def batches(train: np.ndarray, batch: int, seed: int):
    perm = np.random.default_rng(seed).permutation(train)
    for start in range(0, len(perm) - batch + 1, batch):
        yield np.sort(perm[start:start + batch])


def read(ds, idx):
    import torch

    return torch.from_numpy(np.ascontiguousarray(ds.data[idx], dtype=np.float32))


def prefetched(ds, index_iter, readers: int):
    """Batches read by ``readers`` background threads, in order, up to ``2 * readers``
    ahead (numpy's copy out of the memory map runs without the GIL, so page faults on a
    cold file overlap)."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(readers) as pool:
        pending: deque = deque()
        for idx in index_iter:
            pending.append(pool.submit(read, ds, idx))
            if len(pending) >= 2 * readers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def null_rate(load, args, readers: "int | str", cold: bool, data_file: Path, seed: int) -> float:
    """A fresh memory map each time: pages still mapped by an earlier one are not dropped."""
    gc.collect()
    if cold:
        drop_cache(data_file)
    ds = load()
    train = np.flatnonzero(ds.partitions["xsub"])
    count = args.cold_batches if cold else args.null_batches
    it = batches(train, args.batch, seed)           # other samples in each measurement
    limited = (idx for _, idx in zip(range(count), it))
    if readers == "product":                      # what zsbench.pretrain uses
        from zsbench.batch_reader import prefetched as product_reader

        source = (x for _, x in product_reader(ds.data, limited, "cpu"))
    else:
        source = prefetched(ds, limited, readers) if readers else (read(ds, i) for i in limited)
    t0, n, acc = time.perf_counter(), 0, 0.0
    for x in source:
        acc += float(x.sum())                     # the null model
        n += len(x)
    return n / (time.perf_counter() - t0)


def stgcn_rates(ds, train, args) -> dict[str, list[float]]:
    import torch
    from torch import nn

    from zsbench.cpu import tune_allocator
    from zsbench_encoders.configs import STGCNConfig
    from zsbench_encoders.stgcn import STGCN

    tune_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, head = STGCN(STGCNConfig()), nn.Linear(256, 120)
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=0.01,
                          momentum=0.9)
    labels = torch.as_tensor(ds.labels, dtype=torch.long)
    model.train()

    def step(x, idx):
        loss = nn.functional.cross_entropy(head(model(x)), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    it = batches(train, args.batch, seed=2)
    fixed_idx = next(it)
    fixed = read(ds, fixed_idx)
    step(fixed, fixed_idx)                          # warm-up
    rates: dict[str, list[float]] = {"in memory": [], "from the store": []}
    for _ in range(args.steps):                     # alternate: the machine's speed drifts
        t0 = time.perf_counter()
        step(fixed, fixed_idx)
        rates["in memory"].append(args.batch / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        idx = next(it)
        step(read(ds, idx), idx)
        rates["from the store"].append(args.batch / (time.perf_counter() - t0))
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=114000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--null-batches", type=int, default=300)
    ap.add_argument("--cold-batches", type=int, default=40)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--tmp", default=None, help="folder for the temporary store (default: $TMPDIR)")
    args = ap.parse_args(argv)
    from bench_prepare import build_store
    from zsbench_ntu.config import DatasetConfig
    from zsbench_ntu.datasets import load_dataset

    tmp = Path(tempfile.mkdtemp(prefix="zsbench-stream-", dir=args.tmp))
    try:
        free = shutil.disk_usage(tmp).free
        need = args.samples * ROW_BYTES * 1.05 + (512 << 20)
        n = args.samples
        if free < need:
            n = max(10 * args.batch, int((free - (512 << 20)) / (ROW_BYTES * 1.05)))
            print(f"only {free / 2**30:.1f} GiB free in {tmp}: store scaled down to {n} samples")
        t0 = time.perf_counter()
        build_store(tmp / "store", n)
        data_file = tmp / "store" / "ntu120" / "frames50" / "data.npy"
        print(f"store: {n} x 3 x 50 x 25 x 2 float32, {data_file.stat().st_size / 1e9:.2f} GB, "
              f"written in {time.perf_counter() - t0:.0f} s; {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f}; batch {args.batch}")
        def load():
            return load_dataset("ntu120", DatasetConfig(frames=50), str(tmp / "store"))

        seed = 10
        for cold in (True, False):
            if not cold:                        # warm: the whole store read once, in order
                gc.collect()
                t0, ds = time.perf_counter(), load()
                for start in range(0, len(ds), 1024):
                    np.asarray(ds.data[start:start + 1024]).sum()
                del ds
                print(f"one sequential pass over the store (page cache cold -> warm): "
                      f"{n / (time.perf_counter() - t0):8.0f} samples/s")
            for readers in (0, "product", 1, args.readers):
                seed += 1
                rate = null_rate(load, args, readers, cold, data_file, seed)
                mode = ("zsbench.batch_reader" if readers == "product" else
                        f"{readers} reader thread(s)" if readers else "main thread")
                print(f"null model, page cache {'cold' if cold else 'warm'}, {mode:19s}: "
                      f"{rate:8.0f} samples/s "
                      f"({args.cold_batches if cold else args.null_batches} batches)")
        ds = load()
        rates = stgcn_rates(ds, np.flatnonzero(ds.partitions["xsub"]), args)
        mem, store = (statistics.median(rates[k]) for k in ("in memory", "from the store"))
        print(f"ST-GCN training step ({args.threads} threads, {args.steps} alternated steps): "
              f"{mem:.1f} samples/s on a batch in memory, {store:.1f} samples/s reading each "
              f"batch from the store (ratio {store / mem:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
