"""zsbench.batch_reader: batches read one step ahead, same batches, same order."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from zsbench.batch_reader import prefetched, read_batch


def test_same_batches_in_order_as_reading_in_the_main_thread(tmp_path):
    data = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                     shape=(50, 3, 4))
    data[:] = np.random.default_rng(0).standard_normal(data.shape)
    batches = [np.array([3, 1, 7]), np.arange(10, 20), np.array([49]), np.array([0, 0, 2])]
    ahead = list(prefetched(data, batches, "cpu", enabled=True))
    inline = list(prefetched(data, batches, "cpu", enabled=False))
    assert [i.tolist() for i, _ in ahead] == [b.tolist() for b in batches]
    for (_, a), (_, b), idx in zip(ahead, inline, batches):
        assert a.dtype == torch.float32 and a.is_contiguous()
        assert torch.equal(a, b) and torch.equal(a, torch.from_numpy(data[idx]))
    assert list(prefetched(data, [], "cpu")) == []


def test_reads_happen_on_a_reader_thread_one_batch_ahead():
    seen: list[tuple[str, int]] = []

    class Data:
        def __getitem__(self, idx):
            seen.append((threading.current_thread().name, int(idx[0])))
            return np.zeros((len(idx), 2), np.float64)

    it = prefetched(Data(), [np.array([0]), np.array([1]), np.array([2])], "cpu", enabled=True)
    next(it)
    for _ in range(200):                              # batch 1 is read without asking for it
        if len(seen) == 2:
            break
        time.sleep(0.01)
    assert [i for _, i in seen] == [0, 1]
    assert all(name.startswith("zsbench-reader") for name, _ in seen)
    assert next(it)[1].dtype == torch.float32         # converted on read
    list(it)
    assert [i for _, i in seen] == [0, 1, 2]


def test_reader_errors_reach_the_caller():
    class Broken:
        def __getitem__(self, idx):
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(prefetched(Broken(), [np.array([0])], "cpu", enabled=True))


def test_environment_switch(monkeypatch):
    monkeypatch.setenv("ZSBENCH_PREFETCH", "0")
    names = []

    class Data:
        def __getitem__(self, idx):
            names.append(threading.current_thread().name)
            return np.zeros((1, 1), np.float32)

    list(prefetched(Data(), [np.array([0])], "cpu"))
    assert names == [threading.current_thread().name]
    assert read_batch(np.ones((2, 2)), np.array([1])).shape == (1, 2)
